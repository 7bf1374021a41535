import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';

let sluice: RunningSluice | undefined;
let upstream: ScriptedUpstream | undefined;
afterEach(async () => {
  await sluice?.close();
  await upstream?.close();
  sluice = undefined;
});

const get = async (url: string, headers: Record<string, string> = {}, dispatcher?: Agent) => {
  const response = await request(url, { headers, dispatcher });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
};

const waitFor = async (check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> => {
  const until = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('metrics', () => {
  it('has every metric of the contract, with its labels, after some traffic', async () => {
    let n = 0;
    upstream = await ScriptedUpstream.start((req, res) => {
      n++;
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '0' });
        res.end();
        return;
      }
      res.end('ok');
    });
    sluice = await startSluice(`upstreams:
  - name: api
    prefix: /
    target: ${upstream.url}
    limits: [{ rate: 100/s }, { key: "{header.x-k}", rate: 50/s }]
`);
    expect((await get(`${sluice.url}/a`, { 'x-k': 'one' })).status).toBe(200); // a 429, a pause, a retry
    expect((await get(`${sluice.url}/b`, { 'x-k': 'two' })).status).toBe(200);
    const text = (await get(`${sluice.adminUrl}/metrics`)).body;
    for (const line of [
      'sluice_requests_total{upstream="api",outcome="ok"} 2',
      'sluice_requests_total{upstream="api",outcome="rejected"} 0',
      'sluice_upstream_attempts_total{upstream="api",status="429"} 1',
      'sluice_upstream_attempts_total{upstream="api",status="200"} 2',
      'sluice_retries_total{upstream="api",reason="429"} 1',
      'sluice_key_pauses_total{upstream="api"} 1',
      'sluice_queue_depth{upstream="api"} 0',
      'sluice_inflight{upstream="api"} 0',
      'sluice_keys{upstream="api"}',
      'sluice_effective_rate{upstream="api",limit="0"} 99.25',
      'sluice_effective_rate{upstream="api",limit="1"}',
      'sluice_queue_wait_seconds_count{upstream="api"} 2',
      'sluice_upstream_duration_seconds_count{upstream="api"} 3',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(text).toContain(line);
    }
  });

  it('scrapes to the same size with 10 keys or 10,000: no raw key is ever a label', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await startSluice(`upstreams:
  - name: api
    prefix: /
    target: ${upstream.url}
    limits: [{ key: "{header.x-k}", rate: 1/m }]
`);
    const agent = new Agent({ connections: 50 });
    const send = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, to - i) }, (_, j) => get(`${sluice?.url}/x`, { 'x-k': `key-${i + j}` }, agent)));
      }
    };
    await send(0, 10);
    const small = (await get(`${sluice.adminUrl}/metrics`)).body;
    await send(10, 10_000);
    const large = (await get(`${sluice.adminUrl}/metrics`)).body;
    await agent.close();
    expect(large).toContain('sluice_keys{upstream="api"} 10000');
    expect(large).not.toContain('key-');
    // Only numbers change: the same series, the same lines.
    const shape = (text: string): string[] =>
      text
        .split('\n')
        .filter((l) => l.startsWith('sluice_'))
        .map((l) => l.replace(/ [-+0-9.e]+$/, ''));
    expect(shape(large)).toEqual(shape(small));
  }, 60_000);
});

