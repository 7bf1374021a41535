import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { redisServerBinary, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { metric, sleep, spread, startReplicas, statusCounts, type Replicas } from './replicas-support.js';

/**
 * Redis forgets sluice's script (SCRIPT FLUSH, as after a restart or a failover to a replica that
 * never ran it): the next call gets NOSCRIPT, ioredis loads the script again and retries, and no
 * client sees anything of it, nor does a store error get counted.
 */

if (!redisServerBinary()) console.warn('[sluice] skipping the SCRIPT FLUSH test: no redis-server binary on PATH');

let redis: RedisServer | undefined;
let upstream: ScriptedUpstream | undefined;
let replicas: Replicas | undefined;

afterEach(async () => {
  await replicas?.close();
  await upstream?.close();
  await redis?.kill();
  replicas = upstream = redis = undefined;
});

describe.skipIf(!redisServerBinary())('SCRIPT FLUSH mid-run', () => {
  it('is invisible to clients: every call 200, no store error, Redis used throughout', async () => {
    redis = await startRedisServer();
    upstream = await ScriptedUpstream.start();
    replicas = await startReplicas(2, { redisUrl: redis.url, target: upstream.url, rate: '100/s', onError: 'deny', keyPrefix: 'flush:' });
    const admin = new Redis(redis.url);
    try {
      const run = spread(replicas, 300, 10);
      for (let i = 0; i < 4; i++) {
        await sleep(500);
        expect(await admin.script('FLUSH')).toBe('OK');
      }
      const calls = await run;
      expect(statusCounts(calls)).toEqual({ 200: 300 });
      for (const sluice of replicas.sluices) {
        // onError: deny would have answered 503 on any failure; none was counted either.
        expect(await metric(sluice, 'sluice_store_errors_total', { store: 'redis', operation: 'take' })).toBeUndefined();
        expect(await metric(sluice, 'sluice_store_fallback')).toBe(0);
      }
      // The scripts are loaded again.
      const info = await admin.info('memory');
      expect(Number(/number_of_cached_scripts:(\d+)/.exec(info)?.[1])).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
    }
  });
});
