import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream, sha256 } from '../helpers/upstream.js';
import { header, newAgent, problemOf, send } from './support.js';

/**
 * Large bodies stream through in both directions, byte-exact, without being held whole: a 10 MB
 * response reaches the client while the upstream is still sending it, a 10 MB request body (above
 * retry.maxBodySize, so not buffered) reaches the upstream intact. Bodies above listen.bodyLimit get
 * 413, whether announced by Content-Length or found out while streaming a chunked body.
 */

const MB = 1024 * 1024;
const CHUNKS = 10;
const payload = randomBytes(CHUNKS * MB);

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let agent: Agent;
/** When the upstream wrote the last chunk of the big response. */
let lastChunkWrittenAt = Number.NaN;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (req.url !== '/big') return echo(req, res, index);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let chunk = 0;
    const writeNext = (): void => {
      const slice = payload.subarray(chunk * MB, (chunk + 1) * MB);
      chunk++;
      if (chunk < CHUNKS) {
        res.write(slice);
        setTimeout(writeNext, 30);
      } else {
        lastChunkWrittenAt = performance.now();
        res.end(slice);
      }
    };
    writeNext();
  });
  sluice = await startSluice(`
listen: { host: 127.0.0.1, port: 0, bodyLimit: 12mb }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
`);
  agent = newAgent();
});

afterAll(async () => {
  await sluice?.close();
  await agent?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

/** `bytes` as a chunked body: a stream of 256 KB pieces (no Content-Length). */
function chunked(bytes: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 256 * 1024) pieces.push(bytes.subarray(at, at + 256 * 1024));
  return Readable.from(pieces);
}

describe('responses', () => {
  it('streams a 10 MB response intact, starting before the upstream has sent all of it', async () => {
    const response = await request(`${sluice.url}/api/big`, { dispatcher: agent });
    const received: Buffer[] = [];
    let firstChunkAt = Number.NaN;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (received.length === 0) firstChunkAt = performance.now();
      received.push(chunk);
    }
    const body = Buffer.concat(received);

    expect(response.statusCode).toBe(200);
    expect(body.length).toBe(payload.length);
    expect(sha256(body)).toBe(sha256(payload));
    // The upstream spends ~270 ms between its first and last chunk; the client had bytes early on.
    expect(firstChunkAt).toBeLessThan(lastChunkWrittenAt);
  });
});

describe('request bodies', () => {
  it.each([
    ['with Content-Length', (): Buffer | Readable => payload],
    ['chunked', (): Buffer | Readable => chunked(payload)],
  ])('forwards a 10 MB body (above retry.maxBodySize) byte-exact, %s', async (_name, body) => {
    const answer = await send(agent, `${sluice.url}/api/upload`, { method: 'POST', body: body() });

    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ bytes: payload.length, sha256: sha256(payload) });
    expect(upstream.seen).toHaveLength(1);
  });

  const tooLarge = Buffer.concat([payload, payload.subarray(0, 3 * MB)]);

  it.each([
    ['with Content-Length', (): Buffer | Readable => tooLarge],
    ['chunked', (): Buffer | Readable => chunked(tooLarge)],
  ])('answers 413 SLUICE_BODY_TOO_LARGE to a 13 MB body (bodyLimit 12mb), %s', async (_name, body) => {
    const client = newAgent(); // sluice closes the connection after a 413: a client of its own
    try {
      const answer = await send(client, `${sluice.url}/api/upload`, { method: 'POST', body: body() });

      expect(answer.status).toBe(413);
      expect(problemOf(answer)).toMatchObject({ status: 413, code: 'SLUICE_BODY_TOO_LARGE' });
      expect(header(answer, 'connection')).toBe('close');
      // No complete request reached the upstream.
      expect(upstream.seen).toHaveLength(0);
    } finally {
      await client.destroy();
    }
  });
});
