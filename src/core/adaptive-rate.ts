/**
 * Learning a request rate the upstream does not state, from its 429s: a multiplicative decrease
 * on a throttle and an increase while none comes (AIMD), with two refinements.
 *
 * 1. A 429 says "you are at my limit", so what the upstream *accepted* over the last window is a
 *    measurement of that limit: a strict window refuses the request after the `L`-th it accepted.
 *    On a throttle the rate drops to just under that count (per window, in requests per second),
 *    or just under the rate sent when it accepted more. It is a count over the whole window even
 *    before a window has passed, or when a pause (the key waiting out a Retry-After) took part of
 *    it: the upstream's window held those requests all the same. Only when it accepted nothing does
 *    the rate just multiply by `decrease`. Counted in a 20-slot sliding window, constant memory per
 *    key. This works when the upstream's window is no longer than `windowMs`; set `adaptive.window`
 *    to it.
 * 2. The rate last throttled at is remembered (`ceilingHint`). The climb goes half-way to just
 *    under it (99%) per quiet window, and above it only after PROBE_AFTER_WINDOWS quiet windows
 *    (by `increase`), so a raised limit is found again and a stable one costs one 429 per probe.
 *
 * A 429 at the settled rate (timer or network jitter bunched two requests at the upstream) then
 * lowers it by 1%, where the decrease would have cost 30%. Plain AIMD, simulated against a strict
 * 20/s window from 40/s, achieved 67-84% of the limit over 50 s with 7-17 throttles; see
 * test/core/adaptive-rate.test.ts for this controller's numbers. Time is an argument
 * (milliseconds); nothing here reads a clock.
 */

export interface AdaptivePolicy {
  /** The rate never goes above this (the configured rate, or Infinity with `probeAbove`). */
  readonly maxPerSec: number;
  /** ...nor below this. */
  readonly minPerSec: number;
  /** Added after each window without a throttle (at least). */
  readonly increasePerSec: number;
  /** Multiplies the rate on a throttle, in (0, 1). */
  readonly decrease: number;
  /** A window: the time without a throttle that earns an increase, and the span of the measurement. */
  readonly windowMs: number;
}

/**
 * Counts events over a sliding window in SLOTS slots, exact to within one slot (1/20 of the window)
 * in constant memory: the slots wholly inside the window, plus the part of the oldest one that is.
 * A two-bucket estimate assumes the previous window was evenly filled, which a pause (the key
 * waiting out a Retry-After) makes badly wrong.
 */
export class SlidingCounter {
  static readonly SLOTS = 20;
  readonly windowMs: number;
  readonly #slotMs: number;
  /** The current slot, the SLOTS - 1 before it, and the one partly out of the window. */
  readonly #counts = new Array<number>(SlidingCounter.SLOTS + 1).fill(0);
  /** Index of the slot that holds `#slotStart`, and that slot's start instant. */
  #slot = 0;
  #slotStart: number;

  constructor(windowMs: number, now: number) {
    this.windowMs = windowMs;
    this.#slotMs = windowMs / SlidingCounter.SLOTS;
    this.#slotStart = now;
  }

  add(now: number): void {
    this.#advance(now);
    this.#counts[this.#slot] = (this.#counts[this.#slot] as number) + 1;
  }

