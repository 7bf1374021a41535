import { connect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { schedulerOf, sleep, waitFor } from './support.js';

/**
 * HTTP/1.1 pipelining: a client may send several requests on one connection before the first is
 * answered. Node parses them all, but gives the later ones their response (and its `close`
 * event) only once the earlier ones are answered. When the connection closes, every one of them
 * must leave the queue: none may reach the upstream afterwards.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;

afterEach(async () => {
  await sluice?.close();
  await upstream?.close();
});

it('drops every queued pipelined request of a connection that closes', async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 2/s
`);
  const scheduler = schedulerOf(sluice);
  const { port, hostname } = new URL(sluice.url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  socket.write(['/api/p0', '/api/p1', '/api/p2', '/api/p3'].map((path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
  await waitFor(() => upstream?.seen.length === 1 && scheduler.queued >= 1, 5_000, 'the first to go, the others to queue');
  socket.destroy();
  await waitFor(() => scheduler.queued === 0, 1_000, 'the pipelined requests to leave the queue');
  await sleep(1_600); // three more tokens' worth
  expect(upstream.seen.map((s) => s.url)).toEqual(['/p0']);
});
