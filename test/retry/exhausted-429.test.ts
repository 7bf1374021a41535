import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, send } from '../io/support.js';
import { answer, closeAll } from './support.js';

/**
 * When every attempt was throttled, the client gets the upstream's last 429 as it was: its status,
 * its body, its headers (Retry-After included), with Sluice-Attempts saying how many were made.
 */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await closeAll({ agents: [agent], sluice, upstreams: [upstream] });
  agent = sluice = upstream = undefined;
});

it('passes the last of 3 throttled attempts through unchanged', async () => {
  // Every answer differs, so the one passed through is known to be the last.
  upstream = await ScriptedUpstream.start((_req, res, index) =>
    answer(res, {
      status: 429,
      headers: { 'content-type': 'application/json', 'retry-after': '1', 'x-ratelimit-scope': `attempt-${index + 1}` },
      body: JSON.stringify({ message: 'API rate limit exceeded', attempt: index + 1 }),
    }),
  );
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    retry:
      attempts: 3
`);
  agent = newAgent();

  const got = await send(agent, `${sluice.url}/api/repos`);

  expect(upstream.seen).toHaveLength(3);
  expect(got.status).toBe(429);
  expect(got.text).toBe(JSON.stringify({ message: 'API rate limit exceeded', attempt: 3 }));
  expect(header(got, 'content-type')).toBe('application/json');
  expect(header(got, 'retry-after')).toBe('1');
  expect(header(got, 'x-ratelimit-scope')).toBe('attempt-3');
  expect(header(got, 'sluice-attempts')).toBe('3');
  // Not one of sluice's own answers.
  expect(got.text).not.toContain('SLUICE_');
  // Two pauses of a second between the three attempts.
  expect(got.doneAt - got.sentAt).toBeGreaterThanOrEqual(2000 - 20);
});
