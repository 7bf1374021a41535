import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Clock } from '../../src/core/time.js';
import { STORE_UNAVAILABLE, type BucketHandle, type TakeAnswer, type TakeResult } from '../../src/store/bucket-store.js';
import { createRedisClient, parseSentinelUrl } from '../../src/store/redis/client.js';
import type { RedisOperation } from '../../src/store/redis/health.js';
import { RedisBucketStore, redisKeyOf, type RedisBucket } from '../../src/store/redis/redis-store.js';
import { LATE_BOOKING_WINDOW_MS, PENDING_HOLD_MS } from '../../src/store/redis/scripts.js';
import { systemClock, systemTimers } from '../../src/system-time.js';
import { freePort, redisServerBinary, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { bucketStoreContract } from './contract.js';

/**
 * The Redis store: the shared contract on a real Redis (server time, so instants carry a tolerance),
 * then what only a shared store does: replicas share buckets and pauses, scripts survive SCRIPT FLUSH,
 * and a failing Redis costs a request nothing (local fallback or refusal, at once).
 */

const redisUrl = inject('redisUrl');
if (!redisUrl) console.warn(`[sluice] skipping the Redis store tests: ${inject('redisSkipReason')}`);

const TIMEOUT_MS = 250;

/** A store on its own connection, as one replica has it. */
function newStore(options: { url?: string; onError?: 'local' | 'deny'; replicasHint?: number; clock?: Clock; keyPrefix?: string } = {}): {
  store: RedisBucketStore;
  client: Redis;
  errors: RedisOperation[];
  fallbacks: boolean[];
} {
  const client = createRedisClient({ url: options.url ?? redisUrl, timeoutMs: TIMEOUT_MS }) as Redis;
  const errors: RedisOperation[] = [];
  const fallbacks: boolean[] = [];
  const store = new RedisBucketStore({
    client,
    keyPrefix: options.keyPrefix ?? 'sluice-test:',
    onError: options.onError ?? 'local',
    replicasHint: options.replicasHint ?? 1,
    clock: options.clock ?? systemClock,
    timers: systemTimers(options.clock ?? systemClock),
    observer: { error: (operation) => errors.push(operation), fallback: (active) => fallbacks.push(active) },
    probeBackoffMs: 100,
    maxProbeBackoffMs: 200,
  });
  return { store, client, errors, fallbacks };
}

let seq = 0;
const uniqueUpstream = (): string => `t${process.pid}x${Date.now()}x${seq++}`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** A take followed, when granted, by its write notice (as a replica sends it once the request is written). */
async function takeAndWrite(store: RedisBucketStore, bucket: BucketHandle, clock: Clock = systemClock): Promise<TakeAnswer> {
  const result = await takeNow(store, [bucket], clock);
  if (result.granted) store.usedAt([bucket], clock.now(), 1);
  return result;
}

async function takeNow(store: RedisBucketStore, buckets: BucketHandle[], clock: Clock = systemClock): Promise<TakeAnswer> {
  const result = await takeNowOrUnavailable(store, buckets, clock);
  if ('unavailable' in result) throw new Error('the store answered that it is unavailable');
  return result;
}

async function takeNowOrUnavailable(store: RedisBucketStore, buckets: BucketHandle[], clock: Clock = systemClock): Promise<TakeResult> {
  const now = clock.now();
  return store.take(buckets, now, now);
}

describe.skipIf(!redisUrl)('RedisBucketStore', () => {
  bucketStoreContract('RedisBucketStore', async () => {
    const { store } = newStore();
    expect(await store.waitUntilHealthy(2_000)).toBe(true);
    const inspector = new Redis(redisUrl, { lazyConnect: false });
    return {
      store,
      now: () => performance.now(),
      sleep,
      // Redis's clock and ours tick at the same rate; the rest is a round trip on a busy machine.
      toleranceMs: 20,
      lingerMs: LATE_BOOKING_WINDOW_MS,
      storedForMs: async (handle) => Math.max(0, await inspector.pttl((handle as RedisBucket).key)),
      close: async () => {
        await store.close();
        inspector.disconnect();
      },
    };
  });

  describe('shared by replicas', () => {
    const stores: RedisBucketStore[] = [];
    let inspector: Redis;
    beforeAll(() => {
      inspector = new Redis(redisUrl);
    });
    afterAll(() => inspector.disconnect());
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });
    const replica = async (clock?: Clock): Promise<RedisBucketStore> => {
      const { store } = newStore({ clock });
      stores.push(store);
      expect(await store.waitUntilHealthy(2_000)).toBe(true);
      return store;
    };

    it('keys a bucket by upstream (a hash tag), rule and key, and digests long keys', () => {
      expect(redisKeyOf('sluice:', 'github:0')).toBe('sluice:{github}:0');
      expect(redisKeyOf('sluice:', 'github:1:acct-42')).toBe('sluice:{github}:1:acct-42');
      expect(redisKeyOf('p:', 'api:1:a:b')).toBe('p:{api}:1:a:b');
      const long = redisKeyOf('sluice:', `api:1:${'x'.repeat(500)}`);
      expect(long).toMatch(/^sluice:\{api\}:1:sha256:[A-Za-z0-9_-]{43}$/);
    });

    it('one bucket for every replica: a token taken by one is gone for the others', async () => {
      const [a, b, c] = [await replica(), await replica(), await replica()];
      const id = `${uniqueUpstream()}:0`;
      const spec = { id, ratePerSec: 10, burst: 2 };
      const t0 = performance.now();
      expect((await takeAndWrite(a, a.bucket(spec))).granted).toBe(true);
      expect((await takeAndWrite(b, b.bucket(spec))).granted).toBe(true);
      const refused = await takeNow(c, [c.bucket(spec)]);
      expect(refused.granted).toBe(false);
      if (!refused.granted) expect(Math.abs(refused.retryAt - (t0 + 100))).toBeLessThan(20 + (performance.now() - t0));
      expect(await inspector.hget(redisKeyOf('sluice-test:', id), 't')).toMatch(/^\d+\.\d{3}$/);
    });

    it("one replica's pause stops every replica until it ends", async () => {
      const [a, b] = [await replica(), await replica()];
      const spec = { id: `${uniqueUpstream()}:1:acct`, ratePerSec: 100, burst: 10 };
      const now = performance.now();
      a.pause([a.bucket(spec)], now, now + 400);
      // The pause is fire-and-forget on a's connection; b asks on its own, once it has landed.
      const key = redisKeyOf('sluice-test:', spec.id);
      for (let i = 0; i < 50 && (await inspector.hexists(key, 'p')) === 0; i++) await sleep(5);
      const other = await takeNow(b, [b.bucket(spec)]);
      expect(other.granted).toBe(false);
      if (!other.granted) expect(Math.abs(other.retryAt - (now + 400))).toBeLessThan(20);
      const ttl = await inspector.pttl(redisKeyOf('sluice-test:', spec.id));
      expect(ttl).toBeGreaterThan(350 + LATE_BOOKING_WINDOW_MS);
      expect(ttl).toBeLessThanOrEqual(400 + LATE_BOOKING_WINDOW_MS);
    });

    it('a refund by one replica is a token for another', async () => {
      const [a, b] = [await replica(), await replica()];
      const spec = { id: `${uniqueUpstream()}:0`, ratePerSec: 1, burst: 1 };
      const bucketA = a.bucket(spec);
      expect((await takeNow(a, [bucketA])).granted).toBe(true);
      expect((await takeNow(b, [b.bucket(spec)])).granted).toBe(false);
      a.refund([bucketA]); // the request was never sent: the token, and the bucket, are free again
      // The refund is fire-and-forget on a's connection, b asks on its own: b may ask before the
      // refund lands. Within 300 ms it must be granted (without the refund: a second later).
      let granted = false;
      for (let i = 0; i < 30 && !granted; i++) {
        granted = (await takeNow(b, [b.bucket(spec)])).granted;
        if (!granted) await new Promise((r) => setTimeout(r, 10));
      }
      expect(granted).toBe(true);
    });

    it('answers in the caller clock, whatever that clock reads (replicas with skewed clocks agree)', async () => {
      const skewed: Clock = { now: () => performance.now() + 3_600_000 };
      const [a, b] = [await replica(skewed), await replica()];
      const spec = { id: `${uniqueUpstream()}:0`, ratePerSec: 5, burst: 1 };
      const t0 = skewed.now();
      const first = await takeAndWrite(a, a.bucket(spec), skewed);
      const slack = 20 + (skewed.now() - t0); // the round trips' share of the conversion
      expect(first.granted).toBe(true);
      if (first.granted) expect(Math.abs(first.at - t0)).toBeLessThan(slack);
      const mine = await takeNow(b, [b.bucket(spec)]);
      const theirs = await takeNow(a, [a.bucket(spec)], skewed);
      if (mine.granted || theirs.granted) throw new Error('expected refusals');
      // The same instant, 200 ms after the first take, in each caller's clock.
      expect(Math.abs(mine.retryAt + 3_600_000 - theirs.retryAt)).toBeLessThan(slack);
      expect(Math.abs(theirs.retryAt - (t0 + 200))).toBeLessThan(slack);
    });

    it('books a late release at the instant it was due, so a late timer does not slow the rate', async () => {
      const store = await replica();
      const b = store.bucket({ id: `${uniqueUpstream()}:0`, ratePerSec: 10, burst: 1 });
      const t0 = performance.now();
      expect((await store.take([b], t0, t0)).granted).toBe(true);
      await sleep(130);
      // Due at t0 + 100, asked 30 ms late: booked at t0 + 100, so the next is due at t0 + 200.
      const now = performance.now();
      const late = await store.take([b], t0, now);
      expect(late.granted).toBe(true);
      if (late.granted) expect(Math.abs(late.at - (t0 + 100))).toBeLessThan(20);
      const next = await takeNow(store, [b]);
      if (next.granted) throw new Error('expected a refusal');
      expect(Math.abs(next.retryAt - (t0 + 200))).toBeLessThan(20);
    });

    it("holds the bucket for every replica while one replica's grant is not written, until its notice", async () => {
      const [a, b] = [await replica(), await replica()];
      const spec = { id: `${uniqueUpstream()}:0`, ratePerSec: 1000, burst: 10 };
      const bucketA = a.bucket(spec);
      const bucketB = b.bucket(spec);
      expect((await takeNow(a, [bucketA])).granted).toBe(true);
      // A's own scheduler holds its gate; its store does not hold itself.
      expect((await takeNow(a, [a.bucket(spec)])).granted).toBe(true);
      await sleep(30); // A stalls: its grants are older than the grace
      const held = await takeNow(b, [bucketB]);
      expect(held.granted).toBe(false);
      if (!held.granted) {
        expect(held.blocker).toBe(0);
        expect(held.retryAt - performance.now()).toBeLessThanOrEqual(5); // asks again shortly
      }
      // A writes the first grant (the notice carries the grant its handle holds) and a third one.
      a.usedAt([bucketA], performance.now(), 1);
      const secondA = a.bucket(spec);
      expect((await takeNow(a, [secondA])).granted).toBe(true);
      a.usedAt([secondA], performance.now(), 1);
      // A's second grant (another handle) was never written: it still holds.
      await sleep(30);
      expect((await takeNow(b, [bucketB])).granted).toBe(false);
      await sleep(PENDING_HOLD_MS);
      // Forgotten after PENDING_HOLD_MS: a lost notice never holds a bucket for long.
      expect((await takeNow(b, [bucketB])).granted).toBe(true);
    });

    it('survives SCRIPT FLUSH: the script is loaded again, no error surfaces', async () => {
      const { store, errors } = newStore();
      stores.push(store);
      await store.waitUntilHealthy(2_000);
      const b = store.bucket({ id: `${uniqueUpstream()}:0`, ratePerSec: 1000, burst: 1000 });
      expect((await takeNow(store, [b])).granted).toBe(true);
      await inspector.script('FLUSH');
      expect((await takeNow(store, [b])).granted).toBe(true);
      expect(errors).toEqual([]);
      expect(store.healthy).toBe(true);
    });
  });

  describe('sentinel URLs', () => {
    it('parses hosts, master name, password and db', () => {
      expect(parseSentinelUrl('redis+sentinel://:secret@s1:26379,s2:26380,[::1]/mymaster/2')).toEqual({
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
          { host: '::1', port: 26379 },
        ],
        name: 'mymaster',
        password: 'secret',
        sentinelPassword: 'secret',
        db: 2,
      });
      expect(() => parseSentinelUrl('redis+sentinel://s1:26379')).toThrow(/mastername/);
    });
  });
});

