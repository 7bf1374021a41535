import type { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, send, type Answer } from '../io/support.js';
import { closedPort, rawRoundTrip } from './support.js';

/**
 * sluice never puts a `setHeaders` value in what it answers: not in a relayed response (it adds
 * only Sluice-Attempts and Sluice-Queue-Ms), not in any of its own problem+json answers (headers or
 * body), whatever went wrong. (An upstream that echoes request headers back is relayed as it is:
 * sluice passes responses through; see SECURITY.md.)
 */

const TOKEN = 'tok-echo-5be2c9';
const KEY = 'key-echo-0d44';

let upstream: ScriptedUpstream;
let sluice: RunningSluice;
let agent: Agent;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start((req, res) => {
    if (req.url.includes('never-answers')) return;
    if (req.url.includes('throttled')) {
      res.writeHead(429, { 'retry-after': '0', 'content-type': 'text/plain' });
      return void res.end('slow down');
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'yes' });
    res.end(`you asked for ${req.url}`);
  });
  const deadPort = await closedPort();
  const secrets = `setHeaders: { Authorization: "Bearer \${TOKEN}", X-Api-Key: "\${KEY}" }`;
  sluice = await startSluice(
    `
listen: { host: 127.0.0.1, port: 0, bodyLimit: 1kb }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    timeout: 300ms
    ${secrets}
    retry: { attempts: 2, backoff: { base: 1ms, max: 5ms } }
  - name: dead
    prefix: /dead
    target: http://127.0.0.1:${deadPort}
    ${secrets}
    retry: { attempts: 1 }
  - name: tight
    prefix: /tight
    target: ${upstream.url}
    ${secrets}
    limits: [{ rate: 1/h }]
    queue: { maxWait: 1s }
  - name: full
    prefix: /full
    target: ${upstream.url}
    ${secrets}
    queue: { maxSize: 0 }
  - name: bad-value
    prefix: /bad-value
    target: ${upstream.url}
    setHeaders: { Authorization: "Bearer \${TOKEN}\\r\\nX-Injected: 1" }
`,
    { env: { TOKEN, KEY } },
  );
  agent = newAgent();
});

afterAll(async () => {
  await agent?.close();
  await sluice?.close();
  await upstream?.close();
});

function everything(answer: Answer): string {
  return `${JSON.stringify(answer.headers)}\n${answer.text}`;
}

it('relays responses with only Sluice-Attempts and Sluice-Queue-Ms added', async () => {
  const answer = await send(agent, `${sluice.url}/api/data`, { headers: { authorization: 'Bearer client' } });
  expect(answer.status).toBe(200);
  expect(Object.keys(answer.headers).sort()).toEqual(
    ['content-type', 'date', 'keep-alive', 'connection', 'sluice-attempts', 'sluice-queue-ms', 'transfer-encoding', 'x-upstream'].sort(),
  );
  expect(everything(answer)).not.toContain(TOKEN);
  expect(everything(answer)).not.toContain(KEY);
});

it("puts no secret in any of sluice's own answers", async () => {
  const answers = [
    await send(agent, `${sluice.url}/api/never-answers`),
    await send(agent, `${sluice.url}/dead/x`),
    await send(agent, `${sluice.url}/tight/first`),
    await send(agent, `${sluice.url}/tight/second`),
    await send(agent, `${sluice.url}/full/x`),
    await send(agent, `${sluice.url}/api/big`, { method: 'POST', body: 'x'.repeat(4096) }),
    await send(agent, `${sluice.url}/nowhere`),
    await send(agent, `${sluice.url}/api/x`, { headers: { 'sluice-max-wait': 'soon' } }),
    await send(agent, `${sluice.url}/api/throttled`),
    await send(agent, `${sluice.url}/bad-value/x`),
  ];
  expect(answers.map((a) => a.status)).toEqual([504, 502, 200, 429, 429, 413, 404, 400, 429, 502]);
  for (const answer of answers) {
    expect(everything(answer)).not.toContain(TOKEN);
    expect(everything(answer)).not.toContain(KEY);
  }
  const raw = [
    await rawRoundTrip(sluice.url, 'GET /api/%2e%2e/x HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n'),
    await rawRoundTrip(sluice.url, 'GET http://elsewhere/api/x HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n'),
  ];
  expect(raw.map((c) => c.status)).toEqual([400, 400]);
  for (const connection of raw) {
    expect(connection.text).not.toContain(TOKEN);
    expect(connection.text).not.toContain(KEY);
  }
});
