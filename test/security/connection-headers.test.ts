import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';
import { rawRoundTrip } from './support.js';

/**
 * Hop-by-hop headers, and every header the Connection header names (in any case, in one
 * Connection line or several), are stripped in both directions: a client cannot make sluice drop
 * a header the upstream needs nor pass one meant for sluice's hop, and an upstream cannot do the
 * same to the client. The end-to-end headers around them arrive unchanged.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start((_req, res) => {
    res.writeHead(200, [
      'Connection',
      'X-Resp-Secret, keep-alive',
      'connection',
      'x-resp-other',
      'X-Resp-Secret',
      'internal',
      'X-RESP-OTHER',
      'internal',
      'Keep-Alive',
      'timeout=99, max=7',
      'Proxy-Authenticate',
      'Basic realm="internal"',
      'Upgrade',
      'h2c',
      'X-End-To-End',
      'kept',
      'Content-Length',
      '2',
    ]);
    res.end('ok');
  });
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

function names(seen: SeenRequest): string[] {
  return seen.rawHeaders.filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

it('strips hop-by-hop and Connection-named request headers', async () => {
  const connection = await rawRoundTrip(
    sluice.url,
    [
      'GET /api/x HTTP/1.1',
      'Host: sluice',
      'Connection: X-Req-Secret, close',
      'Connection: x-req-OTHER',
      'X-Req-Secret: for-sluice-only',
      'x-req-other: for-sluice-only',
      'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive',
      'Proxy-Authorization: Basic Zm9yLXNsdWljZQ==',
      'TE: trailers',
      'Trailer: X-Checksum',
      'Upgrade: h2c',
      'X-End-To-End: kept',
      '',
      '',
    ].join('\r\n'),
  );
  expect(connection.status).toBe(200);
  const seen = upstream.seen[0] as SeenRequest;
  for (const name of ['x-req-secret', 'x-req-other', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade']) {
    expect(names(seen), name).not.toContain(name);
  }
  expect(JSON.stringify(seen.rawHeaders)).not.toContain('for-sluice-only');
  expect(String(seen.headers.connection ?? '')).not.toMatch(/x-req|upgrade/i);
  expect(seen.headers['x-end-to-end']).toBe('kept');
});

it('strips hop-by-hop and Connection-named response headers', async () => {
  const connection = await rawRoundTrip(sluice.url, 'GET /api/x HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n');
  expect(connection.status).toBe(200);
  const head = connection.text.slice(0, connection.text.indexOf('\r\n\r\n')).toLowerCase();
  for (const name of ['x-resp-secret', 'x-resp-other', 'proxy-authenticate', 'upgrade']) {
    expect(head, name).not.toContain(`\r\n${name}:`);
  }
  expect(head).not.toContain('internal');
  expect(head).not.toContain('max=7');
  expect(head).not.toMatch(/\r\nconnection:[^\r]*x-resp/);
  expect(head).toContain('\r\nx-end-to-end: kept');
});
