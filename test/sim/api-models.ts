/**
 * The APIs sluice is simulated against: how each counts requests and when it refuses one, and how
 * it words the Retry-After of its 429. None of them tells sluice its algorithm or its limit.
 *
 * - `token-bucket`: refilled continuously at `ratePerSec` up to `burst` tokens; a request is
 *   accepted when a whole token is there (GCRA; with burst 1, when 1/rate has passed since the last
 *   accepted request: arrival jitter alone can make two requests too close). EC2's API is one.
 * - `sliding-window`: at most `limit` accepted requests in any `windowMs` (a sliding log).
 * - `fixed-window`: at most `limit` accepted requests per window, the windows aligned on the
 *   wall clock (epoch multiples of `windowMs`), the count reset at each boundary.
 *
 * Only accepted requests count (a refused one takes no token and no place in a window). Every
 * refusal knows how long until a request would be accepted (`waitMs`); the Retry-After forms:
 * - `absent`: no Retry-After (sluice falls back on its backoff);
 * - `seconds`: whole seconds rounded up, at least 1 (what real APIs answer when the next token is
 *   50 ms away);
 * - `http-date`: the first whole second (an HTTP-date has no finer unit) at or after the instant a
 *   request would be accepted.
 */

export type ApiShape =
  | { readonly kind: 'token-bucket'; readonly ratePerSec: number; readonly burst: number }
  | { readonly kind: 'sliding-window'; readonly limit: number; readonly windowMs: number }
  | { readonly kind: 'fixed-window'; readonly limit: number; readonly windowMs: number };

export type RetryAfterForm = 'absent' | 'seconds' | 'http-date';

export type ApiAnswer = { readonly accepted: true } | { readonly accepted: false; readonly retryAfter: string | undefined };

/** The API's sustained rate (requests per second). */
export function trueRatePerSec(shape: ApiShape): number {
  return shape.kind === 'token-bucket' ? shape.ratePerSec : (shape.limit * 1000) / shape.windowMs;
}

export function describeShape(shape: ApiShape): string {
  if (shape.kind === 'token-bucket') return `token bucket ${shape.ratePerSec}/s burst ${shape.burst}`;
  return `${shape.kind === 'sliding-window' ? 'sliding' : 'fixed'} window ${shape.limit}/${shape.windowMs / 1000}s`;
}

interface Counter {
  /** Accepts the request arriving at `at` (counting it), or says how long until one would be accepted. */
  offer(at: number): number | undefined;
}

class TokenBucketCounter implements Counter {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #lastAt = Number.NEGATIVE_INFINITY;

  constructor(ratePerSec: number, burst: number) {
    this.#perMs = ratePerSec / 1000;
    this.#burst = burst;
    this.#tokens = burst;
  }

  offer(at: number): number | undefined {
    if (this.#lastAt !== Number.NEGATIVE_INFINITY) this.#tokens = Math.min(this.#burst, this.#tokens + (at - this.#lastAt) * this.#perMs);
    this.#lastAt = at;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return undefined;
    }
    return (1 - this.#tokens) / this.#perMs;
  }
}

class SlidingWindowCounter implements Counter {
  readonly #limit: number;
  readonly #windowMs: number;
  /** Instants of the accepted requests still in the window, oldest first (a ring would do; this is a test). */
  readonly #log: number[] = [];
  #head = 0;

  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  offer(at: number): number | undefined {
    while (this.#head < this.#log.length && (this.#log[this.#head] as number) <= at - this.#windowMs) this.#head++;
    if (this.#head > 4096) {
      this.#log.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#log.length - this.#head < this.#limit) {
      this.#log.push(at);
      return undefined;
    }
    return (this.#log[this.#head] as number) + this.#windowMs - at;
  }
}

class FixedWindowCounter implements Counter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #epochAt: (at: number) => number;
  #window = Number.NaN;
  #count = 0;

  constructor(limit: number, windowMs: number, epochAt: (at: number) => number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#epochAt = epochAt;
  }

  offer(at: number): number | undefined {
    const epoch = this.#epochAt(at);
    const window = Math.floor(epoch / this.#windowMs);
    if (window !== this.#window) {
      this.#window = window;
      this.#count = 0;
    }
    if (this.#count < this.#limit) {
      this.#count++;
      return undefined;
    }
    return (window + 1) * this.#windowMs - epoch;
  }
}

/** One API: its counter, and its Retry-After wording. `epochAt` maps a simulated instant to wall-clock epoch ms. */
export class SimulatedApi {
  readonly shape: ApiShape;
  readonly retryAfter: RetryAfterForm;
  readonly #counter: Counter;
  readonly #epochAt: (at: number) => number;
  accepted = 0;
  refused = 0;

  constructor(options: { shape: ApiShape; retryAfter: RetryAfterForm; epochAt: (at: number) => number }) {
    this.shape = options.shape;
    this.retryAfter = options.retryAfter;
    this.#epochAt = options.epochAt;
    const s = options.shape;
    this.#counter =
      s.kind === 'token-bucket'
        ? new TokenBucketCounter(s.ratePerSec, s.burst)
        : s.kind === 'sliding-window'
          ? new SlidingWindowCounter(s.limit, s.windowMs)
          : new FixedWindowCounter(s.limit, s.windowMs, options.epochAt);
  }

  /** A request arrives at `at`. */
  handle(at: number): ApiAnswer {
    const waitMs = this.#counter.offer(at);
    if (waitMs === undefined) {
      this.accepted++;
      return { accepted: true };
    }
    this.refused++;
    return { accepted: false, retryAfter: retryAfterValue(this.retryAfter, waitMs, this.#epochAt(at)) };
  }
}

/** The Retry-After an API words for a request that would be accepted `waitMs` from now. */
export function retryAfterValue(form: RetryAfterForm, waitMs: number, epochNowMs: number): string | undefined {
  if (form === 'absent') return undefined;
  if (form === 'seconds') return String(Math.max(1, Math.ceil(waitMs / 1000)));
  return new Date(Math.ceil((epochNowMs + waitMs) / 1000) * 1000).toUTCString();
}