  /** Events in the last window, the oldest slot counted in proportion to its part in the window. */
  count(now: number): number {
    this.#advance(now);
    const ring = SlidingCounter.SLOTS + 1;
    const oldest = (this.#slot + 1) % ring;
    const inside = 1 - (now - this.#slotStart) / this.#slotMs; // the part of the oldest slot still in the window
    let total = 0;
    for (let i = 0; i < ring; i++) if (i !== oldest) total += this.#counts[i] as number;
    return total + (this.#counts[oldest] as number) * inside;
  }

  #advance(now: number): void {
    let steps = Math.floor((now - this.#slotStart) / this.#slotMs);
    if (steps <= 0) return;
    this.#slotStart += steps * this.#slotMs;
    const ring = SlidingCounter.SLOTS + 1;
    if (steps > ring) steps = ring;
    for (let i = 0; i < steps; i++) {
      this.#slot = (this.#slot + 1) % ring;
      this.#counts[this.#slot] = 0;
    }
  }
}

/** How close under a measured or remembered limit the rate settles. */
const APPROACH = 0.99;
/** Quiet windows spent just under the hint before trying above it. */
const PROBE_AFTER_WINDOWS = 30;

export class AdaptiveRate {
  readonly policy: AdaptivePolicy;
  #rate: number;
  #ceilingHint = Number.POSITIVE_INFINITY;
  #windowStartedAt: number;
  #lastThrottleAt = Number.NEGATIVE_INFINITY;
  #quietWindowsAtHint = 0;
  /** The hint before the current probe above it, while probing. */
  #hintBeforeProbe: number | undefined;
  readonly #accepted: SlidingCounter;

  constructor(policy: AdaptivePolicy, startPerSec: number, now: number) {
    this.policy = policy;
    this.#rate = clamp(startPerSec, policy.minPerSec, policy.maxPerSec);
    this.#windowStartedAt = now;
    this.#accepted = new SlidingCounter(policy.windowMs, now);
  }

  /** The rate to release at now. */
  get ratePerSec(): number {
    return this.#rate;
  }

  /** The rate the upstream last throttled at (raised while probing), or Infinity. */
  get ceilingHint(): number {
    return this.#ceilingHint;
  }

  /** Whether the upstream has throttled at all yet. */
  get throttled(): boolean {
    return this.#ceilingHint !== Number.POSITIVE_INFINITY;
  }

  /** What the upstream accepted over the last window, per second of the window (sliding estimate). */
  acceptedPerSec(now: number): number {
    return (this.#accepted.count(now) * 1000) / this.policy.windowMs;
  }

  /**
   * The upstream throttled (429, or 503 with Retry-After). Acts once per window: the 429s of one
   * burst are one signal. Returns the new rate.
   */
  onThrottle(now: number): number {
    if (now - this.#lastThrottleAt < this.policy.windowMs) return this.#rate;
    this.#lastThrottleAt = now;
    this.#quietWindowsAtHint = 0;
    this.#windowStartedAt = now;
    const probedFrom = this.#hintBeforeProbe;
    this.#hintBeforeProbe = undefined;
    // What the upstream accepted over its window before refusing is its limit (or, if that is more
    // than the rate sent, the limit is about the rate sent).
    const measured = this.acceptedPerSec(now);
    if (measured > 0) this.#ceilingHint = Math.min(measured, this.#rate);
    else if (probedFrom !== undefined)
      this.#ceilingHint = probedFrom; // a failed probe: the level below it held
    else {
      // Nothing accepted says nothing: decrease.
      this.#ceilingHint = this.#rate;
      this.#rate = clamp(this.#rate * this.policy.decrease, this.policy.minPerSec, this.policy.maxPerSec);
      return this.#rate;
    }
    this.#rate = clamp(this.#ceilingHint * APPROACH, this.policy.minPerSec, this.policy.maxPerSec);
    return this.#rate;
  }

  /** A request went through. Once a whole window has passed without a throttle, increases. */
  onSuccess(now: number): number {
    this.#accepted.add(now);
    if (now - this.#windowStartedAt < this.policy.windowMs) return this.#rate;
    const windows = Math.floor((now - this.#windowStartedAt) / this.policy.windowMs);
    this.#windowStartedAt += windows * this.policy.windowMs;
    for (let i = 0; i < windows; i++) {
      const cap = this.#ceilingHint * APPROACH;
      if (cap === Number.POSITIVE_INFINITY) {
        this.#rate += this.policy.increasePerSec; // never throttled: plain additive increase
      } else if (this.#rate < cap) {
        this.#rate = Math.min(cap, this.#rate + Math.max(this.policy.increasePerSec, (cap - this.#rate) / 2));
      } else if (++this.#quietWindowsAtHint >= PROBE_AFTER_WINDOWS) {
        this.#quietWindowsAtHint = 0;
        // The level held for a while: keep it as the fallback and try a little above it.
        this.#hintBeforeProbe = this.#ceilingHint;
        this.#ceilingHint += this.policy.increasePerSec;
      }
      this.#rate = clamp(this.#rate, this.policy.minPerSec, this.policy.maxPerSec);
    }
    return this.#rate;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
