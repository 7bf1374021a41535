import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { parseConfig } from '../../src/config/load-config.js';
import { runSluice, type SluiceProcess } from '../helpers/cli-process.js';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';

const config = (target: string, rate: string): string => `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
log: { level: info }
upstreams:
  - name: api
    prefix: /
    target: ${target}
    limits: [{ rate: ${rate} }]
    queue: { maxWait: 60s }
`;

const waitFor = async (check: () => boolean, timeoutMs = 5000): Promise<void> => {
  const until = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Median gap, in ms, between consecutive arrivals at the upstream in [from, to). */
function medianGap(arrivals: number[], from: number, to: number): number {
  const gaps = arrivals.slice(from + 1, to).map((t, i) => t - (arrivals[from + i] as number));
  gaps.sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)] as number;
}

describe('hot reload through the CLI', () => {
  let sluice: SluiceProcess | undefined;
  let upstream: ScriptedUpstream | undefined;
  afterEach(async () => {
    sluice?.child.kill('SIGKILL');
    await upstream?.close();
  });

  it('SIGHUP with a changed rate changes the release rate from the next release, keeping the queue', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await runSluice(config(upstream.url, '5/s'));
    const agent = new Agent({ connections: 40 });
    const calls = Array.from({ length: 30 }, (_, i) =>
      request(`${sluice?.url}/r/${i}`, { dispatcher: agent }).then((r) => r.body.text().then(() => r.statusCode)),
    );
    await waitFor(() => (upstream?.seen.length ?? 0) >= 6); // ~1 s at 5/s
    writeFileSync(sluice.configPath, config(upstream.url, '25/s'));
    sluice.child.kill('SIGHUP');
    const statuses = await Promise.all(calls);
    await agent.close();
    expect(statuses.every((s) => s === 200)).toBe(true);
    const arrivals = upstream.seen.map((r) => r.at);
    expect(arrivals).toHaveLength(30);
    // Before: one every ~200 ms; well after the reload: one every ~40 ms.
    expect(medianGap(arrivals, 0, 6)).toBeGreaterThan(150);
    expect(medianGap(arrivals, 15, 30)).toBeLessThan(60);
    await waitFor(() => sluice?.lines.some((l) => l.includes('configuration reloaded')) ?? false);
  });

  it('SIGHUP with a broken file logs its problems and keeps serving with the running configuration', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await runSluice(config(upstream.url, '50/s'));
    writeFileSync(sluice.configPath, 'upstreams:\n  - name: api\n    prefix: /\n    target: ftp://nowhere\n    limits: [{ rate: fast }]\n');
    sluice.child.kill('SIGHUP');
    await waitFor(() => sluice?.lines.some((l) => l.includes('configuration not reloaded')) ?? false);
    const line = JSON.parse(sluice.lines.find((l) => l.includes('configuration not reloaded')) as string) as { problems: { path: string; line: number }[] };
    expect(line.problems.map((p) => p.path).sort()).toEqual(['upstreams[0].limits[0].rate', 'upstreams[0].target']);
    const response = await request(`${sluice.url}/still`);
    await response.body.text();
    expect(response.statusCode).toBe(200);
    expect(upstream.seen.map((r) => r.url)).toEqual(['/still']);
  });

  it('reloads when the file changes, without a signal', async () => {
    upstream = await ScriptedUpstream.start();
    const other = await ScriptedUpstream.start();
    try {
      sluice = await runSluice(config(upstream.url, '50/s'));
      writeFileSync(sluice.configPath, config(other.url, '50/s'));
      await waitFor(() => sluice?.lines.some((l) => l.includes('configuration reloaded')) ?? false);
      const response = await request(`${sluice.url}/moved`);
      await response.body.text();
      expect(response.statusCode).toBe(200);
      expect(other.seen.map((r) => r.url)).toEqual(['/moved']);
      expect(upstream.seen).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

describe('SluiceApp#reload', () => {
  let sluice: RunningSluice | undefined;
  let upstream: ScriptedUpstream | undefined;
  afterEach(async () => {
    await sluice?.close();
    await upstream?.close();
  });

  const yaml = (target: string, limits: string, extra = ''): string => `upstreams:
  - name: api
    prefix: /api
    target: ${target}
    limits: ${limits}
${extra}`;

  it('reports what it did: updated in place, replaced, added, removed, and what needs a restart', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await startSluice(
      yaml(upstream.url, '[{ rate: 10/s }]', `  - name: old\n    prefix: /old\n    target: ${upstream.url}\n    limits: [{ rate: 1/s }]\n`),
    );
    const next = parseConfig(
      `listen: { host: 127.0.0.1, port: 1 }\nadmin: { host: 127.0.0.1, port: 0 }\n${yaml(upstream.url, '[{ rate: 20/s }]', `  - name: new\n    prefix: /new\n    target: ${upstream.url}\n    limits: [{ rate: 1/s }]\n`)}`,
      { env: {} },
    );
    expect(sluice.app.reload(next)).toEqual({ updated: ['api'], replaced: [], added: ['new'], removed: ['old'], needsRestart: ['listen'] });
    expect(sluice.app.config.listen.port).toBe(0); // the running listener is what it was
    expect(sluice.app.upstreams.map((u) => u.name)).toEqual(['api', 'new']);
    const removed = await request(`${sluice.url}/old/x`);
    expect(removed.statusCode).toBe(404);
    await removed.body.text();
  });

  it('replaces an upstream whose limits changed shape; the old one drains what it had queued', async () => {
    upstream = await ScriptedUpstream.start();
    sluice = await startSluice(yaml(upstream.url, '[{ rate: 2/s }]'));
    const first = sluice.app.upstreams[0];
    const queued = Array.from({ length: 3 }, () => request(`${sluice?.url}/api/q`).then((r) => r.body.text().then(() => r.statusCode)));
    await waitFor(() => (first?.scheduler.queued ?? 0) === 2);
    const next = parseConfig(
      `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\n${yaml(upstream.url, '[{ rate: 50/s }, { key: "{header.x-k}", rate: 50/s }]')}`,
      { env: {} },
    );
    expect(sluice.app.reload(next).replaced).toEqual(['api']);
    expect(sluice.app.upstreams[0]).not.toBe(first);
    const fresh = await request(`${sluice.url}/api/fresh`, { headers: { 'x-k': 'a' } });
    await fresh.body.text();
    expect(fresh.statusCode).toBe(200);
    expect(await Promise.all(queued)).toEqual([200, 200, 200]);
    expect(upstream.seen.map((r) => r.url)).toContain('/fresh');
  });
});
