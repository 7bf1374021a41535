import { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { problemOf, sample, scrape, send } from '../io/support.js';
import { expectNoLeak, leakCheck } from './support.js';

/**
 * Upstream fault: the upstream accepts the request and never sends its response headers. After
 * `timeout` (200ms) per attempt, for each of its 2 attempts, the client gets 504
 * SLUICE_UPSTREAM_TIMEOUT; the slot is released, and 10 rounds of 10 concurrent requests leak no
 * descriptor, timer or other resource (the upstream's half-open requests included).
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start(() => undefined);
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    timeout: 200ms
    limits: [{ concurrency: 10 }]
    retry: { attempts: 2, backoff: { base: 1ms, max: 5ms } }
`);
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

it('answers 504 after every attempt timed out, releases the slot, leaks nothing', async () => {
  const statuses: number[] = [];
  const leaks = await leakCheck(
    async () => {
      const agent = new Agent({ connections: 10 });
      for (const answer of await Promise.all(Array.from({ length: 10 }, () => send(agent, `${sluice.url}/api/x`)))) {
        statuses.push(answer.status);
        expect(problemOf(answer)).toMatchObject({ code: 'SLUICE_UPSTREAM_TIMEOUT', status: 504 });
      }
      await agent.close();
    },
    { rounds: 10 },
  );
  expect(statuses).toEqual(Array.from({ length: 120 }, () => 504));
  expectNoLeak(leaks);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_upstream_attempts_total', { upstream: 'api', status: 'timeout' })).toBe(240);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'failed' })).toBe(120);
});
