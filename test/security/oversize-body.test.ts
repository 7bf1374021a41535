import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { bodyOf, RawConnection, sleep } from './support.js';

/**
 * A body over `listen.bodyLimit` (64kb here) gets 413 SLUICE_BODY_TOO_LARGE without being read
 * whole: a Content-Length over the limit is answered before a byte of the body is sent; a chunked
 * body is cut off once it passes the limit, while the client is still sending, whether sluice was
 * buffering it for replay (`retry.maxBodySize` above the limit, the default 1mb) or streaming it
 * (`maxBodySize` below). The connection is closed and the upstream receives no complete request.
 */

const LIMIT = 64 * 1024;
const CHUNK = 8 * 1024;

let upstream: ScriptedUpstream;
let buffering: RunningSluice;
let streaming: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  const yaml = (maxBodySize: string): string => `
listen: { host: 127.0.0.1, port: 0, bodyLimit: 64kb }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    retry: { maxBodySize: ${maxBodySize} }
`;
  buffering = await startSluice(yaml('1mb'));
  streaming = await startSluice(yaml('16kb'));
});

afterAll(async () => {
  await buffering?.close();
  await streaming?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

it('answers a Content-Length over the limit before the body is sent', async () => {
  for (const through of [buffering, streaming]) {
    const connection = await RawConnection.open(through.url);
    connection.write(`POST /api/upload HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/octet-stream\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
    expect(await connection.waitClosed(2_000)).toBe(true);
    expect(connection.status).toBe(413);
    expect(JSON.parse(bodyOf(connection.text))).toMatchObject({ code: 'SLUICE_BODY_TOO_LARGE', status: 413 });
  }
  expect(upstream.seen).toHaveLength(0);
});

/** Sends a chunked body CHUNK by CHUNK until sluice answers or closes; returns the bytes sent. */
async function sendChunkedUntilAnswered(connection: RawConnection, maxBytes: number): Promise<number> {
  connection.write('POST /api/upload HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = `${CHUNK.toString(16)}\r\n${'z'.repeat(CHUNK)}\r\n`;
  let sent = 0;
  while (sent < maxBytes && connection.status === undefined && !connection.closed) {
    if (!connection.write(chunk)) break;
    sent += CHUNK;
    await sleep(10);
  }
  return sent;
}

it.each([
  ['buffered for replay', () => buffering],
  ['streamed', () => streaming],
])('cuts off a chunked body that grows past the limit (%s)', async (_name, through) => {
  const connection = await RawConnection.open(through().url);
  const sent = await sendChunkedUntilAnswered(connection, 20 * LIMIT);
  expect(await connection.waitClosed(2_000)).toBe(true);
  expect(connection.status).toBe(413);
  expect(JSON.parse(bodyOf(connection.text))).toMatchObject({ code: 'SLUICE_BODY_TOO_LARGE' });
  // Answered soon after the limit, not after the 1.25 MB the client was going to send.
  expect(sent).toBeLessThan(LIMIT + 8 * CHUNK);
  await sleep(50);
  expect(upstream.seen).toHaveLength(0);
});

it('accepts a chunked body at the limit', async () => {
  const connection = await RawConnection.open(buffering.url);
  const body = 'y'.repeat(LIMIT);
  connection.write(
    `POST /api/upload HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${LIMIT.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
  );
  expect(await connection.waitClosed(3_000)).toBe(true);
  expect(connection.status).toBe(200);
  expect(upstream.seen.map((r) => r.body.length)).toEqual([LIMIT]);
});
