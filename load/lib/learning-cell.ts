/**
 * One cell of the learning matrix (`npm run load:learning`, issue 13): an API shape, what sluice
 * was told about it, and the form of its Retry-After. A fresh stand-in API and a fresh sluice (the
 * build, `node dist/cli.js --config <file>`, each its own process), many calls at once through
 * sluice, and when asked an outside client calling the API directly at a third of its rate.
 *
 * sluice runs the DEFAULT configuration of a rule (`rate`, `burst: 1`, `concurrency: 10`, no
 * `adaptive` key), so whatever learning the build does by default is what is measured. Two
 * settings around the rule are raised so that what fails is pacing, not a budget: `retry.attempts`
 * (a call is not failed for lack of attempts; the attempts calls needed are reported, with how
 * many would have failed at the default 5 and at the issue's 10) and `queue.maxWait` (10 minutes:
 * 2400 calls at 40/s predict 60 s, the default, and would be refused for it).
 *
 * Bounded: a cell that has not finished after 3x its ideal time (calls / the rate left for sluice)
 * is stopped, its calls in flight cancelled, and reported as stopped.
 */
import { setMaxListeners } from 'node:events';
import { fanout } from './fanout.js';
import { pollEffectiveRate, settledAt, type RatePoint } from './learning.js';
import { startOutsideClient, type OutsideClientResult } from './outside-client.js';
import { spawnSluice, spawnStandin } from './processes.js';
import type { Progress } from './progress.js';
import { DEFAULT_CLIENT, type ClientCounts } from './standin.js';
import type { ThrottleSignal } from './standin-models.js';
import { standinStats } from './upstream-stats.js';

export type Shape = 'bucket-1' | 'bucket-100' | 'sliding' | 'fixed-wall';
export const SHAPES: readonly Shape[] = ['bucket-1', 'bucket-100', 'sliding', 'fixed-wall'];
export const SHAPE_LABELS: Readonly<Record<Shape, string>> = {
  'bucket-1': 'token bucket, burst 1',
  'bucket-100': 'token bucket, burst 100',
  sliding: 'sliding window 1 s',
  'fixed-wall': 'fixed window 1 s, wall clock',
};

export type Condition = 'right' | '2x' | 'outside';
export const CONDITIONS: readonly Condition[] = ['right', '2x', 'outside'];
export const CONDITION_LABELS: Readonly<Record<Condition, string>> = {
  right: 'limit right',
  '2x': 'limit 2x too high',
  outside: 'right, 1/3 used outside',
};

export interface CellOptions {
  readonly shape: Shape;
  readonly condition: Condition;
  /** The stand-in's --retry-after: seconds, absent, http-date or a whole number of seconds. */
  readonly retryAfter: string;
  readonly signal: ThrottleSignal;
  readonly calls: number;
  /** What the API really allows, per second. */
  readonly trueRatePerSec: number;
  /** The outside client's share of the true rate (condition `outside`). */
  readonly outsideShare: number;
  /** Requests the outside client sends at once (1: evenly). */
  readonly outsideBurst: number;
  readonly attempts: number;
  /** YAML lines added to the upstream of sluice's configuration (for settings of builds to come). */
  readonly upstreamExtra: string;
  readonly pollEveryMs: number;
  readonly progress: Progress;
}

/** Accepted and refused per second at the API, by client. */
export interface CellSeconds {
  readonly sluiceAccepted: readonly number[];
  readonly sluiceRefused: readonly number[];
  readonly outsideAccepted: readonly number[];
  readonly outsideRefused: readonly number[];
}

