import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, sample, schedulerOf, scrape, send, sleep, waitFor } from '../io/support.js';
import { answer, closeAll } from './support.js';

/**
 * A client that goes away while its request waits to be retried: no further attempt is made, the
 * key stays paused for everyone else as the upstream asked, the request counts as cancelled, and
 * nothing is left queued or in flight.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;
/** The aborting client has an agent of its own (see test/io/client-disconnect.test.ts). */
let abortingAgent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [abortingAgent, agent], sluice, upstreams: [upstream] });
  agent = abortingAgent = sluice = upstream = undefined;
});

it('makes no further attempt for a client gone during the pause, which still holds the key', async () => {
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (index === 0) return answer(res, { status: 429, headers: { 'retry-after': '2' }, body: 'slow down' });
    return echo(req, res, index);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-account}"
        rate: 10/s
`);
  agent = newAgent();
  abortingAgent = newAgent();
  const running = sluice;
  const scheduler = schedulerOf(sluice);
  const metric = async (name: string, labels: Record<string, string>): Promise<number> =>
    sample(await scrape(running.adminUrl), name, { upstream: 'api', ...labels }) ?? 0;
  expect(await metric('sluice_requests_total', { outcome: 'cancelled' })).toBe(0);

  const abort = new AbortController();
  const doomed = send(abortingAgent, `${sluice.url}/api/doomed`, { headers: { 'x-account': 'a' }, signal: abort.signal });
  await waitFor(() => upstream?.seen.length === 1, 5_000, 'the first attempt');
  await sleep(200);
  abort.abort();
  await expect(doomed).rejects.toThrow();
  await waitFor(() => scheduler.queued === 0 && scheduler.inFlight === 0, 2_000, 'the retry to leave');

  // Another request of the key still waits out the 2 s the upstream asked for.
  const next = await send(agent, `${sluice.url}/api/next`, { headers: { 'x-account': 'a' } });
  expect(next.status).toBe(200);
  expect(header(next, 'sluice-attempts')).toBe('1');
  const [throttledAt, nextAt] = upstream.seen.map((s) => s.at) as [number, number];
  expect(nextAt - throttledAt).toBeGreaterThanOrEqual(2000 - 20);

  // Past the moment the retry would have been sent: the upstream saw the doomed request once.
  await sleep(300);
  expect(upstream.seen.map((s) => s.url)).toEqual(['/doomed', '/next']);
  expect(await metric('sluice_requests_total', { outcome: 'cancelled' })).toBe(1);
  expect(await metric('sluice_requests_total', { outcome: 'ok' })).toBe(1);
  expect(await metric('sluice_retries_total', { reason: '429' })).toBe(1);
  // Nothing leaked: no queued ticket, no slot held.
  expect(await metric('sluice_queue_depth', {})).toBe(0);
  expect(await metric('sluice_inflight', {})).toBe(0);
  expect(scheduler.snapshot()).toMatchObject({ queued: 0, inFlight: 0, lanes: 0 });
});

it('makes no further attempt for a client gone during a backoff of its own (503 without Retry-After)', async () => {
  upstream = await ScriptedUpstream.start((_req, res) => answer(res, { status: 503, body: 'busy' }));
  // Randomness 0.99: the backoff is 990 ms of the 1 s base.
  sluice = await startSluice(
    `
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    retry:
      attempts: 3
      backoff: { base: 1s, max: 1s }
`,
    { random: () => 0.99 },
  );
  abortingAgent = newAgent();
  const running = sluice;
  const scheduler = schedulerOf(sluice);
  const metric = async (name: string, labels: Record<string, string>): Promise<number> =>
    sample(await scrape(running.adminUrl), name, { upstream: 'api', ...labels }) ?? 0;

  const abort = new AbortController();
  const doomed = send(abortingAgent, `${sluice.url}/api/doomed`, { signal: abort.signal });
  await waitFor(() => upstream?.seen.length === 1, 5_000, 'the first attempt');
  await sleep(200);
  // Backing off: the retry is planned, and waits on nothing in the scheduler.
  expect(await metric('sluice_retries_total', { reason: '503' })).toBe(1);
  expect(scheduler.snapshot()).toMatchObject({ queued: 0, inFlight: 0 });
  abort.abort();
  await expect(doomed).rejects.toThrow();

  // Past the moment the retry would have been sent.
  await sleep(1300);
  expect(upstream.seen).toHaveLength(1);
  expect(await metric('sluice_requests_total', { outcome: 'cancelled' })).toBe(1);
  expect(await metric('sluice_queue_depth', {})).toBe(0);
  expect(await metric('sluice_inflight', {})).toBe(0);
  expect(scheduler.snapshot()).toMatchObject({ queued: 0, inFlight: 0, lanes: 0 });
});
