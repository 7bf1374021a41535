import { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { problemOf, sample, scrape, send } from '../io/support.js';
import { closedPort, expectNoLeak, leakCheck } from './support.js';

/**
 * Upstream fault: connection refused. Every request gets 502 SLUICE_UPSTREAM_UNREACHABLE after
 * its attempts (connect errors are retried), its slot is released (`sluice_inflight` 0), and 20
 * rounds of 10 concurrent requests leave no file descriptor, timer or other resource behind.
 */

let sluice: RunningSluice;

beforeAll(async () => {
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: http://127.0.0.1:${await closedPort()}
    timeout: 1s
    limits: [{ concurrency: 4 }]
    retry: { attempts: 2, backoff: { base: 1ms, max: 5ms } }
`);
});

afterAll(async () => {
  await sluice?.close();
});

it('answers 502 after its attempts, releases the slot and leaks nothing', async () => {
  const answers: number[] = [];
  const leaks = await leakCheck(async () => {
    const agent = new Agent({ connections: 10 });
    const batch = await Promise.all(Array.from({ length: 10 }, () => send(agent, `${sluice.url}/api/x`)));
    for (const answer of batch) {
      answers.push(answer.status);
      expect(problemOf(answer)).toMatchObject({ code: 'SLUICE_UPSTREAM_UNREACHABLE', status: 502 });
      expect(problemOf(answer).detail).toContain('ECONNREFUSED');
    }
    await agent.close();
  });
  expect(answers).toEqual(Array.from({ length: (leaks.rounds + 2) * 10 }, () => 502));
  expectNoLeak(leaks);

  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_queue_depth', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'failed' })).toBe(answers.length);
  expect(sample(metrics, 'sluice_upstream_attempts_total', { upstream: 'api', status: 'error' })).toBe(answers.length * 2);
});
