import type { Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { bodyOf, RawConnection, rawRoundTrip, sleep } from './support.js';

/**
 * TE and Upgrade: sluice relays HTTP/1.1 requests, never a tunnel. `TE` is not forwarded; a
 * transfer coding other than chunked is refused (501) rather than passed on undecoded; an
 * `Upgrade: websocket` (or h2c) request is forwarded as a plain request without its Upgrade, so
 * the upstream never sees an upgrade and the client never gets a 101; an upstream that answers
 * 101 anyway gets its connection dropped and the client a 502. Bytes a client sends after an
 * upgrade request are read as HTTP, never relayed raw.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let upgradesSeen = 0;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start((req, res) => {
    if (req.url.includes('answers-101')) {
      res.writeHead(101, { connection: 'upgrade', upgrade: 'websocket' });
      return void res.flushHeaders();
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
    res.end('plain');
  });
  upstream.server.on('upgrade', (_req, socket: Socket) => {
    upgradesSeen++;
    socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    timeout: 2s
    retry: { attempts: 1 }
`);
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
  upgradesSeen = 0;
});

it('does not forward TE', async () => {
  // Not named in Connection (as RFC 9110 asks): TE is hop-by-hop all the same.
  const connection = await rawRoundTrip(sluice.url, 'GET /api/x HTTP/1.1\r\nHost: sluice\r\nTE: trailers, deflate\r\nConnection: close\r\n\r\n');
  expect(connection.status).toBe(200);
  expect(upstream.seen[0]?.headers.te).toBeUndefined();
});

it('refuses a transfer coding other than chunked with 501 and forwards nothing', async () => {
  const connection = await rawRoundTrip(sluice.url, 'POST /api/x HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  expect(connection.status).toBe(501);
  expect(JSON.parse(bodyOf(connection.text))).toMatchObject({ code: 'SLUICE_NOT_IMPLEMENTED' });
  expect(upstream.seen).toHaveLength(0);
});

it.each([
  ['websocket', 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13'],
  ['h2c', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA'],
  ['websocket, Upgrade not named in Connection', 'Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13'],
])('forwards an Upgrade: %s request as a plain request, never a tunnel', async (_name, headers) => {
  const connection = await RawConnection.open(sluice.url);
  connection.write(`GET /api/ws HTTP/1.1\r\nHost: sluice\r\n${headers}\r\n\r\n`);
  expect(await connection.waitFor(/\r\n\r\nplain/, 3_000)).toBe(true);
  expect(connection.status).toBe(200);
  // What a client would send once upgraded: read by sluice as HTTP (and refused), never relayed.
  connection.write('\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58 not http at all\r\n\r\n');
  // Node stops reading an upgrade request's connection after the answer: it is closed by the
  // keep-alive timeout, or here.
  await connection.waitClosed(500);
  connection.destroy();
  await sleep(50);
  expect(connection.text).not.toContain(' 101 ');
  expect(upgradesSeen).toBe(0);
  expect(upstream.seen).toHaveLength(1);
  const seen = upstream.seen[0]!;
  expect(seen.headers.upgrade).toBeUndefined();
  expect(seen.headers['http2-settings']).toBeUndefined();
  expect(String(seen.headers.connection ?? '')).not.toMatch(/upgrade/i);
});

it('answers 502 when the upstream switches protocols unasked', async () => {
  const connection = await rawRoundTrip(sluice.url, 'GET /api/answers-101 HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n');
  expect(connection.status).toBe(502);
  expect(JSON.parse(bodyOf(connection.text))).toMatchObject({ code: 'SLUICE_UPSTREAM_UNREACHABLE' });
  expect(connection.text).not.toContain(' 101 ');
});
