import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { bodyOf, Decoy, rawRoundTrip } from './support.js';

/**
 * No open proxy: a request target in absolute form (`GET http://host/ HTTP/1.1`, what a client
 * sends to a forward proxy) never makes sluice contact that host, nor the configured upstream:
 * sluice routes by path only and refuses every target that is not a path with 400. Checked with a prefix
 * and with an upstream mounted at `/`, over a raw socket (HTTP clients do not send this form).
 */

let upstream: ScriptedUpstream;
let decoy: Decoy;
let prefixed: RunningSluice;
let rooted: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  decoy = await Decoy.start();
  prefixed = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}/base
`);
  rooted = await startSluice(`
upstreams:
  - name: root
    prefix: /
    target: ${upstream.url}/base
`);
});

afterAll(async () => {
  await prefixed?.close();
  await rooted?.close();
  await upstream?.close();
  await decoy?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

function targets(sluiceUrl: string): string[] {
  return [
    `http://${decoy.host}/`,
    `http://${decoy.host}/api/x`,
    `http://${decoy.host}/base/x`,
    `https://${decoy.host}/api/x`,
    'http://evil.example/api/x',
    'http://169.254.169.254/latest/meta-data/',
    `${sluiceUrl}/api/x`, // absolute form naming sluice itself: refused all the same
    `HTTP://${decoy.host}/api/x`,
    `http:/${decoy.host}/api/x`, // one slash
  ];
}

for (const [name, through] of [
  ['prefix /api', () => prefixed],
  ['prefix /', () => rooted],
] as const) {
  it(`refuses absolute-form targets and contacts no one (${name})`, async () => {
    for (const target of targets(through().url)) {
      const connection = await rawRoundTrip(through().url, `GET ${target} HTTP/1.1\r\nHost: ${decoy.host}\r\nConnection: close\r\n\r\n`);
      expect(connection.status, `${target}: ${connection.text}`).toBe(400);
      // sluice's own refusal, or Node's parser's for targets it cannot parse at all (`http:/x`).
      if (/content-type: application\/problem\+json/i.test(connection.text)) {
        expect(JSON.parse(bodyOf(connection.text))).toMatchObject({ code: 'SLUICE_BAD_REQUEST', detail: 'the request target must be a path (origin-form)' });
      }
    }
    expect(upstream.seen.map((r) => r.url)).toEqual([]);
    expect(decoy.connections).toBe(0);
  });
}

it('still serves the same paths in origin form (the refusals above are about the form)', async () => {
  const connection = await rawRoundTrip(prefixed.url, `GET /api/x HTTP/1.1\r\nHost: ${decoy.host}\r\nConnection: close\r\n\r\n`);
  expect(connection.status).toBe(200);
  expect(upstream.seen.map((r) => r.url)).toEqual(['/base/x']);
  expect(decoy.connections).toBe(0);
});
