/**
 * `npm run load:adaptive`: sluice learns a limit it was told wrong (issue 8, acceptance A).
 *
 * The stand-in API really allows 20 requests in any 1000 ms (strict sliding window, its own
 * process); sluice (the build, its own process) is configured at 40/s with `adaptive` on, and 1000
 * calls go through it at once. Measured: calls ok, the API's 429s, the achieved rate (calls ok over
 * the wall time), and when `sluice_effective_rate` (the admin /metrics, polled every 500 ms)
 * settled within 10% of the real limit for the rest of the run.
 *
 *   npm run load:adaptive -- [--runs 1] [--calls 1000] [--limit 20] [--configured 40] [common flags]
 *
 * Targets: every call ok; 429s < 3% of the calls; settled within 10 s; >= 90% of the limit.
 */
import type { Chart } from './lib/charts.js';
import { runAdaptive, type AdaptiveRun } from './lib/learning.js';
import { spawnSluice, spawnStandin } from './lib/processes.js';
import { createProgress } from './lib/progress.js';
import { round, type TargetResult } from './lib/report.js';
import { log, parseScenarioArgs, runScenario } from './lib/scenario.js';

const { common, values } = parseScenarioArgs(
  {
    runs: { type: 'string', default: '1' },
    calls: { type: 'string', default: '1000' },
    limit: { type: 'string', default: '20' },
    configured: { type: 'string', default: '40' },
  },
  'npm run load:adaptive -- [--runs 1] [--calls 1000] [--limit 20] [--configured 40]',
);
const runs = Number(values.runs);
const calls = common.quick ? 200 : Number(values.calls);
const limit = Number(values.limit);
const configured = Number(values.configured);

async function runOnce(run: number): Promise<AdaptiveRun> {
  const api = await spawnStandin(['--rate', String(limit), '--window-ms', '1000']);
  const sluice = await spawnSluice(`# written by load/adaptive.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
log: { level: warn }
upstreams:
  - name: api
    prefix: /
    target: ${api.url}
    limits:
      - rate: ${configured}/s
        burst: 1
        adaptive: {}
    queue: { maxSize: ${Math.max(calls, 10_000)}, maxWait: 10m }
`);
  log(`  run ${run}: ${calls} calls at once; the API allows ${limit}/s, sluice is told ${configured}/s with adaptive on`);
  const progress = createProgress(`run ${run}`);
  try {
    return await runAdaptive({
      proxyUrl: sluice.proxyUrl,
      adminUrl: sluice.adminUrl,
      standinUrl: api.url,
      upstream: 'api',
      calls,
      limitPerSec: limit,
      onResult: (_result, done) => progress.set(`${done}/${calls} done`),
    });
  } finally {
    progress.stop();
    await sluice.stop();
    await api.stop();
  }
}

await runScenario({ scenario: 'adaptive', title: `adaptive rate: ${limit}/s API, sluice told ${configured}/s`, common }, async () => {
  const results: AdaptiveRun[] = [];
  for (let run = 1; run <= runs; run++) results.push(await runOnce(run));
  const all = <T>(f: (r: AdaptiveRun) => T): T[] => results.map(f);
  const worst = {
    ok: Math.min(...all((r) => r.ok)),
    percent429: Math.max(...all((r) => r.upstream429Percent)),
    settled: Math.max(...all((r) => r.settledAtSec ?? Number.POSITIVE_INFINITY)),
    achieved: Math.min(...all((r) => r.achievedPercent)),
  };
  const targets: TargetResult[] = [
    { name: 'every call succeeds', target: `${calls} / ${calls}`, measured: all((r) => r.ok).join(', '), met: worst.ok === calls },
    {
      name: 'upstream 429s',
      target: '< 3% of calls',
      measured: all((r) => `${r.upstream429s} (${round(r.upstream429Percent, 1)}%)`).join(', '),
      met: worst.percent429 < 3,
    },
    {
      name: 'effective rate within 10% of the limit',
      target: '< 10 s',
      measured: all((r) => (r.settledAtSec === undefined ? 'never' : `${r.settledAtSec.toFixed(1)} s`)).join(', '),
      met: worst.settled < 10,
    },
    { name: 'achieved rate', target: `>= 90% of ${limit}/s`, measured: all((r) => `${round(r.achievedPercent, 1)}%`).join(', '), met: worst.achieved >= 90 },
  ];
  const charts: Chart[] = [
    {
      kind: 'line',
      title: 'sluice_effective_rate (polled every 500 ms)',
      xLabel: 'seconds',
      yLabel: 'requests per second',
      series: results.map((r, i) => ({ name: `run ${i + 1}`, points: r.ratePoints, step: true })),
      hLines: [{ y: limit, label: `real limit ${limit}/s` }],
      yMin: 0,
    },
  ];
  return {
    tables: [
      {
        title: `${calls} calls at once, API limited to ${limit}/s (strict sliding window), sluice configured at ${configured}/s, adaptive on`,
        columns: [
          'run',
          'calls ok',
          'API 429s',
          '429s % of calls',
          'settled within 10% at (s)',
          'final rate (/s)',
          'achieved (/s)',
          '% of limit',
          'wall (s)',
          'most in any 1000 ms',
        ],
        rows: results.map((r, i) => [
          `run ${i + 1}`,
          r.ok,
          r.upstream429s,
          round(r.upstream429Percent, 2),
          r.settledAtSec === undefined ? 'never' : round(r.settledAtSec, 1),
          r.finalRatePerSec === undefined ? undefined : round(r.finalRatePerSec, 2),
          round(r.achievedPerSec, 2),
          round(r.achievedPercent, 1),
          round(r.wallSec, 1),
          r.maxAcceptedInAnySecond,
        ]),
      },
    ],
    targets,
    charts,
    notes: [
      `The API's 429s are retried by sluice (retry.attempts 5, Retry-After respected, the key paused meanwhile): they cost time, not calls.`,
      `"Settled" is the first poll of sluice_effective_rate from which every later poll of the run is within 10% of ${limit}/s.`,
      `429s at (s): ${results.map((r, i) => `run ${i + 1}: ${r.rejectionsSec.map((s) => s.toFixed(1)).join(' ') || 'none'}`).join('; ')}.`,
      ...results.flatMap((r, i) => (Object.keys(r.failures).length > 0 ? [`run ${i + 1} failures: ${JSON.stringify(r.failures)}`] : [])),
    ],
    data: { calls, limit, configured, runs: results },
  };
});
