import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { sample, scrape } from '../io/support.js';
import { expectNoLeak, leakCheck, RawConnection, sleep } from './support.js';

/**
 * Upstream fault: 10,000 concurrent requests to an upstream that answers every one 429 with
 * `Retry-After: 0`. Each is tried `retry.attempts` (2) times, then gets the upstream's last 429
 * passed through (Sluice-Attempts: 2). Every slot is released (`sluice_inflight` 0, queue empty),
 * the process keeps answering, and the storm leaves no descriptor, timer or other resource behind.
 */

const REQUESTS = 10_000;

let upstream: http.Server;
let upstreamAttempts = 0;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    upstreamAttempts++;
    req.resume();
    // 20 ms per answer: with 100 slots sluice sends at most 5,000 attempts/s, so the storm (which
    // arrives in well under a second) really waits in sluice all at once, however fast the machine.
    setTimeout(() => {
      res.writeHead(429, { 'retry-after': '0', 'content-type': 'text/plain', 'content-length': 9 });
      res.end('throttled');
    }, 20);
  });
  upstream.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    limits: [{ rate: 10000/s, burst: 200, concurrency: 100 }]
    queue: { maxSize: 20000, maxWait: 60s }
    retry: { attempts: 2, backoff: { base: 1ms, max: 10ms } }
`);
});

afterAll(async () => {
  await sluice?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
});

it('passes the last 429 through to each of 10,000 concurrent requests, and releases everything', async () => {
  const statuses = new Map<string, number>();
  let mostWaiting = 0;
  const scheduler = sluice.app.upstreams[0]!.scheduler;
  /**
   * `count` requests, all at once: 20 pipelined on each of count / 20 raw connections (sluice
   * handles pipelined requests concurrently). Each connection's answers are counted by status
   * line and Sluice-Attempts.
   */
  const storm = async (count: number): Promise<void> => {
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const snapshot = scheduler.snapshot();
        mostWaiting = Math.max(mostWaiting, snapshot.queued + snapshot.inFlight);
        await sleep(20);
      }
    })();
    const perConnection = 20;
    const pipelined = `GET /api/x HTTP/1.1\r\nHost: sluice\r\n\r\n`.repeat(perConnection);
    await Promise.all(
      Array.from({ length: count / perConnection }, async () => {
        const connection = await RawConnection.open(sluice.url);
        const answered = new Promise<void>((resolve) => {
          const check = (): void => {
            if (connection.text.split('throttled').length > perConnection || connection.closed) resolve();
          };
          connection.socket.on('data', check);
          connection.socket.on('close', check);
        });
        connection.write(pipelined);
        await answered;
        connection.destroy();
        for (const head of connection.text.split('throttled').slice(0, perConnection)) {
          const key = `${/HTTP\/1\.1 (\d{3})/.exec(head)?.[1]} ${/sluice-attempts: (\d+)/i.exec(head)?.[1]}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
        }
      }),
    );
    watching = false;
    await watcher;
  };
  // A warm-up storm of 200 sets the baseline; then the 10,000.
  const leaks = await leakCheck((index) => storm(index === 0 ? 200 : REQUESTS), { warmups: 1, rounds: 1, settleMs: 10_000 });

  expect(Object.fromEntries(statuses)).toEqual({ '429 2': REQUESTS + 200 });
  expect(upstreamAttempts).toBe(2 * (REQUESTS + 200));
  expect(mostWaiting).toBeGreaterThan(REQUESTS / 2);
  expectNoLeak(leaks);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_queue_depth', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'upstream_error' })).toBe(REQUESTS + 200);
  const health = await request(`${sluice.adminUrl}/healthz`);
  expect(health.statusCode).toBe(200);
  await health.body.dump();
}, 60_000);
