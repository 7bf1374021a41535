import type { IncomingMessage } from 'node:http';
import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';
import { maxInWindow, newAgent, schedulerOf, send, waitFor, type Answer } from './support.js';

/**
 * A request passes every rule at once: a global 20/s and a per-account concurrency of 1. Account A
 * is slow (200 ms at the upstream), account B is instant. While A's queue waits for A's slot, A
 * takes no global token, so B keeps the global pace.
 */

const INTERVAL_MS = 1000 / 20;
const FROM_A = 10;
const FROM_B = 60;

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

it('holds a key to its own rule without spending the shared rule on it', async () => {
  /** When the upstream answered each of A's requests, by arrival index. */
  const answeredAt = new Map<number, number>();
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (req.headers['x-account'] !== 'A') return echo(req, res, index);
    setTimeout(() => {
      answeredAt.set(index, performance.now());
      void echo(req, res, index);
    }, 200);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 20/s
      - key: "{header.x-account}"
        concurrency: 1
`);
  agent = newAgent();
  const client = agent;
  const url = sluice.url;
  const scheduler = schedulerOf(sluice);
  let receivedFromB = 0;
  sluice.app.proxy.server.on('request', (req: IncomingMessage) => {
    if (req.headers['x-account'] === 'B') receivedFromB++;
  });

  // A: one at the upstream, four queued behind A's slot.
  const answers: Promise<Answer>[] = Array.from({ length: FROM_A }, (_, i) => send(client, `${url}/api/a/${i}`, { headers: { 'x-account': 'A' } }));
  await waitFor(() => scheduler.queued === FROM_A - 1, 5_000, "A's queue");
  // B: from the moment sluice has all of B's requests, B has demand for every token A leaves.
  answers.push(...Array.from({ length: FROM_B }, (_, i) => send(client, `${url}/api/b/${i}`, { headers: { 'x-account': 'B' } })));
  await waitFor(() => receivedFromB === FROM_B, 5_000, "B's requests");
  const allOfBAt = performance.now();
  const statuses = (await Promise.all(answers)).map((a) => a.status);

  expect(statuses).toEqual(Array(FROM_A + FROM_B).fill(200));
  const seen = upstream.seen.map((s, index) => ({ ...s, index }));
  const a = seen.filter((s) => s.headers['x-account'] === 'A');
  const b = seen.filter((s) => s.headers['x-account'] === 'B');
  expect(a).toHaveLength(FROM_A);
  expect(b).toHaveLength(FROM_B);

  // A: one at a time, each after the previous one was answered.
  for (let k = 1; k < a.length; k++) {
    const previous = a[k - 1] as SeenRequest & { index: number };
    expect((a[k] as SeenRequest).at).toBeGreaterThan(answeredAt.get(previous.index) as number);
    expect((a[k] as SeenRequest).at - previous.at).toBeGreaterThanOrEqual(190);
  }
  // B does not wait for A's slot: its first request goes while A's first is still at the upstream.
  expect((b[0] as SeenRequest).at).toBeLessThan(answeredAt.get((a[0] as { index: number }).index) as number);

  // The global rule is never exceeded (windows 25 ms short of a second, for stamping jitter).
  const arrivals = seen.map((s) => s.at);
  expect(maxInWindow(arrivals, 1000 - 25)).toBeLessThanOrEqual(20);

  // ...and is used in full while A is blocked: from the moment B had demand until A's last request
  // or B's last, whichever came first, every token went to a request that reached the upstream (A's
  // waiting requests held none), less 3 for jitter.
  const until = Math.min((a[FROM_A - 1] as SeenRequest).at, (b[FROM_B - 1] as SeenRequest).at);
  const tokens = Math.floor((until - allOfBAt) / INTERVAL_MS);
  const sent = arrivals.filter((t) => t > allOfBAt && t <= until).length;
  expect(tokens, 'B had demand long enough to measure').toBeGreaterThanOrEqual(6);
  expect(sent, `${sent} sent for ${tokens} tokens in ${Math.round(until - allOfBAt)} ms`).toBeGreaterThanOrEqual(tokens - 3);
});
