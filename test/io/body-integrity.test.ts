import { randomBytes } from 'node:crypto';
import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream, sha256 } from '../helpers/upstream.js';
import { header, newAgent, send } from './support.js';

/**
 * Under load, every body reaches the upstream byte-exact and every answer goes back to the client
 * that asked: 500 concurrent POSTs with distinct random bodies from 0 B to 200 KB, some buffered
 * (up to retry.maxBodySize, 64 KB) and some streamed, through a concurrency cap so that both kinds
 * also wait in the queue.
 */

const REQUESTS = 500;
const MAX_BODY = 200 * 1024;

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

/**
 * Sizes spread over 0 B..200 KB (a multiplicative hash of the index, so every run sends the same
 * sizes), with the edges included: empty, around 64 KB, the largest.
 */
function sizeOf(i: number): number {
  const edges = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, MAX_BODY];
  return edges[i] ?? Math.floor((((i * 2_654_435_761) % 2 ** 32) / 2 ** 32) * (MAX_BODY + 1));
}

it('delivers 500 concurrent bodies byte-exact and each answer to its own client', async () => {
  upstream = await ScriptedUpstream.start((req, res) => {
    const id = String(req.headers['x-request-id']);
    const body = JSON.stringify({ id, url: req.url, bytes: req.body.length, sha256: sha256(req.body) });
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': id, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - concurrency: 32
    retry: { maxBodySize: 64kb }
`);
  agent = newAgent();
  const client = agent;
  const url = sluice.url;
  const bodies = Array.from({ length: REQUESTS }, (_, i) => randomBytes(sizeOf(i)));
  const buffered = bodies.filter((b) => b.length <= 64 * 1024).length;
  expect(buffered).toBeGreaterThan(50);
  expect(REQUESTS - buffered).toBeGreaterThan(50);

  const answers = await Promise.all(
    bodies.map((body, i) =>
      send(client, `${url}/api/items/${i}`, { method: 'POST', body, headers: { 'x-request-id': `req-${i}`, 'content-type': 'application/octet-stream' } }),
    ),
  );

  const mismatches: string[] = [];
  answers.forEach((answer, i) => {
    const expected = { id: `req-${i}`, url: `/items/${i}`, bytes: (bodies[i] as Buffer).length, sha256: sha256(bodies[i] as Buffer) };
    if (answer.status !== 200) return void mismatches.push(`#${i}: status ${answer.status} ${answer.text}`);
    if (header(answer, 'x-request-id') !== expected.id) mismatches.push(`#${i}: header x-request-id ${header(answer, 'x-request-id')}`);
    const echoed = JSON.parse(answer.text) as typeof expected;
    if (JSON.stringify(echoed) !== JSON.stringify(expected)) mismatches.push(`#${i}: ${answer.text} != ${JSON.stringify(expected)}`);
  });
  expect(mismatches).toEqual([]);
  expect(upstream.seen).toHaveLength(REQUESTS);
  expect(upstream.maxInFlight).toBeLessThanOrEqual(32);
});
