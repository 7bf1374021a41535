import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../../src/store/redis/client.js';
import { RedisBucketStore, type RedisBucket } from '../../src/store/redis/redis-store.js';
import { LATE_BOOKING_WINDOW_MS } from '../../src/store/redis/scripts.js';
import { systemClock, systemTimers } from '../../src/system-time.js';
import { redisCliAvailable, redisServerBinary, startRedisCluster, startRedisServer, startSentinel, type RedisServer } from '../helpers/redis.js';
import { bucketStoreContract } from './contract.js';

/**
 * The Redis store on Redis Cluster (three masters on loopback ports, created with redis-cli) and
 * through Sentinel: the same contract, with a request's buckets in one slot thanks to the hash tag.
 */

const canRun = redisServerBinary() !== undefined && redisCliAvailable();
if (!canRun) console.warn('[sluice] skipping the Redis Cluster and Sentinel tests: redis-server and redis-cli are needed on PATH');

function clusterStore(urls: string[], onError: 'local' | 'deny' = 'deny'): RedisBucketStore {
  return new RedisBucketStore({
    client: createRedisClient({ cluster: urls, timeoutMs: 250 }),
    keyPrefix: 'sluice-cluster:',
    onError,
    replicasHint: 1,
    clock: systemClock,
    timers: systemTimers(),
  });
}

describe.skipIf(!canRun)('RedisBucketStore on Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>> | undefined;
  let urls: string[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    urls = cluster.nodes.map((n) => n.url);
  });
  afterAll(async () => {
    await cluster?.kill();
  });

  bucketStoreContract('RedisBucketStore (Cluster)', async () => {
    const store = clusterStore(urls);
    expect(await store.waitUntilHealthy(5_000)).toBe(true);
    const inspector = new Cluster(urls.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })));
    return {
      store,
      now: () => performance.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
      // Redis answers on its own clock, after a round trip on a machine that may be busy.
      toleranceMs: 50,
      lingerMs: LATE_BOOKING_WINDOW_MS,
      storedForMs: async (handle) => Math.max(0, await inspector.pttl((handle as RedisBucket).key)),
      close: async () => {
        await store.close();
        inspector.disconnect();
      },
    };
  });

  it('spreads upstreams over the nodes, each request within one slot', async () => {
    const store = clusterStore(urls);
    try {
      expect(await store.waitUntilHealthy(5_000)).toBe(true);
      const nodesHolding = new Set<number>();
      for (let i = 0; i < 12; i++) {
        const upstream = `up${i}x${Date.now()}`;
        const buckets = [
          store.bucket({ id: `${upstream}:0`, ratePerSec: 10, burst: 1 }),
          store.bucket({ id: `${upstream}:1:acct-${i}`, ratePerSec: 10, burst: 1 }),
        ];
        const now = performance.now();
        // Two keys in one script: a CROSSSLOT error here would mean the hash tag failed.
        expect(await store.take(buckets, now, now)).toMatchObject({ granted: true });
        for (const node of cluster?.nodes ?? []) {
          const direct = new Redis(node.url);
          // A node that does not serve the slot answers MOVED.
          const held = await direct.exists(...buckets.map((b) => b.key)).catch(() => 0);
          if (held === 2) nodesHolding.add(node.port);
          direct.disconnect();
        }
      }
      expect(nodesHolding.size).toBeGreaterThan(1);
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(!canRun)('RedisBucketStore through Sentinel', () => {
  let master: RedisServer | undefined;
  let sentinel: RedisServer | undefined;
  afterAll(async () => {
    await sentinel?.kill();
    await master?.kill();
  });

  it('finds the master from a redis+sentinel:// URL and takes tokens there', async () => {
    master = await startRedisServer();
    sentinel = await startSentinel(master.port, 'sluicemaster');
    const store = new RedisBucketStore({
      client: createRedisClient({ url: `redis+sentinel://127.0.0.1:${sentinel.port}/sluicemaster`, timeoutMs: 250 }),
      keyPrefix: 'sluice-sentinel:',
      onError: 'deny',
      replicasHint: 1,
      clock: systemClock,
      timers: systemTimers(),
    });
    try {
      expect(await store.waitUntilHealthy(5_000)).toBe(true);
      const bucket = store.bucket({ id: 'api:0', ratePerSec: 1, burst: 1 });
      const now = performance.now();
      expect(await store.take([bucket], now, now)).toMatchObject({ granted: true });
      const direct = new Redis(master.url);
      expect(await direct.exists('sluice-sentinel:{api}:0')).toBe(1);
      direct.disconnect();
    } finally {
      await store.close();
    }
  });
});
