/**
 * Where token buckets live. The scheduler keeps queues and concurrency slots in its own process
 * and asks the store for tokens: the memory store answers at once, the Redis store after a round
 * trip (its buckets are shared by every replica). One contract test suite runs against both
 * (test/store/contract.ts).
 */

/** What the scheduler knows about a rule's bucket for one key. */
export interface BucketSpec {
  /** Stable id: upstream, rule index and key. */
  readonly id: string;
  /** Tokens per second the bucket refills at (the configured rate minus the safety margin). */
  readonly ratePerSec: number;
  readonly burst: number;
}

/**
 * The store's handle on one bucket, owned by a scheduler gate. For the memory store it is the
 * bucket itself; for a shared store it carries what this process last learned (a hint).
 */
export interface BucketHandle {
  /** When a token may next be available: exact for the memory store, a hint for a shared one. */
  availableAt(): number;
  /** Tokens available at `now` (fractional), as far as this process knows. */
  tokensAt(now: number): number;
  /** Milliseconds between two tokens. */
  readonly intervalMs: number;
  /** The instant from which the bucket holds nothing worth remembering locally. */
  fullAt(): number;
  /** Changes the rate from `now` on (hot reload, learned limits), keeping the tokens held. */
  setRate(now: number, ratePerSec: number): void;
  /** Changes the burst from `now` on, keeping the tokens held (capped at the new burst). */
  setBurst(now: number, burst: number): void;
}

/** What a store that could answer says to a take. */
export type TakeAnswer =
  /** Granted; `at` is the instant (caller's clock) the tokens were booked at. */
  | { readonly granted: true; readonly at: number }
  /** Not now: ask again at `retryAt` (caller's clock); `blocker` indexes the bucket that said no. */
  | { readonly granted: false; readonly retryAt: number; readonly blocker: number };

/** A shared store cannot answer and must not be bypassed (`store.onError: deny`). */
export interface StoreUnavailable {
  readonly granted: false;
  readonly unavailable: true;
}

export type TakeResult = TakeAnswer | StoreUnavailable;

/** The take result of a store that cannot answer. */
export const STORE_UNAVAILABLE: StoreUnavailable = Object.freeze({ granted: false, unavailable: true });

export interface BucketStore {
  /** `memory`, or `redis`. */
  readonly kind: string;
  /** Creates the handle of a bucket (the state itself may already exist in a shared store). */
  bucket(spec: BucketSpec): BucketHandle;
  /**
   * Takes one token of every bucket at once, or none. `at` is the instant the grant was due
   * (never after `now`): the memory store books the tokens then, so a late timer does not shift
   * later grants. Synchronous for the memory store; a shared store that cannot answer says so
   * (STORE_UNAVAILABLE) rather than reject.
   */
  take(buckets: readonly BucketHandle[], at: number, now: number): TakeResult | Promise<TakeResult>;
  /** Gives back the tokens of a grant that was never sent. */
  refund(buckets: readonly BucketHandle[]): void;
  /**
   * The grant was written to the upstream at `at`, later than it was granted: no bucket may
   * hold more than if its token had been taken then (delays up to `toleranceMs` are ignored).
   */
  usedAt(buckets: readonly BucketHandle[], at: number, toleranceMs: number): void;
  /** Pauses the buckets (the upstream said the key is exhausted) until `untilAt` (caller's clock). */
  pause(buckets: readonly BucketHandle[], now: number, untilAt: number): void;
  /** Whether the store currently answers (a shared store may be unreachable). */
  readonly healthy: boolean;
  close(): Promise<void>;
}
