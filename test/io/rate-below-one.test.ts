import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, send } from './support.js';

/** A rate below one per second (30/m: one every 2 s) is paced as such, not rounded to 1/s or 0. */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await agent?.close();
  await sluice?.close();
  await upstream?.close();
});

it('sends the second of two requests about 2 s after the first at 30/m', async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 30/m
`);
  agent = newAgent();
  const answers = await Promise.all([send(agent, `${sluice.url}/api/1`), send(agent, `${sluice.url}/api/2`)]);

  expect(answers.map((a) => a.status)).toEqual([200, 200]);
  expect(upstream.seen).toHaveLength(2);
  const [first, second] = upstream.seen.map((s) => s.at) as [number, number];
  expect(second - first).toBeGreaterThan(1800);
  expect(second - first).toBeLessThan(2600);
  // The first went at once: a full bucket does not wait.
  expect(Math.min(...answers.map((a) => Number(a.headers['sluice-queue-ms'])))).toBeLessThan(500);
});
