/**
 * `npm run load:all`: every scenario, one after the other, each in its own process (each waits for
 * a quiet machine first), then a summary of every target: load/results/summary-latest.{md,html}.
 *
 *   npm run load:all -- [--only seed,accuracy,...] [flags passed on to every scenario, e.g. --quick]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../lib/processes.js';
import { formatTable, type ScenarioReport, type Table } from '../lib/report.js';
import { machineInfo } from '../lib/machine.js';
import { esc } from '../lib/charts.js';

const SCENARIOS = ['seed', 'accuracy', 'overhead', 'keys', 'scale', 'micro'];
const args = process.argv.slice(2);
const onlyAt = args.indexOf('--only');
const only = onlyAt === -1 ? SCENARIOS : String(args[onlyAt + 1]).split(',');
const passOn = onlyAt === -1 ? args : [...args.slice(0, onlyAt), ...args.slice(onlyAt + 2)];
const outAt = passOn.indexOf('--out');
const outDir = outAt === -1 ? join(ROOT, 'load', 'results') : String(passOn[outAt + 1]);
const tsx = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

const status: Record<string, number | null> = {};
for (const scenario of only) {
  if (!SCENARIOS.includes(scenario)) {
    process.stderr.write(`unknown scenario ${scenario}; one of ${SCENARIOS.join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n=== ${scenario} ===\n`);
  const run = spawnSync(process.execPath, [tsx, join(ROOT, 'load', 'scenarios', `${scenario}.ts`), ...passOn], { stdio: 'inherit' });
  status[scenario] = run.status;
}

const reports = only
  .map((s) => join(outDir, `${s}-latest.json`))
  .filter((f) => existsSync(f))
  .map((f) => JSON.parse(readFileSync(f, 'utf8')) as ScenarioReport);
const rows = reports.flatMap((r) =>
  r.targets.map((t) => [
    t.name,
    t.target,
    t.measured,
    t.met === undefined ? 'not measured' : t.met ? 'MET' : 'MISSED',
    `${r.date.slice(0, 16).replace('T', ' ')} load ${r.loadAverage.before[0]}${r.quick ? ' QUICK' : ''}`,
  ]),
);
const table: Table = {
  title: 'every target (latest run of each scenario)',
  columns: ['target', 'wanted', 'measured', 'status', 'run (UTC), 1-min load'],
  rows,
};
process.stdout.write(`\n${formatTable(table)}\n`);
const m = machineInfo();
const md = [
  `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}. Commit ${m.commit}${m.srcDirty ? ' (src/ modified)' : ''}.`,
  '',
  '| target | wanted | measured | status | run (UTC), 1-min load |',
  '| --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
].join('\n');
writeFileSync(join(outDir, 'summary-latest.md'), md);
writeFileSync(
  join(outDir, 'summary-latest.html'),
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sluice load: summary</title><style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px}</style></head><body><h1>sluice load: summary</h1><p>${esc(md.split('\n')[0] as string)}</p><table><tr>${table.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join('')}</tr>`).join('')}</table><p>${reports.map((r) => `<a href="${r.scenario}-latest.html">${esc(r.scenario)}</a>`).join(' &middot; ')}</p></body></html>\n`,
);
process.stdout.write(`\n  summary: ${join(outDir, 'summary-latest.md')} and .html\n`);
const failed = Object.entries(status).filter(([, code]) => code !== 0);
if (failed.length > 0) process.stderr.write(`scenarios that did not complete: ${failed.map(([s, c]) => `${s} (exit ${c})`).join(', ')}\n`);
process.exit(failed.length > 0 ? 1 : 0);
