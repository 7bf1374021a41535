import type { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, sample, scrape, send, waitFor } from '../io/support.js';
import { RawConnection } from './support.js';

/**
 * Slow bodies: a client that dribbles its body is cut off once `listen.requestTimeout` (1500ms
 * here) has passed. A body up to `retry.maxBodySize` is read before the request is queued, so
 * while it dribbles it holds no token and no slot: another client's requests to the same key
 * (`concurrency: 1`, 2/s) go through at their rate. A larger body is streamed once released, and
 * holds its slot while it uploads, for at most requestTimeout.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
listen: { host: 127.0.0.1, port: 0, headersTimeout: 1s, requestTimeout: 1500ms }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-account}"
        rate: 2/s
        concurrency: 1
    retry: { maxBodySize: 1kb }
`);
  agent = newAgent();
});

afterAll(async () => {
  await agent?.close();
  await sluice?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

/** Opens a POST to the shared key with `length` announced and dribbles one byte every 100 ms. */
async function dribble(length: number): Promise<{ connection: RawConnection; stop: () => void }> {
  const connection = await RawConnection.open(sluice.url);
  connection.write(`POST /api/slow HTTP/1.1\r\nHost: sluice\r\nX-Account: shared\r\nContent-Length: ${length}\r\n\r\nx`);
  const timer = setInterval(() => connection.write('x'), 100);
  return { connection, stop: () => clearInterval(timer) };
}

it('times out a slow small body that held no token and no slot', async () => {
  const slow = await Promise.all([dribble(500), dribble(500), dribble(500)]);
  const started = performance.now();
  // 3 requests at 2/s, burst 1: about 1 s, had the slow ones taken nothing.
  for (let i = 0; i < 3; i++) {
    const answer = await send(agent, `${sluice.url}/api/fast`, { headers: { 'x-account': 'shared' } });
    expect(answer.status).toBe(200);
  }
  expect(performance.now() - started).toBeLessThan(1_400);

  for (const { connection, stop } of slow) {
    expect(await connection.waitClosed(4_000)).toBe(true);
    stop();
    connection.destroy();
    expect((connection.closedAt as number) - connection.openedAt).toBeLessThan(3_000);
    expect([408, undefined]).toContain(connection.status);
  }
  expect(upstream.seen.map((r) => r.url)).toEqual(['/fast', '/fast', '/fast']);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'cancelled' })).toBe(3);
});

it('frees the slot of a slow streamed body once requestTimeout has passed', async () => {
  const { connection, stop } = await dribble(1_000_000);
  await waitFor(() => sluice.app.upstreams[0]!.scheduler.snapshot().inFlight === 1, 2_000, 'the streamed request to be released');
  const fast = send(agent, `${sluice.url}/api/fast`, { headers: { 'x-account': 'shared' } });
  expect(await connection.waitClosed(4_000)).toBe(true);
  stop();
  connection.destroy();
  expect((connection.closedAt as number) - connection.openedAt).toBeLessThan(3_000);
  expect((await fast).status).toBe(200);
  await waitFor(() => sluice.app.upstreams[0]!.scheduler.snapshot().inFlight === 0, 2_000, 'the slot to be free');
});
