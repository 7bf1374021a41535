import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, send, sleep } from '../io/support.js';
import { answer, closeAll } from './support.js';

/**
 * A 503 without Retry-After may follow a processed request, so a POST is not retried: the client
 * gets the upstream's 503 as it was, status, headers and body.
 * A 503 with Retry-After says the request was not processed: that one is retried, whatever the method.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

it('passes a POST 503 without Retry-After through unchanged, after one attempt', async () => {
  const body = JSON.stringify({ error: 'overloaded', detail: 'try again later' });
  upstream = await ScriptedUpstream.start((_req, res) =>
    answer(res, { status: 503, headers: { 'content-type': 'application/json', 'x-request-id': 'req-42', 'cache-control': 'no-cache' }, body }),
  );
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    retry:
      attempts: 3
      on: [429, 503, timeout, connect]
      backoff: { base: 50ms, max: 100ms }
`);
  agent = newAgent();

  const got = await send(agent, `${sluice.url}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });

  expect(got.status).toBe(503);
  expect(got.text).toBe(body);
  expect(header(got, 'content-type')).toBe('application/json');
  expect(header(got, 'content-length')).toBe(String(Buffer.byteLength(body)));
  expect(header(got, 'x-request-id')).toBe('req-42');
  expect(header(got, 'cache-control')).toBe('no-cache');
  expect(header(got, 'retry-after')).toBeUndefined();
  expect(header(got, 'sluice-attempts')).toBe('1');
  // No retry, then or later.
  await sleep(300);
  expect(upstream.seen).toHaveLength(1);
});

it('retries a POST 503 that carries Retry-After: the upstream said it did not process it', async () => {
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (index === 0) return answer(res, { status: 503, headers: { 'retry-after': '0' }, body: 'busy' });
    return answer(res, { status: 201, body: req.body.toString() });
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    retry:
      attempts: 3
      on: [429, 503, timeout, connect]
`);
  agent = newAgent();

  const got = await send(agent, `${sluice.url}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });

  expect(got.status).toBe(201);
  expect(got.text).toBe('{"n":1}');
  expect(header(got, 'sluice-attempts')).toBe('2');
  expect(upstream.seen.map((s) => [s.method, s.body.toString()])).toEqual([
    ['POST', '{"n":1}'],
    ['POST', '{"n":1}'],
  ]);
});
