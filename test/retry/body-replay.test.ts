import { randomBytes } from 'node:crypto';
import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream, sha256 } from '../helpers/upstream.js';
import { header, newAgent, send } from '../io/support.js';
import { answer, closeAll } from './support.js';

/**
 * A 429 means the request was not processed, so a POST is retried too: its body (up to
 * retry.maxBodySize) was buffered, and the upstream receives the very same bytes again.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

it('sends the same 1 KB POST body again after a 429', async () => {
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (index === 0) return answer(res, { status: 429, headers: { 'retry-after': '0' }, body: 'slow down' });
    return echo(req, res, index);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
`);
  agent = newAgent();
  const body = randomBytes(1024);

  const got = await send(agent, `${sluice.url}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });

  expect(got.status).toBe(200);
  expect(header(got, 'sluice-attempts')).toBe('2');
  expect(upstream.seen.map((s) => [s.method, s.url, s.body.length, sha256(s.body)])).toEqual([
    ['POST', '/orders', 1024, sha256(body)],
    ['POST', '/orders', 1024, sha256(body)],
  ]);
  // Both arrived framed as the client sent them: with the body's length.
  expect(upstream.seen.map((s) => s.headers['content-length'])).toEqual(['1024', '1024']);
  expect(JSON.parse(got.text)).toMatchObject({ method: 'POST', bytes: 1024, sha256: sha256(body) });
});