describe('/state', () => {
  it('shows a queued backlog: per upstream, per limit, and the busiest keys', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await startSluice(`upstreams:
  - name: api
    prefix: /
    target: ${upstream.url}
    limits: [{ rate: 100/s }, { key: "{header.x-account}", rate: 1/s }]
`);
    const agent = new Agent({ connections: 20 });
    const calls = [
      ...Array.from({ length: 6 }, () => get(`${sluice?.url}/x`, { 'x-account': 'acme' }, agent)),
      ...Array.from({ length: 3 }, () => get(`${sluice?.url}/x`, { 'x-account': 'globex' }, agent)),
    ];
    await waitFor(async () => (JSON.parse((await get(`${sluice?.adminUrl}/state`)).body) as { upstreams: { queued: number }[] }).upstreams[0]?.queued === 7);
    const state = JSON.parse((await get(`${sluice.adminUrl}/state`)).body) as {
      state: string;
      upstreams: {
        name: string;
        queued: number;
        limits: { index: number; configuredRatePerSec: number; effectiveRatePerSec: number; gate?: { tokens: number } }[];
        busiestKeys: { keys: string[]; queued: number; limits: { rule: number; tokens: number }[] }[];
      }[];
    };
    const api = state.upstreams[0];
    expect(state.state).toBe('running');
    expect(api?.name).toBe('api');
    expect(api?.limits.map((l) => [l.index, l.configuredRatePerSec])).toEqual([
      [0, 100],
      [1, 1],
    ]);
    expect(api?.limits[0]?.gate?.tokens).toBeTypeOf('number');
    expect(api?.busiestKeys.map((k) => [k.keys[1], k.queued])).toEqual([
      ['acme', 5],
      ['globex', 2],
    ]);
    expect(api?.busiestKeys[0]?.limits.map((l) => l.rule)).toEqual([1]);
    await sluice.close();
    sluice = undefined;
    await Promise.all(calls);
    await agent.close();
  });

  it('hashes the keys with admin.redactKeys', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await startSluice(`admin: { host: 127.0.0.1, port: 0, redactKeys: true }
upstreams:
  - name: api
    prefix: /
    target: ${upstream.url}
    limits: [{ key: "{header.x-account}", rate: 2/m }]
`);
    const calls = [get(`${sluice.url}/x`, { 'x-account': 'acme-secret' }), get(`${sluice.url}/x`, { 'x-account': 'acme-secret' })];
    await waitFor(async () => (await get(`${sluice?.adminUrl}/state`)).body.includes('"queued":1'));
    const text = (await get(`${sluice.adminUrl}/state`)).body;
    expect(text).not.toContain('acme-secret');
    expect(text).toMatch(/"keys":\["sha256:[A-Za-z0-9_-]{43}"\]/);
    await sluice.close();
    sluice = undefined;
    await Promise.allSettled(calls);
  });
});

describe('logs', () => {
  it('one line per request at info, and credentials never in any line, not even at debug', async () => {
    upstream = await ScriptedUpstream.start();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    sluice = await startSluice(
      `log: { level: debug }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    setHeaders: { x-api-key: "\${API_KEY}", authorization: "Bearer injected-token" }
    limits: [{ rate: 100/s }]
`,
      { env: { API_KEY: 'injected-api-key' }, logger: pino({ level: 'debug' }, sink) },
    );
    const response = await get(`${sluice.url}/api/things?secret=in-query`, {
      authorization: 'Bearer client-token',
      cookie: 'session=client-cookie',
      'x-api-key': 'client-key',
    });
    expect(response.status).toBe(200);
    // The upstream got the injected credentials (and only those).
    expect(upstream.seen[0]?.headers.authorization).toBe('Bearer injected-token');
    expect(upstream.seen[0]?.headers['x-api-key']).toBe('injected-api-key');
    await waitFor(() => lines.some((l) => l.includes('"msg":"request"')));
    const all = lines.join('\n');
    for (const secret of ['injected-token', 'injected-api-key', 'client-token', 'client-cookie', 'client-key', 'in-query']) expect(all).not.toContain(secret);
    const attempt = JSON.parse(lines.find((l) => l.includes('"msg":"attempt"')) as string) as { headers: Record<string, string> };
    expect(attempt.headers).toMatchObject({ authorization: '[redacted]', 'x-api-key': '[redacted]', cookie: '[redacted]' });
    const requestLine = JSON.parse(lines.find((l) => l.includes('"msg":"request"')) as string) as Record<string, unknown>;
    expect(requestLine).toMatchObject({ level: 30, upstream: 'api', method: 'GET', path: '/api/things', status: 200, outcome: 'ok', attempts: 1 });
    expect(requestLine.queueMs).toBeTypeOf('number');
    expect(requestLine.upstreamMs).toBeTypeOf('number');
  });
});

describe("sluice's own 429s", () => {
  it('carry Retry-After and the IETF draft RateLimit fields for the key', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await startSluice(`upstreams:
  - name: api
    prefix: /
    target: ${upstream.url}
    limits: [{ key: "{header.x-k}", rate: 30/m }]
    queue: { maxWait: 3s }
`);
    const agent = new Agent({ connections: 10 });
    const queued = Array.from({ length: 2 }, () => get(`${sluice?.url}/x`, { 'x-k': 'a' }, agent)); // 0 s and 2 s
    await waitFor(() => (sluice?.app.upstreams[0]?.scheduler.queued ?? 0) === 1);
    const refused = await get(`${sluice.url}/x`, { 'x-k': 'a' }, agent); // would be 4 s: over maxWait
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'SLUICE_QUEUE_TIMEOUT', status: 429 });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // 30/m less the 0.75% margin is 29.775 a minute: q=29 per w=60.
    expect(refused.headers['ratelimit-policy']).toBe('"api";q=29;w=60');
    expect(refused.headers.ratelimit).toBe(`"api";r=0;t=${String(refused.headers['retry-after'])}`);
    await Promise.all(queued);
    await agent.close();
  });
});
