/**
 * The decisions of the stand-in API (load/lib/standin.ts), apart from its HTTP server so that each
 * can be checked with fixed instants (test/unit/standin-models.test.ts): no clock, no timer, no I/O.
 *
 * - A limit model answers "would a request at instant `nowMs` be accepted, and if not, how long
 *   until it would?" (`waitMs`), and counts one accepted (`take`). Instants are milliseconds on any
 *   one clock, except for the fixed window aligned to the wall clock, whose windows start at
 *   multiples of its length on the epoch (so `nowMs` must then be epoch milliseconds). The shapes
 *   are the ones real APIs document: a token bucket (EC2, Stripe), a sliding window (the strict
 *   judge of the demo), a fixed window counted from the first request (GitHub's hourly quota) or
 *   reset at wall-clock boundaries (many "per minute" APIs: the count is cleared at :00).
 * - `retryAfterValue`: what an API puts in Retry-After for a refusal whose true wait is `waitMs`:
 *   nothing, whole seconds rounded up (what real APIs do: `1` when the next token is 50 ms away), a
 *   fixed number, or an HTTP-date (RFC 9110 IMF-fixdate, whole seconds, never before the truth).
 * - `throttleAnswer`: how the refusal is signalled: 429; 403 with Retry-After (GitHub's secondary
 *   limits); 503 with `RequestLimitExceeded` in an XML or JSON body and no Retry-After (EC2); 420
 *   (old Twitter's "Enhance Your Calm").
 * - `outsideSendAtMs`: when a client that calls the API directly, beside sluice, sends its n-th
 *   request: evenly at its rate, or in bursts of a given size at the same average rate.
 */

export interface LimitModel {
  /** 0 when a request at `nowMs` would be accepted, else the milliseconds until one would. Changes nothing. */
  waitMs(nowMs: number): number;
  /** Counts a request accepted at `nowMs` (only after every limit of the API said 0). */
  take(nowMs: number): void;
  /** Requests this limit would accept now, one after the other (for quota headers). */
  remaining(nowMs: number): number;
  /** Milliseconds until more quota comes (what a quota header's reset says). */
  resetInMs(nowMs: number): number;
}

export type WindowAlign = 'first-request' | 'wall-clock';

export type LimitSpec =
  | { readonly kind: 'token-bucket'; readonly ratePerSec: number; readonly burst: number }
  | { readonly kind: 'sliding-window'; readonly requests: number; readonly windowMs: number }
  | { readonly kind: 'fixed-window'; readonly requests: number; readonly windowMs: number; readonly align: WindowAlign };

export function createLimit(spec: LimitSpec): LimitModel {
  switch (spec.kind) {
    case 'token-bucket':
      return new TokenBucketLimit(spec.ratePerSec, spec.burst);
    case 'sliding-window':
      return new SlidingWindowLimit(spec.requests, spec.windowMs);
    case 'fixed-window':
      return new FixedWindowLimit(spec.requests, spec.windowMs, spec.align);
  }
}

/**
 * A token bucket: `burst` tokens when full, refilled continuously at `ratePerSec`; a request takes
 * one whole token. Starts full. A clock that steps back refills nothing.
 */
export class TokenBucketLimit implements LimitModel {
  readonly #ratePerSec: number;
  readonly #burst: number;
  #tokens: number;
  #refilledAt: number | undefined;

