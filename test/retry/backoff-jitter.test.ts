import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, send } from '../io/support.js';
import { answer, closeAll, gaps } from './support.js';

/**
 * A 503 without Retry-After on a GET is retried after full-jitter backoff: a delay drawn from
 * [0, min(max, base * 2^n)) for the n-th retry. The exact values are unit-tested with injected
 * randomness (test/core/backoff.test.ts); here the delays an upstream sees stay within the bounds.
 */

/**
 * A delay measured between two arrivals at the upstream runs over by what a busy machine adds (the
 * event loop of a 2-core machine running other suites stalls for a second now and then). The
 * bounds are therefore wide, and the delays long enough that a wrong ceiling still shows.
 */
const LATE_MS = 600;

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

async function start(
  random?: () => number,
  backoff = '{ base: 500ms, max: 1250ms }',
): Promise<{ upstream: ScriptedUpstream; sluice: RunningSluice; agent: Agent }> {
  // Each request is answered 503 three times, then 200.
  const answered = new Map<string, number>();
  upstream = await ScriptedUpstream.start((req, res, index) => {
    const n = answered.get(req.url) ?? 0;
    answered.set(req.url, n + 1);
    if (n < 3) return answer(res, { status: 503, body: 'busy' });
    return echo(req, res, index);
  });
  sluice = await startSluice(
    `
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    retry:
      attempts: 4
      on: [503]
      backoff: ${backoff}
`,
    random === undefined ? {} : { random },
  );
  agent = newAgent();
  return { upstream, sluice, agent };
}

it('retries a GET after 503 within [0, 500 ms), [0, 1000 ms), then [0, 1250 ms) (capped by max)', async () => {
  const { upstream, sluice, agent } = await start();
  const urls = Array.from({ length: 8 }, (_, i) => `/r/${i}`);
  const answers = await Promise.all(urls.map((u) => send(agent, `${sluice.url}/api${u}`)));

  expect(answers.map((a) => [a.status, header(a, 'sluice-attempts')])).toEqual(Array(8).fill([200, '4']));
  for (const u of urls) {
    const delays = gaps(upstream.seen.filter((s) => s.url === u).map((s) => s.at));
    expect(delays).toHaveLength(3);
    [500, 1000, 1250].forEach((boundMs, i) => expect(delays[i]).toBeLessThan(boundMs + LATE_MS));
  }
});

/**
 * One GET through a sluice whose backoff draws from `random`: four attempts, and the three delays
 * the upstream saw between them, each at least `expectedMs` (less 5 ms of stamping) and later only
 * by what a busy machine adds.
 */
async function expectDelays(random: () => number, backoff: string | undefined, expectedMs: readonly number[]): Promise<void> {
  const { upstream, sluice, agent } = await start(random, backoff);
  const got = await send(agent, `${sluice.url}/api/r`);

  expect(got.status).toBe(200);
  expect(header(got, 'sluice-attempts')).toBe('4');
  const delays = gaps(upstream.seen.map((s) => s.at));
  expect(delays).toHaveLength(3);
  expectedMs.forEach((ms, i) => {
    expect(delays[i]).toBeGreaterThanOrEqual(ms - 5);
    expect(delays[i]).toBeLessThan(ms + LATE_MS);
  });
}

it('draws each delay from the injected randomness: 0.99 of 500, 1000, then 1250 ms', async () => {
  // floor(0.99 * min(1250, 500 * 2^n)): 495, 990 and 1237 ms (not 1980: the max caps it).
  await expectDelays(() => 0.99, undefined, [495, 990, 1237]);
});

it('draws each delay anew: randomness 0, 0.99, 0 gives 0, 1980 and 0 ms, not the ceilings of 1000, 2000 and 2500', async () => {
  // A backoff that ignored its randomness (no jitter) would wait the ceilings; the first and the
  // third delay tell the two apart by more than a busy machine adds.
  const draws = [0, 0.99, 0];
  let draw = 0;
  await expectDelays(() => draws[draw++ % draws.length] as number, '{ base: 1000ms, max: 2500ms }', [0, 1980, 0]);
});
