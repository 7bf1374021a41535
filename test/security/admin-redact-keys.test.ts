import type { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { newAgent, schedulerOf, send, waitFor } from '../io/support.js';

/**
 * Keys are often account ids or tokens. With `admin.redactKeys: true`, /state shows every key as a
 * SHA-256 prefix and never as written; without it, /state shows them (which is what makes this
 * test able to fail). /metrics never carries a key either way (its labels are bounded).
 */

const KEYS = ['acct-4417-secret', 'tenant-tok-99e1'];

let upstream: ScriptedUpstream;
let redacted: RunningSluice;
let plain: RunningSluice;
let agent: Agent;
const pending: Promise<unknown>[] = [];

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  const yaml = (redactKeys: boolean): string => `
admin: { host: 127.0.0.1, port: 0, redactKeys: ${redactKeys} }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits: [{ key: "{header.x-account}:{query.region}", rate: 1/m }]
    queue: { maxWait: 5m }
`;
  redacted = await startSluice(yaml(true));
  plain = await startSluice(yaml(false));
  agent = newAgent();
  // Per key: one request through, one queued behind it (1/m): both keys busy in /state.
  for (const through of [redacted, plain]) {
    for (const key of KEYS)
      for (let i = 0; i < 2; i++) pending.push(send(agent, `${through.url}/api/x?region=eu`, { headers: { 'x-account': key } }).catch(() => undefined));
    await waitFor(() => schedulerOf(through).snapshot().queued === KEYS.length, 5_000, 'two queued requests');
  }
});

afterAll(async () => {
  await redacted?.close();
  await plain?.close();
  await Promise.all(pending);
  await agent?.close();
  await upstream?.close();
});

it('hides every key in /state with redactKeys', async () => {
  const text = (await send(agent, `${redacted.adminUrl}/state`)).text;
  const state = JSON.parse(text) as { upstreams: { busiestKeys: { keys: string[]; queued: number }[] }[] };
  const busiest = state.upstreams[0]?.busiestKeys ?? [];
  expect(busiest).toHaveLength(KEYS.length);
  for (const entry of busiest) for (const key of entry.keys) expect(key).toMatch(/^sha256:[A-Za-z0-9_-]{43}$/);
  for (const key of KEYS) {
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.slice(0, 8));
  }
});

it('shows the keys in /state without redactKeys', async () => {
  const text = (await send(agent, `${plain.adminUrl}/state`)).text;
  for (const key of KEYS) expect(text).toContain(`${key}:eu`);
});

it('never puts a key in /metrics', async () => {
  for (const through of [redacted, plain]) {
    const text = (await send(agent, `${through.adminUrl}/metrics`)).text;
    for (const key of KEYS) expect(text).not.toContain(key);
  }
});
