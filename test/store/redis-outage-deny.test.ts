import { afterEach, describe, expect, it } from 'vitest';
import { redisServerBinary, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { get, metric, newAgent, problemCode, readyz, sleep, startReplicas, type Replicas } from './replicas-support.js';

/**
 * `store.onError: deny`: while Redis is down sluice refuses at once with 503
 * SLUICE_STORE_UNAVAILABLE (never an unlimited request, never a hanging one) and /readyz turns 503;
 * once Redis is back on its port, it is ready and serves again by itself.
 */

if (!redisServerBinary()) console.warn('[sluice] skipping the onError: deny test: no redis-server binary on PATH');

const TIMEOUT_MS = 250;

let redis: RedisServer | undefined;
let upstream: ScriptedUpstream | undefined;
let replicas: Replicas | undefined;

afterEach(async () => {
  await replicas?.close();
  await upstream?.close();
  await redis?.kill();
  replicas = upstream = redis = undefined;
});

describe.skipIf(!redisServerBinary())('Redis down, onError: deny', () => {
  it('refuses at once with 503 SLUICE_STORE_UNAVAILABLE, /readyz 503, and recovers when Redis is back', async () => {
    redis = await startRedisServer();
    const port = redis.port;
    upstream = await ScriptedUpstream.start();
    replicas = await startReplicas(1, { redisUrl: redis.url, target: upstream.url, rate: '50/s', onError: 'deny', keyPrefix: 'deny:' });
    const sluice = replicas.sluices[0];
    if (!sluice) throw new Error('no replica');
    const agent = newAgent();
    try {
      expect(await readyz(sluice)).toBe(200);
      expect((await get(agent, `${sluice.url}/api/up`)).status).toBe(200);

      await redis.kill();
      await sleep(100);
      expect(await readyz(sluice)).toBe(503);
      const refused = await Promise.all(Array.from({ length: 20 }, (_, i) => get(agent, `${sluice.url}/api/down/${i}`)));
      expect(refused.map((a) => a.status)).toEqual(Array(20).fill(503));
      expect(new Set(refused.map((a) => problemCode(a)))).toEqual(new Set(['SLUICE_STORE_UNAVAILABLE']));
      // One at a time on a warm connection, so the time measured is sluice's answer alone.
      const timed = [];
      for (let i = 0; i < 10; i++) timed.push(await get(agent, `${sluice.url}/api/down/timed-${i}`));
      expect(timed.map((a) => a.status)).toEqual(Array(10).fill(503));
      const slowestMs = Math.max(...timed.map((a) => a.doneAt - a.sentAt));
      expect(slowestMs).toBeLessThan(2 * TIMEOUT_MS);
      expect(upstream.seen.filter((s) => s.url.startsWith('/down/'))).toHaveLength(0);
      expect(await metric(sluice, 'sluice_store_fallback')).toBe(0); // deny never serves locally

      redis = await startRedisServer({ port });
      const deadline = performance.now() + 5_000;
      while ((await readyz(sluice)) !== 200 && performance.now() < deadline) await sleep(50);
      expect(await readyz(sluice)).toBe(200);
      const back = await Promise.all(Array.from({ length: 5 }, (_, i) => get(agent, `${sluice.url}/api/back/${i}`)));
      expect(back.map((a) => a.status)).toEqual(Array(5).fill(200));
      console.info(`[sluice] deny: refusals while Redis was down, the slowest of 10 sequential ones in ${slowestMs.toFixed(1)} ms`);
    } finally {
      await agent.close();
    }
  });
});
