/**
 * What the upstream's answers do to the gates: the Limit side of Netflix concurrency-limits (the
 * rate a gate should grant at), apart from the Limiter (the gate, which grants). A released permit's
 * outcome drives the adaptive rate; quota headers pace a learning rule or pause its key; a throttle
 * pauses the key. Every change of a gate that may let a waiting lane through wakes that gate; the
 * scheduler then looks at it again.
 */
import type { ReleaseOutcome } from '../core/outcomes.js';
import { paceFromQuota } from '../core/quota-pacing.js';
import type { QuotaInfo } from '../core/ratelimit-headers.js';
import type { BucketStore } from '../store/bucket-store.js';
import type { Gate, Ticket } from './model.js';

/** The longest pause believed from quota headers when the upstream sets none (`pacing.maxPause`). */
const DEFAULT_MAX_LEARNED_PAUSE_MS = 600_000;

export interface FeedbackOptions {
  readonly store: BucketStore;
  /** The longest pause or pacing period believed from quota headers (`pacing.maxPause`), read at each answer. */
  readonly maxLearnedPauseMs: () => number | undefined;
  /** A waiting lane of `gate` may pass now: the scheduler should look at it again. */
  readonly wake: (gate: Gate) => void;
}

export class Feedback {
  readonly #store: BucketStore;
  readonly #maxLearnedPauseMs: () => number | undefined;
  readonly #wake: (gate: Gate) => void;

  constructor(options: FeedbackOptions) {
    this.#store = options.store;
    this.#maxLearnedPauseMs = options.maxLearnedPauseMs;
    this.#wake = options.wake;
  }

  /** A permit through `gate` was released with `outcome`: the adaptive controller hears of it. */
  released(gate: Gate, outcome: ReleaseOutcome, now: number): void {
    const adaptive = gate.rate?.adaptive;
    if (!adaptive || (outcome !== 'throttled' && outcome !== 'ok')) return;
    if (outcome === 'throttled') adaptive.onThrottle(now);
    else adaptive.onSuccess(now);
    this.applyRate(gate, now);
  }

  /**
   * The upstream answered `ticket`'s attempt, with quota headers or without: the rule that learns
   * knows it has been heard, and paces (or pauses) its key by what the headers say.
   */
  learned(ticket: Ticket, quota: QuotaInfo | undefined, now: number): void {
    for (const gate of ticket.gates) {
      if (!gate.rule.learns || !gate.rate) continue;
      if (!gate.rate.known && gate.waiting.size > 0) this.#wake(gate); // its one-at-a-time ends
      gate.rate.heard();
      if (quota === undefined) continue;
      const pacing = paceFromQuota(gate.rate.withWindow(quota), {
        othersInFlight: gate.inFlight - 1,
        maxMs: this.#maxLearnedPauseMs() ?? DEFAULT_MAX_LEARNED_PAUSE_MS,
        answerDelayMs: now - ticket.grantedAt,
      });
      if (pacing === undefined) continue;
      if (pacing.kind === 'pause') {
        const untilAt = now + pacing.forMs;
        if (untilAt > gate.pauseEndsAt) gate.pauseEndsAt = untilAt;
        if (gate.bucket) this.#store.pause([gate.bucket], now, untilAt);
      } else {
        gate.rate.learn(pacing.ratePerSec);
        this.applyRate(gate, now);
      }
      if (gate.waiting.size > 0) this.#wake(gate);
    }
  }

  /**
   * Pauses the key of `ticket` until `untilAt`: every gate of a rule with a key template, or the
   * upstream's gates when no rule has one. Gates of unkeyed rules shared with other keys are left
   * alone, so one key's 429 never stops the other keys.
   */
  pause(ticket: Ticket, untilAt: number, now: number): void {
    const keyed = ticket.gates.filter((g) => g.rule.keyed);
    const paused = keyed.length > 0 ? keyed : ticket.gates;
    for (const gate of paused) {
      if (untilAt > gate.pauseEndsAt) gate.pauseEndsAt = untilAt;
    }
    const buckets = paused.flatMap((g) => (g.bucket ? [g.bucket] : []));
    if (buckets.length > 0) this.#store.pause(buckets, now, untilAt);
  }

  /** Moves a gate's bucket to the rate its GateRate now says. */
  applyRate(gate: Gate, now: number): void {
    if (!gate.bucket || !gate.rate) return;
    const rate = gate.rate.ratePerSec;
    if (rate !== gate.appliedRatePerSec) {
      gate.bucket.setRate(now, rate);
      gate.appliedRatePerSec = rate;
      if (gate.waiting.size > 0) this.#wake(gate);
    }
  }
}
