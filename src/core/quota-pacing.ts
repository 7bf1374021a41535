import type { QuotaInfo } from './ratelimit-headers.js';

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
}

/**
 * Spreads what the upstream says remains over the time it says is left, instead of spending it at
 * once and meeting a 429: `remaining r` with `reset t` paces at `(r - othersInFlight) / t` until the
 * reset, and pauses until the reset when nothing is left. A quota policy alone (`q` per `w`) paces
 * at `q / w`. Returns undefined when the headers say nothing usable (the caller keeps its pace).
 *
 * @example paceFromQuota({ dialect: 'x-ratelimit', remaining: 50, resetMs: 10_000 }, { othersInFlight: 0, maxMs: 600_000 })
 *          // { kind: 'rate', ratePerSec: 5, forMs: 10000 }
 */
export function paceFromQuota(quota: QuotaInfo, options: QuotaPacingOptions): QuotaPacing | undefined {
  const { remaining, resetMs, limit, windowMs } = quota;
  if (remaining !== undefined && resetMs !== undefined && resetMs > 0) {
    const forMs = Math.min(resetMs, options.maxMs);
    const usable = remaining - Math.max(0, options.othersInFlight);
    if (usable <= 0) return { kind: 'pause', forMs };
    return { kind: 'rate', ratePerSec: (usable * 1000) / resetMs, forMs };
  }
  if (limit !== undefined && limit > 0 && windowMs !== undefined && windowMs > 0) {
    return { kind: 'rate', ratePerSec: (limit * 1000) / windowMs, forMs: Math.min(windowMs, options.maxMs) };
  }
  return undefined;
}