export interface CellResult {
  readonly shape: Shape;
  readonly condition: Condition;
  readonly retryAfter: string;
  readonly signal: ThrottleSignal;
  readonly calls: number;
  readonly toldPerSec: number;
  /** The true rate less the outside client's nominal share: what is left for sluice. */
  readonly availablePerSec: number;
  readonly ok: number;
  /** Calls that ended other than 200 (status or error), apart from those stopped. */
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  /** Calls not answered when the cell was stopped (cancelled in flight or never started). */
  readonly notFinished: number;
  readonly stopped: boolean;
  readonly idealSec: number;
  readonly limitSec: number;
  /** First call started to last call answered (or to the stop). */
  readonly wallSec: number;
  /** What the API accepted and refused of sluice's requests. */
  readonly apiAccepted: number;
  readonly api429s: number;
  readonly api429PercentOfCalls: number;
  readonly api429PercentOfAnswers: number;
  /** apiAccepted / availablePerSec / wallSec. */
  readonly capacityPercent: number;
  /** Seconds until sluice_effective_rate stayed within 10% of availablePerSec; undefined: never. */
  readonly settledAtSec: number | undefined;
  readonly finalRatePerSec: number | undefined;
  readonly maxAttempts: number | undefined;
  /** Calls answered 200 that needed more than 5 (the default) and more than 10 attempts. */
  readonly over5Attempts: number;
  readonly over10Attempts: number;
  readonly maxAcceptedInAnySecond: number;
  readonly outside: (OutsideClientResult & { readonly apiAccepted: number; readonly apiRefused: number; readonly acceptedPerSec: number }) | undefined;
  readonly seconds: CellSeconds;
  readonly ratePoints: readonly RatePoint[];
}

/** The stand-in's flags for a shape at `ratePerSec`. */
export function standinArgs(shape: Shape, ratePerSec: number): string[] {
  const rate = String(ratePerSec);
  switch (shape) {
    case 'bucket-1':
      return ['--bucket-rate', rate, '--burst', '1'];
    case 'bucket-100':
      return ['--bucket-rate', rate, '--burst', '100'];
    case 'sliding':
      return ['--rate', rate, '--window-ms', '1000'];
    case 'fixed-wall':
      return ['--rate', rate, '--window-ms', '1000', '--fixed-window', '--window-align', 'wall-clock'];
  }
}

/** sluice's configuration for a cell: one upstream, one rule with the defaults. */
export function cellConfig(options: { apiUrl: string; toldPerSec: number; attempts: number; upstreamExtra: string }): string {
  const extra = options.upstreamExtra
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => `    ${line}\n`)
    .join('');
  return `# written by load/learning.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
log: { level: warn }
shutdown: { grace: 1s }
upstreams:
  - name: api
    prefix: /
    target: ${options.apiUrl}
    limits:
      - rate: ${options.toldPerSec}/s
        burst: 1
        concurrency: 10
    queue: { maxWait: 10m }
    retry: { attempts: ${options.attempts} }
${extra}`;
}

