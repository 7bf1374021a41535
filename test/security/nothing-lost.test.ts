import { afterAll, beforeAll, expect, it } from 'vitest';
import { FaultyUpstream, faultMixConfig, loggedRequests, reconcile, runClients } from '../../load/lib/fault-mix.js';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { scrape } from '../io/support.js';
import { captureLogs } from './support.js';

/**
 * Nothing lost: 20 s of a mixed fault load (an upstream answering 200, slowly, streamed, 429,
 * 503, 500, resetting before or during its answer, stalling, or not answering at all; 48 clients
 * sending GETs and POSTs, some oversized, over 40 keys, aborting 5% of their requests at random).
 * Every request sluice accepted got exactly one answer: the client-side accounting (ok + refused +
 * errors + aborted) equals `sluice_requests_total` summed over outcomes, sluice logged each
 * request exactly once, no request the client got an answer for went unlogged, and no client was
 * left hanging. The 60 s version is `npm run load:nothing-lost`; the 10-minute one `load:soak`.
 */

let upstream: FaultyUpstream;
let sluice: RunningSluice;
const logs = captureLogs('info');

beforeAll(async () => {
  upstream = await FaultyUpstream.start({ seed: 9 });
  sluice = await startSluice(faultMixConfig(upstream.url), { logger: logs.logger });
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

function sumOf(metrics: string, name: string, upstreamName: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(`upstream="${upstreamName}"`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

it('answers every accepted request exactly once under a mixed fault load', async () => {
  const tally = await runClients({ proxyUrl: sluice.url, durationMs: 20_000, concurrency: 48, seed: 11 });
  const metrics = await scrape(sluice.adminUrl);
  const sluiceTotal = sumOf(metrics, 'sluice_requests_total', 'mix');
  const logged = loggedRequests(logs.lines);
  const result = reconcile(tally, logged, sluiceTotal);
  console.log(
    `nothing lost: ${JSON.stringify({ sent: tally.sent, client: tally.outcomes, sluice: logged.byOutcome, upstream: Object.fromEntries(upstream.counts), ...result })}`,
  );

  // The mix did exercise every fault.
  expect(tally.sent).toBeGreaterThan(1_000);
  for (const behaviour of ['429', '503', 'reset-before', 'reset-mid', 'stall', 'silent'] as const)
    expect(upstream.counts.get(behaviour) ?? 0, behaviour).toBeGreaterThan(0);
  expect(tally.outcomes.aborted).toBeGreaterThan(0);
  expect(tally.outcomes.refused).toBeGreaterThan(0);
  expect(tally.outcomes.error).toBeGreaterThan(0);

  expect(result.hung).toBe(0);
  expect(result.loggedTwice).toBe(0);
  expect(result.answeredNotLogged).toBe(0);
  expect(result.loggedUnknown).toBe(0);
  expect(result.clientAccounted).toBe(sluiceTotal);
  expect(logged.ids.size).toBe(sluiceTotal);
  expect(sumOf(metrics, 'sluice_inflight', 'mix')).toBe(0);
  expect(sumOf(metrics, 'sluice_queue_depth', 'mix')).toBe(0);
}, 60_000);
