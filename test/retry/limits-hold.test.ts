import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, maxInWindow, newAgent, send } from '../io/support.js';
import { answer, closeAll, seeded } from './support.js';

/**
 * Retries go through the limiter like first attempts: each takes a token and a slot again, so an
 * upstream that throttles at random never sees more than its rate or more than the cap in flight.
 * The upstream counts both itself.
 */

/** The upstream stamps arrivals on a busy machine; windows are this much shorter than a second (test/io/rate.test.ts). */
const JITTER_MS = 25;

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

it('keeps 20/s and 2 in flight while ~30% of attempts are throttled and retried', async () => {
  // Seeded, so every run throttles the same attempts: about 30%, half with Retry-After: 0,
  // half without (then sluice backs off with jitter), each answer after 40 to 100 ms.
  const random = seeded(20240611);
  const statuses: number[] = [];
  upstream = await ScriptedUpstream.start((req, res, index) => {
    const throttle = random() < 0.3;
    const retryAfter = random() < 0.5 ? { 'retry-after': '0' } : undefined;
    const delayMs = 40 + Math.floor(random() * 60);
    statuses.push(throttle ? 429 : 200);
    setTimeout(() => {
      if (throttle) answer(res, { status: 429, headers: retryAfter, body: 'slow down' });
      else void echo(req, res, index);
    }, delayMs);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 20/s
        concurrency: 2
    retry:
      attempts: 10
      backoff: { base: 50ms, max: 400ms }
`);
  agent = newAgent();
  const { url } = sluice;
  const client = agent;

  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => send(client, `${url}/api/${i}`)));

  expect(answers.map((a) => a.status)).toEqual(Array(100).fill(200));
  const throttled = statuses.filter((s) => s === 429).length;
  // The retries really happened (the seed throttles about 30 of the first 100 attempts and more after).
  expect(throttled).toBeGreaterThanOrEqual(20);
  expect(upstream.seen).toHaveLength(100 + throttled);
  expect(answers.reduce((n, a) => n + Number(header(a, 'sluice-attempts')), 0)).toBe(100 + throttled);
  // The upstream's own counts: never more than 20 arrivals in a second, never more than 2 at once.
  expect(
    maxInWindow(
      upstream.seen.map((s) => s.at),
      1000 - JITTER_MS,
    ),
  ).toBeLessThanOrEqual(20);
  expect(upstream.maxInFlight).toBeLessThanOrEqual(2);
  // Both limits were reached, so they were tested: the cap was used in full, and the rate too.
  expect(upstream.maxInFlight).toBe(2);
  expect(
    maxInWindow(
      upstream.seen.map((s) => s.at),
      1000 - JITTER_MS,
    ),
  ).toBeGreaterThanOrEqual(15);
});
