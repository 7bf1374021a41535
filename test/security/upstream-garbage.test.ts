import net, { type AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { sample, scrape } from '../io/support.js';
import { expectNoLeak, leakCheck } from './support.js';

/**
 * Upstream fault: invalid HTTP from a raw TCP server. Whatever it sends (bytes that are not HTTP,
 * a bad status line, a malformed or oversized header, an ambiguous length, nothing at all, or a
 * broken chunked body after valid headers), the client gets a clear answer: 502
 * SLUICE_UPSTREAM_UNREACHABLE when nothing usable arrived, or a response cut with an error when
 * the headers had been relayed. Nothing invalid is passed on, the slot is released, and 10 rounds
 * of every variant leak no descriptor, timer or other resource.
 */

const ANSWERS: Record<string, string | Buffer> = {
  'not-http': Buffer.from([0x00, 0xff, 0x13, 0x37, ...Buffer.from(' NOT HTTP AT ALL\r\n\r\n')]),
  'bad-status': 'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok',
  'bad-header': 'HTTP/1.1 200 OK\r\nThis Is Not A Header\r\nContent-Length: 2\r\n\r\nok',
  'header-with-cr': 'HTTP/1.1 200 OK\r\nX-Split: a\rSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok',
  'huge-header': `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(80 * 1024)}\r\nContent-Length: 2\r\n\r\nok`,
  'two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk',
  'length-and-chunked': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  'http-0.9': 'ok\r\n',
  nothing: '',
  'bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nZZ\r\nnot a chunk\r\n',
};
/** Variants whose headers are valid: the client gets them, then a cut. */
const CUT_AFTER_HEADERS = new Set(['bad-chunk']);

let server: net.Server;
let sluice: RunningSluice;

beforeAll(async () => {
  server = net.createServer((socket) => {
    let head = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const variant = /^\w+ \/([\w.-]+)/.exec(head)?.[1] ?? 'nothing';
      socket.end(ANSWERS[variant] ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: http://127.0.0.1:${(server.address() as AddressInfo).port}
    timeout: 2s
    bodyTimeout: 2s
    limits: [{ concurrency: 4 }]
`);
});

afterAll(async () => {
  await sluice?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

it('answers every kind of invalid HTTP clearly, releases the slot, leaks nothing', async () => {
  const seen: Record<string, string> = {};
  const leaks = await leakCheck(
    async () => {
      const agent = new Agent({ connections: 20 });
      await Promise.all(
        Object.keys(ANSWERS).map(async (variant) => {
          const response = await request(`${sluice.url}/api/${variant}`, { dispatcher: agent });
          if (CUT_AFTER_HEADERS.has(variant)) {
            expect(response.statusCode, variant).toBe(200);
            await expect(response.body.text(), variant).rejects.toThrow();
            seen[variant] = 'cut';
            return;
          }
          const text = await response.body.text();
          expect(response.statusCode, `${variant}: ${text}`).toBe(502);
          expect(response.headers['content-type']).toBe('application/problem+json');
          expect(JSON.parse(text)).toMatchObject({ code: 'SLUICE_UPSTREAM_UNREACHABLE' });
          expect(response.headers['set-cookie']).toBeUndefined();
          seen[variant] = '502';
        }),
      );
      await agent.close();
    },
    { rounds: 10 },
  );
  expect(Object.keys(seen).sort()).toEqual(Object.keys(ANSWERS).sort());
  expectNoLeak(leaks);
  const metrics = await scrape(sluice.adminUrl);
  expect(sample(metrics, 'sluice_inflight', { upstream: 'api' })).toBe(0);
  expect(sample(metrics, 'sluice_requests_total', { upstream: 'api', outcome: 'failed' })).toBe(12 * Object.keys(ANSWERS).length);
});
