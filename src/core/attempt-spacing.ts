import { fullJitterMs, type BackoffPolicy } from './backoff.js';

/**
 * How long a request waits before its next attempt after a connection that was never made
 * (refused, DNS, TLS, connect timeout: failure-kind.ts `retryOn: 'connect'`), so that its attempts
 * cover the time it has left instead of being spent in the first second and a half of an outage.
 *
 * The ordinary backoff (full jitter from `backoff.base`, doubling) suits an upstream that answered:
 * it is up, and a throttle or a blip passes in milliseconds. A refused connection says the upstream
 * is down for an unknown while, and five attempts at 100, 200, 400 and 800 ms all land in the same
 * outage. Here the `k` attempts left are laid out over the remaining budget `R` with gaps that
 * double, the last one at the end of the budget:
 *
 *     attempt times  t_i = R * (2^i - 1) / (2^k - 1),  i = 1..k     (t_k = R)
 *     next delay     share = t_1 = R / (2^k - 1)
 *
 * The rule is memoryless: computed again after the next failure, with `k - 1` attempts and
 * `R - share` left, it gives the next gap of the same plan (2 * share), so it needs no state.
 * The delay drawn is in [share / 2, share) ("equal jitter": spread, but never bunched near 0 the
 * way full jitter is), and never less than the ordinary backoff would wait, never more than `R`.
 * With many attempts (say 20) the share of the first ones is tiny and the ordinary backoff
 * governs; the spreading takes over for the last few. `backoff.max` caps the ordinary backoff
 * only: capping the spread would bring back the problem.
 *
 * Defaults (retry.attempts 5, queue.maxWait 60 s, timeout 10 s: a budget of 100 s to start an
 * attempt in): the four retries wait about 6.7, 13, 27 and 53 s (random near 1), or 5, 10, 21 and 48 s
 * (random 0.5), where the ordinary backoff spent them in at most 1.5 s.
 *
 * A request waiting here holds no token and no slot. The wait is an upper bound: the integrator
 * wakes such requests early when the upstream is seen to be reachable again (breaker.ts), so a
 * short outage costs them the outage, not the spread.
 *
 * @example connectRetryDelayMs({ attempt: 1, attemptsLeft: 4, remainingMs: 100_000, backoff: { baseMs: 100, maxMs: 10_000 }, random: 0.5 }) // 5000
 */
export function connectRetryDelayMs(options: {
  /** The attempt that just failed, from 1. */
  readonly attempt: number;
  /** Attempts still allowed after it (retry.attempts - attempt); 0 means none. */
  readonly attemptsLeft: number;
  /** Time left in the request's budget to start an attempt in, in ms. */
  readonly remainingMs: number;
  readonly backoff: BackoffPolicy;
  /** A random number in [0, 1). */
  readonly random: number;
}): number {
  const { attempt, attemptsLeft, remainingMs, backoff } = options;
  if (attemptsLeft < 1 || !(remainingMs > 0)) return 0;
  const random = Math.min(Math.max(options.random, 0), 1);
  const shareMs = remainingMs / (2 ** attemptsLeft - 1);
  const spreadMs = shareMs * (0.5 + 0.5 * random);
  const backoffMs = fullJitterMs(attempt - 1, backoff, random);
  return Math.floor(Math.min(remainingMs, Math.max(spreadMs, backoffMs)));
}
