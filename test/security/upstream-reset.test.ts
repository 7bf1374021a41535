import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { problemOf, sample, scrape, send } from '../io/support.js';
import { expectNoLeak, leakCheck } from './support.js';

/**
 * Upstream fault: the connection is reset. Before the response: 502 SLUICE_UPSTREAM_UNREACHABLE
 * (a reset after the request was sent is not retried by default). In the middle of the response
 * body: the client has the status and part of the body, then its connection is cut, so it can
 * tell the answer is incomplete; sluice counts it `failed`. Either way the slot is released and 20
 * rounds of 10 concurrent requests leak no descriptor, timer or other resource.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start((req, res) => {
    if (req.url.includes('before-headers')) return void res.socket?.destroy();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 10_000 });
    res.write('x'.repeat(1_000));
    setTimeout(() => res.socket?.destroy(), 20);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits: [{ concurrency: 4 }]
`);
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

it('answers 502 to a reset before the response, releases the slot, leaks nothing', async () => {
  const statuses: number[] = [];
  const leaks = await leakCheck(async () => {
    const agent = new Agent({ connections: 10 });
    for (const answer of await Promise.all(Array.from({ length: 10 }, () => send(agent, `${sluice.url}/api/before-headers`)))) {
      statuses.push(answer.status);
      expect(problemOf(answer)).toMatchObject({ code: 'SLUICE_UPSTREAM_UNREACHABLE' });
    }
    await agent.close();
  });
  expect(new Set(statuses)).toEqual(new Set([502]));
  expectNoLeak(leaks);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
});

it('cuts the client off when the upstream resets mid-body, releases the slot, leaks nothing', async () => {
  let cut = 0;
  const leaks = await leakCheck(async () => {
    const agent = new Agent({ connections: 10 });
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const response = await request(`${sluice.url}/api/mid-body`, { dispatcher: agent });
        expect(response.statusCode).toBe(200);
        await expect(response.body.text()).rejects.toThrow();
        cut++;
      }),
    );
    await agent.close();
  });
  expect(cut).toBe(220);
  expectNoLeak(leaks);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'failed' })).toBe(220 * 2);
});
