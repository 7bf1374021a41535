/**
 * The measurements behind "Learning the limit" (issue 8), shared by the load scenarios
 * (load/adaptive.ts, load/headers.ts, sluice and the stand-in in their own processes) and the
 * integration tests (test/learning/, everything in the test's process): the same numbers, asserted
 * loosely there and reported in full here.
 *
 * - `runAdaptive`: many calls at once through a sluice that starts above the API's real limit with
 *   `adaptive` on. Reports calls ok, the API's 429s, the achieved rate, and when the effective
 *   rate (`sluice_effective_rate`, polled on the admin /metrics) settled near the real limit.
 * - `runHeaders`: a steady backlog through a sluice with no rate at all, against an API that sends
 *   quota headers, for a fixed time. Reports the API's 429s and the share of the quota used.
 */
import { setMaxListeners } from 'node:events';
import { Agent, request } from 'undici';
import { parsePrometheus } from './observe.js';
import type { StandinStats } from './standin.js';
import { fanout, type CallResult } from './fanout.js';

/** [seconds since the run started, sluice_effective_rate], one per poll. */
export type RatePoint = readonly [number, number];

/** Polls `sluice_effective_rate{upstream,limit}` every `everyMs` until stopped. */
export function pollEffectiveRate(options: { adminUrl: string; upstream: string; limit?: number; everyMs?: number }): { stop(): Promise<RatePoint[]> } {
  const started = performance.now();
  const points: RatePoint[] = [];
  const agent = new Agent({ connections: 1 });
  const wanted = [`upstream="${options.upstream}"`, `limit="${options.limit ?? 0}"`];
  let busy: Promise<void> | undefined;
  const poll = async (): Promise<void> => {
    const t = (performance.now() - started) / 1000;
    try {
      const response = await request(`${options.adminUrl}/metrics`, { dispatcher: agent });
      const metrics = parsePrometheus(await response.body.text());
      for (const [series, rate] of metrics) {
        if (series.startsWith('sluice_effective_rate{') && wanted.every((label) => series.includes(label))) points.push([t, rate]);
      }
    } catch {
      // not answering: no point this time
    }
  };
  busy = poll().finally(() => (busy = undefined));
  const timer = setInterval(() => {
    busy ??= poll().finally(() => (busy = undefined));
  }, options.everyMs ?? 500);
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      await agent.close();
      return points;
    },
  };
}

/**
 * The first instant from which every point stays within `tolerance` of `target` (to the last
 * point), or undefined when the last point is outside.
 *
 * @example settledAt([[0, 40], [0.5, 28], [1, 19.8], [1.5, 19.8]], 20, 0.1) // 1
 */
export function settledAt(points: readonly RatePoint[], target: number, tolerance: number): number | undefined {
  let since: number | undefined;
  for (const [t, rate] of points) {
    if (Math.abs(rate - target) <= target * tolerance) since ??= t;
    else since = undefined;
  }
  return since;
}

export interface AdaptiveRun {
  readonly calls: number;
  readonly ok: number;
  /** Calls that did not end 200, by status or error. */
  readonly failures: Readonly<Record<string, number>>;
  /** 429s the API answered (each a retry inside sluice, not a failed call). */
  readonly upstream429s: number;
  readonly upstream429Percent: number;
  readonly wallSec: number;
  /** Calls ok over the wall time of the run. */
  readonly achievedPerSec: number;
  readonly achievedPercent: number;
  /** Seconds from the start until the effective rate stayed within 10% of the real limit; undefined if it never did. */
  readonly settledAtSec: number | undefined;
  readonly finalRatePerSec: number | undefined;
  /** The most the API accepted in any 1000 ms. */
  readonly maxAcceptedInAnySecond: number;
  readonly ratePoints: readonly RatePoint[];
  readonly rejectionsSec: readonly number[];
}

/**
 * `calls` calls at once through sluice (`proxyUrl`, upstream `upstream` mounted at /) to the stand-in
 * at `standinUrl`, which really allows `limitPerSec`. The stand-in must be fresh (or reset).
 */
