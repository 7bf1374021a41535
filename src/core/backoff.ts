/** Exponential backoff bounds: the first retry waits up to `baseMs`, each later one up to twice as long, never more than `maxMs`. */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * "Full jitter" backoff: a delay drawn uniformly from [0, min(maxMs, baseMs * 2^retry)), where
 * `retry` counts from 0 for the first retry. The random number in [0, 1) is an argument, so a test
 * can assert exact values (cenkalti/backoff passes it the same way).
 *
 * Full jitter spreads retries of many clients over the whole window instead of synchronising them
 * (AWS Architecture Blog, "Exponential Backoff And Jitter").
 *
 * @example fullJitterMs(2, { baseMs: 100, maxMs: 10_000 }, 0.5) // 200: half of min(10 s, 400 ms)
 */
export function fullJitterMs(retry: number, policy: BackoffPolicy, random: number): number {
  // With baseMs 0 and retry >= 1024, baseMs * 2^retry would be 0 * Infinity = NaN.
  const ceilingMs = policy.baseMs <= 0 ? 0 : Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry));
  return Math.floor(ceilingMs * Math.min(Math.max(random, 0), 1));
}