describe.skipIf(!redisServerBinary())('RedisBucketStore when Redis fails', () => {
  let server: RedisServer | undefined;
  const stores: RedisBucketStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await server?.kill();
    server = undefined;
  });
  const track = <T extends { store: RedisBucketStore }>(made: T): T => {
    stores.push(made.store);
    return made;
  };

  it('onError local, nothing listening: answers at once from a local bucket at rate / replicasHint', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const { store, errors, fallbacks } = track(newStore({ url, onError: 'local', replicasHint: 4 }));
    expect(await store.waitUntilHealthy(300)).toBe(false);
    expect(store.healthy).toBe(false);
    expect(store.fallback).toBe(true);
    expect(fallbacks).toEqual([true]);
    expect(errors).toContain('connection');
    const b = store.bucket({ id: `${uniqueUpstream()}:0`, ratePerSec: 40, burst: 1 });
    const t0 = performance.now();
    const first = store.take([b], t0, t0);
    // Synchronous: no promise, no waiting for a Redis that is not there.
    expect(first).toEqual({ granted: true, at: t0 });
    const second = store.take([b], t0, t0);
    expect(second).toMatchObject({ granted: false, blocker: 0 });
    // 40/s shared by 4 replicas: 10/s here.
    expect((second as { retryAt: number }).retryAt).toBeCloseTo(t0 + 100, 6);
    expect(b.availableAt()).toBeCloseTo(t0 + 100, 6);
  });

  it('onError deny, nothing listening: refuses at once, the store is unavailable', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const { store } = track(newStore({ url, onError: 'deny' }));
    await store.waitUntilHealthy(300);
    expect(store.healthy).toBe(false);
    expect(store.fallback).toBe(false);
    const b = store.bucket({ id: `${uniqueUpstream()}:0`, ratePerSec: 10, burst: 1 });
    const started = performance.now();
    expect(await takeNowOrUnavailable(store, [b])).toEqual(STORE_UNAVAILABLE);
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('a hung Redis costs one timeout, then local answers; it is used again once it answers', async () => {
    server = await startRedisServer();
    const { store, errors, fallbacks } = track(newStore({ url: server.url, onError: 'local', replicasHint: 2 }));
    expect(await store.waitUntilHealthy(2_000)).toBe(true);
    const b = store.bucket({ id: `${uniqueUpstream()}:0`, ratePerSec: 100, burst: 1 });
    expect((await takeNow(store, [b])).granted).toBe(true);

    server.freeze();
    const started = performance.now();
    const answer = await takeNow(store, [b]);
    const waitedMs = performance.now() - started;
    expect(waitedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(waitedMs).toBeLessThan(2 * TIMEOUT_MS);
    expect(answer.granted).toBe(true); // from the fresh local bucket
    expect(store.fallback).toBe(true);
    expect(errors).toContain('take');
    // From now on, at once and without a promise.
    const t1 = performance.now();
    expect(store.take([b], t1, t1)).toMatchObject({ granted: false });

    server.thaw();
    const deadline = performance.now() + 3_000;
    while (!store.healthy && performance.now() < deadline) await sleep(20);
    expect(store.healthy).toBe(true);
    expect(fallbacks).toEqual([true, false, true, false]); // connecting, connected, hung, answering
    const again = await takeNow(store, [b]);
    expect(again).toHaveProperty('granted');
  });

  it('a restarted Redis (killed, then back on its port) is used again without restarting the store', async () => {
    server = await startRedisServer();
    const port = server.port;
    const { store } = track(newStore({ url: server.url, onError: 'deny' }));
    expect(await store.waitUntilHealthy(2_000)).toBe(true);
    const b = store.bucket({ id: `${uniqueUpstream()}:0`, ratePerSec: 1000, burst: 1000 });
    expect((await takeNow(store, [b])).granted).toBe(true);

    await server.kill();
    const deadline = performance.now() + 2_000;
    while (store.healthy && performance.now() < deadline) await sleep(10);
    expect(store.healthy).toBe(false);
    const started = performance.now();
    expect(await takeNowOrUnavailable(store, [b])).toEqual(STORE_UNAVAILABLE);
    expect(performance.now() - started).toBeLessThan(50);

    server = await startRedisServer({ port });
    expect(await store.waitUntilHealthy(5_000)).toBe(true);
    // A fresh Redis: no scripts loaded, no buckets; the take loads the script and is granted.
    expect((await takeNow(store, [b])).granted).toBe(true);
  });
});
