import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, problemOf, schedulerOf, send, sleep, waitFor } from '../io/support.js';
import { answer, closeAll, seenFor } from './support.js';

/**
 * A Retry-After days or a year away (a bug or a hostile upstream) pauses the key for at most
 * `pacing.maxPause` (2 s here), not a year. A retry whose wait does not fit in the request's
 * budget is not made: the client gets the upstream's 429 at once.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

const A_YEAR_MS = 365 * 24 * 3600 * 1000;

async function start(retryAfter: string, extra = ''): Promise<{ upstream: ScriptedUpstream; sluice: RunningSluice; agent: Agent }> {
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (index === 0) return answer(res, { status: 429, headers: { 'retry-after': retryAfter }, body: 'come back next year' });
    return echo(req, res, index);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-account}"
        rate: 10/s
    pacing:
      maxPause: 2s
${extra}`);
  agent = newAgent();
  return { upstream, sluice, agent };
}

it.each([
  ['999999 seconds', () => '999999'],
  ['an HTTP-date a year away', () => new Date(Date.now() + A_YEAR_MS).toUTCString()],
])('pauses the key for pacing.maxPause, not %s', async (_label, retryAfter) => {
  const { upstream, sluice, agent } = await start(retryAfter());
  const scheduler = schedulerOf(sluice);

  const first = send(agent, `${sluice.url}/api/first`, { headers: { 'x-account': 'a' } });
  await waitFor(() => upstream.seen.length === 1, 5_000, 'the first attempt');
  await sleep(50);
  expect(scheduler.gateSnapshot(0, 'a')?.pausedForMs).toBeGreaterThan(1500);
  expect(scheduler.gateSnapshot(0, 'a')?.pausedForMs).toBeLessThanOrEqual(2000);
  const second = send(agent, `${sluice.url}/api/second`, { headers: { 'x-account': 'a' } });
  const answers = await Promise.all([first, second]);

  expect(answers.map((a) => [a.status, header(a, 'sluice-attempts')])).toEqual([
    [200, '2'],
    [200, '1'],
  ]);
  const seen = seenFor(upstream, 'a');
  expect(seen.map((s) => s.url)).toEqual(['/first', '/first', '/second']);
  const [throttledAt, resumedAt] = seen.map((s) => s.at) as [number, number];
  expect(resumedAt - throttledAt).toBeGreaterThanOrEqual(2000 - 20);
  expect(resumedAt - throttledAt).toBeLessThan(3000);
});

it('passes the 429 through at once when even the capped wait does not fit the budget', async () => {
  // The budget: queue.maxWait 500 ms + 3 attempts x 300 ms; after the first attempt, ~1.1 s are left
  // for waiting, less than the 2 s pause.
  const yearAway = new Date(Date.now() + A_YEAR_MS).toUTCString();
  const { upstream, sluice, agent } = await start(yearAway, '    timeout: 300ms\n    queue: { maxWait: 500ms }\n    retry: { attempts: 3 }\n');

  const got = await send(agent, `${sluice.url}/api/first`, { headers: { 'x-account': 'a' } });

  expect(got.status).toBe(429);
  expect(got.text).toBe('come back next year');
  expect(header(got, 'retry-after')).toBe(yearAway);
  expect(header(got, 'sluice-attempts')).toBe('1');
  expect(got.doneAt - got.sentAt).toBeLessThan(1000);
  const throttledAt = (upstream.seen[0] as { at: number }).at;

  // The key is paused meanwhile, for the capped 2 s: a request now is refused at once, told to come
  // back in about a second and a half (2 s less the 500 ms it may wait), not in a year.
  const early = await send(agent, `${sluice.url}/api/early`, { headers: { 'x-account': 'a' } });
  expect(early.status).toBe(429);
  expect(problemOf(early).code).toBe('SLUICE_QUEUE_TIMEOUT');
  expect(Number(header(early, 'retry-after'))).toBeLessThanOrEqual(2);

  // ...and after the 2 s, the key serves again.
  await sleep(Math.max(0, throttledAt + 2100 - performance.now()));
  const later = await send(agent, `${sluice.url}/api/later`, { headers: { 'x-account': 'a' } });
  expect(later.status).toBe(200);
  expect(header(later, 'sluice-attempts')).toBe('1');
  expect(upstream.seen.map((s) => s.url)).toEqual(['/first', '/later']);
});
