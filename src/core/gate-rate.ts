/**
 * The rate a gate (one rule, one key) grants at, made of what is known: the configured rate, the
 * pace learned from quota headers, and the adaptive controller driven by 429s.
 */
import { AdaptiveRate } from './adaptive-rate.js';
import type { QuotaInfo } from './ratelimit-headers.js';

/** A bucket rate that never binds: the bucket of a rule that will learn its rate, before it has. */
export const UNBOUNDED_RATE_PER_SEC = 1e9;

/** How a rule adapts its rate to the upstream's 429s (`limits[].adaptive`). */
export interface AdaptiveSpec {
  readonly minPerSec: number;
  readonly increasePerSec: number;
  readonly decrease: number;
  readonly windowMs: number;
  /** Learned rates may go above the configured rate (otherwise it is the ceiling). */
  readonly probeAbove: boolean;
}

/**
 * The rate one gate grants at, from what is known: the configured rate (the ceiling, minus the
 * safety margin), the pace learned from the upstream's quota headers, and the adaptive controller
 * (driven by 429s):
 *
 * - the learned pace when there is one, else the configured rate (with `probeAbove` and an
 *   adaptive controller, the controller's rate, which may climb above it);
 * - never above the configured rate, unless `probeAbove`;
 * - never above the adaptive controller's rate once the upstream has throttled.
 */
export class GateRate {
  /** The configured rate minus the margin, or UNBOUNDED_RATE_PER_SEC when none is configured. */
  readonly ceilingPerSec: number;
  readonly #probeAbove: boolean;
  readonly #marginFraction: number;
  readonly adaptive: AdaptiveRate | undefined;
  #learnedPerSec: number | undefined;
  #heard = false;
  /** The upstream's window, as its answers imply it when they do not state it. */
  #impliedWindowMs: number | undefined;

  constructor(options: { ceilingPerSec: number; marginFraction: number; adaptive: AdaptiveSpec | undefined; now: number }) {
    this.ceilingPerSec = options.ceilingPerSec;
    this.#marginFraction = options.marginFraction;
    this.#probeAbove = options.adaptive?.probeAbove ?? false;
    const spec = options.adaptive;
    this.adaptive =
      spec === undefined
        ? undefined
        : new AdaptiveRate(
            {
              maxPerSec: spec.probeAbove ? Number.POSITIVE_INFINITY : options.ceilingPerSec,
              minPerSec: spec.minPerSec,
              increasePerSec: spec.increasePerSec,
              decrease: spec.decrease,
              windowMs: spec.windowMs,
            },
            options.ceilingPerSec,
            options.now,
          );
  }

  /**
   * Whether the rate is known: configured, or the upstream has answered at least once (with quota
   * headers to learn from, or without, in which case there is nothing to wait for).
   */
  get known(): boolean {
    return this.ceilingPerSec < UNBOUNDED_RATE_PER_SEC || this.#heard;
  }

  /** The upstream answered. */
  heard(): void {
    this.#heard = true;
  }

  /** The rate to grant at now. */
  get ratePerSec(): number {
    let rate = this.#learnedPerSec ?? (this.#probeAbove && this.adaptive ? this.adaptive.ratePerSec : this.ceilingPerSec);
    if (!this.#probeAbove) rate = Math.min(rate, this.ceilingPerSec);
    if (this.adaptive?.throttled) rate = Math.min(rate, this.adaptive.ratePerSec);
    return Math.min(rate, UNBOUNDED_RATE_PER_SEC);
  }

  /**
   * The quota an answer reported, with the window filled in when the upstream states its limit but
   * not its window (`X-RateLimit-*`): an answer that leaves `limit - 1` counted only its own request,
   * so its reset is a whole window away (for a sliding window, that request leaving it; for a fixed
   * one, at most the window), within the rounding. The longest such reset is kept.
   */
  withWindow(quota: QuotaInfo): QuotaInfo {
    if (quota.windowMs !== undefined) return quota;
    const { limit, remaining, resetMs } = quota;
    if (limit !== undefined && remaining !== undefined && resetMs !== undefined && resetMs > 0 && limit - remaining <= 1 && limit > 0) {
      this.#impliedWindowMs = Math.max(this.#impliedWindowMs ?? 0, resetMs);
    }
    return this.#impliedWindowMs === undefined ? quota : { ...quota, windowMs: this.#impliedWindowMs };
  }

  /** The upstream's quota headers imply this pace (held back by the margin like a configured rate). */
  learn(ratePerSec: number): void {
    this.#learnedPerSec = Math.max(ratePerSec * (1 - this.#marginFraction), Number.MIN_VALUE);
  }
}
