import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, problemOf, schedulerOf, send, waitFor, type Answer } from './support.js';

/**
 * A full queue refuses at once with 429 SLUICE_QUEUE_FULL and a Retry-After, instead of queuing
 * without bound. `maxSize` bounds the upstream, `maxPerKey` each key on its own.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  // Closing sluice answers what is still queued (503): the slow rate is never waited out.
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

/** Starts requests that will stay queued; their answers are not awaited. */
function background(requests: Promise<Answer>[]): void {
  for (const request of requests) request.catch(() => undefined);
}

function expectQueueFull(answer: Answer): void {
  expect(answer.status).toBe(429);
  expect(problemOf(answer)).toMatchObject({ status: 429, code: 'SLUICE_QUEUE_FULL' });
  const retryAfter = header(answer, 'retry-after') ?? '';
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  // Refused on arrival, not after waiting in the queue.
  expect(answer.doneAt - answer.sentAt).toBeLessThan(500);
}

it('refuses the 7th concurrent request when 1 is in flight and 5 are queued (maxSize 5)', async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 1/s
    queue: { maxSize: 5 }
`);
  agent = newAgent();
  const scheduler = schedulerOf(sluice);
  background(Array.from({ length: 6 }, (_, i) => send(agent as Agent, `${(sluice as RunningSluice).url}/api/${i}`)));
  await waitFor(() => scheduler.queued === 5 && upstream?.seen.length === 1, 5_000, 'one sent and five queued');

  const seventh = await send(agent, `${sluice.url}/api/6`);

  expectQueueFull(seventh);
  // The predicted wait of the 6th place at 1/s: about 5 s.
  expect(Number(header(seventh, 'retry-after'))).toBeGreaterThanOrEqual(4);
  expect(Number(header(seventh, 'retry-after'))).toBeLessThanOrEqual(7);
  expect(scheduler.queued).toBe(5);
  expect(upstream.seen).toHaveLength(1);
});

it("applies maxPerKey to each key's queue on its own", async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-key}"
        rate: 1/s
    queue: { maxSize: 100, maxPerKey: 3 }
`);
  agent = newAgent();
  const url = sluice.url;
  const client = agent;
  const scheduler = schedulerOf(sluice);
  const as = (key: string, i: number): Promise<Answer> => send(client, `${url}/api/${key}/${i}`, { headers: { 'x-key': key } });

  background([0, 1, 2, 3].map((i) => as('A', i)));
  await waitFor(() => scheduler.queued === 3, 5_000, "A's queue to fill");
  expectQueueFull(await as('A', 4));

  // B has its own queue: its first request goes at once, three more queue, the fifth is refused.
  const firstOfB = await as('B', 0);
  expect(firstOfB.status).toBe(200);
  background([1, 2, 3].map((i) => as('B', i)));
  await waitFor(() => scheduler.queued === 6, 5_000, "B's queue to fill");
  expectQueueFull(await as('B', 4));

  expect(scheduler.queued).toBe(6);
  expect(upstream.seen.map((s) => s.headers['x-key'])).toEqual(['A', 'B']);
});
