import type { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, problemOf, send } from '../io/support.js';

/**
 * The admin surface is its own listener: the client port never answers /metrics, /state,
 * /healthz or /readyz itself (without an upstream at `/` they are 404 SLUICE_NO_ROUTE; with one,
 * they are that upstream's paths), and the admin port never proxies.
 */

const ADMIN_PATHS = ['/metrics', '/state', '/healthz', '/readyz'];

let upstream: ScriptedUpstream;
let prefixed: RunningSluice;
let rooted: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  prefixed = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
`);
  rooted = await startSluice(`
upstreams:
  - name: root
    prefix: /
    target: ${upstream.url}
`);
  agent = newAgent();
});

afterAll(async () => {
  await agent?.close();
  await prefixed?.close();
  await rooted?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

it('serves the admin endpoints on the admin port', async () => {
  for (const path of ADMIN_PATHS) expect((await send(agent, `${prefixed.adminUrl}${path}`)).status, path).toBe(200);
  expect((await send(agent, `${prefixed.adminUrl}/metrics`)).text).toContain('sluice_requests_total');
});

it('answers the admin paths on the client port with 404 SLUICE_NO_ROUTE', async () => {
  for (const path of ADMIN_PATHS) {
    const answer = await send(agent, `${prefixed.url}${path}`);
    expect(answer.status, path).toBe(404);
    expect(problemOf(answer).code).toBe('SLUICE_NO_ROUTE');
    expect(answer.text).not.toContain('sluice_requests_total');
  }
  expect(upstream.seen).toHaveLength(0);
});

it('forwards the admin paths on the client port to an upstream mounted at /', async () => {
  for (const path of ADMIN_PATHS) {
    const answer = await send(agent, `${rooted.url}${path}`);
    expect(answer.status, path).toBe(200);
    expect(header(answer, 'sluice-attempts')).toBe('1');
    expect(JSON.parse(answer.text)).toMatchObject({ url: path });
  }
  expect(upstream.seen.map((r) => r.url)).toEqual(ADMIN_PATHS);
});

it('never proxies on the admin port', async () => {
  for (const path of ['/api/x', '/x', '/']) {
    const answer = await send(agent, `${rooted.adminUrl}${path}`);
    expect(answer.status, path).toBe(404);
    expect(header(answer, 'sluice-attempts')).toBeUndefined();
  }
  expect(upstream.seen).toHaveLength(0);
});
