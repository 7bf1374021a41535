/**
 * `npm run load:headers`: sluice paces by what the API's quota headers say, with no rate configured
 * at all (issue 8, acceptance B).
 *
 * The stand-in API (its own process) allows 100 requests per 10 s and says so on every answer, in
 * one of two dialects: GitHub's `X-RateLimit-Limit/-Remaining/-Reset` (reset in epoch seconds) or
 * the IETF draft's `RateLimit: "default";r=..;t=..` with `RateLimit-Policy`. Its window is either
 * strict and sliding (at most 100 in any 10 s; the reset is when its oldest request leaves it, as
 * draft 10 defines `t`) or fixed (GitHub's kind: the whole quota comes back at the reset). sluice
 * (the build, its own process) has `limits: []` and `pacing.headers: auto`; 20 callers keep a
 * backlog waiting in it for 30 s. Measured: the API's 429s, and what it accepted in the 30 s from
 * its first request against what the quota allows in that time (300).
 *
 *   npm run load:headers -- [--runs 1] [--dialects x-ratelimit,ietf] [--windows sliding,fixed]
 *                           [--quota 100] [--window-s 10] [--duration 30] [common flags]
 *
 * Targets, for every combination: 0 upstream 429s; >= 90% of the quota used.
 */
import type { Chart } from './lib/charts.js';
import { runHeaders, type HeadersRun } from './lib/learning.js';
import { spawnSluice, spawnStandin } from './lib/processes.js';
import { createProgress } from './lib/progress.js';
import { round, type TargetResult } from './lib/report.js';
import { log, parseScenarioArgs, runScenario } from './lib/scenario.js';

const { common, values } = parseScenarioArgs(
  {
    runs: { type: 'string', default: '1' },
    dialects: { type: 'string', default: 'x-ratelimit,ietf' },
    windows: { type: 'string', default: 'sliding,fixed' },
    quota: { type: 'string', default: '100' },
    'window-s': { type: 'string', default: '10' },
    duration: { type: 'string', default: '30' },
  },
  'npm run load:headers -- [--runs 1] [--dialects x-ratelimit,ietf] [--windows sliding,fixed] [--quota 100] [--window-s 10] [--duration 30]',
);
const runs = Number(values.runs);
const dialects = String(values.dialects).split(',') as ('x-ratelimit' | 'ietf')[];
const windows = String(values.windows).split(',') as ('sliding' | 'fixed')[];
const quota = Number(values.quota);
const windowMs = Number(values['window-s']) * 1000;
const durationSec = common.quick ? 10 : Number(values.duration);

interface Case {
  readonly dialect: 'x-ratelimit' | 'ietf';
  readonly window: 'sliding' | 'fixed';
  readonly run: number;
  readonly result: HeadersRun;
}

async function runOnce(dialect: 'x-ratelimit' | 'ietf', window: 'sliding' | 'fixed', run: number): Promise<HeadersRun> {
  const api = await spawnStandin([
    '--rate',
    String(quota),
    '--window-ms',
    String(windowMs),
    '--quota-headers',
    dialect,
    ...(window === 'fixed' ? ['--fixed-window'] : []),
  ]);
  const sluice = await spawnSluice(`# written by load/headers.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
log: { level: warn }
upstreams:
  - name: api
    prefix: /
    target: ${api.url}
    limits: []
    pacing: { headers: auto }
`);
  log(`  ${dialect}, ${window} window, run ${run}: ${quota} per ${windowMs / 1000} s, sluice without a rate, ${durationSec} s`);
  const progress = createProgress(`${dialect} ${window} ${run}`);
  progress.set('backlog of 20 callers');
  try {
    return await runHeaders({ proxyUrl: sluice.proxyUrl, adminUrl: sluice.adminUrl, standinUrl: api.url, upstream: 'api', quota, windowMs, durationSec });
  } finally {
    progress.stop();
    await sluice.stop();
    await api.stop();
  }
}

await runScenario({ scenario: 'headers', title: `pacing by quota headers: ${quota} per ${windowMs / 1000} s, no rate configured`, common }, async () => {
  const cases: Case[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const window of windows) for (const dialect of dialects) cases.push({ dialect, window, run, result: await runOnce(dialect, window, run) });
  }
  const targets: TargetResult[] = [];
  for (const window of windows) {
    for (const dialect of dialects) {
      const mine = cases.filter((c) => c.dialect === dialect && c.window === window).map((c) => c.result);
      targets.push(
        {
          name: `${dialect}, ${window}: upstream 429s`,
          target: '0',
          measured: mine.map((r) => r.upstream429s).join(', '),
          met: mine.every((r) => r.upstream429s === 0),
        },
        {
          name: `${dialect}, ${window}: quota used`,
          target: '>= 90%',
          measured: mine.map((r) => `${r.accepted}/${r.possible} (${round(r.usedPercent, 1)}%)`).join(', '),
          met: mine.every((r) => r.usedPercent >= 90),
        },
      );
    }
  }
  const charts: Chart[] = [
    {
      kind: 'line',
      title: 'accepted by the API per second',
      xLabel: 'seconds',
      yLabel: 'requests',
      series: cases.map((c) => ({ name: `${c.dialect} ${c.window} ${c.run}`, points: c.result.perSecond.map((n, s) => [s, n] as const), step: true })),
      hLines: [{ y: (quota * 1000) / windowMs, label: 'quota / window' }],
      yMin: 0,
    },
  ];
  return {
    tables: [
      {
        title: `API quota ${quota} per ${windowMs / 1000} s with quota headers; sluice with no rate (limits: [], pacing.headers auto); ${durationSec} s`,
        columns: ['dialect', 'window', 'run', 'API 429s', `accepted in ${durationSec} s`, 'possible', 'quota used %', 'client non-200'],
        rows: cases.map((c) => [
          c.dialect,
          c.window,
          c.run,
          c.result.upstream429s,
          c.result.accepted,
          c.result.possible,
          round(c.result.usedPercent, 1),
          Object.entries(c.result.clientFailures)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ') || 'none',
        ]),
      },
    ],
    targets,
    charts,
    notes: [
      'GitHub style: X-RateLimit-Limit, -Remaining and -Reset (epoch seconds, rounded up). Draft style: RateLimit "default";r=R;t=T and RateLimit-Policy "default";q=Q;w=W, T in whole seconds rounded up.',
      'Sliding window: at most the quota in any window; the reset is when the oldest request leaves the window (one more request then). Fixed window: windows follow each other from the first request; the whole quota comes back at the reset.',
      'The time is counted from the API\'s first request; "possible" is quota x duration / window.',
    ],
    data: { quota, windowMs, durationSec, cases },
  };
});
