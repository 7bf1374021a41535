import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { echo, ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, sample, scrape, send, sleep, type Answer } from '../io/support.js';
import { answer, closeAll } from './support.js';

/**
 * The admin /metrics count what happened in the key-pause scenario: three retries for 429, the
 * attempts by the status the upstream answered (as the upstream itself counts them), three pauses.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

it('counts retries by reason and attempts by status', async () => {
  const sent = new Map<number, number>();
  let throttled = 0;
  upstream = await ScriptedUpstream.start((req, res, index) => {
    const status = req.headers['x-account'] === 'a' && throttled++ < 3 ? 429 : 200;
    sent.set(status, (sent.get(status) ?? 0) + 1);
    if (status === 429) return answer(res, { status, headers: { 'retry-after': '1' }, body: 'slow down' });
    return echo(req, res, index);
  });
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-account}"
        rate: 10/s
`);
  agent = newAgent();
  const { url } = sluice;
  const client = agent;

  let keyADone = false;
  const keyB = (async () => {
    const answers: Answer[] = [];
    while (!keyADone) {
      answers.push(await send(client, `${url}/api/b/${answers.length}`, { headers: { 'x-account': 'b' } }));
      await sleep(50);
    }
    return answers;
  })();
  const a = await send(client, `${url}/api/a`, { headers: { 'x-account': 'a' } });
  keyADone = true;
  const b = await keyB;

  expect(a.status).toBe(200);
  expect(header(a, 'sluice-attempts')).toBe('4');
  expect(b.length).toBeGreaterThan(0);
  expect(sent.get(429)).toBe(3);
  expect(sent.get(200)).toBe(1 + b.length);

  const metrics = await scrape(sluice.adminUrl);
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => sample(metrics, name, { upstream: 'api', ...labels });
  expect(value('sluice_retries_total', { reason: '429' })).toBe(3);
  for (const reason of ['502', '503', '504', 'timeout', 'connect', 'reset']) expect(value('sluice_retries_total', { reason }), reason).toBeUndefined();
  expect(value('sluice_upstream_attempts_total', { status: '429' })).toBe(3);
  expect(value('sluice_upstream_attempts_total', { status: '200' })).toBe(1 + b.length);
  expect(value('sluice_upstream_attempts_total', { status: 'timeout' })).toBeUndefined();
  expect(value('sluice_upstream_attempts_total', { status: 'error' })).toBeUndefined();
  expect(value('sluice_key_pauses_total')).toBe(3);
  expect(value('sluice_requests_total', { outcome: 'ok' })).toBe(1 + b.length);
  expect(value('sluice_requests_total', { outcome: 'upstream_error' })).toBe(0);
});
