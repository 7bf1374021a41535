import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { Decoy, RawConnection, sleep } from './support.js';

/**
 * No open proxy: CONNECT (a request for a tunnel) never opens one. sluice is a reverse proxy; the
 * connection is closed without a 2xx, and neither the named host nor the configured upstream is
 * contacted, even when the client goes on to write what it would send through the tunnel.
 */

let upstream: ScriptedUpstream;
let decoy: Decoy;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  decoy = await Decoy.start();
  sluice = await startSluice(`
upstreams:
  - name: root
    prefix: /
    target: ${upstream.url}
`);
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
  await decoy?.close();
});

it.each([
  ['authority form, the decoy', () => `CONNECT ${decoy.host} HTTP/1.1\r\nHost: ${decoy.host}\r\n\r\n`],
  ['authority form, the upstream', () => `CONNECT ${new URL(upstream.url).host} HTTP/1.1\r\nHost: ${new URL(upstream.url).host}\r\n\r\n`],
  ['a path', () => `CONNECT /tunnel HTTP/1.1\r\nHost: ${decoy.host}\r\n\r\n`],
])('never tunnels CONNECT (%s)', async (_name, head) => {
  const connection = await RawConnection.open(sluice.url);
  connection.write(head());
  // What a client would send through an established tunnel.
  await sleep(100);
  connection.write(`GET /through-the-tunnel HTTP/1.1\r\nHost: ${decoy.host}\r\n\r\n`);
  expect(await connection.waitClosed(3_000)).toBe(true);
  connection.destroy();
  expect(connection.text).not.toMatch(/^HTTP\/1\.[01] 2\d\d/);
  expect(decoy.connections).toBe(0);
  expect(upstream.seen).toHaveLength(0);
});
