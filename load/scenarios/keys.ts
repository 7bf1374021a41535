/**
 * `npm run load:keys`: the seed's shape with keys. 100 accounts x 10 regions (1000 calls, one per
 * account and region, all at once) through sluice with a global rule (20/s, the API's limit) and a
 * per-account rule ({header.x-account}: 1/s, burst 1, at most 2 in flight). The calls are started
 * account by account (all of account 0's first), the order in which a FIFO queue would serve
 * account 0 completely before account 99 started. Fair release (round robin over the accounts that
 * share the global rule) instead finishes every account near the end, each at about the same pace.
 *
 *   npm run load:keys -- [--accounts 100] [--regions 10] [--rate 20] [common flags]
 */
import { fanout, percentile, type CallResult } from '../lib/fanout.js';
import { startSampler } from '../lib/observe.js';
import { spawnStandin } from '../lib/processes.js';
import { createProgress } from '../lib/progress.js';
import { profileTables, startProxy } from '../lib/proxy.js';
import { round } from '../lib/report.js';
import { log, parseScenarioArgs, runScenario } from '../lib/scenario.js';
import { perSecond, standinStats } from '../lib/upstream-stats.js';

const { common, values } = parseScenarioArgs(
  {
    accounts: { type: 'string', default: '100' },
    regions: { type: 'string', default: '10' },
    rate: { type: 'string', default: '20' },
    'latency-ms': { type: 'string', default: '50' },
  },
  'npm run load:keys -- [--accounts 100] [--regions 10] [--rate 20] [--latency-ms 50]',
);
const accounts = common.quick ? 20 : Number(values.accounts);
const regions = common.quick ? 5 : Number(values.regions);
const rate = Number(values.rate);
const count = accounts * regions;

