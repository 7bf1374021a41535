/**
 * `npm run load:cardinality`: a key cardinality attack on sluice (dist/cli.js, its own process).
 * 1,000,000 requests (`--keys`), each with its own keys, one in ten of them 2,000 characters long,
 * from `--concurrency` connections, against two keyed rules: `{header.x-key}` at 1/m, whose buckets
 * stay not full for a minute, so sluice can forget those keys only by its idle-key bound
 * (`keys.maxIdle`, default 100,000 as in production), and `{header.x-tenant}` at 2/s. Meanwhile a
 * legitimate tenant sends one request after another (each with a fresh x-key, as the attacker),
 * and the admin /healthz is probed every 250 ms.
 *
 * Reports sluice's RSS and heap before, during and after, sluice_keys (max and after), the attack's
 * throughput and answers, the legitimate tenant's rate (it should stay at 2/s) and the probe latency.
 *
 *   npm run load:cardinality -- [--keys 1000000] [--concurrency 128] [--max-idle 100000] [common flags]
 */
import { Agent, request } from 'undici';
import type { Chart } from './lib/charts.js';
import { percentile } from './lib/fanout.js';
import { startProbe, startSampler, type Sample } from './lib/observe.js';
import { spawnTsServer } from './lib/processes.js';
import { createProgress } from './lib/progress.js';
import { startProxy } from './lib/proxy.js';
import { round, type Table } from './lib/report.js';
import { parseScenarioArgs, runScenario } from './lib/scenario.js';

const { common, values } = parseScenarioArgs(
  {
    keys: { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '128' },
    'max-idle': { type: 'string', default: '100000' },
  },
  'npm run load:cardinality -- [--keys 1000000] [--concurrency 128] [--max-idle 100000]',
);
if (common.proxyUrl !== undefined) {
  process.stderr.write('load:cardinality measures sluice itself (its memory, its sluice_keys): --proxy-url is not supported here\n');
  process.exit(2);
}
const keyCount = common.quick ? 50_000 : Number(values.keys);
const concurrency = Number(values.concurrency);
const maxIdle = common.quick ? 5_000 : Number(values['max-idle']);
const VICTIM_RATE = 2;
const MB = 1024 * 1024;
const mb = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : round(bytes / MB, 1));
const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

