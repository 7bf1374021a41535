/**
 * `npm run load:soak`: sluice (dist/cli.js, its own process) under a mixed fault load for
 * `--minutes` (default 10): an upstream that answers 200, slowly, streamed, 429, 503, 500, resets
 * before or during its answer, stalls or never answers; a 3 s outage of the upstream (connections
 * refused) every 2 minutes; 48 clients over 40 keys, some POSTs, some oversized, 5% aborted.
 *
 * Reports RSS over time (and its slope after the first 2 minutes of warm-up), requests lost (every
 * accepted request must get exactly one answer: the client's accounting against
 * sluice_requests_total and sluice's one log line per request), crashes (an exit before the end)
 * and the exit code of the SIGTERM at the end.
 *
 *   npm run load:soak -- [--minutes 10] [--concurrency 48] [--seed 1] [common flags]
 */
import type { Chart } from './lib/charts.js';
import { runFaultLoad, slope } from './lib/fault-run.js';
import { createProgress } from './lib/progress.js';
import { round, type Table } from './lib/report.js';
import { parseScenarioArgs, runScenario } from './lib/scenario.js';

const { common, values } = parseScenarioArgs(
  {
    minutes: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '48' },
    seed: { type: 'string', default: '1' },
  },
  'npm run load:soak -- [--minutes 10] [--concurrency 48] [--seed 1]',
);
if (common.proxyUrl !== undefined) {
  process.stderr.write('load:soak watches sluice itself (its memory, its logs, its exit): --proxy-url is not supported here\n');
  process.exit(2);
}
const minutes = common.quick ? 1 : Number(values.minutes);
if (!(minutes > 0 && minutes <= 24 * 60)) {
  process.stderr.write('--minutes must be a number of minutes in (0, 1440]\n');
  process.exit(2);
}
const concurrency = Number(values.concurrency);
const WARMUP_MIN = Math.min(2, minutes / 5);
const MB = 1024 * 1024;

await runScenario({ scenario: 'soak', title: `soak: ${minutes} min of mixed faults, ${concurrency} clients`, common }, async () => {
  const progress = createProgress('soak', { everyMs: 30_000 });
  const run = await runFaultLoad({
    durationMs: minutes * 60_000,
    concurrency,
    seed: Number(values.seed),
    sampleEveryMs: 5_000,
    outageEveryMs: 120_000,
    outageMs: 3_000,
    progress,
  });
  progress.stop();

  const rss = run.samples.filter((s) => s.rssBytes !== undefined).map((s) => [s.t / 60, (s.rssBytes as number) / MB] as const);
  const afterWarmup = rss.filter(([t]) => t >= WARMUP_MIN);
  const rssAt = (from: number, to: number): number[] => rss.filter(([t]) => t >= from && t < to).map(([, v]) => v);
  const mean = (xs: number[]): number => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  const warmRss = mean(rssAt(WARMUP_MIN, WARMUP_MIN + 1));
  const endRss = mean(rssAt(minutes - 1, minutes + 1));
  const peakRss = Math.max(...rss.map(([, v]) => v));
  const slopeMbPerMin = slope(afterWarmup);
  const perMinute: [number, number][] = [];
  for (let m = 0; m < Math.ceil(minutes); m++) perMinute.push([m + 1, round(mean(rssAt(m, m + 1)), 1)]);
  const { tally, reconciliation: r } = run;
  const lost = r.answeredNotLogged + r.hung + Math.abs(r.clientAccounted - r.sluiceTotal);

  const tables: Table[] = [
    {
      title: 'requests',
      columns: [
        'sent',
        'ok (relayed)',
        'refused (sluice)',
        'errors (cut)',
        'aborted',
        'sluice_requests_total',
        'client accounted',
        'lost',
        'logged twice',
        'hung',
      ],
      rows: [
        [
          tally.sent,
          tally.outcomes.ok,
          tally.outcomes.refused,
          tally.outcomes.error,
          tally.outcomes.aborted,
          r.sluiceTotal,
          r.clientAccounted,
          lost,
          r.loggedTwice,
          r.hung,
        ],
      ],
    },
    { title: "sluice's outcomes (its log lines)", columns: Object.keys(run.loggedByOutcome), rows: [Object.values(run.loggedByOutcome)] },
    { title: 'what the upstream did (attempts)', columns: Object.keys(run.upstreamCounts), rows: [Object.values(run.upstreamCounts)] },
    {
      title: 'sluice RSS (MB)',
      columns: ['after warm-up', 'last minute', 'peak', `slope after ${round(WARMUP_MIN, 1)} min (MB/min)`, 'samples'],
      rows: [[round(warmRss, 1), round(endRss, 1), round(peakRss, 1), round(slopeMbPerMin, 3), rss.length]],
    },
    { title: 'sluice RSS per minute (mean MB)', columns: perMinute.map(([m]) => `min ${m}`), rows: [perMinute.map(([, v]) => v)] },
    {
      title: 'process',
      columns: ['crashed', 'exit code after SIGTERM', 'error log lines', 'upstream outages', 'wall (s)'],
      rows: [[run.crashed ? 'YES' : 'no', run.exitCode ?? 'none', run.errorLineCount, run.outages, round(run.wallSec, 0)]],
    },
  ];
  const charts: Chart[] = [
    {
      kind: 'line',
      title: 'sluice RSS (MB) over the soak',
      xLabel: 'minutes',
      yLabel: 'MB',
      series: [{ name: 'RSS', points: rss.map(([t, v]) => [round(t, 2), round(v, 1)]) }],
      yMin: 0,
    },
  ];
  return {
    tables,
    targets: [
      { name: 'requests lost', target: '0', measured: String(lost), met: lost === 0 && r.loggedTwice === 0 && r.loggedUnknown === 0 },
      { name: 'crashes', target: '0', measured: run.crashed ? '1' : '0', met: !run.crashed },
      { name: 'clean stop', target: 'exit 0 on SIGTERM', measured: `exit ${run.exitCode ?? 'none'}`, met: run.exitCode === 0 },
      {
        name: 'RSS flat after warm-up',
        target: '< 1 MB/min, last minute within 25 MB of warm',
        measured: `${round(slopeMbPerMin, 3)} MB/min, ${round(endRss - warmRss, 1)} MB`,
        met: slopeMbPerMin < 1 && endRss - warmRss < 25,
      },
    ],
    charts,
    notes: [
      `${minutes} min, ${concurrency} clients, seed ${values.seed as string}; RSS of the sluice process from /proc every 5 s; warm-up: the first ${round(WARMUP_MIN, 1)} min.`,
      'lost = requests sluice had (answered, or written by the client before it aborted them) but did not log + left hanging + |client accounting - sluice_requests_total|. Requests the client aborted before writing them never reached sluice and are not counted.',
      `aborted before the client had written them: ${r.abortedBeforeAccepted}.`,
      ...(run.errorLines.length > 0 ? [`error log lines (first ${run.errorLines.length}): ${run.errorLines.join(' | ')}`] : []),
    ],
    data: {
      minutes,
      concurrency,
      seed: values.seed,
      tally: { ...tally, byId: undefined },
      reconciliation: r,
      run: { ...run, tally: undefined },
      rssPerMinute: perMinute,
    },
  };
});
