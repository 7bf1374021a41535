import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { redisServerBinary, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { maxInWindow, metric, sleep, spread, startReplicas, statusCounts, type Replicas } from './replicas-support.js';

/**
 * Redis dies in the middle of a run (`store.onError: local`): the replicas keep serving, each from
 * a local bucket at rate / replicasHint, and no request is lost; when Redis is back on its port they
 * share its buckets again, without a restart.
 */

if (!redisServerBinary()) console.warn('[sluice] skipping the Redis outage test: no redis-server binary on PATH');

const RATE = 60;
const REPLICAS = 3;

let redis: RedisServer | undefined;
let upstream: ScriptedUpstream | undefined;
let replicas: Replicas | undefined;

afterEach(async () => {
  await replicas?.close();
  await upstream?.close();
  await redis?.kill();
  replicas = upstream = redis = undefined;
});

describe.skipIf(!redisServerBinary())('Redis killed mid-run, onError: local', () => {
  it('keeps every request flowing at the fallback rate, then shares Redis again once it is back', async () => {
    redis = await startRedisServer();
    const port = redis.port;
    upstream = await ScriptedUpstream.start();
    const keyPrefix = `outage-${process.pid}:`;
    replicas = await startReplicas(REPLICAS, {
      redisUrl: redis.url,
      target: upstream.url,
      rate: `${RATE}/s`,
      replicasHint: REPLICAS,
      onError: 'local',
      keyPrefix,
    });
    const sluices = replicas.sluices;

    const run = spread(replicas, 540, 20); // 9 s at 60/s
    await sleep(2_500);
    const killedAt = performance.now();
    await redis.kill();
    await sleep(600);
    const fallbackGauges = await Promise.all(sluices.map((s) => metric(s, 'sluice_store_fallback')));
    await sleep(2_400);
    const restartedAt = performance.now();
    redis = await startRedisServer({ port });
    // ioredis reconnects on its own (backing off up to 2 s); the store is used again on 'ready'.
    const deadline = performance.now() + 5_000;
    while (performance.now() < deadline) {
      const gauges = await Promise.all(sluices.map((s) => metric(s, 'sluice_store_fallback')));
      if (gauges.every((g) => g === 0)) break;
      await sleep(50);
    }
    const recoveredAt = performance.now();
    const calls = await run;

    // Nothing lost: every call answered 200.
    expect(statusCounts(calls)).toEqual({ 200: 540 });
    expect(fallbackGauges).toEqual([1, 1, 1]);
    for (const sluice of sluices) {
      expect(await metric(sluice, 'sluice_store_fallback')).toBe(0);
      expect(await metric(sluice, 'sluice_store_errors_total', { store: 'redis', operation: 'connection' })).toBeGreaterThan(0);
    }

    const arrivals = upstream.seen.map((s) => s.at);
    const outage = arrivals.filter((t) => t > killedAt + 200 && t < restartedAt);
    const outageRate = (outage.length / (restartedAt - killedAt - 200)) * 1000;
    // Each replica alone at 60/3 = 20/s: about 60/s together (more than half of it even on a busy
    // machine: requests flow), and never more than the limit.
    expect(outageRate).toBeGreaterThan(RATE * 0.5);
    expect(maxInWindow(outage, 975)).toBeLessThanOrEqual(RATE + REPLICAS);
    // Shared again: the bucket is back in Redis, and all of them keep to the limit together.
    const check = new Redis(`redis://127.0.0.1:${port}`);
    try {
      expect(await check.exists(`${keyPrefix}{api}:0`)).toBe(1);
    } finally {
      check.disconnect();
    }
    const after = arrivals.filter((t) => t > recoveredAt + 1_000);
    expect(after.length).toBeGreaterThan(RATE);
    expect(maxInWindow(after, 975)).toBeLessThanOrEqual(RATE + 1);
    console.info(
      `[sluice] outage: ${outage.length} upstream arrivals at ${outageRate.toFixed(1)}/s while Redis was down (limit ${RATE}/s, ${REPLICAS} replicas at ${RATE / REPLICAS}/s each); recovered ${(recoveredAt - restartedAt).toFixed(0)} ms after the restart`,
    );
  });
});
