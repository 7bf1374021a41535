import type { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, send } from '../io/support.js';
import { captureLogs, closedPort, rawRoundTrip } from './support.js';

/**
 * The values of `setHeaders` (and the client's Authorization, Proxy-Authorization and Cookie) never
 * appear in a log line, at `debug`, where sluice logs every attempt with its forwarded headers: not
 * for a relayed answer, a retried 429, a timeout, an unreachable upstream, nor any of sluice's own
 * refusals. The logger here has no pino `redact` paths (the CLI adds them on top), so what is
 * tested is sluice's own redaction of the headers it logs.
 */

const TOKEN = 'tok-config-8d1e5a';
const VENDOR_KEY = 'vendor-config-42c7';
const CLIENT_SECRETS = ['client-auth-61b0', 'client-cookie-9f3e', 'client-proxy-auth-07aa'];
const ALL_SECRETS = [TOKEN, VENDOR_KEY, ...CLIENT_SECRETS];

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let agent: Agent;
let closed = false;
const logs = captureLogs('debug');

beforeAll(async () => {
  let throttled = 0;
  upstream = await ScriptedUpstream.start((req, res) => {
    if (req.url.includes('throttle-once') && throttled++ === 0) {
      res.writeHead(429, { 'retry-after': '0', 'content-length': 0 });
      return void res.end();
    }
    if (req.url.includes('never-answers')) return;
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  });
  const deadPort = await closedPort();
  sluice = await startSluice(
    `
log: { level: debug }
listen: { host: 127.0.0.1, port: 0, bodyLimit: 1kb }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    timeout: 300ms
    setHeaders: { Authorization: "Bearer \${TOKEN}", X-Vendor-Key: "\${VENDOR_KEY}" }
    retry: { attempts: 2, backoff: { base: 1ms, max: 5ms } }
  - name: dead
    prefix: /dead
    target: http://127.0.0.1:${deadPort}
    setHeaders: { Authorization: "Bearer \${TOKEN}" }
    retry: { attempts: 2, backoff: { base: 1ms, max: 5ms } }
  - name: tight
    prefix: /tight
    target: ${upstream.url}
    setHeaders: { Authorization: "Bearer \${TOKEN}" }
    limits: [{ rate: 1/h }]
    queue: { maxWait: 1s }
`,
    { env: { TOKEN, VENDOR_KEY }, logger: logs.logger },
  );
  agent = newAgent();
});

afterAll(async () => {
  await agent?.close();
  if (!closed) await sluice?.close();
  await upstream?.close();
});

const clientHeaders = {
  authorization: `Bearer ${CLIENT_SECRETS[0]}`,
  cookie: `session=${CLIENT_SECRETS[1]}`,
  'proxy-authorization': `Basic ${CLIENT_SECRETS[2]}`,
};

it('logs no secret, whatever happens to the request', async () => {
  const answers = [
    await send(agent, `${sluice.url}/api/ok`, { headers: clientHeaders }),
    await send(agent, `${sluice.url}/api/throttle-once`, { headers: clientHeaders }),
    await send(agent, `${sluice.url}/api/never-answers`, { headers: clientHeaders }),
    await send(agent, `${sluice.url}/dead/x`, { headers: clientHeaders }),
    await send(agent, `${sluice.url}/tight/first`, { headers: clientHeaders }),
    await send(agent, `${sluice.url}/tight/second`, { headers: clientHeaders }),
    await send(agent, `${sluice.url}/api/big`, { method: 'POST', headers: clientHeaders, body: 'x'.repeat(4096) }),
    await send(agent, `${sluice.url}/nowhere`, { headers: clientHeaders }),
  ];
  expect(answers.map((a) => a.status)).toEqual([200, 200, 504, 502, 200, 429, 413, 404]);
  const raw = [
    await rawRoundTrip(sluice.url, `GET /api/%2e%2e/x HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer ${CLIENT_SECRETS[0]}\r\nConnection: close\r\n\r\n`),
    await rawRoundTrip(
      sluice.url,
      `POST /api/x HTTP/1.1\r\nHost: s\r\nCookie: a=${CLIENT_SECRETS[1]}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ),
  ];
  expect(raw.map((c) => c.status)).toEqual([400, 400]);
  // Closing logs too; close() once only (a second call throws).
  closed = true;
  await sluice.close();

  // Logging did happen, at debug, with the forwarded headers, their values redacted.
  const attempts = logs.lines.map((line) => JSON.parse(line) as { msg?: string; headers?: Record<string, string> }).filter((entry) => entry.msg === 'attempt');
  expect(attempts.length).toBeGreaterThanOrEqual(6);
  for (const entry of attempts) {
    expect(entry.headers?.authorization).toBe('[redacted]');
  }
  expect(attempts.some((entry) => entry.headers?.['x-vendor-key'] === '[redacted]')).toBe(true);
  expect(attempts.some((entry) => entry.headers?.cookie === '[redacted]')).toBe(true);
  expect(logs.lines.filter((line) => line.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(answers.length - 1);

  const text = logs.lines.join('\n');
  for (const secret of ALL_SECRETS) expect(text).not.toContain(secret);
});
