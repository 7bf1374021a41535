import type { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';
import { header, newAgent, problemOf, rawRequest, send } from './support.js';

/**
 * Routing and header hygiene: which upstream a path goes to, the path and headers it arrives with,
 * and what comes back.
 */

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let rooted: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start((req, res, index) => {
    if (req.url.endsWith('/hop-response')) {
      res.writeHead(203, [
        'Connection',
        'X-Resp-Named',
        'X-Resp-Named',
        'secret',
        'Keep-Alive',
        'timeout=99, max=7',
        'Proxy-Authenticate',
        'Basic realm="upstream"',
        'X-Kept',
        'yes',
        'Content-Length',
        '2',
      ]);
      return void res.end('ok');
    }
    if (req.url.endsWith('/created')) {
      res.writeHead(201, [
        'Content-Type',
        'text/plain; charset=utf-8',
        'X-Upstream',
        'one',
        'Set-Cookie',
        'a=1; Path=/',
        'Set-Cookie',
        'b=2; Path=/',
        'Cache-Control',
        'max-age=60',
      ]);
      return void res.end('created');
    }
    if (req.url.endsWith('/missing')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end('the upstream has no such thing');
    }
    return echo(req, res, index);
  });
  const target = upstream.url;
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${target}/base
    setHeaders: { Authorization: "Bearer from-config", x-api-key: config-key }
  - name: bare
    prefix: /bare
    target: ${target}
  - name: github
    prefix: /github
    target: ${target}/gh
  - name: a
    prefix: /a
    target: ${target}/upstream-a
  - name: ab
    prefix: /a/b
    target: ${target}/upstream-ab/
`);
  rooted = await startSluice(`
upstreams:
  - name: root
    prefix: /
    target: ${target}/root
  - name: a
    prefix: /a
    target: ${target}/upstream-a
`);
  agent = newAgent();
});

afterAll(async () => {
  await agent?.close();
  await sluice?.close();
  await rooted?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

/** The path the upstream saw for one request through `through`. */
async function upstreamUrlOf(through: RunningSluice, path: string): Promise<string> {
  const before = upstream.seen.length;
  const answer = await send(agent, `${through.url}${path}`);
  expect(answer.status, `${path}: ${answer.text}`).toBe(200);
  expect(upstream.seen.length).toBe(before + 1);
  return (upstream.seen[before] as SeenRequest).url;
}

/** How many times the upstream received a header, by case-insensitive name. */
function occurrences(seen: SeenRequest, name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) {
    if ((seen.rawHeaders[i] as string).toLowerCase() === name) values.push(seen.rawHeaders[i + 1] as string);
  }
  return values;
}

describe('paths', () => {
  it('strips the prefix, prepends the base path and keeps the query string', async () => {
    expect(await upstreamUrlOf(sluice, '/api/users/42?page=2&sort=-name&empty=')).toBe('/base/users/42?page=2&sort=-name&empty=');
    expect(await upstreamUrlOf(sluice, '/bare/users/42?q=a%20b')).toBe('/users/42?q=a%20b');
  });

  it('forwards the prefix alone, with or without a query, to the root of the target', async () => {
    expect(await upstreamUrlOf(sluice, '/bare?x=1')).toBe('/?x=1');
    expect(await upstreamUrlOf(sluice, '/bare')).toBe('/');
    expect(await upstreamUrlOf(sluice, '/bare/')).toBe('/');
    expect(await upstreamUrlOf(sluice, '/api?x=1&y=2')).toBe('/base/?x=1&y=2');
    expect(await upstreamUrlOf(sluice, '/api')).toBe('/base/');
  });

  it('routes everything else to an upstream mounted at /', async () => {
    expect(await upstreamUrlOf(rooted, '/')).toBe('/root/');
    expect(await upstreamUrlOf(rooted, '/?x=1')).toBe('/root/?x=1');
    expect(await upstreamUrlOf(rooted, '/anything/deep?y=2')).toBe('/root/anything/deep?y=2');
    expect(await upstreamUrlOf(rooted, '/ab')).toBe('/root/ab');
    expect(await upstreamUrlOf(rooted, '/a/z')).toBe('/upstream-a/z');
  });

  it('picks the longest matching prefix', async () => {
    expect(await upstreamUrlOf(sluice, '/a/b/c')).toBe('/upstream-ab/c');
    expect(await upstreamUrlOf(sluice, '/a/b')).toBe('/upstream-ab/');
    expect(await upstreamUrlOf(sluice, '/a/b?k=v')).toBe('/upstream-ab/?k=v');
    expect(await upstreamUrlOf(sluice, '/a/bc')).toBe('/upstream-a/bc');
    expect(await upstreamUrlOf(sluice, '/a/x/b')).toBe('/upstream-a/x/b');
    expect(await upstreamUrlOf(sluice, '/a')).toBe('/upstream-a/');
  });

  it('matches a prefix only at a segment boundary', async () => {
    expect(await upstreamUrlOf(sluice, '/github/repos')).toBe('/gh/repos');
    expect(await upstreamUrlOf(sluice, '/github?q=1')).toBe('/gh/?q=1');
    upstream.seen.length = 0;
    const answer = await send(agent, `${sluice.url}/githubx/repos`);
    expect(answer.status).toBe(404);
    expect(problemOf(answer).code).toBe('SLUICE_NO_ROUTE');
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('request headers', () => {
  it("sets Host to the target's host, once", async () => {
    await send(agent, `${sluice.url}/bare/host`, { headers: { host: 'client.example:8080' } });
    const seen = upstream.seen[0] as SeenRequest;
    expect(occurrences(seen, 'host')).toEqual([new URL(upstream.url).host]);
  });

  it("replaces a client's header named in setHeaders, whatever its case, and sends it once", async () => {
    await send(agent, `${sluice.url}/api/secret`, {
      headers: { authorization: 'Bearer from-client', 'X-API-KEY': 'client-key', 'x-other': 'kept' },
    });
    const seen = upstream.seen[0] as SeenRequest;
    expect(occurrences(seen, 'authorization')).toEqual(['Bearer from-config']);
    expect(occurrences(seen, 'x-api-key')).toEqual(['config-key']);
    expect(occurrences(seen, 'x-other')).toEqual(['kept']);
    // Without a client header of that name, the configured one is still sent exactly once.
    await send(agent, `${sluice.url}/api/secret`);
    expect(occurrences(upstream.seen[1] as SeenRequest, 'authorization')).toEqual(['Bearer from-config']);
  });

  it('does not forward hop-by-hop headers or the headers named in Connection', async () => {
    const answer = await rawRequest(
      sluice.url,
      [
        'GET /bare/hop HTTP/1.1',
        'Host: client.example',
        'Connection: close, X-Conn-Named',
        'X-Conn-Named: secret',
        'Keep-Alive: timeout=5',
        'Proxy-Authorization: Basic c2VjcmV0',
        'Proxy-Connection: keep-alive',
        'TE: trailers',
        'Trailer: X-Checksum',
        'X-Kept: yes',
      ].join('\r\n'),
    );
    expect(answer.status).toBe(200);
    const seen = upstream.seen[0] as SeenRequest;
    for (const name of ['x-conn-named', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer']) {
      expect(occurrences(seen, name), name).toEqual([]);
    }
    expect(occurrences(seen, 'connection').join(',')).not.toMatch(/x-conn-named|close/i);
    expect(occurrences(seen, 'x-kept')).toEqual(['yes']);
  });
});

describe('responses', () => {
  it("relays the upstream's status, headers and body, with Sluice-Attempts and Sluice-Queue-Ms", async () => {
    const answer = await send(agent, `${sluice.url}/bare/created`);
    expect(answer.status).toBe(201);
    expect(answer.text).toBe('created');
    expect(header(answer, 'content-type')).toBe('text/plain; charset=utf-8');
    expect(header(answer, 'x-upstream')).toBe('one');
    expect(header(answer, 'cache-control')).toBe('max-age=60');
    expect(answer.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(header(answer, 'sluice-attempts')).toBe('1');
    expect(header(answer, 'sluice-queue-ms')).toMatch(/^\d+$/);
  });

  it("relays the upstream's own 404 as it is, not as a sluice problem", async () => {
    const answer = await send(agent, `${sluice.url}/bare/missing`);
    expect(answer.status).toBe(404);
    expect(header(answer, 'content-type')).toBe('text/plain');
    expect(answer.text).toBe('the upstream has no such thing');
    expect(header(answer, 'sluice-attempts')).toBe('1');
  });

  it('does not relay hop-by-hop response headers or the headers named in Connection', async () => {
    const answer = await send(agent, `${sluice.url}/bare/hop-response`);
    expect(answer.status).toBe(203);
    expect(answer.text).toBe('ok');
    expect(answer.headers['x-resp-named']).toBeUndefined();
    expect(answer.headers['proxy-authenticate']).toBeUndefined();
    expect(String(answer.headers['keep-alive'] ?? '')).not.toContain('max=7');
    expect(String(answer.headers.connection ?? '')).not.toMatch(/x-resp-named/i);
    expect(header(answer, 'x-kept')).toBe('yes');
  });
});

describe('no route', () => {
  it('answers 404 SLUICE_NO_ROUTE as problem+json without a stack trace', async () => {
    for (const [method, body] of [
      ['GET', undefined],
      ['POST', 'payload'],
      ['DELETE', undefined],
    ] as const) {
      const answer = await send(agent, `${sluice.url}/nowhere/x?token=secret`, { method, body });
      expect(answer.status, method).toBe(404);
      const doc = problemOf(answer);
      expect(doc).toMatchObject({ status: 404, code: 'SLUICE_NO_ROUTE' });
      expect(doc.type).toMatch(/\S/);
      expect(doc.title).toMatch(/\S/);
      expect(doc.detail).toContain('/nowhere/x');
      expect(doc.detail).not.toContain('secret');
      expect(doc).not.toHaveProperty('stack');
      expect(answer.text).not.toMatch(/\bat .+:\d+:\d+|node:internal|\.ts\b/);
      expect(header(answer, 'sluice-attempts')).toBeUndefined();
    }
    expect(upstream.seen).toHaveLength(0);
  });
});