await runScenario({ scenario: 'keys', title: `keys: ${accounts} accounts x ${regions} regions, global ${rate}/s + per-account rule`, common }, async () => {
  const api = await spawnStandin([
    '--rate',
    String(rate),
    '--window-ms',
    '1000',
    '--latency-ms',
    String(values['latency-ms']),
    '--port',
    String(common.upstreamPort),
  ]);
  if (common.proxyUrl !== undefined) log(`  stand-in API ${api.url}: point the proxy at it with ${rate}/s overall and a rule per x-account header`);
  const idealMs = (count / rate) * 1000;
  const proxy = await startProxy(
    common,
    `# written by load/scenarios/keys.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  - name: api
    prefix: /
    target: ${api.url}
    limits:
      - rate: ${rate}/s
        burst: 1
      - key: "{header.x-account}"
        rate: 1/s
        burst: 1
        concurrency: 2
    queue:
      maxSize: ${Math.max(count, 10_000)}
      maxWait: ${Math.ceil((idealMs * 2) / 1000) + 60}s
`,
    { label: 'keys' },
  );
  const accountOf = (i: number): number => Math.floor(i / regions);
  const sampler = startSampler({ adminUrl: proxy.adminUrl, pid: proxy.pid, upstream: 'api' });
  const progress = createProgress('keys');
  const { results, wallMs } = await fanout({
    url: (i) => `${proxy.proxyUrl}/accounts/${accountOf(i)}/regions/${i % regions}`,
    headers: (i) => ({ 'x-account': `acct-${accountOf(i)}` }),
    count,
    onResult: (_result, done) => progress.set(`${done}/${count} done`),
  }).finally(() => progress.stop());
  const samples = await sampler.stop();
  const stats = await standinStats(api.url);
  const profile = await proxy.stop();
  await api.stop();

  const ok = results.filter((r) => r.status === 200).length;
  const byAccount = new Map<number, CallResult[]>();
  for (const r of results) byAccount.set(accountOf(r.index), [...(byAccount.get(accountOf(r.index)) ?? []), r]);
  const lastSec = [...byAccount.values()].map((rs) => Math.max(...rs.map((r) => r.endMs)) / 1000);
  const firstSec = [...byAccount.values()].map((rs) => Math.min(...rs.map((r) => r.endMs)) / 1000);
  const half = wallMs / 2;
  const doneByHalf = [...byAccount.values()].map((rs) => rs.filter((r) => r.endMs <= half).length);
  const wallSec = wallMs / 1000;
  const achieved = (ok / wallMs) * 1000;
  const spread = {
    lastCompletionSec: {
      p10: round(percentile(lastSec, 10), 2),
      p50: round(percentile(lastSec, 50), 2),
      p90: round(percentile(lastSec, 90), 2),
      min: round(Math.min(...lastSec), 2),
      max: round(Math.max(...lastSec), 2),
    },
    firstCompletionSec: { p10: round(percentile(firstSec, 10), 2), p90: round(percentile(firstSec, 90), 2), max: round(Math.max(...firstSec), 2) },
    completedByHalfTime: { min: Math.min(...doneByHalf), max: Math.max(...doneByHalf), ideal: regions / 2 },
  };
  // With perfect round robin every account's last call is in the last round: the last 1/regions of
  // the run. Fair here: 90% of the accounts finish within the last two rounds.
  const fairFromSec = wallSec * (1 - 1 / regions);
  const fairBoundSec = wallSec * (1 - 2 / regions);
  const fair = spread.lastCompletionSec.p10 >= fairBoundSec;
  const pct = (achieved / rate) * 100;
  return {
    tables: [
      {
        title: 'keys: totals',
        columns: ['measure', 'value'],
        rows: [
          ['calls ok', `${ok} / ${count}`],
          ['upstream 429s', stats.rejected],
          ['total rate (calls ok / wall time)', `${round(achieved, 3)}/s = ${round(pct, 2)}% of ${rate}/s`],
          ['wall time (ideal)', `${round(wallSec, 2)} s (${round(idealMs / 1000, 2)} s)`],
          ['most accepted in any 1000 ms', `${stats.maxAcceptedInAnySecond} (limit ${rate})`],
        ],
      },
      {
        title: 'keys: fairness between accounts (seconds since the start)',
        columns: ['measure', 'p10', 'p50', 'p90', 'min', 'max'],
        rows: [
          [
            "each account's last completion",
            spread.lastCompletionSec.p10,
            spread.lastCompletionSec.p50,
            spread.lastCompletionSec.p90,
            spread.lastCompletionSec.min,
            spread.lastCompletionSec.max,
          ],
          [
            "each account's first completion",
            spread.firstCompletionSec.p10,
            undefined,
            spread.firstCompletionSec.p90,
            undefined,
            spread.firstCompletionSec.max,
          ],
          [
            `calls done per account by half time (ideal ${regions / 2})`,
            undefined,
            undefined,
            undefined,
            spread.completedByHalfTime.min,
            spread.completedByHalfTime.max,
          ],
        ],
      },
      ...profileTables('keys', profile),
    ],
    targets: [
      { name: 'keys: calls ok', target: `${count}/${count}`, measured: `${ok}/${count}`, met: ok === count },
      { name: 'keys: upstream 429s', target: '0', measured: String(stats.rejected), met: stats.rejected === 0 },
      { name: 'keys: total rate', target: '>= 99% of the global limit (as seed)', measured: `${round(pct, 2)}%`, met: pct >= 99 },
      {
        name: 'keys: fairness',
        target: `(ours) p10 of last completions in the last 2 rounds (>= ${round(fairBoundSec, 1)} s)`,
        measured: `p10 ${spread.lastCompletionSec.p10} s, p90 ${spread.lastCompletionSec.p90} s`,
        met: fair,
      },
    ],
    charts: [
      {
        kind: 'line',
        title: "each account's last completion, accounts sorted (flat near the end = fair)",
        xLabel: 'account rank',
        yLabel: 'seconds',
        series: [
          { name: 'last completion', points: [...lastSec].sort((a, b) => a - b).map((v, i) => [i, round(v, 2)]) },
          { name: 'first completion', points: [...firstSec].sort((a, b) => a - b).map((v, i) => [i, round(v, 2)]) },
        ],
        hLines: [{ y: fairFromSec, label: 'start of the last round' }],
      },
      {
        kind: 'line',
        title: 'requests accepted by the API per second',
        xLabel: 'seconds since the first arrival',
        yLabel: 'requests / s',
        series: [{ name: 'accepted', points: perSecond(stats.arrivalsMs ?? []), step: true }],
        hLines: [{ y: rate, label: `limit ${rate}/s` }],
      },
      {
        kind: 'line',
        title: 'sluice queue depth',
        xLabel: 'seconds',
        yLabel: 'queued',
        series: [{ name: 'sluice_queue_depth', points: samples.filter((s) => s.queueDepth !== undefined).map((s) => [round(s.t, 2), s.queueDepth as number]) }],
      },
    ],
    notes: [
      `rules: global ${rate}/s burst 1; per account {header.x-account} 1/s burst 1, concurrency 2. The stand-in API answers after ${values['latency-ms']} ms and allows ${rate} in any 1000 ms overall.`,
      "fairness: the calls start account by account, so a FIFO would finish account 0 first and account N-1 last (last completions spread over the whole run). Round robin over accounts puts every account's last call in the last round.",
    ],
    data: { ok, count, wallMs, spread, upstream: { accepted: stats.accepted, rejected: stats.rejected, byKey: stats.byKey }, lastSec, firstSec, samples },
  };
});
