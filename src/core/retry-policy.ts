import { fullJitterMs, type BackoffPolicy } from './backoff.js';
import { RETRYABLE_STATUSES, isIdempotent, isThrottle } from './http-rules.js';

/** What ended an attempt. */
export type AttemptOutcome =
  /** The upstream answered with a status; `retryAfterMs` from its Retry-After (or reset) header. */
  | { readonly kind: 'status'; readonly status: number; readonly retryAfterMs?: number | undefined }
  /** No response headers within the per-attempt timeout. The request may have been processed. */
  | { readonly kind: 'timeout' }
  /** The upstream was never reached (refused, DNS failure, connect timeout): nothing was sent. */
  | { readonly kind: 'connect' }
  /** The connection broke after the request may have been sent. */
  | { readonly kind: 'reset' };

/** The `retry.on` vocabulary of the configuration. */
export type RetryOn = 429 | 502 | 503 | 504 | 'timeout' | 'connect' | 'reset';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  readonly attempts: number;
  readonly on: ReadonlySet<RetryOn>;
  readonly backoff: BackoffPolicy;
  readonly respectRetryAfter: boolean;
}

export interface RetryContext {
  /** The attempt that just ended, from 1. */
  readonly attempt: number;
  readonly method: string;
  /** The request body was buffered (or absent) and can be sent again. */
  readonly replayable: boolean;
  /** The client sent an `Idempotency-Key` header. */
  readonly idempotencyKey: boolean;
  /** Time left in the request's budget, in ms. */
  readonly remainingMs: number;
  /** A random number in [0, 1) for the jitter. */
  readonly random: number;
}

export type RetryReason = '429' | '502' | '503' | '504' | 'timeout' | 'connect' | 'reset';

/**
 * Why an attempt is not retried: `final` the answer is not one sluice retries (2xx, 4xx, 500...);
 * `not-retryable` its kind is not in `retry.on`; `exhausted` no attempts left; `unsafe` the request
 * may have been processed and is not idempotent; `not-replayable` its body was streamed; `budget`
 * the wait would pass the request's deadline.
 */
export type StopReason = 'final' | 'not-retryable' | 'exhausted' | 'unsafe' | 'not-replayable' | 'budget';

export type RetryDecision =
  | { readonly retry: false; readonly stop: StopReason }
  | {
      readonly retry: true;
      readonly reason: RetryReason;
      readonly delayMs: number;
      /** Pause the whole key for `delayMs`: the upstream said the key is exhausted. */
      readonly pauseKey: boolean;
    };

/** A decision to retry. */
export type RetryPlan = Extract<RetryDecision, { retry: true }>;

/**
 * Decides whether an attempt is retried, and after how long.
 *
 * Safety rules (README, "Retries"):
 * - 429, and 503 with `Retry-After`, mean the request was not processed: any method is retried,
 *   provided its body can be sent again.
 * - A failure to connect sent nothing: any method with a replayable body is retried.
 * - Timeouts, resets, 502, 504 and a 503 without `Retry-After` may follow a processed request:
 *   retried only for idempotent methods or requests carrying an `Idempotency-Key`.
 *
 * The delay is the upstream's `Retry-After` when it gave one (and `respectRetryAfter` is on),
 * otherwise full-jitter backoff. A retry that would not fit in the remaining budget is not made;
 * the caller then answers with what it has.
 */
export function decideRetry(outcome: AttemptOutcome, policy: RetryPolicy, context: RetryContext): RetryDecision {
  const reason = reasonOf(outcome);
  if (reason === undefined) return { retry: false, stop: 'final' };
  if (!policy.on.has(reasonToOn(reason))) return { retry: false, stop: 'not-retryable' };
  if (context.attempt >= policy.attempts) return { retry: false, stop: 'exhausted' };
  if (!context.replayable) return { retry: false, stop: 'not-replayable' };

  // A Retry-After says the request was not processed even when its value is not used for the delay.
  const retryAfterMs = outcome.kind === 'status' ? outcome.retryAfterMs : undefined;
  const throttled = outcome.kind === 'status' && isThrottle(outcome.status, retryAfterMs !== undefined);
  const notProcessed = throttled || reason === 'connect';
  if (!notProcessed && !context.idempotencyKey && !isIdempotent(context.method)) return { retry: false, stop: 'unsafe' };

  const delayMs = (policy.respectRetryAfter ? retryAfterMs : undefined) ?? fullJitterMs(context.attempt - 1, policy.backoff, context.random);
  if (delayMs > context.remainingMs) return { retry: false, stop: 'budget' };
  return { retry: true, reason, delayMs, pauseKey: throttled };
}

function reasonOf(outcome: AttemptOutcome): RetryReason | undefined {
  if (outcome.kind !== 'status') return outcome.kind;
  return RETRYABLE_STATUSES.has(outcome.status) ? (String(outcome.status) as RetryReason) : undefined;
}

function reasonToOn(reason: RetryReason): RetryOn {
  const n = Number(reason);
  return Number.isNaN(n) ? (reason as RetryOn) : (n as RetryOn);
}
