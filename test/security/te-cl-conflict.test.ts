import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { RawConnection, sleep } from './support.js';

/**
 * Request smuggling: a request whose length is ambiguous (Transfer-Encoding together with
 * Content-Length, two different Content-Lengths, a Transfer-Encoding Node does not frame as
 * chunked, obfuscated header names) is refused with 400 by Node's HTTP parser, the connection is
 * closed, and nothing, neither the request nor what was smuggled after it, reaches the upstream.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
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

const SMUGGLED = 'GET /api/smuggled HTTP/1.1\r\nHost: sluice\r\n\r\n';

it.each([
  ['CL.TE', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE.CL', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ['two Content-Lengths', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['TE with a space before the colon', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE xchunked', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE chunked twice', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE not ending in chunked', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['a bare LF in the chunk framing', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n${SMUGGLED}`],
  ['a negative Content-Length', `POST /api/x HTTP/1.1\r\nHost: sluice\r\nContent-Length: -1\r\n\r\n${SMUGGLED}`],
])('refuses %s with 400, closes, forwards nothing', async (_name, data) => {
  const connection = await RawConnection.open(sluice.url);
  connection.write(data);
  expect(await connection.waitClosed(3_000)).toBe(true);
  expect(connection.status, connection.text).toBe(400);
  expect(connection.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
  // Anything in flight would have reached the upstream by now.
  await sleep(100);
  expect(upstream.seen.map((r) => r.url)).toEqual([]);
  expect(upstream.inFlight).toBe(0);
});

it('forwards an unambiguous chunked body, and a pipelined request after it, as two requests', async () => {
  const connection = await RawConnection.open(sluice.url);
  connection.write(
    `POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /api/second HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n`,
  );
  expect(await connection.waitClosed(3_000)).toBe(true);
  expect(connection.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
  // Pipelined requests are handled concurrently: the order of arrival upstream is not fixed.
  expect(upstream.seen.map((r) => [r.url, r.body.toString()]).sort()).toEqual([
    ['/second', ''],
    ['/x', 'abc'],
  ]);
});
