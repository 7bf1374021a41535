import type { IncomingMessage } from 'node:http';
import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, sample, schedulerOf, scrape, send, waitFor, type Answer } from './support.js';

/**
 * Keys are bounded: 1000 one-off keys leave at most keys.maxIdle idle ones in memory (plus those
 * with work), while a key with a queued backlog is never evicted. At 1/s a key's bucket needs a
 * second to refill after a request, so every one-off key is worth remembering for a while: only the
 * bound keeps them from piling up.
 *
 * The backlog key also has a concurrency of 1, and the upstream holds its first request until the
 * churn is over, so its other requests stay queued throughout however slow the machine is. Were
 * its state evicted and recreated, the new state would have a free slot and let the second request
 * through while the first is still held.
 */

const MAX_IDLE = 50;
const BATCH = 50;
const KEYS = 1000;
const BACKLOG = 3;

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

it('keeps at most maxIdle idle keys, and never evicts a key with queued requests', async () => {
  let releaseHeld: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (releaseHeld = resolve));
  let backlogSeen = 0;
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (req.headers['x-key'] !== 'backlog' || backlogSeen++ > 0) return echo(req, res, index);
    void held.then(() => echo(req, res, index));
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-key}"
        rate: 1/s
        concurrency: 1
    keys: { maxIdle: ${MAX_IDLE} }
`);
  agent = newAgent();
  const client = agent;
  const { url, adminUrl } = sluice;
  const scheduler = schedulerOf(sluice);
  const keysGauge = async (): Promise<number> => sample(await scrape(adminUrl), 'sluice_keys', { upstream: 'api' }) ?? Number.NaN;
  const received: string[] = [];
  sluice.app.proxy.server.on('request', (req: IncomingMessage) => {
    if (req.headers['x-key'] === 'backlog') received.push(req.headers['x-seq'] as string);
  });

  const backlog: Promise<Answer>[] = [];
  for (let i = 0; i < BACKLOG; i++) {
    backlog.push(send(client, `${url}/api/backlog/${i}`, { headers: { 'x-key': 'backlog', 'x-seq': String(i) } }));
    await waitFor(() => received.length === i + 1, 5_000, `backlog #${i}`);
  }
  await waitFor(() => scheduler.gateSnapshot(0, 'backlog')?.queued === BACKLOG - 1, 5_000, 'the backlog to queue');

  const gauges: number[] = [];
  for (let first = 0; first < KEYS; first += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: BATCH }, (_, i) => send(client, `${url}/api/once/${first + i}`, { headers: { 'x-key': `key-${first + i}` } })),
    );
    expect(batch.every((a) => a.status === 200)).toBe(true);
    // The batch is answered: the only key with work left is the backlog's.
    gauges.push(await keysGauge());
  }
  // Throughout, the backlog kept its place: one held at the upstream, the rest queued.
  expect(backlogSeen).toBe(1);
  expect(scheduler.gateSnapshot(0, 'backlog')?.queued).toBe(BACKLOG - 1);

  releaseHeld();
  const backlogAnswers = await Promise.all(backlog);
  expect(backlogAnswers.map((a) => a.status)).toEqual(Array(BACKLOG).fill(200));
  expect(gauges).toHaveLength(KEYS / BATCH);
  expect(Math.max(...gauges)).toBeLessThanOrEqual(MAX_IDLE + 1);
  // The bound is what holds them: each batch's keys were still worth remembering when counted.
  expect(Math.max(...gauges), `gauges ${gauges.join(',')}`).toBeGreaterThanOrEqual(MAX_IDLE * 0.8);
  // The backlog came out whole and in the order sluice received it.
  const order = upstream.seen.filter((s) => s.headers['x-key'] === 'backlog').map((s) => s.headers['x-seq']);
  expect(order).toEqual(received);
  expect(received).toEqual(Array.from({ length: BACKLOG }, (_, i) => String(i)));
  expect(upstream.seen).toHaveLength(KEYS + BACKLOG);
  expect(await keysGauge()).toBeLessThanOrEqual(MAX_IDLE + 1);
});
