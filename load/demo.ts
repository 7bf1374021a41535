/**
 * `npm run demo`: the problem sluice solves, end to end, on embedded defaults.
 *
 * A stand-in API strictly limited to 20 requests per second (any 21st request in a 1000 ms window
 * gets 429), sluice in front of it configured with that limit, and 1000 concurrent calls through
 * sluice. Shows progress, then a report: calls ok, upstream 429s, achieved rate against the limit,
 * wall time against the ideal, queue wait percentiles.
 *
 *   npm run demo -- [--count 1000] [--rate 20] [--concurrency <count>] [--json]
 *
 * Exit code 0 when every call succeeded and the API rejected nothing.
 */
import { parseArgs } from 'node:util';
import { fanout, percentile, type CallResult } from './lib/fanout.js';
import { spawnSluice, spawnStandin } from './lib/processes.js';
import type { StandinStats } from './lib/standin.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20' },
    concurrency: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('npm run demo -- [--count 1000] [--rate 20] [--concurrency <count>] [--json]\n');
  process.exit(0);
}
const count = Number(values.count);
const rate = Number(values.rate);
const concurrency = values.concurrency === undefined ? count : Number(values.concurrency);
if (!(count > 0) || !(rate > 0) || !(concurrency > 0)) {
  process.stderr.write('--count, --rate and --concurrency must be positive numbers\n');
  process.exit(2);
}

const log = (line: string): void => void (values.json ? process.stderr : process.stdout).write(`${line}\n`);
const idealMs = (count / rate) * 1000;

log(`sluice demo: ${count} concurrent calls through sluice to a stand-in API strictly limited to ${rate} requests per second`);
const api = await spawnStandin(['--rate', String(rate), '--window-ms', '1000']);
const sluice = await spawnSluice(`# written by load/demo.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
log: { level: warn }
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
`);
log(`  stand-in API ${api.url} (strict: at most ${rate} in any 1000 ms), sluice ${sluice.proxyUrl}, admin ${sluice.adminUrl}`);

const progress = createProgress(count);
const { results, wallMs } = await fanout({
  url: (i) => `${sluice.proxyUrl}/items/${i}`,
  count,
  concurrency,
  onResult: (result, done) => progress.update(result, done),
}).finally(() => progress.stop());
const stats = (await (await fetch(`${api.url}/__stats`)).json()) as StandinStats;
await sluice.stop();
await api.stop();

const ok = results.filter((r) => r.status === 200).length;
const failed = results.length - ok;
const achievedRate = (ok / wallMs) * 1000;
const queueWaits = results.filter((r) => r.queueMs !== undefined).map((r) => r.queueMs as number);
const report = {
  calls: count,
  ok,
  failed,
  upstreamRejections: stats.rejected,
  upstreamAccepted: stats.accepted,
  limitPerSec: rate,
  achievedPerSec: round(achievedRate, 2),
  achievedPercentOfLimit: round((achievedRate / rate) * 100, 1),
  wallSeconds: round(wallMs / 1000, 2),
  idealWallSeconds: round(idealMs / 1000, 2),
  maxAcceptedInAnySecond: stats.maxAcceptedInAnySecond,
  tightestSpanMs: stats.tightestSpanMs === undefined ? undefined : round(stats.tightestSpanMs, 1),
  queueWaitMs: { p50: percentile(queueWaits, 50), p99: percentile(queueWaits, 99), max: percentile(queueWaits, 100) },
  failures: summarizeFailures(results),
};

if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  log('');
  log(`  calls ok              ${ok} / ${count}${failed > 0 ? `   (${failed} failed: ${JSON.stringify(report.failures)})` : ''}`);
  log(`  upstream 429s         ${stats.rejected}`);
  log(`  achieved rate         ${report.achievedPerSec}/s = ${report.achievedPercentOfLimit}% of the ${rate}/s limit (calls ok / wall time)`);
  log(`  wall time             ${report.wallSeconds} s (ideal ${report.idealWallSeconds} s)`);
  log(`  most in any 1000 ms   ${stats.maxAcceptedInAnySecond} (the API allows ${rate})`);
  if (stats.tightestSpanMs !== undefined)
    log(`  tightest ${rate + 1} in a row   ${report.tightestSpanMs} ms apart (more than 1000 ms: never ${rate + 1} in one window)`);
  log(`  queue wait p50 / p99  ${fmtMs(report.queueWaitMs.p50)} / ${fmtMs(report.queueWaitMs.p99)}`);
  log('');
  log(ok === count && stats.rejected === 0 ? '  every call succeeded and the API never saw more than its limit.' : '  some calls did not succeed: see above.');
}
process.exit(ok === count && stats.rejected === 0 ? 0 : 1);

function createProgress(total: number) {
  const tty = process.stdout.isTTY && !values.json;
  const started = performance.now();
  let done = 0;
  let okSoFar = 0;
  let lastLine = 0;
  const recent: number[] = [];
  const render = (final = false): void => {
    const now = performance.now();
    while (recent.length > 0 && (recent[0] as number) < now - 5000) recent.shift();
    const windowSec = Math.min(5, (now - started) / 1000);
    const currentRate = windowSec > 0 ? recent.length / windowSec : 0;
    const width = 30;
    const filled = Math.round((done / total) * width);
    const line = `  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} done, ${okSoFar} ok, ${currentRate.toFixed(1)}/s, ${((now - started) / 1000).toFixed(1)} s`;
    if (tty) process.stdout.write(`\r${line}${final ? '\n' : ''}`);
    else if (final || now - lastLine >= 5000) {
      log(line);
      lastLine = now;
    }
  };
  const timer = setInterval(render, tty ? 250 : 1000);
  timer.unref();
  return {
    update(result: CallResult, completed: number) {
      done = completed;
      if (result.status === 200) okSoFar++;
      recent.push(performance.now());
    },
    stop() {
      clearInterval(timer);
      render(true);
    },
  };
}

function summarizeFailures(all: readonly CallResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of all) {
    if (r.status === 200) continue;
    const key = r.error ?? `${r.status}${r.code ? ` ${r.code}` : ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
