import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, send } from '../io/support.js';
import { answer, closeAll } from './support.js';

/**
 * `Retry-After` is read in both of its forms: `Retry-After: 2` is two seconds (not two
 * milliseconds, as @fastify/reply-from reads it), and an HTTP-date is waited for until that date.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

async function start(retryAfter: () => string): Promise<{ upstream: ScriptedUpstream; sluice: RunningSluice; agent: Agent }> {
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (index === 0) return answer(res, { status: 429, headers: { 'retry-after': retryAfter() }, body: 'slow down' });
    return echo(req, res, index);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 10/s
`);
  agent = newAgent();
  return { upstream, sluice, agent };
}

it('waits two seconds for Retry-After: 2', async () => {
  const { upstream, sluice, agent } = await start(() => '2');
  const got = await send(agent, `${sluice.url}/api/x`);

  expect(got.status).toBe(200);
  expect(header(got, 'sluice-attempts')).toBe('2');
  const [first, second] = upstream.seen.map((s) => s.at) as [number, number];
  expect(upstream.seen).toHaveLength(2);
  expect(second - first).toBeGreaterThanOrEqual(1800);
  expect(second - first).toBeLessThan(3500);
});

it('waits until the HTTP-date of Retry-After', async () => {
  // A date two to three seconds away (an HTTP-date has whole seconds), and how far it was when sent.
  let expectedWaitMs = Number.NaN;
  const { upstream, sluice, agent } = await start(() => {
    const now = Date.now();
    const at = Math.ceil(now / 1000) * 1000 + 2000;
    expectedWaitMs = at - now;
    return new Date(at).toUTCString();
  });
  const got = await send(agent, `${sluice.url}/api/x`);

  expect(got.status).toBe(200);
  expect(header(got, 'sluice-attempts')).toBe('2');
  expect(upstream.seen).toHaveLength(2);
  const [first, second] = upstream.seen.map((s) => s.at) as [number, number];
  expect(expectedWaitMs).toBeGreaterThan(2000);
  expect(expectedWaitMs).toBeLessThanOrEqual(3000);
  // Date.now() and performance.now() may disagree by a few milliseconds; a backoff instead of
  // the date (100 ms at most) or a date read as local time (hours) fails either bound.
  expect(second - first).toBeGreaterThanOrEqual(expectedWaitMs - 50);
  expect(second - first).toBeLessThan(expectedWaitMs + 1500);
});
