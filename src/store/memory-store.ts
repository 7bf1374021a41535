/**
 * The default store: every bucket in this process's memory (a TokenBucket and its pause), answered
 * synchronously.
 */
import { TokenBucket } from '../core/token-bucket.js';
import type { BucketHandle, BucketSpec, BucketStore, TakeAnswer } from './bucket-store.js';

/** A bucket held in this process: the token bucket itself, plus its pause. */
export class MemoryBucket implements BucketHandle {
  readonly bucket: TokenBucket;
  pauseEndsAt = Number.NEGATIVE_INFINITY;

  /** Keeps nothing of `spec` but the bucket it describes: an idle key costs what it must. */
  constructor(spec: BucketSpec) {
    this.bucket = new TokenBucket({ ratePerSec: spec.ratePerSec, burst: spec.burst });
  }

  availableAt(): number {
    return Math.max(this.bucket.availableAt(), this.pauseEndsAt);
  }

  tokensAt(now: number): number {
    return this.bucket.tokensAt(now);
  }

  get intervalMs(): number {
    return this.bucket.intervalMs;
  }

  fullAt(): number {
    return Math.max(this.bucket.fullAt(), this.pauseEndsAt);
  }

  setRate(now: number, ratePerSec: number): void {
    this.bucket.setRate(now, ratePerSec);
  }

  setBurst(now: number, burst: number): void {
    this.bucket.setBurst(now, burst);
  }
}

/** The default store: every bucket in this process's memory, answered synchronously. */
export class MemoryBucketStore implements BucketStore {
  readonly kind = 'memory';
  readonly healthy = true;

  bucket(spec: BucketSpec): MemoryBucket {
    return new MemoryBucket(spec);
  }

  take(buckets: readonly BucketHandle[], at: number, now: number): TakeAnswer {
    let readyAt = Number.NEGATIVE_INFINITY;
    let blocker = 0;
    buckets.forEach((handle, i) => {
      const ready = (handle as MemoryBucket).availableAt();
      if (ready > readyAt) {
        readyAt = ready;
        blocker = i;
      }
    });
    if (readyAt > now) return { granted: false, retryAt: readyAt, blocker };
    const bookedAt = Math.max(at, readyAt);
    for (const handle of buckets) (handle as MemoryBucket).bucket.take(bookedAt);
    return { granted: true, at: bookedAt };
  }

  refund(buckets: readonly BucketHandle[]): void {
    for (const handle of buckets) (handle as MemoryBucket).bucket.refund();
  }

  usedAt(buckets: readonly BucketHandle[], at: number, toleranceMs: number): void {
    for (const handle of buckets) (handle as MemoryBucket).bucket.usedAt(at, toleranceMs);
  }

  pause(buckets: readonly BucketHandle[], _now: number, untilAt: number): void {
    for (const handle of buckets) {
      const bucket = handle as MemoryBucket;
      if (untilAt > bucket.pauseEndsAt) bucket.pauseEndsAt = untilAt;
    }
  }

  async close(): Promise<void> {}
}
