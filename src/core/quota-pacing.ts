import type { QuotaInfo } from './ratelimit-headers.js';

/**
 * Resets come in whole seconds rounded up (the draft's `t`, GitHub's epoch seconds): the real one is
 * up to this much earlier than stated, half of it on average.
 */
const RESET_ROUNDING_MS = 1000;

/** What an upstream's quota headers imply for the requests that follow. */
export type QuotaPacing =
  /** Release no faster than `ratePerSec` for the next `forMs`. */
  | { readonly kind: 'rate'; readonly ratePerSec: number; readonly forMs: number }
  /** Nothing is left: release nothing for `forMs`. */
  | { readonly kind: 'pause'; readonly forMs: number };

export interface QuotaPacingOptions {
  /** Requests already sent under the same key and not yet answered: they will spend quota too. */
  readonly othersInFlight: number;
  /** The longest pause or pacing period believed (a reset days away is capped, not obeyed). */
  readonly maxMs: number;
  /**
   * How long the answer carrying the headers took, from its release to its response headers. What
   * is released meanwhile is sent before any answer can say more, so no more than what remains may
   * be released in that time. 0 or absent: no such bound.
   */
  readonly answerDelayMs?: number;
}

/**
 * Spreads what the upstream says remains over the time it says is left, instead of spending it at
 * once and meeting a 429, and pauses until the reset when nothing is left:
 *
 * - `remaining r` with `reset t`: `(r - othersInFlight)` spread over `t`, less half a second when
 *   `t` is longer than a second (a reset stated in whole seconds comes that much earlier on
 *   average: spread over all of `t`, a fixed window ends with quota unspent);
 * - never slower than the quota policy's `(q - 1) / w` when the upstream states one (`q` per `w`):
 *   against a sliding window, where a reset frees one request rather than the quota and `t` is
 *   `1 s` at the limit, spreading over `t` settles where the pace equals what remains,
 *   `q / (w + 1 s)`, with quota unused for good (9.1/s of 100 per 10 s, 6.7/s of 20 per 2 s). One
 *   request of the window is kept in hand: at `q / w` every answer would say 0 left, and the pause
 *   at zero would last the whole rounded `t`;
 * - never faster than what remains per `answerDelayMs`, so what is released before an answer can
 *   say more never overruns it.
 *
 * The pause at zero (counting what is in flight as spent) is what keeps every pace above from a
 * 429. Neither the pause nor the spread is longer than `maxMs`, nor the time between two requests
 * (a pace of a request a year is a pause in all but name). A policy alone (`q` per `w`) paces at
 * `q / w`. Returns undefined when the headers say nothing usable (the caller keeps its pace).
 *
 * @example paceFromQuota({ dialect: 'x-ratelimit', remaining: 50, resetMs: 10_500 }, { othersInFlight: 0, maxMs: 600_000 })
 *          // { kind: 'rate', ratePerSec: 5, forMs: 10500 }
 */
export function paceFromQuota(quota: QuotaInfo, options: QuotaPacingOptions): QuotaPacing | undefined {
  const { remaining, resetMs, limit, windowMs } = quota;
  const policy = limit !== undefined && limit > 0 && windowMs !== undefined && windowMs > 0 ? { limit, windowMs } : undefined;
  if (remaining !== undefined && resetMs !== undefined && resetMs > 0) {
    const forMs = Math.min(resetMs, options.maxMs);
    const usable = remaining - Math.max(0, options.othersInFlight);
    if (usable <= 0) return { kind: 'pause', forMs };
    const spreadMs = forMs > RESET_ROUNDING_MS ? forMs - RESET_ROUNDING_MS / 2 : forMs;
    const floorPerSec = policy === undefined ? 0 : ((policy.limit - 1) * 1000) / policy.windowMs;
    let ratePerSec = Math.max((usable * 1000) / spreadMs, floorPerSec);
    const answerDelayMs = options.answerDelayMs ?? 0;
    if (answerDelayMs > 0) ratePerSec = Math.min(ratePerSec, (usable * 1000) / answerDelayMs);
    return { kind: 'rate', ratePerSec: Math.max(ratePerSec, 1000 / options.maxMs), forMs };
  }
  if (policy !== undefined) {
    return {
      kind: 'rate',
      ratePerSec: Math.max((policy.limit * 1000) / policy.windowMs, 1000 / options.maxMs),
      forMs: Math.min(policy.windowMs, options.maxMs),
    };
  }
  return undefined;
}
