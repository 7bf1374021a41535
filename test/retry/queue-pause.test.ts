import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, maxInWindow, newAgent, send, waitFor } from '../io/support.js';
import { answer, closeAll } from './support.js';

/**
 * One 429 with `Retry-After: 2` stops a whole queue of its key: the upstream sees one throttled
 * request, then nothing of that key for two seconds, then the queue again at the configured rate
 * (the retried request first), instead of every queued request collecting a 429 of its own.
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

it('holds 50 queued requests of a key for the 2 s of one 429, then resumes at 20/s', async () => {
  let throttled = 0;
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (index === 0) {
      throttled++;
      return answer(res, { status: 429, headers: { 'retry-after': '2' }, body: 'slow down' });
    }
    return echo(req, res, index);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-account}"
        rate: 20/s
`);
  agent = newAgent();
  const { url } = sluice;
  const client = agent;
  let received = 0;
  sluice.app.proxy.server.on('request', () => received++);

  const first = send(client, `${url}/api/0`, { headers: { 'x-account': 'a' } });
  await waitFor(() => upstream?.seen.length === 1, 5_000, 'the first request');
  const rest = Array.from({ length: 49 }, (_, i) => send(client, `${url}/api/${i + 1}`, { headers: { 'x-account': 'a' } }));
  // All 49 reached sluice (and wait behind the paused key).
  await waitFor(() => received === 50, 5_000, 'the requests to reach sluice');
  const answers = [await first, ...(await Promise.all(rest))];

  expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
  expect(header(answers[0]!, 'sluice-attempts')).toBe('2');
  expect(answers.slice(1).every((a) => header(a, 'sluice-attempts') === '1')).toBe(true);
  // One 429 in all: the queue did not collect one each.
  expect(throttled).toBe(1);
  expect(upstream.seen).toHaveLength(51);

  const arrivals = upstream.seen.map((s) => s.at);
  const throttledAt = arrivals[0] as number;
  const resumed = arrivals.slice(1);
  // Nothing of the key for two seconds; the retried request goes first when the pause ends.
  expect((resumed[0] as number) - throttledAt).toBeGreaterThanOrEqual(2000 - 20);
  expect((resumed[0] as number) - throttledAt).toBeLessThan(3500);
  expect(upstream.seen[1]?.url).toBe('/0');
  expect(upstream.seen.slice(2).map((s) => s.url)).toEqual(Array.from({ length: 49 }, (_, i) => `/${i + 1}`));
  // Then the configured rate again: 20/s less the 0.75% margin is 50.4 ms apart on average, and
  // never more than 20 in a second, no burst at the end of the pause. A busy machine only delays
  // releases (sluice re-bases on late writes), so the bound above is loose: it catches a queue
  // released at half the rate or slower; how close to the rate sluice gets is measured in load/.
  const meanGapMs = ((resumed[49] as number) - (resumed[0] as number)) / 49;
  expect(meanGapMs).toBeGreaterThanOrEqual(49);
  expect(meanGapMs).toBeLessThan(100);
  expect(maxInWindow(resumed, 1000 - JITTER_MS)).toBeLessThanOrEqual(20);
});
