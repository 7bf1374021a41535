import { cpus, loadavg } from 'node:os';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { spawnStandin } from '../../load/lib/processes.js';
import type { StandinStats } from '../../load/lib/standin.js';
import { sleep, spread, startReplicas, statusCounts, type Replicas } from './replicas-support.js';

/**
 * Three sluice replicas sharing one Redis in front of an API that allows 100 requests in any second
 * and forgives nothing: together they never exceed it, and use it in full. Each replica and the API
 * run in their own process, as in production: one's pauses are not the others'.
 */

const redisUrl = inject('redisUrl');
if (!redisUrl) console.warn(`[sluice] skipping the shared-limit test: ${inject('redisSkipReason')}`);

let standin: Awaited<ReturnType<typeof spawnStandin>> | undefined;
let replicas: Replicas | undefined;

async function afterRun(): Promise<void> {
  await replicas?.close();
  await standin?.stop();
  replicas = standin = undefined;
}
afterEach(afterRun);

describe.skipIf(!redisUrl)('three replicas, one Redis, one API at 100/s', () => {
  // Timing on a shared machine: a strict 1000 ms window judged by another process counts a 101st
  // request whenever a process is descheduled for ~8 ms (the margin's slack), and every delay of a
  // replica beyond 1 ms between booking and write is time the bucket gives up (so that the API never
  // sees two requests closer than the limit). One run in three passing is asked for. The rate is a
  // speed, which an oversubscribed machine (more runnable processes than cores) does not have to
  // give: there only a gross loss (below 70%) fails, with a warning; the limit itself (no 429, never
  // more than 100 in a second) is asked for always. `npm run load:replicas` measures the 97% target
  // on a longer run.
  it('900 calls spread over them: all 200, no 429 at the API, >= 90% of 100/s combined', { retry: 2 }, async () => {
    await afterRun(); // a retry starts afresh
    standin = await spawnStandin(['--rate', '100', '--window-ms', '1000']);
    replicas = await startReplicas(3, { redisUrl, target: standin.url, rate: '100/s', keyPrefix: `share-${process.pid}-${Date.now()}:`, processes: true });

    // Warm up: every replica opens its connections to the API and to Redis (a first connection is
    // a one-time cost, not the rate); then the API forgets what it saw.
    expect(statusCounts(await spread(replicas, 30, 10))).toEqual({ 200: 30 });
    await sleep(1_000);
    await fetch(`${standin.url}/__reset`, { method: 'POST' });

    const calls = await spread(replicas, 900, 40);

    expect(statusCounts(calls)).toEqual({ 200: 900 });
    const stats = (await (await fetch(`${standin.url}/__stats`)).json()) as StandinStats;
    console.info(`[sluice] 3 replicas: ${stats.accepted} accepted, ${stats.rejected} answered 429 by the API (load average ${loadavg()[0]?.toFixed(2)})`);
    expect(stats.rejected).toBe(0);
    expect(stats.accepted).toBe(900);
    expect(stats.maxAcceptedInAnySecond).toBeLessThanOrEqual(100);
    const ratePerSec = ((stats.accepted - 1) / stats.acceptedSpanMs) * 1000;
    console.info(
      `[sluice] 3 replicas: ${ratePerSec.toFixed(2)}/s combined over ${stats.acceptedSpanMs.toFixed(0)} ms, max ${stats.maxAcceptedInAnySecond} in any second`,
    );
    const load = loadavg()[0] ?? 0;
    // The 97% target is measured by `npm run load:replicas` on a quiet machine (98.8%). Here other
    // test files run beside this one and the load average lags them: on Node 24 in CI the rate was
    // 96.5-96.7% with 0 API 429s. What is asserted is that the replicas use the limit, not waste it.
    const target = load > cpus().length ? 70 : 90;
    if (target < 90) console.warn(`[sluice] load average ${load.toFixed(2)} on ${cpus().length} cores: the rate is only asserted above ${target}%`);
    expect(ratePerSec).toBeGreaterThanOrEqual(target);
    expect(ratePerSec).toBeLessThanOrEqual(100);
  });
});
