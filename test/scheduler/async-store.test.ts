import { describe, expect, it } from 'vitest';
import { STORE_UNAVAILABLE, type BucketHandle, type BucketSpec, type BucketStore, type TakeResult } from '../../src/store/bucket-store.js';
import { MemoryBucketStore } from '../../src/store/memory-store.js';
import { harness } from './helpers.js';

/**
 * A store that answers like a shared one: every take is a promise, settled when the test says so
 * (a Redis round trip), computed by a memory store underneath. `failing` makes takes answer that
 * the store is unavailable; `rejecting` makes them reject (a store that broke).
 */
class DeferredStore implements BucketStore {
  readonly kind = 'deferred';
  readonly inner = new MemoryBucketStore();
  readonly pending: (() => void)[] = [];
  takes = 0;
  refunds = 0;
  failing = false;
  rejecting = false;
  get healthy(): boolean {
    return !this.failing;
  }
  bucket(spec: BucketSpec): BucketHandle {
    return this.inner.bucket(spec);
  }
  take(buckets: readonly BucketHandle[], at: number, now: number): Promise<TakeResult> {
    this.takes++;
    return new Promise((resolve, reject) => {
      this.pending.push(() =>
        this.rejecting ? reject(new Error('redis is down')) : resolve(this.failing ? STORE_UNAVAILABLE : this.inner.take(buckets, at, now)),
      );
    });
  }
  /** Answers every pending take, then lets the promise callbacks run. */
  async answerAll(): Promise<void> {
    const answers = this.pending.splice(0);
    for (const answer of answers) answer();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  refund(buckets: readonly BucketHandle[]): void {
    this.refunds++;
    this.inner.refund(buckets);
  }
  usedAt(buckets: readonly BucketHandle[], at: number, toleranceMs: number): void {
    this.inner.usedAt(buckets, at, toleranceMs);
  }
  pause(buckets: readonly BucketHandle[], now: number, untilMs: number): void {
    this.inner.pause(buckets, now, untilMs);
  }
  async close(): Promise<void> {}
}

describe('Scheduler with a store that answers later (a shared store)', () => {
  it('grants once the store says yes, one round trip per release', async () => {
    const store = new DeferredStore();
    const h = harness([{ ratePerSec: 10 }], { store });
    h.request('a');
    h.request('b');
    expect(h.granted()).toEqual([]);
    expect(store.takes).toBe(1); // b waits for a's answer rather than asking too
    await store.answerAll();
    expect(h.granted()).toEqual(['a']);
    expect(store.takes).toBe(2); // then b asks, and is told to come back in 100 ms
    await store.answerAll();
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(100);
    expect(store.takes).toBe(3);
    await store.answerAll();
    expect(h.granted()).toEqual(['a', 'b']);
  });

  it('gives the tokens back when the head left while the store was answering', async () => {
    const store = new DeferredStore();
    const h = harness([{ ratePerSec: 10 }], { store });
    const a = h.ticket(h.request('a'));
    expect(a.cancel()).toBe(true);
    await store.answerAll();
    expect(h.granted()).toEqual([]);
    expect(store.refunds).toBe(1);
    h.request('b'); // the token a never used is there for b at once
    await store.answerAll();
    expect(h.granted()).toEqual(['b']);
  });

  it('serves the next head when the first left during the round trip, and still in order', async () => {
    const store = new DeferredStore();
    const h = harness([{ keyed: true, ratePerSec: 1000, burst: 10 }], { store });
    const a = h.ticket(h.request('a', ['k']));
    h.request('b', ['k']);
    a.cancel();
    await store.answerAll();
    await store.answerAll();
    expect(h.granted()).toEqual(['b']);
  });

  it('refuses with SLUICE_STORE_UNAVAILABLE when the store cannot answer and must not be bypassed', async () => {
    const store = new DeferredStore();
    store.failing = true;
    const h = harness([{ ratePerSec: 10 }], { store });
    h.request('a');
    h.request('b');
    await store.answerAll();
    await store.answerAll();
    expect(h.refusals.map((r) => [r.id, r.refusal.code])).toEqual([
      ['a', 'SLUICE_STORE_UNAVAILABLE'],
      ['b', 'SLUICE_STORE_UNAVAILABLE'],
    ]);
    expect(h.scheduler.queued).toBe(0);
  });

  it('refuses the same way when the store breaks (its take rejects) rather than let requests through unlimited', async () => {
    const store = new DeferredStore();
    store.rejecting = true;
    const h = harness([{ ratePerSec: 10 }], { store });
    h.request('a');
    h.request('b');
    await store.answerAll();
    await store.answerAll();
    expect(h.refusals.map((r) => [r.id, r.refusal.code])).toEqual([
      ['a', 'SLUICE_STORE_UNAVAILABLE'],
      ['b', 'SLUICE_STORE_UNAVAILABLE'],
    ]);
    expect(h.granted()).toEqual([]);
    expect(h.scheduler.queued).toBe(0);
  });

  it('keeps lanes that share a gate fair while a take is pending', async () => {
    const store = new DeferredStore();
    const h = harness([{ ratePerSec: 10 }, { keyed: true, concurrency: 100 }], { store });
    for (let i = 0; i < 3; i++) h.request(`a${i}`, ['', 'A']);
    for (let i = 0; i < 3; i++) h.request(`b${i}`, ['', 'B']);
    for (let step = 0; step < 12; step++) {
      await store.answerAll();
      h.timers.advance(100);
    }
    await store.answerAll();
    // B started waiting while A's first take was pending, so the keys strictly alternate.
    expect(h.granted()).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });
});
