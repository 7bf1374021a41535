import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { rawRoundTrip } from './support.js';

/**
 * A header section larger than `listen.maxHeaderSize` (here 4kb), whether one huge header or many
 * small ones, gets 431 and the connection is closed; nothing reaches the upstream. Just under the
 * limit is served.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
listen: { host: 127.0.0.1, port: 0, maxHeaderSize: 4kb }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
`);
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

const request = (headers: string): string => `GET /api/x HTTP/1.1\r\nHost: sluice\r\n${headers}Connection: close\r\n\r\n`;

it.each([
  ['one 5 kB header', `X-Big: ${'a'.repeat(5 * 1024)}\r\n`],
  ['600 small headers', Array.from({ length: 600 }, (_, i) => `X-H${i}: v\r\n`).join('')],
  ['a 5 kB request line', ''],
])('answers 431 to %s and forwards nothing', async (name, headers) => {
  const head = name.includes('request line') ? request(headers).replace('/api/x', `/api/${'p'.repeat(5 * 1024)}`) : request(headers);
  const connection = await rawRoundTrip(sluice.url, head);
  expect(connection.closed).toBe(true);
  // Node's parser counts the request line with the headers; an over-long line is a 431 as well.
  expect(connection.status, connection.text.slice(0, 200)).toBe(431);
  expect(upstream.seen).toHaveLength(0);
});

it('serves a header section just under the limit', async () => {
  const connection = await rawRoundTrip(sluice.url, request(`X-Big: ${'a'.repeat(3 * 1024)}\r\n`));
  expect(connection.status).toBe(200);
  expect(upstream.seen).toHaveLength(1);
});
