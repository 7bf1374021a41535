import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, problemOf, schedulerOf, send, waitFor, type Answer } from '../io/support.js';

/**
 * Deadline propagation: a client shortens its own wait with `Sluice-Max-Wait` (any duration, e.g.
 * `1s`, `250ms`). A request whose predicted wait is longer is refused at once with 429
 * SLUICE_QUEUE_TIMEOUT and the predicted Retry-After, not after waiting; a value that is not a
 * duration is a 400.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

it('refuses at once a request whose predicted wait (3 s) is longer than its Sluice-Max-Wait (1 s); 400 for a malformed one', async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /
    target: ${upstream.url}
    limits:
      - rate: 1/s
    queue: { maxWait: 30s }
`);
  agent = newAgent();
  const client = agent;
  const url = sluice.url;
  const call = (tag: string, maxWait?: string): Promise<Answer> =>
    send(client, `${url}/items/${tag}`, maxWait === undefined ? {} : { headers: { 'sluice-max-wait': maxWait } });

  // One goes at once, two wait (due at 1 s and 2 s): a fourth is predicted at 3 s.
  const queued = [call('a'), call('b'), call('c')];
  await waitFor(() => schedulerOf(sluice as RunningSluice).queued === 2, 5_000, 'two queued');

  const hurried = await call('hurried', '1s');
  expect(hurried.status).toBe(429);
  expect(problemOf(hurried)).toMatchObject({ status: 429, code: 'SLUICE_QUEUE_TIMEOUT' });
  expect(hurried.doneAt - hurried.sentAt).toBeLessThan(300);
  // Retry-After: the predicted wait beyond what the client would wait, in whole seconds (about 2).
  const retryAfter = Number(header(hurried, 'retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(3);

  for (const malformed of ['soon', '-1s', '1 fortnight', '']) {
    const bad = await call('malformed', malformed);
    expect(bad.status, `Sluice-Max-Wait: ${JSON.stringify(malformed)}`).toBe(400);
    expect(problemOf(bad)).toMatchObject({ status: 400, code: 'SLUICE_BAD_REQUEST' });
  }

  // A client willing to wait longer than predicted is queued and served.
  const patient = call('patient', '10s');
  expect((await Promise.all(queued)).map((a) => a.status)).toEqual([200, 200, 200]);
  expect((await patient).status).toBe(200);
  // Neither the refused nor the malformed requests reached the upstream.
  expect(upstream.seen.map((r) => r.url)).toEqual(['/items/a', '/items/b', '/items/c', '/items/patient']);
}, 15_000);
