import type { IncomingMessage } from 'node:http';
import type { Agent } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { header, newAgent, send, waitFor, type Answer } from './support.js';

/** Within one key, requests reach the upstream in the order they reached sluice, one every 50 ms. */

let upstream: ScriptedUpstream | undefined;
let sluice: RunningSluice | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await agent?.close();
  await sluice?.close();
  await upstream?.close();
});

it('releases the queued requests of one key in arrival order', async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 20/s
`);
  agent = newAgent();
  // Each request is sent once sluice has received the one before, so the arrival order is known.
  const received: string[] = [];
  sluice.app.proxy.server.on('request', (req: IncomingMessage) => received.push(req.headers['x-seq'] as string));

  const count = 15;
  const pending: Promise<Answer>[] = [];
  for (let i = 0; i < count; i++) {
    pending.push(send(agent, `${sluice.url}/api/item?seq=${i}`, { headers: { 'x-seq': String(i) } }));
    await waitFor(() => received.length === i + 1, 5_000, `request #${i} to reach sluice`);
  }
  const answers = await Promise.all(pending);
  const sent = Array.from({ length: count }, (_, i) => String(i));

  expect(answers.map((a) => a.status)).toEqual(Array(count).fill(200));
  expect(received).toEqual(sent);
  expect(upstream.seen.map((s) => s.headers['x-seq'])).toEqual(sent);
  expect(upstream.seen.map((s) => s.url)).toEqual(sent.map((i) => `/item?seq=${i}`));
  // The queue really built up: the last request waited for most of the releases before it.
  expect(Number(header(answers[count - 1] as Answer, 'sluice-queue-ms'))).toBeGreaterThan(300);
});
