import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BucketHandle, BucketSpec, BucketStore, TakeResult } from '../../src/store/bucket-store.js';

/**
 * The one contract every BucketStore keeps, run against the memory store (manual time, exact) and
 * the Redis store (real time: Redis answers on its own clock, so instants are compared with a
 * tolerance). Instants are the caller's clock, read from the harness; every expectation is written
 * relative to the first take of a test.
 */
export interface StoreHarness {
  readonly store: BucketStore;
  /** The caller's clock. */
  now(): number;
  /** Lets `ms` pass on that clock (advances a manual clock; sleeps on a real one). */
  sleep(ms: number): Promise<void>;
  /** How far an instant the store answers may be from the exact one (0 for a manual clock). */
  readonly toleranceMs: number;
  /**
   * Milliseconds the store still keeps the bucket's state outside the handle (Redis: the key's
   * TTL; 0 once it is gone); undefined for a store that keeps state only in the handle.
   */
  storedForMs?(handle: BucketHandle): Promise<number | undefined>;
  /** How long the store keeps a bucket's state after it is full again (Redis: LATE_BOOKING_WINDOW_MS). */
  readonly lingerMs?: number;
  close(): Promise<void>;
}

let uniqueSeq = 0;

export function bucketStoreContract(name: string, createHarness: () => Promise<StoreHarness>): void {
  describe(`${name}: the BucketStore contract`, () => {
    let h: StoreHarness;
    // Each test gets its own upstream name, so a shared Redis holds nothing of another test's.
    let upstream: string;

    beforeEach(async () => {
      h = await createHarness();
      slowestTakeMs = 0;
      upstream = `contract${process.pid}x${Date.now()}x${uniqueSeq++}`;
    });
    afterEach(async () => {
      await h.close();
    });

    const bucket = (gate: string, ratePerSec: number, burst = 1): BucketHandle =>
      h.store.bucket({ id: `${upstream}:${gate}`, ratePerSec, burst } satisfies BucketSpec);
    // A shared store answers on its own clock: an instant it reports in the caller's clock is off by
    // at most the round trip of the calls involved, so the slowest take of the test widens the
    // tolerance (0 for a synchronous store on a manual clock).
    let slowestTakeMs = 0;
    const take = async (buckets: BucketHandle[]): Promise<TakeResult> => {
      const now = h.now();
      const result = await h.store.take(buckets, now, now);
      slowestTakeMs = Math.max(slowestTakeMs, h.now() - now);
      return result;
    };
    const near = (actual: number, expected: number, extraMs = 0): void => {
      const toleranceMs = h.toleranceMs + slowestTakeMs + extraMs;
      expect(Math.abs(actual - expected), `${actual} should be ${expected} (± ${toleranceMs} ms)`).toBeLessThanOrEqual(toleranceMs);
    };
    const granted = (result: TakeResult): void => {
      expect(result, 'expected a grant').toMatchObject({ granted: true });
    };
    const refused = (result: TakeResult): { retryAt: number; blocker: number } => {
      if (result.granted) throw new Error('expected a refusal, got a grant');
      if ('unavailable' in result) throw new Error('expected a refusal, the store is unavailable');
      return result;
    };

    it('grants the burst at once, then one token per interval', async () => {
      const b = bucket('0', 10, 3);
      const t0 = h.now();
      for (let i = 0; i < 3; i++) granted(await take([b]));
      const first = refused(await take([b]));
      expect(first.blocker).toBe(0);
      near(first.retryAt, t0 + 100);
      await h.sleep(first.retryAt - h.now() + h.toleranceMs);
      granted(await take([b]));
      near(refused(await take([b])).retryAt, t0 + 200);
    });

    it('grants a token at `at` no earlier than it is available, and reports the instant booked', async () => {
      const b = bucket('0', 10, 1);
      const t0 = h.now();
      const result = await take([b]);
      if (!result.granted) throw new Error('expected a grant');
      near(result.at, t0);
      // The hints follow the answer: the next token at t0 + 100, the bucket full again then.
      near(b.availableAt(), t0 + 100);
      near(b.fullAt(), t0 + 100);
      expect(b.intervalMs).toBeCloseTo(100, 6);
      expect(b.tokensAt(b.availableAt())).toBeCloseTo(1, 6); // the first instant with a token
    });

    it('handles rates below one per second', async () => {
      const b = bucket('0', 0.5, 1);
      const t0 = h.now();
      granted(await take([b]));
      near(refused(await take([b])).retryAt, t0 + 2000);
      expect(b.intervalMs).toBeCloseTo(2000, 6);
      near(b.availableAt(), t0 + 2000);
      expect(b.tokensAt(t0 + 1000)).toBeCloseTo(0.5, 1);
    });

    it('takes from every bucket or from none, and names the bucket that blocks', async () => {
      const shared = bucket('0', 10, 5);
      const perKey = bucket('1:acct', 1, 1);
      const t0 = h.now();
      granted(await take([shared, perKey]));
      const blocked = refused(await take([shared, perKey]));
      expect(blocked.blocker).toBe(1);
      near(blocked.retryAt, t0 + 1000);
      expect(refused(await take([perKey, shared])).blocker).toBe(0);
      // The refusals took nothing from the shared bucket: 4 of its 5 tokens are left.
      for (let i = 0; i < 4; i++) granted(await take([shared]));
      const empty = refused(await take([shared]));
      expect(empty.blocker).toBe(0);
      near(empty.retryAt, t0 + 100);
    });

    it('blocks on the bucket that is ready last', async () => {
      const fast = bucket('0', 100, 1);
      const slow = bucket('1:k', 2, 1);
      const t0 = h.now();
      granted(await take([fast, slow]));
      const blocked = refused(await take([fast, slow]));
      expect(blocked.blocker).toBe(1);
      near(blocked.retryAt, t0 + 500);
    });

    it('gives back a refunded token, and only one', async () => {
      const b = bucket('0', 1, 1);
      const t0 = h.now();
      granted(await take([b]));
      h.store.refund([b]);
      granted(await take([b]));
      near(refused(await take([b])).retryAt, t0 + 1000);
    });

    it('re-bases a bucket on a late write, and ignores an on-time one', async () => {
      const b = bucket('0', 10, 1);
      const t0 = h.now();
      granted(await take([b]));
      h.store.usedAt([b], h.now(), 1);
      near(refused(await take([b])).retryAt, t0 + 100);
      await h.sleep(50);
      const writtenAt = h.now();
      h.store.usedAt([b], writtenAt, 1);
      // No more than if the token had been taken at the write: the next one interval after it.
      near(refused(await take([b])).retryAt, writtenAt - 1 + 100);
    });

    it('honours a pause: nothing until it ends, then the bucket grants again', async () => {
      const shared = bucket('0', 100, 5);
      const perKey = bucket('1:acct', 100, 5);
      const t0 = h.now();
      granted(await take([shared, perKey]));
      h.store.pause([perKey], h.now(), t0 + 300);
      h.store.pause([perKey], h.now(), t0 + 100); // a pause never shortens
      const paused = refused(await take([shared, perKey]));
      expect(paused.blocker).toBe(1);
      near(paused.retryAt, t0 + 300);
      granted(await take([shared])); // the other bucket is not paused
      await h.sleep(t0 + 300 - h.now() + h.toleranceMs);
      granted(await take([shared, perKey]));
    });

    it('forgets an idle bucket once it is full again', async () => {
      const b = bucket('1:idle', 20, 2);
      const t0 = h.now();
      granted(await take([b]));
      granted(await take([b]));
      near(b.fullAt(), t0 + 100);
      const askedAt = h.now();
      const stored = await h.storedForMs?.(b);
      const lingerMs = h.lingerMs ?? 0;
      if (stored !== undefined) near(stored, t0 + 100 + lingerMs - askedAt, 2 + (h.now() - askedAt));
      await h.sleep(t0 + 100 + lingerMs - h.now() + h.toleranceMs + 5);
      if (stored !== undefined) expect(await h.storedForMs?.(b)).toBe(0);
      // Full again: the whole burst.
      granted(await take([b]));
      granted(await take([b]));
      refused(await take([b]));
    });
  });
}
