import type { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, sample, scrape, send } from '../io/support.js';
import { RawConnection } from './support.js';

/**
 * Slowloris: a client that sends its headers a line at a time, forever, is cut off once
 * `listen.headersTimeout` (1s here) has passed (408, connection closed), not up to 30 s later
 * (Node checks the timeout only every `connectionsCheckingInterval`, 30 s by default). Meanwhile
 * it holds nothing: another client's requests to the same key, under `concurrency: 1` and a tight
 * rate, go through at their rate.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
listen: { host: 127.0.0.1, port: 0, headersTimeout: 1s, requestTimeout: 5s }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-account}"
        rate: 4/s
        concurrency: 1
`);
  agent = newAgent();
});

afterAll(async () => {
  await agent?.close();
  await sluice?.close();
  await upstream?.close();
});

it('closes a connection that dribbles its headers once headersTimeout has passed, holding no slot meanwhile', async () => {
  const slow: RawConnection[] = [];
  const dribbles: NodeJS.Timeout[] = [];
  for (let i = 0; i < 5; i++) {
    const connection = await RawConnection.open(sluice.url);
    connection.write('GET /api/slow HTTP/1.1\r\nHost: sluice\r\nX-Account: shared\r\n');
    dribbles.push(setInterval(() => connection.write(`X-Pad-${Math.random().toString(36).slice(2)}: x\r\n`), 200));
    slow.push(connection);
  }
  // The same key, while the slow clients dribble: 4 requests at 4/s take about 1 s.
  const started = performance.now();
  for (let i = 0; i < 4; i++) {
    const answer = await send(agent, `${sluice.url}/api/fast`, { headers: { 'x-account': 'shared' } });
    expect(answer.status).toBe(200);
  }
  expect(performance.now() - started).toBeLessThan(2_500);

  const closed = await Promise.all(slow.map((connection) => connection.waitClosed(4_000)));
  for (const timer of dribbles) clearInterval(timer);
  expect(closed).toEqual([true, true, true, true, true]);
  for (const connection of slow) {
    connection.destroy();
    // 1 s of headersTimeout, checked every 250 ms, with room for a busy machine.
    expect((connection.closedAt as number) - connection.openedAt).toBeLessThan(3_000);
    expect([408, undefined]).toContain(connection.status);
  }
  expect(upstream.seen.map((r) => r.url)).toEqual(['/fast', '/fast', '/fast', '/fast']);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_queue_depth', { upstream: 'api' })).toBe(0);
});
