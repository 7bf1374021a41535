import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { delayed, ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, send } from './support.js';

/** A concurrency cap is used in full and never passed, counted by the upstream itself. */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await agent?.close();
  await sluice?.close();
  await upstream?.close();
});

it('keeps exactly 3 requests in flight at an upstream that takes 150 ms', async () => {
  upstream = await ScriptedUpstream.start(delayed(150));
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - concurrency: 3
`);
  agent = newAgent();
  const startedAt = performance.now();
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(agent as Agent, `${(sluice as RunningSluice).url}/api/${i}`)));
  const elapsedMs = performance.now() - startedAt;

  expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
  expect(upstream.seen).toHaveLength(20);
  expect(upstream.maxInFlight).toBe(3);
  // 20 requests 3 at a time are 7 rounds of 150 ms (the bound above only catches a broken cap).
  expect(elapsedMs).toBeGreaterThanOrEqual(7 * 150 - 20);
  expect(elapsedMs).toBeLessThan(3000);
});
