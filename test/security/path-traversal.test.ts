import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { bodyOf, rawRoundTrip } from './support.js';

/**
 * A path never escapes its upstream's base path: `..` and `.` segments, raw or percent-encoded
 * (`%2e%2e`), delimited by encoded slashes (`%2f`) or backslashes (`\`, `%5c`), or followed by a
 * path parameter (`..;x`), are refused with 400 before anything is sent. Two upstreams share one
 * server under different base paths, so an escape would reach "another upstream's base path".
 * Requests go over a raw socket: HTTP clients resolve dot segments before sending.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: public
    prefix: /public
    target: ${upstream.url}/api/public
  - name: private
    prefix: /private
    target: ${upstream.url}/api/private
`);
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

async function get(path: string) {
  return rawRoundTrip(sluice.url, `GET ${path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n`);
}

it.each([
  '/public/../private/secret',
  '/public/x/../../private/secret',
  '/public/..',
  '/public/%2e%2e/private/secret',
  '/public/%2E%2E/private/secret',
  '/public/.%2e/private/secret',
  '/public/%2e./private/secret',
  '/public/..%2fprivate%2fsecret',
  '/public/..%2Fprivate',
  '/public/x%2f..%2f..%2fprivate',
  '/public/%2e%2e%2f%2e%2e%2fprivate',
  '/public/..\\private',
  '/public/..%5cprivate',
  '/public/x%5c..%5c..%5cprivate',
  '/public/..;/private',
  '/public/..%3b/private',
  '/public/./x',
  '/public/%2e/x',
  '/public/x%00/..',
])('refuses %s with 400 and sends nothing', async (path) => {
  const connection = await get(path);
  expect(connection.status, connection.text).toBe(400);
  expect(JSON.parse(bodyOf(connection.text))).toMatchObject({ code: 'SLUICE_BAD_REQUEST' });
  expect(upstream.seen).toHaveLength(0);
});

it('forwards look-alikes unchanged, under the base path', async () => {
  for (const [path, expected] of [
    ['/public/.../x', '/api/public/.../x'],
    ['/public/..x', '/api/public/..x'],
    ['/public/a%2fb', '/api/public/a%2fb'],
    ['/public/%252e%252e/x', '/api/public/%252e%252e/x'],
    ['/public/x?next=../../private', '/api/public/x?next=../../private'],
  ] as const) {
    upstream.seen.length = 0;
    const connection = await get(path);
    expect(connection.status, `${path}: ${connection.text}`).toBe(200);
    expect(upstream.seen.map((r) => r.url)).toEqual([expected]);
  }
});

/**
 * What a server behind sluice could make of a path: percent-decoding of `.`, `/` and `\`, `\` read
 * as `/`, path parameters dropped, then dot segments resolved (RFC 3986 §5.2.4).
 */
function resolvedByALenientServer(path: string): string {
  const decoded = path.split('?')[0]!.replace(/%2e/gi, '.').replace(/%2f/gi, '/').replace(/%5c/gi, '/').replace(/\\/g, '/');
  const out: string[] = [];
  for (const raw of decoded.split('/').slice(1)) {
    const segment = raw.split(';')[0]!;
    if (segment === '..') out.pop();
    else if (segment !== '.') out.push(segment);
  }
  return `/${out.join('/')}`;
}

it('never lets a generated path reach outside /api/public (property, 150 paths)', async () => {
  const segment = fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2E.',
    '.%2e',
    '%2e',
    'x',
    'private',
    '',
    '..;v=1',
    'a%2f..',
    '%2f..%2f',
    '..%5c',
    '\\..',
    'ok.txt',
    '%00',
  );
  await fc.assert(
    fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 6 }), async (segments) => {
      const before = upstream.seen.length;
      const connection = await get(`/public/${segments.join('/')}`);
      const received = upstream.seen.slice(before).map((r) => r.url);
      if (connection.status !== 200) {
        expect(connection.status).toBe(400);
        expect(received).toEqual([]);
        return;
      }
      expect(received).toHaveLength(1);
      const resolved = resolvedByALenientServer(received[0]!);
      expect(resolved === '/api/public' || resolved.startsWith('/api/public/'), `${received[0]!} resolves to ${resolved}`).toBe(true);
    }),
    { numRuns: 150 },
  );
});
