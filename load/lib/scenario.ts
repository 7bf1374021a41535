/**
 * The frame every scenario runs in: common flags, waiting for a quiet machine, machine info and
 * load average, printing the tables and writing the report files.
 *
 * Common flags:
 *   --proxy-url URL      measure this proxy instead of starting sluice (see load/README.md)
 *   --admin-url URL      its admin listener, for sluice_queue_depth (optional)
 *   --upstream-port N    start the stand-in / upstream on this port (to point another proxy at it)
 *   --out DIR            where reports go (default load/results)
 *   --quick              a shortened run to check the scenario works (marked as such, not a result)
 *   --cpu-prof           run sluice with node --cpu-prof; the profile and its top functions are saved
 *   --max-load X         wait until the 1-minute load average is <= X (default 1.0)
 *   --max-wait-s N       ... for at most N seconds (default 300), then measure and say so
 */
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAverage, machineInfo, waitForQuiet } from './machine.js';
import { ROOT, SLUICE_CLI } from './processes.js';
import { formatTable, formatTargets, writeReport, type ScenarioOutcome } from './report.js';

export const COMMON_OPTIONS = {
  'proxy-url': { type: 'string' },
  'admin-url': { type: 'string' },
  'upstream-port': { type: 'string', default: '0' },
  out: { type: 'string' },
  quick: { type: 'boolean', default: false },
  'cpu-prof': { type: 'boolean', default: false },
  'max-load': { type: 'string', default: '1.0' },
  'max-wait-s': { type: 'string', default: '300' },
  help: { type: 'boolean', default: false },
} as const;

export interface CommonOptions {
  /** An external proxy to measure; undefined: the scenario starts sluice. */
  readonly proxyUrl: string | undefined;
  readonly adminUrl: string | undefined;
  readonly upstreamPort: number;
  readonly outDir: string;
  readonly quick: boolean;
  readonly cpuProf: boolean;
  readonly maxLoad: number;
  readonly maxWaitMs: number;
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; default?: string | boolean; multiple?: false }>;

/** Parses the common flags plus the scenario's own; prints `usage` for --help. */
export function parseScenarioArgs<T extends OptionSpec>(own: T, usage: string) {
  const { values } = parseArgs({ options: { ...COMMON_OPTIONS, ...own }, strict: true, allowPositionals: false });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help === true) {
    process.stdout.write(
      `${usage}\n\ncommon flags: --proxy-url URL --admin-url URL --upstream-port N --out DIR --quick --cpu-prof --max-load X --max-wait-s N\n`,
    );
    process.exit(0);
  }
  const common: CommonOptions = {
    proxyUrl: v['proxy-url'] as string | undefined,
    adminUrl: v['admin-url'] as string | undefined,
    upstreamPort: Number(v['upstream-port']),
    outDir: (v.out as string | undefined) ?? join(ROOT, 'load', 'results'),
    quick: v.quick === true,
    cpuProf: v['cpu-prof'] === true,
    maxLoad: Number(v['max-load']),
    maxWaitMs: Number(v['max-wait-s']) * 1000,
  };
  return { common, values: v };
}

export const log = (line = ''): void => void process.stdout.write(`${line}\n`);

/**
 * Runs a scenario: waits for a quiet machine, runs `body`, prints the tables and the targets,
 * writes the JSON and HTML reports. Exit code 0 when the run completed (missed targets are
 * results, not failures), 1 when it crashed.
 */
export async function runScenario(meta: { scenario: string; title: string; common: CommonOptions }, body: () => Promise<ScenarioOutcome>): Promise<void> {
  const { common } = meta;
  log(`sluice load: ${meta.title}`);
  const quiet = await waitForQuiet({ maxLoad: common.maxLoad, maxWaitMs: common.maxWaitMs, log });
  const before = loadAverage();
  log(`  machine: ${machineInfo().cpuModel}, load average ${before.join(' / ')}${common.quick ? ', QUICK run (shortened)' : ''}`);
  const started = performance.now();
  const date = new Date().toISOString();
  let outcome: ScenarioOutcome;
  try {
    outcome = await body();
  } catch (err) {
    process.stderr.write(`\n${meta.scenario} failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
  const after = loadAverage();
  const report = {
    scenario: meta.scenario,
    title: meta.title,
    date,
    command: `npm run load:${meta.scenario} -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, ''),
    machine: machineInfo(),
    loadAverage: { before, after, quietAtStart: quiet.quiet },
    quick: common.quick,
    proxy: common.proxyUrl === undefined ? `sluice ${SLUICE_CLI}, started by the scenario` : `external: ${common.proxyUrl}`,
    durationSec: Math.round((performance.now() - started) / 1000),
    ...outcome,
  };
  log('');
  for (const table of outcome.tables) log(`${formatTable(table)}\n`);
  log(formatTable(formatTargets(outcome.targets, outcome.targetsTitle)));
  log('');
  for (const note of outcome.notes) log(`  - ${note}`);
  const files = writeReport(common.outDir, report);
  log('');
  log(`  load average before ${before.join(' / ')}, after ${after.join(' / ')}`);
  log(`  report: ${relative(process.cwd(), files.html)}  (data: ${relative(process.cwd(), files.json)})`);
  process.exit(0);
}
