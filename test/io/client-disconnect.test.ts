import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';
import { newAgent, sample, schedulerOf, scrape, send, sleep, waitFor } from './support.js';

/**
 * A client that goes away while queued leaves the queue at once: its request never reaches the
 * upstream, and its token is not spent, so the request behind it goes when it would have.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;
/**
 * The aborting client gets an agent of its own: after an abort undici opens a spare connection
 * that never carries a request, which the server would wait for on close.
 */
let abortingAgent: Agent | undefined;

afterEach(async () => {
  await abortingAgent?.destroy();
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

it('drops an aborted queued request without spending its token, and counts it as cancelled', async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 2/s
`);
  agent = newAgent();
  abortingAgent = newAgent();
  const url = sluice.url;
  const client = agent;
  const scheduler = schedulerOf(sluice);
  // prom-client writes no sample for a label set before its first increment: absent reads as 0.
  const cancelled = async (): Promise<number> =>
    sample(await scrape((sluice as RunningSluice).adminUrl), 'sluice_requests_total', { upstream: 'api', outcome: 'cancelled' }) ?? 0;
  expect(await cancelled()).toBe(0);

  const first = send(client, `${url}/api/first`);
  await waitFor(() => upstream?.seen.length === 1, 5_000, 'the first request');
  const abort = new AbortController();
  const doomed = send(abortingAgent, `${url}/api/doomed`, { signal: abort.signal });
  await waitFor(() => scheduler.queued === 1, 5_000, 'the doomed request to queue');
  const last = send(client, `${url}/api/last`);
  await waitFor(() => scheduler.queued === 2, 5_000, 'the last request to queue');
  await sleep(100);
  abort.abort();

  await expect(doomed).rejects.toThrow();
  // It leaves the queue as soon as sluice sees the connection close, long before its turn.
  await waitFor(() => scheduler.queued === 1, 250, 'the doomed request to leave the queue');
  const [firstAnswer, lastAnswer] = await Promise.all([first, last]);
  expect(firstAnswer.status).toBe(200);
  expect(lastAnswer.status).toBe(200);
  expect(upstream.seen.map((s) => s.url)).toEqual(['/first', '/last']);
  // The doomed request's place (~504 ms after the first) went to the next one, not a place later
  // (~1008 ms).
  const [a, b] = upstream.seen as [SeenRequest, SeenRequest];
  expect(b.at - a.at).toBeGreaterThanOrEqual(400);
  expect(b.at - a.at).toBeLessThan(750);
  await waitFor(() => scheduler.queued === 0 && scheduler.inFlight === 0, 2_000, 'the queue to empty');
  expect(await cancelled()).toBe(1);
});
