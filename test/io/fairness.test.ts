import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, schedulerOf, send, waitFor } from './support.js';

/**
 * Keys that share a rule are served in turn: one account's backlog of 60 under a global 10/s (six
 * seconds of work) does not make another account's single request wait behind it.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  // Closing sluice answers the heavy account's remaining backlog (503): no need to wait it out.
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

it("serves a light account's request within a few releases of a heavy account's backlog", async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 10/s
      - key: "{header.x-account}"
        concurrency: 1000
`);
  agent = newAgent();
  const scheduler = schedulerOf(sluice);
  const heavy = Array.from({ length: 60 }, (_, i) => send(agent as Agent, `${(sluice as RunningSluice).url}/api/h/${i}`, { headers: { 'x-account': 'H' } }));
  for (const answer of heavy) answer.catch(() => undefined);
  await waitFor(() => scheduler.queued >= 55, 5_000, "the heavy account's backlog");

  const releasedBefore = upstream.seen.length;
  const light = await send(agent, `${sluice.url}/api/l/0`, { headers: { 'x-account': 'L' } });

  expect(light.status).toBe(200);
  const position = upstream.seen.findIndex((s) => s.headers['x-account'] === 'L');
  expect(position).toBeGreaterThanOrEqual(releasedBefore);
  // Round robin: the light request is one of the next few releases, not the 56th.
  expect(position - releasedBefore).toBeLessThanOrEqual(3);
  expect(light.doneAt - light.sentAt).toBeLessThan(450);
  // The heavy backlog is still there: the light request did not just wait for it to drain.
  expect(scheduler.queued).toBeGreaterThan(40);
});