await runScenario({ scenario: 'cardinality', title: `cardinality: ${keyCount} distinct keys, keys.maxIdle ${maxIdle}`, common }, async () => {
  const upstream = await spawnTsServer('upstream-server.ts', ['--port', String(common.upstreamPort)]);
  const proxy = await startProxy(
    common,
    `# written by load/cardinality.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
shutdown: { grace: 1s }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - key: "{header.x-key}"
        rate: 1/m
      - key: "{header.x-tenant}"
        rate: ${VICTIM_RATE}/s
    keys: { maxIdle: ${maxIdle} }
    queue: { maxWait: 10s }
`,
    { label: 'cardinality', stdout: 'null' },
  );
  const sampler = startSampler({ adminUrl: proxy.adminUrl, pid: proxy.pid, everyMs: 2_000, upstream: 'api' });
  const probe = startProbe(`${proxy.adminUrl as string}/healthz`, 250);
  const progress = createProgress('cardinality');
  const agent = new Agent({ connections: concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const get = async (key: string, path = '/api/x', dispatcher = agent, tenant = key): Promise<number> => {
    try {
      const response = await request(`${proxy.proxyUrl}${path}`, { dispatcher, headers: { 'x-key': key, 'x-tenant': tenant } });
      await response.body.dump();
      return response.statusCode;
    } catch {
      return 0;
    }
  };
  const snapshot = async (): Promise<Sample> => {
    await sampler.sampleNow();
    return sampler.sampleNow();
  };

  progress.set('warm-up: 5000 requests');
  for (let i = 0; i < 5_000; i += concurrency) await Promise.all(Array.from({ length: concurrency }, (_, j) => get(`warm-${i + j}`)));
  await sleep(3_000);
  const baseline = await snapshot();

  let attacking = true;
  const victimDone: number[] = [];
  let victimFailed = 0;
  // Two requests outstanding at all times, so that the pace measured is sluice's, not this process's.
  const victimAgent = new Agent({ connections: 2 });
  let victimSent = 0;
  const victimWorker = async (): Promise<void> => {
    while (attacking) {
      const status = await get(`victim-${victimSent++}`, '/api/victim', victimAgent, 'victim');
      if (status === 200) victimDone.push(performance.now());
      else victimFailed++;
    }
  };
  const victim = Promise.all([victimWorker(), victimWorker()]);

  const statuses = new Map<number, number>();
  let done = 0;
  let next = 0;
  const attackStarted = performance.now();
  const worker = async (): Promise<void> => {
    while (next < keyCount) {
      const i = next++;
      const key = i % 10 === 0 ? `attacker-${i}-${'k'.repeat(2_000)}` : `attacker-${i}`;
      const status = await get(key);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (++done % 10_000 === 0) {
        const last = sampler.samples.at(-1);
        progress.set(
          `attack: ${done}/${keyCount} keys, ${Math.round((done / (performance.now() - attackStarted)) * 1000)} req/s, sluice_keys ${last?.keys ?? '?'}, RSS ${mb(last?.rssBytes) ?? '?'} MB`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const attackMs = performance.now() - attackStarted;
  const during = [...sampler.samples];
  attacking = false;
  await victim;
  await victimAgent.close();
  progress.set('settling 5 s');
  await sleep(5_000);
  const after = await snapshot();
  progress.stop();
  await agent.close();
  const samples = await sampler.stop();
  const probePoints = await probe.stop();
  await proxy.stop();
  await upstream.stop();

  const keysMax = Math.max(...during.map((s) => s.keys ?? 0));
  const rssPeak = Math.max(...samples.map((s) => s.rssBytes ?? 0));
  const victimSpanSec = victimDone.length > 1 ? ((victimDone.at(-1) as number) - (victimDone[0] as number)) / 1000 : Number.NaN;
  const victimRate = (victimDone.length - 1) / victimSpanSec;
  const probeMs = probePoints.map(([, ms]) => ms);
  const probeFailed = probeMs.filter((ms) => !Number.isFinite(ms)).length;
  const probeOk = probeMs.filter((ms) => Number.isFinite(ms));
  const rssGrowthMb = ((after.rssBytes ?? 0) - (baseline.rssBytes ?? 0)) / MB;

  const tables: Table[] = [
    {
      title: 'the attack',
      columns: ['distinct keys', 'connections', 'seconds', 'req/s', 'answers'],
      rows: [
        [keyCount, concurrency, round(attackMs / 1000, 1), Math.round((keyCount / attackMs) * 1000), [...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')],
      ],
    },
    {
      title: 'sluice memory and keys',
      columns: ['', 'RSS (MB)', 'heap used (MB)', 'sluice_keys'],
      rows: [
        ['baseline (after warm-up)', mb(baseline.rssBytes), mb(baseline.heapUsedBytes), baseline.keys],
        ['peak during the attack', round(rssPeak / MB, 1), mb(Math.max(...during.map((s) => s.heapUsedBytes ?? 0))), keysMax],
        ['5 s after', mb(after.rssBytes), mb(after.heapUsedBytes), after.keys],
      ],
    },
    {
      title: 'meanwhile',
      columns: ['legitimate tenant: requests', 'its rate (/s)', 'its failures', 'probes', 'probe p99 (ms)', 'probe max (ms)', 'probes failed'],
      rows: [
        [victimDone.length, round(victimRate, 3), victimFailed, probeMs.length, round(percentile(probeOk, 99), 1), round(Math.max(...probeOk), 1), probeFailed],
      ],
    },
  ];
  const charts: Chart[] = [
    {
      kind: 'line',
      title: 'sluice RSS and heap (MB)',
      xLabel: 'seconds',
      yLabel: 'MB',
      series: [
        { name: 'RSS', points: samples.filter((s) => s.rssBytes !== undefined).map((s) => [round(s.t, 1), mb(s.rssBytes) as number]) },
        { name: 'heap used', points: samples.filter((s) => s.heapUsedBytes !== undefined).map((s) => [round(s.t, 1), mb(s.heapUsedBytes) as number]) },
      ],
      yMin: 0,
    },
    {
      kind: 'line',
      title: 'sluice_keys (thousands)',
      xLabel: 'seconds',
      yLabel: 'thousands',
      series: [{ name: 'sluice_keys', points: samples.filter((s) => s.keys !== undefined).map((s) => [round(s.t, 1), (s.keys as number) / 1000]) }],
      hLines: [{ y: maxIdle / 1000, label: 'keys.maxIdle' }],
      yMin: 0,
    },
  ];
  return {
    tables,
    targets: [
      {
        name: 'keys bounded',
        target: `sluice_keys <= maxIdle + ${2 * (concurrency + 1)} (two per request in flight)`,
        measured: String(keysMax),
        met: keysMax <= maxIdle + 2 * (concurrency + 1),
      },
      {
        name: 'every attack request answered',
        target: `${keyCount} x 200`,
        measured: [...statuses].map(([s, n]) => `${s}: ${n}`).join(', '),
        met: statuses.get(200) === keyCount,
      },
      {
        name: 'legitimate tenant keeps its rate',
        target: `${VICTIM_RATE * 0.9}..${VICTIM_RATE * 1.01}/s`,
        measured: `${round(victimRate, 3)}/s`,
        met: victimRate >= VICTIM_RATE * 0.9 && victimRate <= VICTIM_RATE * 1.01 && victimFailed === 0,
      },
      {
        name: 'sluice answers throughout',
        target: 'no failed probe, max < 1000 ms',
        measured: `${probeFailed} failed, max ${round(Math.max(...probeOk), 1)} ms`,
        met: probeFailed === 0 && Math.max(...probeOk) < 1000,
      },
    ],
    charts,
    notes: [
      `RSS growth from baseline to 5 s after the attack: ${round(rssGrowthMb, 1)} MB. The idle-key LRU holds up to keys.maxIdle (${maxIdle}) keys whose buckets are not yet full, each a few hundred bytes (load:scale measures the cost per idle key); keys longer than 256 characters are kept as their SHA-256.`,
      'RSS is read from /proc every 2 s; heap and sluice_keys from the admin /metrics at the same time.',
    ],
    data: {
      keyCount,
      concurrency,
      maxIdle,
      attackMs,
      statuses: Object.fromEntries(statuses),
      baseline,
      after,
      keysMax,
      rssPeak,
      victimRate,
      victimRequests: victimDone.length,
      probeFailed,
      samples,
    },
  };
});
