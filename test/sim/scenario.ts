/**
 * One simulated run: a backlog of calls through a model of a sluice key (sender.ts) against an API
 * (api-models.ts), optionally beside an outside client that calls the API directly, until every
 * call has ended. Reports what the acceptance matrix asserts: calls ok, the API's 429s to sluice,
 * the rate delivered against what the API leaves to sluice, and when the gate's rate settled.
 */
import { SimulatedApi, trueRatePerSec, type ApiShape, type RetryAfterForm } from './api-models.js';
import { EventLoop, seededRandom } from './event-loop.js';
import { DEFAULT_THROTTLE_PAUSE_MS, Sender, type RateControl } from './sender.js';

/** sluice's default `pacing.margin`: a configured rate is released 0.75% below. */
export const MARGIN_FRACTION = 0.0075;

export interface Outsider {
  /** Requests per second sent straight at the API (not through sluice), counted by it. */
  readonly ratePerSec: number;
  /** `even`: one every 1/rate; `bursts`: `burstSize` at once every burstSize/rate. */
  readonly pattern: 'even' | 'bursts';
  readonly burstSize?: number;
}

export interface RunSpec {
  readonly shape: ApiShape;
  readonly retryAfter: RetryAfterForm;
  /** The rate sluice is told (before the margin). */
  readonly configuredPerSec: number;
  readonly calls: number;
  readonly outsider?: Outsider | undefined;
  /** The gate's burst (1 unless the case says otherwise). */
  readonly gateBurst?: number;
  readonly seed: number;
  /** See SenderOptions#throttlePauseMs (1 s, `retry.throttlePause`'s default, unless told). */
  readonly throttlePauseMs?: number | 'backoff';
}

export interface RunResult {
  readonly ok: number;
  readonly failed: number;
  readonly answers: number;
  readonly throttled: number;
  /** 429s over all of the API's answers to sluice. */
  readonly throttledFraction: number;
  readonly wallSec: number;
  /** Calls ok per second of the run. */
  readonly achievedPerSec: number;
  /** What the API leaves to sluice: its sustained rate less what the outside client sends. */
  readonly targetPerSec: number;
  /** achievedPerSec / targetPerSec. */
  readonly achievedFraction: number;
  /** Seconds from which the gate's rate stayed within 10% of the target to the end (undefined: never). */
  readonly settledSec: number | undefined;
  readonly finalRatePerSec: number;
  readonly minRatePerSec: number;
  /** [seconds, rate] each time the gate's rate changed. */
  readonly rates: readonly (readonly [number, number])[];
  readonly outsiderAccepted: number;
  readonly outsiderRefused: number;
}

/** How a run builds its controller: from the ceiling (the configured rate less the margin) and the clock's start. */
export type ControlFactory = (options: { ceilingPerSec: number; configuredPerSec: number; now: number }) => RateControl;

/** Epoch of the simulated instant 0: a fixed day, at a seeded fraction of a second (the fixed window's phase). */
function epochStart(seed: number): number {
  return Date.UTC(2026, 0, 15, 12, 0, 0) + Math.floor(seededRandom(seed ^ 0x5eed)() * 1000);
}

export function runScenario(spec: RunSpec, makeControl: ControlFactory): RunResult {
  const loop = new EventLoop();
  const random = seededRandom(spec.seed);
  const epoch0 = epochStart(spec.seed);
  const epochAt = (at: number): number => epoch0 + at;
  const api = new SimulatedApi({ shape: spec.shape, retryAfter: spec.retryAfter, epochAt });
  const ceilingPerSec = spec.configuredPerSec * (1 - MARGIN_FRACTION);
  const control = makeControl({ ceilingPerSec, configuredPerSec: spec.configuredPerSec, now: 0 });
  const sender = new Sender({
    loop,
    api,
    control,
    random,
    epochAt,
    burst: spec.gateBurst ?? 1,
    throttlePauseMs: spec.throttlePauseMs ?? DEFAULT_THROTTLE_PAUSE_MS,
  });

  let outsiderAccepted = 0;
  let outsiderRefused = 0;
  const outsider = spec.outsider;
  if (outsider) {
    const outsiderRandom = seededRandom(spec.seed ^ 0x0075);
    const size = outsider.pattern === 'bursts' ? (outsider.burstSize ?? 10) : 1;
    const everyMs = (size * 1000) / outsider.ratePerSec;
    const send = (at: number): void => {
      loop.at(at, () => {
        if (sender.pending === 0) return;
        for (let i = 0; i < size; i++) {
          const arriveAt = at + outsiderRandom() * 2;
          loop.at(arriveAt, () => {
            if (api.handle(arriveAt).accepted) outsiderAccepted++;
            else outsiderRefused++;
          });
        }
        send(at + everyMs);
      });
    };
    send(outsiderRandom() * everyMs);
  }

  sender.submit(spec.calls);
  loop.run({ untilMs: 3_600_000, stop: () => sender.pending === 0 });

  const s = sender.stats;
  const targetPerSec = trueRatePerSec(spec.shape) - (outsider?.ratePerSec ?? 0);
  const wallSec = s.lastEndAt / 1000;
  const achievedPerSec = s.ok / wallSec;
  let settledAt: number | undefined;
  let minRate = Number.POSITIVE_INFINITY;
  for (const [t, rate] of s.rates) {
    if (Math.abs(rate - targetPerSec) <= targetPerSec * 0.1) settledAt ??= t;
    else settledAt = undefined;
    if (t <= s.lastEndAt) minRate = Math.min(minRate, rate);
  }
  return {
    ok: s.ok,
    failed: s.failed,
    answers: s.answers,
    throttled: s.throttled,
    throttledFraction: s.throttled / s.answers,
    wallSec,
    achievedPerSec,
    targetPerSec,
    achievedFraction: achievedPerSec / targetPerSec,
    settledSec: settledAt === undefined ? undefined : settledAt / 1000,
    finalRatePerSec: sender.ratePerSec,
    minRatePerSec: minRate,
    rates: s.rates.map(([t, r]) => [t / 1000, r] as const),
    outsiderAccepted,
    outsiderRefused,
  };
}
