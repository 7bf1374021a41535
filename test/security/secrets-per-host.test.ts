import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';
import { header, send } from '../io/support.js';
import { Decoy } from './support.js';

/**
 * An upstream's `setHeaders` go to that upstream's target only: never to another upstream (with
 * its own credentials or none), whatever order the requests come in on one client connection, and
 * never to the host a redirect names (sluice does not follow redirects, so it cannot carry the
 * credential there).
 */

const TOKEN_A = 'tok-a-19c2';
const TOKEN_C = 'tok-c-7e0b';

let a: ScriptedUpstream;
let b: ScriptedUpstream;
let c: ScriptedUpstream;
let decoy: Decoy;
let sluice: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  decoy = await Decoy.start();
  a = await ScriptedUpstream.start((req, res) => {
    if (req.url.includes('redirect')) {
      res.writeHead(307, { location: `http://${decoy.host}/collect`, 'content-length': 0 });
      return void res.end();
    }
    res.writeHead(200, { 'content-length': 1 });
    res.end('a');
  });
  b = await ScriptedUpstream.start();
  c = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: a
    prefix: /a
    target: ${a.url}
    setHeaders: { Authorization: "Bearer ${TOKEN_A}", X-Account: account-a }
  - name: b
    prefix: /b
    target: ${b.url}
  - name: c
    prefix: /c
    target: ${c.url}
    setHeaders: { X-Api-Key: "${TOKEN_C}" }
  - name: same-host
    prefix: /same-host
    target: ${a.url}/other-base
`);
  // One connection to sluice for everything: nothing may stick to a connection.
  agent = new Agent({ connections: 1, pipelining: 1 });
});

afterAll(async () => {
  await agent?.close();
  await sluice?.close();
  for (const upstream of [a, b, c]) await upstream?.close();
  await decoy?.close();
});

beforeEach(() => {
  for (const upstream of [a, b, c]) upstream.seen.length = 0;
});

function headerText(seen: readonly SeenRequest[]): string {
  return JSON.stringify(seen.map((r) => r.rawHeaders));
}

it('sends each upstream its own headers only, interleaved on one client connection', async () => {
  for (let round = 0; round < 5; round++) {
    for (const prefix of ['/a', '/b', '/c', '/same-host']) {
      const answer = await send(agent, `${sluice.url}${prefix}/x`);
      expect(answer.status).toBe(200);
    }
  }
  expect(a.seen).toHaveLength(10);
  const [toA, toSameHost] = [a.seen.filter((r) => r.url === '/x'), a.seen.filter((r) => r.url.startsWith('/other-base'))];
  expect(toA.every((r) => r.headers.authorization === `Bearer ${TOKEN_A}` && r.headers['x-api-key'] === undefined)).toBe(true);
  // Another upstream on the same host and port: configured without credentials, gets none.
  expect(toSameHost).toHaveLength(5);
  expect(headerText(toSameHost)).not.toContain(TOKEN_A);
  expect(headerText(toSameHost)).not.toContain('account-a');
  expect(b.seen).toHaveLength(5);
  expect(headerText(b.seen)).not.toContain(TOKEN_A);
  expect(headerText(b.seen)).not.toContain(TOKEN_C);
  expect(headerText(b.seen)).not.toContain('account-a');
  expect(c.seen).toHaveLength(5);
  expect(c.seen.every((r) => r.headers['x-api-key'] === TOKEN_C)).toBe(true);
  expect(headerText(c.seen)).not.toContain(TOKEN_A);
});

it('relays a redirect to another host without taking the credential there', async () => {
  const answer = await send(agent, `${sluice.url}/a/redirect`);
  expect(answer.status).toBe(307);
  expect(header(answer, 'location')).toBe(`http://${decoy.host}/collect`);
  expect(a.seen).toHaveLength(1);
  expect(decoy.connections).toBe(0);
  expect(decoy.received).not.toContain(TOKEN_A);
});
