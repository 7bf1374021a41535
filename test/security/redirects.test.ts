import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, send } from '../io/support.js';
import { Decoy } from './support.js';

/**
 * Redirects from the upstream are relayed to the client, never followed: a 3xx with a Location
 * elsewhere (another host, a scheme-relative `//host`, another upstream's base path) reaches the
 * client as it was sent, and nothing but the configured upstream is contacted, once per request.
 */

let upstream: ScriptedUpstream;
let decoy: Decoy;
let sluice: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  decoy = await Decoy.start();
  upstream = await ScriptedUpstream.start((req, res) => {
    const status = Number(/\/(\d{3})\//.exec(req.url)?.[1] ?? 302);
    const location = decodeURIComponent(req.url.split('to=')[1] ?? '');
    res.writeHead(status, { location, 'content-length': 0 });
    res.end();
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}/public
    setHeaders: { authorization: "Bearer never-leaves-the-upstream" }
    retry: { attempts: 3 }
`);
  agent = newAgent();
});

afterAll(async () => {
  await agent?.close();
  await sluice?.close();
  await upstream?.close();
  await decoy?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

it.each([301, 302, 303, 307, 308])('relays a %i to another host without following it', async (status) => {
  for (const location of [`http://${decoy.host}/steal`, `//${decoy.host}/steal`, `https://${decoy.host}/steal`, '/private/admin', `${sluice.url}/api/loop`]) {
    upstream.seen.length = 0;
    const answer = await send(agent, `${sluice.url}/api/${status}/x?to=${encodeURIComponent(location)}`, {
      method: status === 303 ? 'POST' : 'GET',
      body: status === 303 ? 'payload' : undefined,
    });
    expect(answer.status).toBe(status);
    expect(header(answer, 'location')).toBe(location);
    expect(header(answer, 'sluice-attempts')).toBe('1');
    expect(upstream.seen).toHaveLength(1);
  }
  expect(decoy.connections).toBe(0);
  expect(decoy.received).toBe('');
});
