import type { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, problemOf, sample, send } from './support.js';

/**
 * The admin endpoints live on their own port; the client port serves only proxied paths, so
 * /metrics there is a path like any other (404 SLUICE_NO_ROUTE without an upstream at /).
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 100/s
`);
  agent = newAgent();
});

afterAll(async () => {
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

it('answers /healthz and /readyz with 200 on the admin port', async () => {
  const health = await send(agent, `${sluice.adminUrl}/healthz`);
  expect(health.status).toBe(200);
  expect(JSON.parse(health.text)).toEqual({ status: 'ok' });
  const ready = await send(agent, `${sluice.adminUrl}/readyz`);
  expect(ready.status).toBe(200);
  expect(JSON.parse(ready.text)).toMatchObject({ status: 'ready' });
});

it("serves sluice's metrics and the process metrics as Prometheus text", async () => {
  const proxied = await send(agent, `${sluice.url}/api/thing`);
  expect(proxied.status).toBe(200);

  const answer = await send(agent, `${sluice.adminUrl}/metrics`);
  expect(answer.status).toBe(200);
  expect(header(answer, 'content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = answer.text;
  for (const [name, type] of [
    ['sluice_requests_total', 'counter'],
    ['sluice_upstream_attempts_total', 'counter'],
    ['sluice_queue_depth', 'gauge'],
    ['sluice_inflight', 'gauge'],
    ['sluice_queue_wait_seconds', 'histogram'],
  ]) {
    expect(text, name).toContain(`# TYPE ${name} ${type}`);
  }
  // The one request is counted in each of them.
  expect(sample(text, 'sluice_requests_total', { upstream: 'api', outcome: 'ok' })).toBe(1);
  expect(sample(text, 'sluice_upstream_attempts_total', { upstream: 'api', status: '200' })).toBe(1);
  expect(sample(text, 'sluice_queue_depth', { upstream: 'api' })).toBe(0);
  expect(sample(text, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(text, 'sluice_queue_wait_seconds_count', { upstream: 'api' })).toBe(1);
  // prom-client's default process metrics, from the app's own registry.
  expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
  expect(text).toMatch(/^process_start_time_seconds \d/m);
});

it('does not serve the admin endpoints on the client port', async () => {
  const forwardedBefore = upstream.seen.length;
  for (const path of ['/metrics', '/healthz', '/readyz', '/state']) {
    const answer = await send(agent, `${sluice.url}${path}`);
    expect(answer.status, path).toBe(404);
    expect(problemOf(answer).code, path).toBe('SLUICE_NO_ROUTE');
    expect(answer.text).not.toContain('sluice_requests_total');
  }
  expect(upstream.seen).toHaveLength(forwardedBefore);
});