export async function runCell(options: CellOptions): Promise<CellResult> {
  const { shape, condition, calls, trueRatePerSec } = options;
  const toldPerSec = condition === '2x' ? trueRatePerSec * 2 : trueRatePerSec;
  const outsidePerSec = condition === 'outside' ? trueRatePerSec * options.outsideShare : 0;
  const availablePerSec = trueRatePerSec - outsidePerSec;
  const idealSec = calls / availablePerSec;
  const limitSec = idealSec * 3;

  const api = await spawnStandin([...standinArgs(shape, trueRatePerSec), '--retry-after', options.retryAfter, '--throttle', options.signal]);
  const sluice = await spawnSluice(cellConfig({ apiUrl: api.url, toldPerSec, attempts: options.attempts, upstreamExtra: options.upstreamExtra }));
  const stop = new AbortController();
  setMaxListeners(calls + 10, stop.signal);
  let stopped = false;
  const timer = setTimeout(() => {
    stopped = true;
    stop.abort();
  }, limitSec * 1000);
  try {
    const poller = pollEffectiveRate({ adminUrl: sluice.adminUrl, upstream: 'api', everyMs: options.pollEveryMs });
    const outside =
      outsidePerSec > 0
        ? startOutsideClient({
            url: api.url,
            ratePerSec: outsidePerSec,
            burstSize: options.outsideBurst,
            maxRequests: Math.ceil(outsidePerSec * limitSec) + options.outsideBurst,
          })
        : undefined;
    let ok = 0;
    const { results, wallMs } = await fanout({
      url: (i) => `${sluice.proxyUrl}/items/${i}`,
      count: calls,
      signal: stop.signal,
      onResult: (result, done) => {
        if (result.status === 200) ok++;
        options.progress.set(`${ok} ok of ${calls}, ${done} done; stopped after ${Math.round(limitSec)} s`);
      },
    });
    clearTimeout(timer);
    const outsideResult = await outside?.stop();
    const points = await poller.stop();
    const stats = await standinStats(api.url);
    const mine = stats.byClient[DEFAULT_CLIENT] ?? { accepted: 0, rejected: 0 };
    const theirs = stats.byClient.outside ?? { accepted: 0, rejected: 0 };
    const finished = results.filter((r) => r.error !== 'aborted');
    const failures: Record<string, number> = {};
    for (const r of finished) {
      if (r.status === 200) continue;
      const key = r.error ?? `${r.status}${r.code ? ` ${r.code}` : ''}`;
      failures[key] = (failures[key] ?? 0) + 1;
    }
    const attempts = finished.filter((r) => r.status === 200).map((r) => r.attempts ?? 1);
    const wallSec = wallMs / 1000;
    const column = (series: readonly ClientCounts[] | undefined, field: keyof ClientCounts): number[] => (series ?? []).map((s) => s[field]);
    return {
      shape,
      condition,
      retryAfter: options.retryAfter,
      signal: options.signal,
      calls,
      toldPerSec,
      availablePerSec,
      ok: finished.filter((r) => r.status === 200).length,
      failed: finished.filter((r) => r.status !== 200).length,
      failures,
      notFinished: calls - finished.length,
      stopped,
      idealSec,
      limitSec,
      wallSec,
      apiAccepted: mine.accepted,
      api429s: mine.rejected,
      api429PercentOfCalls: (mine.rejected / calls) * 100,
      api429PercentOfAnswers: mine.accepted + mine.rejected === 0 ? 0 : (mine.rejected / (mine.accepted + mine.rejected)) * 100,
      capacityPercent: (mine.accepted / availablePerSec / wallSec) * 100,
      settledAtSec: settledAt(points, availablePerSec, 0.1),
      finalRatePerSec: points.at(-1)?.[1],
      maxAttempts: attempts.length === 0 ? undefined : Math.max(...attempts),
      over5Attempts: attempts.filter((n) => n > 5).length,
      over10Attempts: attempts.filter((n) => n > 10).length,
      maxAcceptedInAnySecond: stats.maxAcceptedInAnySecond,
      outside: outsideResult && {
        ...outsideResult,
        apiAccepted: theirs.accepted,
        apiRefused: theirs.rejected,
        acceptedPerSec: theirs.accepted / (outsideResult.durationMs / 1000),
      },
      seconds: {
        sluiceAccepted: column(stats.perSecondByClient[DEFAULT_CLIENT], 'accepted'),
        sluiceRefused: column(stats.perSecondByClient[DEFAULT_CLIENT], 'rejected'),
        outsideAccepted: column(stats.perSecondByClient.outside, 'accepted'),
        outsideRefused: column(stats.perSecondByClient.outside, 'rejected'),
      },
      ratePoints: points,
    };
  } finally {
    clearTimeout(timer);
    await sluice.stop();
    await api.stop();
  }
}

export interface CellTarget {
  readonly text: string;
  readonly minCapacityPercent: number;
  readonly max429PercentOfCalls: number;
  /** Issue 13's acceptance, or ours (a limit told right must do no worse than one told 2x too high). */
  readonly source: 'issue 13' | 'ours';
}

/** The targets of issue 13 for a cell (`long`: the 120 s run of 2400 calls). */
export function cellTarget(shape: Shape, condition: Condition, long: boolean): CellTarget {
  if (condition === '2x') {
    const min = long ? 95 : 90;
    return { text: `all ok, >= ${min}%, <= 2% 429s`, minCapacityPercent: min, max429PercentOfCalls: 2, source: 'issue 13' };
  }
  if (condition === 'outside')
    return { text: 'all ok, >= 85% of what is left, <= 3% 429s', minCapacityPercent: 85, max429PercentOfCalls: 3, source: 'issue 13' };
  if (shape === 'sliding') return { text: 'all ok, >= 99%, 0 429s', minCapacityPercent: 99, max429PercentOfCalls: 0, source: 'issue 13' };
  return { text: 'all ok, >= 90%, <= 2% 429s (ours)', minCapacityPercent: 90, max429PercentOfCalls: 2, source: 'ours' };
}

export function cellMet(result: CellResult, target: CellTarget): boolean {
  return result.ok === result.calls && result.capacityPercent >= target.minCapacityPercent && result.api429PercentOfCalls <= target.max429PercentOfCalls;
}
