import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, schedulerOf, send, sleep, waitFor, type Answer } from '../io/support.js';

/**
 * Priorities end to end (`priority: { header: sluice-priority, aging: 2s }`): within one key, queued
 * high requests go before normal and low ones, and a low one still goes after two aging periods
 * however many high ones keep arriving (each aging period waited raises a request one level; among
 * equals the older goes first).
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

const config = (target: string, limit: string): string => `
upstreams:
  - name: api
    prefix: /
    target: ${target}
    limits:
      - key: "{header.x-account}"
        ${limit}
    priority: { header: sluice-priority, aging: 2s }
    queue: { maxWait: 30s }
`;

it('serves queued high requests of a key before its normal ones, and those before its low ones', async () => {
  // The first request holds the key's only slot until the rest are queued: the order they leave in
  // is then the queue's alone, whatever the timing.
  let releaseFirst: (() => void) | undefined;
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (index === 0) releaseFirst = () => void echo(req, res, index);
    else void echo(req, res, index);
  });
  sluice = await startSluice(config(upstream.url, 'concurrency: 1'));
  agent = newAgent();
  const client = agent;
  const call = (tag: string, priority?: string): Promise<Answer> =>
    send(client, `${sluice?.url}/items/${tag}`, { headers: { 'x-account': 'acme', ...(priority ? { 'sluice-priority': priority } : {}) } });

  const first = call('first');
  await waitFor(() => releaseFirst !== undefined, 5_000, 'the first request upstream');
  const rest: Promise<Answer>[] = [];
  const order = ['low', 'normal', 'high', 'low', 'normal', 'high', 'low', 'normal', 'high'];
  for (const [i, priority] of order.entries()) {
    rest.push(call(`${priority}-${i}`, priority));
    await waitFor(() => schedulerOf(sluice as RunningSluice).queued === i + 1, 5_000, `request ${i} queued`);
  }
  releaseFirst?.();
  const answers = await Promise.all([first, ...rest]);

  expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
  expect(upstream.seen.map((r) => r.url)).toEqual([
    '/items/first',
    '/items/high-2',
    '/items/high-5',
    '/items/high-8',
    '/items/normal-1',
    '/items/normal-4',
    '/items/normal-7',
    '/items/low-0',
    '/items/low-3',
    '/items/low-6',
  ]);
});

it('serves a low request within about two aging periods under a steady stream of high ones', async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(config(upstream.url, 'rate: 10/s'));
  agent = newAgent();
  const client = agent;
  const url = sluice.url;
  const call = (tag: string, priority: string): Promise<Answer> =>
    send(client, `${url}/items/${tag}`, { headers: { 'x-account': 'acme', 'sluice-priority': priority } });

  // Eight callers each send high requests back to back: the key's queue never runs dry of them.
  let streaming = true;
  let highs = 0;
  const callers = Array.from({ length: 8 }, async () => {
    while (streaming) {
      const answer = await call(`high-${highs++}`, 'high');
      expect(answer.status).toBe(200);
    }
  });
  await sleep(500);
  const lowSentAt = performance.now();
  const seenBefore = upstream.seen.length;
  const low = await call('low', 'low');
  const waitedMs = low.doneAt - lowSentAt;
  const highsServedMeanwhile = upstream.seen.slice(seenBefore).filter((r) => r.url.startsWith('/items/high-')).length;
  streaming = false;
  await Promise.all(callers);

  expect(low.status).toBe(200);
  // Overtaken while it ranked below them (the high ones arriving after it went first)...
  expect(Number(header(low, 'sluice-queue-ms'))).toBeGreaterThan(3_000);
  expect(highsServedMeanwhile).toBeGreaterThanOrEqual(25);
  // ...and served once two aging periods (4 s) made it rank with them, as the oldest.
  expect(waitedMs).toBeLessThan(5_000);
}, 15_000);
