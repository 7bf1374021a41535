/**
 * A token bucket that refills at `ratePerSec` up to `burst` tokens; every request takes one.
 *
 * The state is a single instant, `tat` (the "theoretical arrival time" of GCRA): the moment at which
 * the bucket will be full again. This is the same bucket as golang.org/x/time/rate's
 * `tokens`/`last` pair, written so that availability depends on the state alone:
 *
 *     tokens(t)      = min(burst, burst - (tat - t) / interval)
 *     availableAt(n) = tat - (burst - n) * interval      // first instant with n tokens
 *     take(at, n)    : tat = max(tat, at) + n * interval
 *
 * Time is always an argument (milliseconds on a monotonic clock), never read here. `take(at)` books
 * the tokens at the instant `at`, which is what lets the scheduler account a release at the moment
 * it was due rather than when a timer happened to fire: a timer a fraction of a millisecond late
 * must not push every later release back, or a 20/s limit delivers 19.x/s. (A release that actually
 * leaves later than a small tolerance is another matter: `usedAt` then re-bases the bucket on it, so
 * that no two requests reach the upstream closer together than the rate allows.) A clock that goes
 * backwards never creates tokens (`max(tat, at)`).
 *
 * @example
 * const bucket = new TokenBucket({ ratePerSec: 20, burst: 1 });
 * bucket.take(0);          // first token at t=0
 * bucket.availableAt();    // 50: the next token is due 50 ms later
 */

/**
 * The GCRA arithmetic on its own, as functions of the state (`tat`, -Infinity for a bucket never
 * used), the interval (ms per token), the burst and an instant: the bucket below keeps its state
 * in this process, the Redis store keeps it in Redis and a hint of it here.
 */
export const gcra = {
  /** The first instant at which `n` tokens are available (may be in the past). */
  availableAt(tat: number, intervalMs: number, burst: number, n = 1): number {
    return tat - (burst - n) * intervalMs;
  },
  /** Tokens available at `now`, fractional, at most `burst`. */
  tokensAt(tat: number, intervalMs: number, burst: number, now: number): number {
    if (tat === Number.NEGATIVE_INFINITY) return burst;
    return Math.min(burst, burst - (tat - now) / intervalMs);
  },
  /** The state after taking `n` tokens at `at` (which must have them). */
  take(tat: number, intervalMs: number, at: number, n = 1): number {
    return Math.max(tat, at) + n * intervalMs;
  },
  /** The state after a token taken earlier was used at `at` (see TokenBucket#usedAt). */
  usedAt(tat: number, intervalMs: number, at: number, toleranceMs: number): number {
    return Math.max(tat, at - toleranceMs + intervalMs);
  },
  /** The state after `n` tokens taken earlier are given back. */
  refund(tat: number, intervalMs: number, n = 1): number {
    return tat - n * intervalMs;
  },
};

export class TokenBucket {
  #ratePerSec: number;
  #burst: number;
  #intervalMs: number;
  /** The instant at which the bucket is full again; -Infinity for a bucket that has never been used. */
  #tat = Number.NEGATIVE_INFINITY;
  /** The latest instant the bucket has been told about (by `take` or `setRate`). */
  #lastMs = Number.NEGATIVE_INFINITY;

  constructor(options: { ratePerSec: number; burst: number }) {
    if (!(options.ratePerSec > 0) || !Number.isFinite(options.ratePerSec)) {
      throw new RangeError(`ratePerSec must be a positive finite number, got ${options.ratePerSec}`);
    }
    if (!Number.isInteger(options.burst) || options.burst < 1) {
      throw new RangeError(`burst must be an integer >= 1, got ${options.burst}`);
    }
    this.#ratePerSec = options.ratePerSec;
    this.#burst = options.burst;
    this.#intervalMs = 1000 / options.ratePerSec;
  }

  get ratePerSec(): number {
    return this.#ratePerSec;
  }

  get burst(): number {
    return this.#burst;
  }

  /** Milliseconds between two tokens. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** The first instant at which `n` tokens are available (may be in the past). */
  availableAt(n = 1): number {
    return gcra.availableAt(this.#tat, this.#intervalMs, this.#burst, n);
  }

  /**
   * Takes `n` tokens at the instant `at`. Returns false, and changes nothing, when fewer than `n`
   * tokens are available at `at` or `n` exceeds the burst.
   */
  take(at: number, n = 1): boolean {
    if (n > this.#burst || this.availableAt(n) > at) return false;
    this.#tat = gcra.take(this.#tat, this.#intervalMs, at, n);
    if (at > this.#lastMs) this.#lastMs = at;
    return true;
  }

  /**
   * Records that a token taken earlier was actually used at `at` (the request left later than it
   * was released: a new connection, a cold parser). The bucket then holds no more than if the token
   * had been taken at `at`, so the requests that follow keep their spacing at the upstream, where
   * the limit is counted. Delays up to `toleranceMs` are ignored: the ordinary fraction of a
   * millisecond between release and write would otherwise lengthen every interval. Never adds tokens.
   */
  usedAt(at: number, toleranceMs = 0): void {
    this.#tat = gcra.usedAt(this.#tat, this.#intervalMs, at, toleranceMs);
  }

  /** Gives back `n` tokens taken earlier (a reservation that was not used). */
  refund(n = 1): void {
    this.#tat = gcra.refund(this.#tat, this.#intervalMs, n);
  }

  /** Tokens available at `now`, fractional, at most `burst`. */
  tokensAt(now: number): number {
    return gcra.tokensAt(this.#tat, this.#intervalMs, this.#burst, now);
  }

  /** The instant from which the bucket is full, i.e. holds no information worth keeping. */
  fullAt(): number {
    return this.#tat;
  }

  /**
   * Changes the rate from `now` on, keeping the number of tokens the bucket holds at `now`, so a
   * change takes effect from the next release without granting or losing a burst.
   *
   * A `now` behind an instant the bucket has already seen is read as that instant: the new rate
   * cannot apply to time the bucket has already accounted at the old rate (a faster rate applied
   * from the past would refill tokens that were taken since).
   */
  setRate(now: number, ratePerSec: number): void {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
      throw new RangeError(`ratePerSec must be a positive finite number, got ${ratePerSec}`);
    }
    if (ratePerSec === this.#ratePerSec) return;
    if (now < this.#lastMs) now = this.#lastMs;
    else this.#lastMs = now;
    const tokens = this.tokensAt(now);
    this.#ratePerSec = ratePerSec;
    this.#intervalMs = 1000 / ratePerSec;
    if (this.#tat !== Number.NEGATIVE_INFINITY) this.#tat = now + (this.#burst - tokens) * this.#intervalMs;
  }

  /** Changes the burst, keeping the tokens held at `now` (capped at the new burst). */
  setBurst(now: number, burst: number): void {
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
    if (burst === this.#burst) return;
    const tokens = Math.min(burst, this.tokensAt(now));
    this.#burst = burst;
    if (this.#tat !== Number.NEGATIVE_INFINITY) this.#tat = now + (burst - tokens) * this.#intervalMs;
  }
}
