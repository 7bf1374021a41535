import net from 'node:net';
import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { delayed, ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, problemOf, sample, scrape, send, sleep } from '../io/support.js';
import { closeAll } from './support.js';

/**
 * An upstream that cannot be reached gets 502 SLUICE_UPSTREAM_UNREACHABLE after the configured
 * attempts, quickly; one that never answers in time gets 504 SLUICE_UPSTREAM_TIMEOUT.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

/** A port on 127.0.0.1 that was just free: nothing listens there. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

it('answers 502 after 3 refused connections, in well under 3 s', async () => {
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: http://127.0.0.1:${await closedPort()}
    retry:
      attempts: 3
      backoff: { base: 100ms, max: 10s }
`);
  agent = newAgent();

  const got = await send(agent, `${sluice.url}/api/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });

  expect(got.status).toBe(502);
  expect(problemOf(got)).toMatchObject({ status: 502, code: 'SLUICE_UPSTREAM_UNREACHABLE' });
  expect(problemOf(got).detail).toContain('3 attempts');
  // Backoffs of at most 100 and 200 ms between three refusals.
  expect(got.doneAt - got.sentAt).toBeLessThan(3000);
  // Three attempts, counted by sluice (nothing listens to count them): a refused connection is
  // retried whatever the method, since nothing was sent.
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_upstream_attempts_total', { upstream: 'api', status: 'error' })).toBe(3);
  expect(sample(metrics, 'sluice_retries_total', { upstream: 'api', reason: 'connect' })).toBe(2);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'failed' })).toBe(1);
});

it('answers 504 when the upstream sends its headers after 2 s and the timeout is 300 ms', async () => {
  upstream = await ScriptedUpstream.start(delayed(2000));
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    timeout: 300ms
    retry:
      attempts: 2
      backoff: { base: 50ms, max: 100ms }
`);
  agent = newAgent();

  const got = await send(agent, `${sluice.url}/api/slow`);

  expect(got.status).toBe(504);
  expect(problemOf(got)).toMatchObject({ status: 504, code: 'SLUICE_UPSTREAM_TIMEOUT' });
  expect(problemOf(got).detail).toContain('2 attempts');
  // Two timeouts of 300 ms and a backoff, long before the upstream would have answered.
  expect(got.doneAt - got.sentAt).toBeGreaterThanOrEqual(600 - 20);
  expect(got.doneAt - got.sentAt).toBeLessThan(1500);
  await sleep(200);
  expect(upstream.seen).toHaveLength(2);
});
