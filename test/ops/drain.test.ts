import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { Standin } from '../../load/lib/standin.js';
import { runSluice, type SluiceProcess } from '../helpers/cli-process.js';

describe('SIGTERM: a rate-aware drain', () => {
  let sluice: SluiceProcess | undefined;
  let api: Standin | undefined;
  afterEach(async () => {
    sluice?.child.kill('SIGKILL');
    await api?.close();
  });

  it('keeps releasing queued requests at the rate for the grace period, then answers 503 with Retry-After, and exits 0', async () => {
    // The API allows 40 in any 1000 ms while sluice sends 20/s: this test is about the drain, and its
    // judge shares an event loop with the 100 clients starting up, which can timestamp the first
    // arrival late enough for a strict 20 to count 21 in a window (a 429 then pauses the key 1 s).
    api = new Standin({ window: { requests: 40, windowMs: 1000 } });
    const apiUrl = await api.listen();
    sluice = await runSluice(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
shutdown: { grace: 2s }
log: { level: info }
upstreams:
  - name: api
    prefix: /
    target: ${apiUrl}
    limits: [{ rate: 20/s }]
    queue: { maxWait: 60s }
`);
    const agent = new Agent({ connections: 100 });
    const url = sluice.url;
    const calls = Array.from({ length: 100 }, async (_, i) => {
      const response = await request(`${url}/item/${i}`, { dispatcher: agent });
      const body = await response.body.text();
      return { status: response.statusCode, retryAfter: response.headers['retry-after'], body };
    });
    // Let the queue fill, then ask sluice to stop.
    await new Promise((r) => setTimeout(r, 300));
    const readyBefore = (await fetch(`${sluice.adminUrl}/readyz`)).status;
    const signalledAt = performance.now();
    sluice.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const readyDuring = (await fetch(`${sluice.adminUrl}/readyz`)).status;
    const late = await request(`${url}/late`, { dispatcher: agent });
    const lateBody = JSON.parse(await late.body.text()) as { code: string };

    const results = await Promise.all(calls);
    const code = await sluice.exited;
    const exitedAfterMs = performance.now() - signalledAt;
    await agent.close();

    expect(readyBefore).toBe(200);
    expect(readyDuring).toBe(503);
    expect(late.statusCode).toBe(503);
    expect(lateBody.code).toBe('SLUICE_SHUTTING_DOWN');
    const ok = results.filter((r) => r.status === 200).length;
    const refused = results.filter((r) => r.status === 503);
    expect(ok + refused.length).toBe(100); // none hang, none lost
    // ~0.3 s before the signal plus 2 s of grace at 20/s: about 46 releases.
    expect(ok).toBeGreaterThanOrEqual(38);
    expect(ok).toBeLessThanOrEqual(52);
    for (const r of refused) {
      expect(JSON.parse(r.body)).toMatchObject({ code: 'SLUICE_SHUTTING_DOWN', status: 503 });
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    expect(code).toBe(0);
    expect(exitedAfterMs).toBeLessThan(3000);
    expect(api.stats().rejected).toBe(0);
  });

  it('exits at once on a second signal', async () => {
    api = new Standin({ window: { requests: 1, windowMs: 1000 } });
    const apiUrl = await api.listen();
    sluice = await runSluice(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
shutdown: { grace: 30s }
log: { level: info }
upstreams: [{ name: api, prefix: /, target: "${apiUrl}", limits: [{ rate: 1/s }] }]
`);
    const agent = new Agent({ connections: 10 });
    const calls = Array.from({ length: 10 }, () =>
      request(`${sluice?.url}/x`, { dispatcher: agent }).then(
        (r) => r.statusCode,
        () => 0,
      ),
    );
    await new Promise((r) => setTimeout(r, 200));
    sluice.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    const before = performance.now();
    sluice.child.kill('SIGTERM');
    const code = await sluice.exited;
    expect(performance.now() - before).toBeLessThan(2000);
    expect(code).toBe(1);
    await Promise.all(calls);
    await agent.close();
  });
});