  constructor(ratePerSec: number, burst: number) {
    this.#ratePerSec = ratePerSec;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Tokens held at `nowMs` (fractional). */
  tokensAt(nowMs: number): number {
    if (this.#refilledAt === undefined) return this.#tokens;
    const elapsedMs = Math.max(0, nowMs - this.#refilledAt);
    return Math.min(this.#burst, this.#tokens + (elapsedMs * this.#ratePerSec) / 1000);
  }

  waitMs(nowMs: number): number {
    const tokens = this.tokensAt(nowMs);
    return tokens >= 1 ? 0 : ((1 - tokens) * 1000) / this.#ratePerSec;
  }

  take(nowMs: number): void {
    this.#tokens = this.tokensAt(nowMs) - 1;
    this.#refilledAt = Math.max(nowMs, this.#refilledAt ?? nowMs);
  }

  remaining(nowMs: number): number {
    return Math.floor(this.tokensAt(nowMs));
  }

  resetInMs(nowMs: number): number {
    return this.waitMs(nowMs);
  }
}

/**
 * A strict sliding window: at most `requests` accepted in any `windowMs`, the interval
 * (t - windowMs, t]. A refused request waits until the oldest accepted one leaves the window.
 */
export class SlidingWindowLimit implements LimitModel {
  readonly #requests: number;
  readonly #windowMs: number;
  /** Accepted instants, oldest first, from `#head` on. */
  #times: number[] = [];
  #head = 0;

  constructor(requests: number, windowMs: number) {
    this.#requests = requests;
    this.#windowMs = windowMs;
  }

  /** Accepted requests in (nowMs - windowMs, nowMs]. Forgets the older ones. */
  count(nowMs: number): number {
    while (this.#head < this.#times.length && (this.#times[this.#head] as number) <= nowMs - this.#windowMs) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
    return this.#times.length - this.#head;
  }

  waitMs(nowMs: number): number {
    if (this.count(nowMs) < this.#requests) return 0;
    return (this.#times[this.#head] as number) + this.#windowMs - nowMs;
  }

  take(nowMs: number): void {
    this.#times.push(nowMs);
  }

  remaining(nowMs: number): number {
    return Math.max(0, this.#requests - this.count(nowMs));
  }

  /**
   * When the oldest request leaves the window (one more then), as draft 10 of RateLimit defines `t`;
   * a whole window when it holds none.
   */
  resetInMs(nowMs: number): number {
    const oldest = this.count(nowMs) === 0 ? nowMs : (this.#times[this.#head] as number);
    return oldest + this.#windowMs - nowMs;
  }
}

/**
 * A fixed window: at most `requests` in each window of `windowMs`, the whole quota back at its end.
 * `first-request`: windows follow each other from the first request the API sees (GitHub's quota).
 * `wall-clock`: windows start at multiples of `windowMs` on the clock (epoch milliseconds), as
 * "per second" and "per minute" counters keyed by the current second or minute do.
 */
export class FixedWindowLimit implements LimitModel {
  readonly #requests: number;
  readonly #windowMs: number;
  readonly #align: WindowAlign;
  #start: number | undefined;
  #count = 0;

  constructor(requests: number, windowMs: number, align: WindowAlign) {
    this.#requests = requests;
    this.#windowMs = windowMs;
    this.#align = align;
  }

  /** The start of the window holding `nowMs`; moves the count to it. */
  windowStartAt(nowMs: number): number {
    const start =
      this.#align === 'wall-clock'
        ? Math.floor(nowMs / this.#windowMs) * this.#windowMs
        : this.#start === undefined
          ? nowMs
          : this.#start + Math.max(0, Math.floor((nowMs - this.#start) / this.#windowMs)) * this.#windowMs;
    // A clock that steps back into an earlier window keeps the later window and its count.
    if (this.#start === undefined || start > this.#start) {
      this.#start = start;
      this.#count = 0;
    }
    return this.#start;
  }

  waitMs(nowMs: number): number {
    const start = this.windowStartAt(nowMs);
    return this.#count < this.#requests ? 0 : start + this.#windowMs - nowMs;
  }

  take(nowMs: number): void {
    this.windowStartAt(nowMs);
    this.#count++;
  }

  remaining(nowMs: number): number {
    this.windowStartAt(nowMs);
    return Math.max(0, this.#requests - this.#count);
  }

  /** The end of the current window (when the whole quota comes back). */
  resetInMs(nowMs: number): number {
    return this.windowStartAt(nowMs) + this.#windowMs - nowMs;
  }
}

/** The forms of Retry-After a stand-in can send on a refusal. */
export type RetryAfterForm = 'absent' | 'seconds' | 'http-date' | { readonly fixedSec: number };

/**
 * The Retry-After value for a refusal whose true wait is `waitMs`, at `nowEpochMs`; undefined for
 * none. `seconds`: whole seconds rounded up, at least 1. `http-date`: the instant `nowEpochMs +
 * waitMs` rounded up to its whole second, as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
 *
 * @example retryAfterValue('seconds', 50, 0) // '1'
 */
export function retryAfterValue(form: RetryAfterForm, waitMs: number, nowEpochMs: number): string | undefined {
  if (form === 'absent') return undefined;
  if (form === 'seconds') return String(Math.max(1, Math.ceil(waitMs / 1000)));
  if (form === 'http-date') return new Date(Math.ceil((nowEpochMs + waitMs) / 1000) * 1000).toUTCString();
  return String(form.fixedSec);
}

/** Parses `absent`, `seconds`, `http-date` or a whole number of seconds (a fixed Retry-After). */
export function parseRetryAfterForm(text: string): RetryAfterForm {
  if (text === 'absent' || text === 'seconds' || text === 'http-date') return text;
  if (/^\d+$/.test(text)) return { fixedSec: Number(text) };
  throw new Error(`retry-after form: expected absent, seconds, http-date or a whole number of seconds, got "${text}"`);
}

export function retryAfterFormName(form: RetryAfterForm): string {
  return typeof form === 'string' ? form : `fixed ${form.fixedSec} s`;
}

/** How the stand-in says "too many requests". */
export type ThrottleSignal = '429' | '403' | '420' | '503-xml' | '503-json';

export const THROTTLE_SIGNALS: readonly ThrottleSignal[] = ['429', '403', '420', '503-xml', '503-json'];

export interface ThrottleAnswer {
  readonly status: number;
  /** The reason phrase (node has none for 420). */
  readonly statusText: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * The answer to a refused request, signalled as `signal`, with `retryAfter` (from
 * `retryAfterValue`) where that API sends one: EC2's 503 never carries Retry-After.
 */
export function throttleAnswer(signal: ThrottleSignal, retryAfter: string | undefined): ThrottleAnswer {
  const json = { 'content-type': 'application/json' };
  const withRetryAfter = (headers: Record<string, string>): Record<string, string> =>
    retryAfter === undefined ? headers : { ...headers, 'retry-after': retryAfter };
  switch (signal) {
    case '429':
      return { status: 429, statusText: 'Too Many Requests', headers: withRetryAfter(json), body: JSON.stringify({ error: 'rate limit exceeded' }) };
    case '403':
      return {
        status: 403,
        statusText: 'Forbidden',
        headers: withRetryAfter(json),
        body: JSON.stringify({
          message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
          documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        }),
      };
    case '420':
      return { status: 420, statusText: 'Enhance Your Calm', headers: withRetryAfter(json), body: JSON.stringify({ error: 'Enhance Your Calm' }) };
    case '503-xml':
      return {
        status: 503,
        statusText: 'Service Unavailable',
        headers: { 'content-type': 'text/xml;charset=UTF-8' },
        body:
          '<?xml version="1.0" encoding="UTF-8"?>\n' +
          '<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>' +
          '<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>',
      };
    case '503-json':
      return {
        status: 503,
        statusText: 'Service Unavailable',
        headers: { 'content-type': 'application/x-amz-json-1.1' },
        body: JSON.stringify({ __type: 'RequestLimitExceeded', message: 'Request limit exceeded.' }),
      };
  }
}

/**
 * When (ms from its start) an outside client sends its `index`-th request (from 0): `burstSize`
 * requests at once every `burstSize / ratePerSec` seconds, so 1 is "evenly".
 *
 * @example outsideSendAtMs(3, { ratePerSec: 5, burstSize: 2 }) // 400: the second burst
 */
export function outsideSendAtMs(index: number, options: { readonly ratePerSec: number; readonly burstSize: number }): number {
  return (Math.floor(index / options.burstSize) * options.burstSize * 1000) / options.ratePerSec;
}
