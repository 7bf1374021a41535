/**
 * The mixed fault load against sluice in its own process (the built dist/cli.js), for
 * `load:nothing-lost` and `load:soak`: the faulty upstream and the clients of fault-mix.ts, plus
 * upstream outages now and then, sluice's memory sampled throughout, its per-request log lines
 * read from its stdout, its exit watched (a crash is an exit before the run stops it).
 */
import { createInterface } from 'node:readline';
import { FaultyUpstream, faultMixConfig, reconcile, runClients, type ClientTally, type Reconciliation } from './fault-mix.js';
import { parsePrometheus, metricValue, startSampler, type Sample } from './observe.js';
import { spawnSluice } from './processes.js';
import type { Progress } from './progress.js';

export interface FaultRunOptions {
  readonly durationMs: number;
  readonly concurrency: number;
  readonly seed: number;
  /** How often sluice's RSS and metrics are sampled. */
  readonly sampleEveryMs: number;
  /** An upstream outage (connections refused) of `outageMs` every `outageEveryMs`; 0: none. */
  readonly outageEveryMs: number;
  readonly outageMs: number;
  readonly progress: Progress;
}

export interface FaultRunResult {
  readonly tally: ClientTally;
  readonly reconciliation: Reconciliation;
  /** sluice's log lines per outcome. */
  readonly loggedByOutcome: Record<string, number>;
  readonly samples: Sample[];
  /** sluice exited before the run stopped it. */
  readonly crashed: boolean;
  /** sluice's exit code after SIGTERM at the end (0: a clean stop). */
  readonly exitCode: number | null;
  /** Log lines at error level or above (the first 20). */
  readonly errorLines: string[];
  readonly errorLineCount: number;
  readonly upstreamCounts: Record<string, number>;
  readonly outages: number;
  readonly wallSec: number;
}

export async function runFaultLoad(options: FaultRunOptions): Promise<FaultRunResult> {
  const started = performance.now();
  const upstream = await FaultyUpstream.start({ seed: options.seed });
  const sluice = await spawnSluice(faultMixConfig(upstream.url), { stdout: 'pipe' });
  let stopping = false;
  let crashed = false;
  sluice.process.once('exit', () => {
    if (!stopping) crashed = true;
  });

  const ids = new Map<string, number>();
  const byOutcome: Record<string, number> = {};
  const errorLines: string[] = [];
  let errorLineCount = 0;
  const lines = createInterface({ input: sluice.process.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    if (line.includes('"msg":"request"')) {
      const entry = JSON.parse(line) as { path?: string; outcome?: string };
      const id = /^\/mix\/r\/(.+)$/.exec(entry.path ?? '')?.[1];
      if (id !== undefined) ids.set(id, (ids.get(id) ?? 0) + 1);
      byOutcome[entry.outcome ?? '?'] = (byOutcome[entry.outcome ?? '?'] ?? 0) + 1;
    } else if (/"level":(50|60)/.test(line)) {
      errorLineCount++;
      if (errorLines.length < 20) errorLines.push(line);
    }
  });

  const sampler = startSampler({ adminUrl: sluice.adminUrl, pid: sluice.pid, everyMs: options.sampleEveryMs, upstream: 'mix' });
  let outages = 0;
  let outageTimer: NodeJS.Timeout | undefined;
  let outageInProgress: Promise<void> | undefined;
  const scheduleOutage = (): void => {
    if (options.outageEveryMs <= 0) return;
    outageTimer = setTimeout(() => {
      outages++;
      options.progress.log(`  upstream outage ${outages}: ${options.outageMs} ms of refused connections`);
      outageInProgress = upstream.outage(options.outageMs).then(scheduleOutage);
    }, options.outageEveryMs);
  };
  scheduleOutage();

  const tally = await runClients({
    proxyUrl: sluice.proxyUrl,
    durationMs: options.durationMs,
    concurrency: options.concurrency,
    seed: options.seed + 1,
    onProgress: (t) => {
      const last = sampler.samples.at(-1);
      const rss = last?.rssBytes === undefined ? '?' : (last.rssBytes / 1024 / 1024).toFixed(1);
      options.progress.set(
        `${t.sent} requests: ok ${t.outcomes.ok}, refused ${t.outcomes.refused}, errors ${t.outcomes.error}, aborted ${t.outcomes.aborted}; sluice RSS ${rss} MB${crashed ? ', CRASHED' : ''}`,
      );
    },
  });
  clearTimeout(outageTimer);
  await outageInProgress;
  clearTimeout(outageTimer);

  // The last log lines and counters settle within a moment of the last answer.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  let sluiceTotal = Number.NaN;
  try {
    const response = await fetch(`${sluice.adminUrl}/metrics`);
    sluiceTotal = metricValue(parsePrometheus(await response.text()), 'sluice_requests_total', 'upstream="mix"') ?? Number.NaN;
  } catch {
    // sluice is gone: the crash is reported
  }
  const samples = await sampler.stop();
  stopping = true;
  const exitCode = crashed ? sluice.process.exitCode : await sluice.stop(15_000);
  lines.close();
  await upstream.close();
  const reconciliation = reconcile(tally, { ids, byOutcome }, sluiceTotal);
  return {
    tally,
    reconciliation,
    loggedByOutcome: byOutcome,
    samples,
    crashed,
    exitCode,
    errorLines,
    errorLineCount,
    upstreamCounts: Object.fromEntries(upstream.counts),
    outages,
    wallSec: (performance.now() - started) / 1000,
  };
}

/** Least-squares slope of [x, y] points (y per x unit); NaN with fewer than two points. */
export function slope(points: readonly (readonly [number, number])[]): number {
  if (points.length < 2) return Number.NaN;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}