export async function runAdaptive(options: {
  proxyUrl: string;
  adminUrl: string;
  standinUrl: string;
  upstream: string;
  calls: number;
  limitPerSec: number;
  pollEveryMs?: number;
  onResult?: (result: CallResult, done: number) => void;
}): Promise<AdaptiveRun> {
  const poller = pollEffectiveRate({ adminUrl: options.adminUrl, upstream: options.upstream, everyMs: options.pollEveryMs ?? 500 });
  const { results, wallMs } = await fanout({
    url: (i) => `${options.proxyUrl}/items/${i}`,
    count: options.calls,
    ...(options.onResult ? { onResult: options.onResult } : {}),
  });
  const points = await poller.stop();
  const stats = await standinStats(options.standinUrl);
  const ok = results.filter((r) => r.status === 200).length;
  const achievedPerSec = (ok / wallMs) * 1000;
  return {
    calls: options.calls,
    ok,
    failures: summarizeFailures(results),
    upstream429s: stats.rejected,
    upstream429Percent: (stats.rejected / options.calls) * 100,
    wallSec: wallMs / 1000,
    achievedPerSec,
    achievedPercent: (achievedPerSec / options.limitPerSec) * 100,
    settledAtSec: settledAt(points, options.limitPerSec, 0.1),
    finalRatePerSec: points.at(-1)?.[1],
    maxAcceptedInAnySecond: stats.maxAcceptedInAnySecond,
    ratePoints: points,
    rejectionsSec: (stats.rejectionsMs ?? []).map((ms) => ms / 1000),
  };
}

export interface HeadersRun {
  readonly durationSec: number;
  /** Requests the API accepted in the first `durationSec` from its first request. */
  readonly accepted: number;
  /** What the quota allowed in that time. */
  readonly possible: number;
  readonly usedPercent: number;
  /** 429s the API answered over the whole run. */
  readonly upstream429s: number;
  /** Answers sluice gave the client other than 200 (its own refusals, errors). */
  readonly clientFailures: Readonly<Record<string, number>>;
  readonly ratePoints: readonly RatePoint[];
  /** Accepted per second of the run, from the API's arrival times. */
  readonly perSecond: readonly number[];
}

/**
 * Keeps `backlog` calls waiting in sluice for `durationSec` (each caller sends again as soon as its
 * call ends), against a stand-in whose quota is `quota` per `windowMs`. Counts what the API accepted
 * in the first `durationSec` seconds from its first request.
 */
export async function runHeaders(options: {
  proxyUrl: string;
  adminUrl: string;
  standinUrl: string;
  upstream: string;
  quota: number;
  windowMs: number;
  durationSec: number;
  backlog?: number;
  pollEveryMs?: number;
}): Promise<HeadersRun> {
  const durationMs = options.durationSec * 1000;
  const poller = pollEffectiveRate({ adminUrl: options.adminUrl, upstream: options.upstream, everyMs: options.pollEveryMs ?? 500 });
  const backlog = options.backlog ?? 20;
  const agent = new Agent({ connections: backlog, keepAliveTimeout: 30_000 });
  const stop = new AbortController();
  setMaxListeners(backlog + 1, stop.signal); // every caller's request listens to it
  const failures: Record<string, number> = {};
  let index = 0;
  const caller = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      try {
        const response = await request(`${options.proxyUrl}/items/${index++}`, { dispatcher: agent, signal: stop.signal });
        await response.body.text();
        if (response.statusCode !== 200) failures[String(response.statusCode)] = (failures[String(response.statusCode)] ?? 0) + 1;
      } catch (err) {
        if (stop.signal.aborted) return;
        const name = (err as Error).name;
        failures[name] = (failures[name] ?? 0) + 1;
      }
    }
  };
  const callers = Array.from({ length: backlog }, () => caller());
  // The run is timed from the API's first arrival (sluice's first answer unlocks the rest).
  await new Promise((resolveRun) => setTimeout(resolveRun, durationMs + 500));
  stop.abort();
  await Promise.all(callers);
  await agent.destroy();
  const points = await poller.stop();
  const stats = await standinStats(options.standinUrl);
  const arrivals = stats.arrivalsMs ?? [];
  const accepted = arrivals.filter((ms) => ms < durationMs).length;
  const possible = options.quota * (durationMs / options.windowMs);
  const perSecond = new Array<number>(options.durationSec).fill(0);
  for (const ms of arrivals) if (ms < durationMs) perSecond[Math.floor(ms / 1000)] = (perSecond[Math.floor(ms / 1000)] ?? 0) + 1;
  return {
    durationSec: options.durationSec,
    accepted,
    possible,
    usedPercent: (accepted / possible) * 100,
    upstream429s: stats.rejected,
    clientFailures: failures,
    ratePoints: points,
    perSecond,
  };
}

async function standinStats(url: string): Promise<StandinStats> {
  const response = await request(`${url}/__stats?arrivals=1`);
  return (await response.body.json()) as StandinStats;
}

function summarizeFailures(all: readonly CallResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of all) {
    if (r.status === 200) continue;
    const key = r.error ?? `${r.status}${r.code ? ` ${r.code}` : ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
