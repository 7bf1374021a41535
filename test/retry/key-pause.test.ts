import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, send, sleep, waitFor, type Answer } from '../io/support.js';
import { answer, closeAll, gaps, seenFor } from './support.js';

/**
 * A 429 with `Retry-After: 1` pauses the whole key for a second: the request retries after each
 * pause, nothing else of that key reaches the upstream meanwhile (the upstream counts), and
 * another key keeps flowing through the same upstream.
 */

/** Timers may fire a millisecond early against performance.now(); the upstream stamps arrivals late, never early. */
const EARLY_MS = 20;

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

it('retries after each 1 s pause; the key sends nothing while paused, another key keeps flowing', async () => {
  let throttled = 0;
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (req.headers['x-account'] === 'a' && throttled < 3) {
      throttled++;
      return answer(res, { status: 429, headers: { 'retry-after': '1' }, body: 'slow down' });
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
        rate: 10/s
        concurrency: 2
`);
  agent = newAgent();
  const { url } = sluice;
  const client = agent;

  // Key b: one request after another for as long as key a is being retried.
  let keyADone = false;
  const keyB = (async () => {
    const answers: Answer[] = [];
    while (!keyADone) {
      answers.push(await send(client, `${url}/api/b/${answers.length}`, { headers: { 'x-account': 'b' } }));
      await sleep(20);
    }
    return answers;
  })();

  const first = send(client, `${url}/api/a/first`, { headers: { 'x-account': 'a' } });
  // Two more requests of key a arrive while it is paused, so there is something the pause holds back.
  await waitFor(() => seenFor(upstream as ScriptedUpstream, 'a').length === 1, 5_000, 'the first attempt');
  await sleep(50);
  const later = [1, 2].map((i) => send(client, `${url}/api/a/later-${i}`, { headers: { 'x-account': 'a' } }));
  const firstAnswer = await first;
  const laterAnswers = await Promise.all(later);
  keyADone = true;
  const bAnswers = await keyB;

  expect(firstAnswer.status).toBe(200);
  expect(header(firstAnswer, 'sluice-attempts')).toBe('4');
  // Three pauses of a second each (the bound above only catches a pause far too long).
  const elapsedMs = firstAnswer.doneAt - firstAnswer.sentAt;
  expect(elapsedMs).toBeGreaterThanOrEqual(2700);
  expect(elapsedMs).toBeLessThan(6000);
  expect(laterAnswers.map((a) => [a.status, header(a, 'sluice-attempts')])).toEqual([
    [200, '1'],
    [200, '1'],
  ]);

  // Key a at the upstream: the retried request four times (it keeps the head of its queue), then the two behind it.
  const a = seenFor(upstream, 'a');
  expect(a.map((s) => s.url)).toEqual(['/a/first', '/a/first', '/a/first', '/a/first', '/a/later-1', '/a/later-2']);
  const arrivals = a.map((s) => s.at);
  // Nothing of key a within a second of each 429: the requests queued behind waited too.
  for (const gap of gaps(arrivals.slice(0, 4))) expect(gap).toBeGreaterThanOrEqual(1000 - EARLY_MS);

  // Key b was answered throughout, and reached the upstream inside every pause of key a (about 9
  // times at 10/s; at least 2, as a busy machine may stall a pause's worth of them).
  expect(bAnswers.every((b) => b.status === 200 && header(b, 'sluice-attempts') === '1')).toBe(true);
  const b = seenFor(upstream, 'b').map((s) => s.at);
  for (let i = 0; i < 3; i++) {
    const [from, to] = [arrivals[i] as number, arrivals[i + 1] as number];
    expect(b.filter((t) => t > from && t < to).length, `key b arrivals during pause #${i + 1}`).toBeGreaterThanOrEqual(2);
  }
});
