import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { sample, scrape } from '../io/support.js';
import { expectNoLeak, leakCheck } from './support.js';

/**
 * Upstream fault: the response body stalls mid-stream. After `bodyTimeout` (300ms) without a
 * chunk, sluice gives up on the upstream and cuts the client's response (which had started: the
 * client has the status and the first part, then an error, never a silently short body). The slot
 * is released, and 8 rounds of 10 concurrent requests leak no descriptor, timer or other resource.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 10_000 });
    res.write('x'.repeat(1_000)); // and nothing more, ever
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    bodyTimeout: 300ms
    limits: [{ concurrency: 10 }]
`);
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

it('cuts a stalled response after bodyTimeout, releases the slot, leaks nothing', async () => {
  let cut = 0;
  const leaks = await leakCheck(
    async () => {
      const agent = new Agent({ connections: 10 });
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const started = performance.now();
          const response = await request(`${sluice.url}/api/x`, { dispatcher: agent });
          expect(response.statusCode).toBe(200);
          await expect(response.body.text()).rejects.toThrow();
          expect(performance.now() - started).toBeLessThan(3_000);
          cut++;
        }),
      );
      await agent.close();
    },
    { rounds: 8 },
  );
  expect(cut).toBe(100);
  expectNoLeak(leaks);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'failed' })).toBe(100);
});
