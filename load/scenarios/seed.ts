/**
 * `npm run load:seed`: the demo, measured. 1000 concurrent calls through sluice to a stand-in API
 * strictly limited to 20 requests in any 1000 ms (sliding window; the 21st gets 429).
 *
 *   npm run load:seed -- [--count 1000] [--rate 20] [common flags]
 */
import { fanout, percentile } from '../lib/fanout.js';
import { spawnStandin } from '../lib/processes.js';
import { createProgress } from '../lib/progress.js';
import { profileTables, startProxy } from '../lib/proxy.js';
import { round } from '../lib/report.js';
import { log, parseScenarioArgs, runScenario } from '../lib/scenario.js';
import { startSampler } from '../lib/observe.js';
import { maxInWindow, perSecond, spanRate, standinStats } from '../lib/upstream-stats.js';

const { common, values } = parseScenarioArgs(
  { count: { type: 'string', default: '1000' }, rate: { type: 'string', default: '20' } },
  'npm run load:seed -- [--count 1000] [--rate 20]',
);
const count = common.quick ? 200 : Number(values.count);
const rate = Number(values.rate);

await runScenario({ scenario: 'seed', title: `seed: ${count} concurrent calls, API limited to ${rate}/s`, common }, async () => {
  const api = await spawnStandin(['--rate', String(rate), '--window-ms', '1000', '--port', String(common.upstreamPort)]);
  const idealMs = (count / rate) * 1000;
  if (common.proxyUrl !== undefined) log(`  stand-in API ${api.url}: point the proxy at it with a limit of ${rate}/s`);
  const proxy = await startProxy(
    common,
    `# written by load/scenarios/seed.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  - name: api
    prefix: /
    target: ${api.url}
    limits:
      - rate: ${rate}/s
        burst: 1
    queue:
      maxSize: ${Math.max(count, 10_000)}
      maxWait: ${Math.ceil((idealMs * 2) / 1000) + 60}s
`,
    { label: 'seed' },
  );
  const sampler = startSampler({ adminUrl: proxy.adminUrl, pid: proxy.pid, upstream: 'api' });
  const progress = createProgress('seed');
  let ok = 0;
  const { results, wallMs } = await fanout({
    url: (i) => `${proxy.proxyUrl}/items/${i}`,
    count,
    onResult: (result, done) => {
      if (result.status === 200) ok++;
      const depth = sampler.samples[sampler.samples.length - 1]?.queueDepth;
      progress.set(`${done}/${count} done, ${ok} ok${depth === undefined ? '' : `, queue ${depth}`}`);
    },
  }).finally(() => progress.stop());
  const samples = await sampler.stop();
  const stats = await standinStats(api.url);
  const profile = await proxy.stop();
  await api.stop();

  const arrivals = stats.arrivalsMs ?? [];
  const achieved = (ok / wallMs) * 1000;
  const upstreamRate = spanRate(arrivals);
  const latencies = results.map((r) => r.endMs - r.startMs);
  const waits = results.filter((r) => r.queueMs !== undefined).map((r) => r.queueMs as number);
  const failures: Record<string, number> = {};
  for (const r of results) if (r.status !== 200) failures[r.error ?? String(r.status)] = (failures[r.error ?? String(r.status)] ?? 0) + 1;
  const pct = (achieved / rate) * 100;
  const row = {
    calls: count,
    ok,
    upstream429s: stats.rejected,
    upstreamAccepted: stats.accepted,
    achievedPerSec: round(achieved, 3),
    achievedPercent: round(pct, 2),
    upstreamSpanRatePerSec: round(upstreamRate, 3),
    upstreamSpanPercent: round((upstreamRate / rate) * 100, 2),
    wallSec: round(wallMs / 1000, 2),
    idealSec: round(idealMs / 1000, 2),
    maxAcceptedInAnySecond: stats.maxAcceptedInAnySecond,
    maxInAny1000ms: maxInWindow(arrivals, 1000),
    tightestSpanMs: stats.tightestSpanMs === undefined ? undefined : round(stats.tightestSpanMs, 1),
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p90: round(percentile(latencies, 90)),
      p99: round(percentile(latencies, 99)),
      max: round(percentile(latencies, 100)),
    },
    queueWaitMs: { p50: percentile(waits, 50), p99: percentile(waits, 99), max: percentile(waits, 100) },
    failures,
  };
  return {
    tables: [
      {
        title: 'seed',
        columns: ['measure', 'value'],
        rows: [
          ['calls ok', `${ok} / ${count}`],
          ['upstream 429s', stats.rejected],
          ['achieved rate (calls ok / wall time)', `${row.achievedPerSec}/s = ${row.achievedPercent}% of ${rate}/s`],
          ['rate at the upstream (first to last arrival)', `${row.upstreamSpanRatePerSec}/s = ${row.upstreamSpanPercent}%`],
          ['wall time (ideal)', `${row.wallSec} s (${row.idealSec} s)`],
          ['most accepted in any 1000 ms', `${row.maxInAny1000ms} (limit ${rate})`],
          [
            `tightest ${rate + 1} consecutive arrivals`,
            row.tightestSpanMs === undefined ? undefined : `${row.tightestSpanMs} ms (> 1000 ms: never ${rate + 1} in a window)`,
          ],
          ['client latency p50 / p90 / p99 / max', `${row.latencyMs.p50} / ${row.latencyMs.p90} / ${row.latencyMs.p99} / ${row.latencyMs.max} ms`],
          ['queue wait p50 / p99 (Sluice-Queue-Ms)', `${row.queueWaitMs.p50} / ${row.queueWaitMs.p99} ms`],
          ['failures', Object.keys(failures).length === 0 ? 'none' : JSON.stringify(failures)],
        ],
      },
      ...profileTables('seed', profile),
    ],
    targets: [
      { name: 'seed: calls ok', target: `${count}/${count}`, measured: `${ok}/${count}`, met: ok === count },
      { name: 'seed: upstream 429s', target: '0', measured: String(stats.rejected), met: stats.rejected === 0 },
      { name: 'seed: achieved rate', target: '>= 99% of the limit', measured: `${row.achievedPercent}%`, met: pct >= 99 },
    ],
    charts: [
      {
        kind: 'line',
        title: 'requests accepted by the API per second',
        xLabel: 'seconds since the first arrival',
        yLabel: 'requests / s',
        series: [{ name: 'accepted per second', points: perSecond(arrivals), step: true }],
        hLines: [{ y: rate, label: `limit ${rate}/s` }],
      },
      {
        kind: 'line',
        title: 'sluice queue depth (admin /metrics sluice_queue_depth)',
        xLabel: 'seconds',
        yLabel: 'queued requests',
        series: [{ name: 'queue depth', points: samples.filter((s) => s.queueDepth !== undefined).map((s) => [round(s.t, 2), s.queueDepth as number]) }],
      },
      {
        kind: 'bar',
        title: 'client latency percentiles (ms): mostly time queued, by design',
        yLabel: 'ms',
        groups: [{ label: 'calls through sluice', values: Object.entries(row.latencyMs).map(([name, value]) => ({ name, value })) }],
      },
    ],
    notes: [
      'achieved rate = calls that succeeded / wall time of the whole fan-out (first call started to last call finished), against the configured limit.',
      `sluice holds back pacing.margin (default 0.75%) of the configured rate, so 99.25% is its design ceiling at the upstream.`,
      'the stand-in runs in its own process with --no-memory-reducer so its own GC does not move the arrival times it judges.',
    ],
    data: { row, samples, perSecond: stats.perSecond, profile },
  };
});
