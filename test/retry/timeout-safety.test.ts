import { Readable } from 'node:stream';
import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream, sha256 } from '../helpers/upstream.js';
import { header, newAgent, problemOf, send, sleep } from '../io/support.js';
import { closeAll } from './support.js';

/**
 * A timeout may follow a processed request: sluice retries it only for an idempotent method or a
 * request carrying `Idempotency-Key`. When no retry is left (or allowed) the client gets 504
 * SLUICE_UPSTREAM_TIMEOUT. The upstream here reads every request and never answers.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

async function start(): Promise<{ upstream: ScriptedUpstream; sluice: RunningSluice; agent: Agent }> {
  upstream = await ScriptedUpstream.start(() => undefined);
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    timeout: 300ms
    retry:
      attempts: 3
      backoff: { base: 50ms, max: 100ms }
`);
  agent = newAgent();
  return { upstream, sluice, agent };
}

it('does not retry a POST that timed out: one attempt, then 504', async () => {
  const { upstream, sluice, agent } = await start();
  const got = await send(agent, `${sluice.url}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });

  expect(got.status).toBe(504);
  expect(problemOf(got)).toMatchObject({ status: 504, code: 'SLUICE_UPSTREAM_TIMEOUT' });
  expect(got.doneAt - got.sentAt).toBeGreaterThanOrEqual(300 - 20);
  expect(got.doneAt - got.sentAt).toBeLessThan(1500);
  // Nor later: a retry after the answer would be just as wrong.
  await sleep(500);
  expect(upstream.seen.map((s) => [s.method, s.url])).toEqual([['POST', '/orders']]);
});

it('retries a GET that timed out, up to retry.attempts, then 504', async () => {
  const { upstream, sluice, agent } = await start();
  const got = await send(agent, `${sluice.url}/api/orders/1`);

  expect(got.status).toBe(504);
  expect(problemOf(got)).toMatchObject({ status: 504, code: 'SLUICE_UPSTREAM_TIMEOUT' });
  expect(header(got, 'sluice-attempts')).toBeUndefined();
  // Three timeouts of 300 ms and two backoffs of at most 50 and 100 ms, not three of undici's
  // coarse header timeouts (which fire up to a second after a 300 ms timeout).
  expect(got.doneAt - got.sentAt).toBeGreaterThanOrEqual(3 * 300 - 20);
  expect(got.doneAt - got.sentAt).toBeLessThan(2000);
  await sleep(500);
  expect(upstream.seen.map((s) => [s.method, s.url])).toEqual(Array(3).fill(['GET', '/orders/1']));
});

it('retries a POST carrying Idempotency-Key that timed out', async () => {
  const { upstream, sluice, agent } = await start();
  const got = await send(agent, `${sluice.url}/api/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'order-7' },
    body: '{"n":1}',
  });

  expect(got.status).toBe(504);
  expect(problemOf(got)).toMatchObject({ status: 504, code: 'SLUICE_UPSTREAM_TIMEOUT' });
  await sleep(500);
  expect(upstream.seen).toHaveLength(3);
  expect(upstream.seen.every((s) => s.method === 'POST' && s.headers['idempotency-key'] === 'order-7' && s.body.toString() === '{"n":1}')).toBe(true);
});

it('does not time out a streamed body that takes longer than the timeout to upload', async () => {
  // Bodies above retry.maxBodySize stream (and are never retried); the timeout runs from the end
  // of the upload, not from its start, or a slow uploader would always get 504.
  upstream = await ScriptedUpstream.start(echo);
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    timeout: 300ms
    retry: { maxBodySize: 1kb }
`);
  agent = newAgent();
  const pieces = Array.from({ length: 4 }, (_, i) => Buffer.alloc(1024, 97 + i));
  async function* slowly(): AsyncGenerator<Buffer> {
    for (const piece of pieces) {
      yield piece;
      await sleep(200);
    }
  }

  const got = await send(agent, `${sluice.url}/api/upload`, { method: 'PUT', body: Readable.from(slowly()) });

  expect(got.status).toBe(200);
  expect(got.doneAt - got.sentAt).toBeGreaterThanOrEqual(600);
  expect(JSON.parse(got.text)).toMatchObject({ bytes: 4096, sha256: sha256(Buffer.concat(pieces)) });
  expect(upstream.seen).toHaveLength(1);
});
