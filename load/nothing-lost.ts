/**
 * `npm run load:nothing-lost`: 60 s of the mixed fault load (see load/lib/fault-mix.ts) against
 * sluice in its own process, with one upstream outage in the middle. Every request sluice accepted
 * must get exactly one answer: the clients' accounting (ok + refused + errors + aborted) must equal
 * sluice_requests_total summed over outcomes, sluice must log each request exactly once, and no
 * client may be left hanging. The 20 s version is test/security/nothing-lost.test.ts; the
 * 10-minute one `npm run load:soak`.
 *
 *   npm run load:nothing-lost -- [--seconds 60] [--concurrency 48] [--seed 1] [common flags]
 */
import { runFaultLoad } from './lib/fault-run.js';
import { createProgress } from './lib/progress.js';
import type { Table } from './lib/report.js';
import { parseScenarioArgs, runScenario } from './lib/scenario.js';

const { common, values } = parseScenarioArgs(
  {
    seconds: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '48' },
    seed: { type: 'string', default: '1' },
  },
  'npm run load:nothing-lost -- [--seconds 60] [--concurrency 48] [--seed 1]',
);
if (common.proxyUrl !== undefined) {
  process.stderr.write("load:nothing-lost reads sluice's own logs and counters: --proxy-url is not supported here\n");
  process.exit(2);
}
const seconds = common.quick ? 15 : Number(values.seconds);
const concurrency = Number(values.concurrency);

await runScenario({ scenario: 'nothing-lost', title: `nothing lost: ${seconds} s of mixed faults, ${concurrency} clients`, common }, async () => {
  const progress = createProgress('nothing-lost');
  const run = await runFaultLoad({
    durationMs: seconds * 1000,
    concurrency,
    seed: Number(values.seed),
    sampleEveryMs: 2_000,
    outageEveryMs: (seconds * 1000) / 2,
    outageMs: 2_000,
    progress,
  });
  progress.stop();
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
    { title: 'answers by status, as the clients saw them', columns: Object.keys(tally.byStatus), rows: [Object.values(tally.byStatus)] },
    { title: 'what the upstream did (attempts)', columns: Object.keys(run.upstreamCounts), rows: [Object.values(run.upstreamCounts)] },
  ];
  return {
    tables,
    targets: [
      { name: 'requests lost', target: '0', measured: String(lost), met: lost === 0 && r.loggedTwice === 0 && r.loggedUnknown === 0 },
      {
        name: 'client accounting = sluice_requests_total',
        target: 'equal',
        measured: `${r.clientAccounted} / ${r.sluiceTotal}`,
        met: r.clientAccounted === r.sluiceTotal,
      },
      { name: 'crashes', target: '0', measured: run.crashed ? '1' : '0', met: !run.crashed },
      { name: 'clean stop', target: 'exit 0 on SIGTERM', measured: `exit ${run.exitCode ?? 'none'}`, met: run.exitCode === 0 },
    ],
    charts: [],
    notes: [
      `aborted before the client had written them (never reached sluice, not counted): ${r.abortedBeforeAccepted}.`,
      ...(run.errorLines.length > 0 ? [`error log lines (first ${run.errorLines.length}): ${run.errorLines.join(' | ')}`] : []),
    ],
    data: { seconds, concurrency, seed: values.seed, tally: { ...tally, byId: undefined }, reconciliation: r, run: { ...run, tally: undefined } },
  };
});
