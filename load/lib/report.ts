/**
 * What every scenario hands back, printed as tables and written to load/results/ as
 * `<scenario>-<timestamp>.json` (everything, raw series included) and `.html` (self-contained: the
 * tables, the targets and the inline SVG charts). `<scenario>-latest.*` are copies of the newest.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { esc, renderChart, type Chart } from './charts.js';
import type { MachineInfo } from './machine.js';

export type Cell = string | number | undefined;

export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
}

/** One target of issue 5 and where the run stands against it (`met: undefined` when not measured). */
export interface TargetResult {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

export interface ScenarioOutcome {
  readonly tables: readonly Table[];
  readonly targets: readonly TargetResult[];
  /** The heading of the targets table; default "targets (issue 5)". */
  readonly targetsTitle?: string;
  readonly charts: readonly Chart[];
  /** Plain sentences for the report: how it was measured, caveats, findings. */
  readonly notes: readonly string[];
  /** Everything measured, for the JSON file. */
  readonly data: unknown;
}

export interface ScenarioReport extends ScenarioOutcome {
  readonly scenario: string;
  readonly title: string;
  readonly date: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly loadAverage: { readonly before: readonly number[]; readonly after: readonly number[]; readonly quietAtStart: boolean };
  readonly quick: boolean;
  readonly proxy: string;
  readonly durationSec: number;
}

export function formatTable(table: Table): string {
  const cells = table.rows.map((row) => row.map(cellText));
  const widths = table.columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  // Numbers right-aligned, text left-aligned.
  const numeric = table.columns.map((_, i) => table.rows.every((row) => typeof row[i] !== 'string'));
  const line = (values: readonly string[]): string =>
    `  ${values.map((v, i) => (numeric[i] && i > 0 ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number))).join('  ')}`.trimEnd();
  return [`  ${table.title}`, line(table.columns), `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`, ...cells.map(line)].join('\n');
}

export function formatTargets(targets: readonly TargetResult[], title = 'targets (issue 5)'): Table {
  return {
    title,
    columns: ['target', 'wanted', 'measured', 'status'],
    rows: targets.map((t) => [t.name, t.target, t.measured, t.met === undefined ? 'not measured' : t.met ? 'MET' : 'MISSED']),
  };
}

function cellText(cell: Cell): string {
  if (cell === undefined) return '-';
  if (typeof cell === 'number') return Number.isFinite(cell) ? String(cell) : '-';
  return cell;
}

/** Writes the JSON and HTML files; returns their paths. */
export function writeReport(dir: string, report: ScenarioReport): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = report.date.replace(/[:.]/g, '-');
  const base = join(dir, `${report.scenario}-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.html`, renderHtml(report));
  copyFileSync(`${base}.json`, join(dir, `${report.scenario}-latest.json`));
  copyFileSync(`${base}.html`, join(dir, `${report.scenario}-latest.html`));
  return { json: `${base}.json`, html: `${base}.html` };
}

function renderHtml(report: ScenarioReport): string {
  const table = (t: Table): string =>
    `<h3>${esc(t.title)}</h3><table><thead><tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${t.rows
      .map(
        (r) =>
          `<tr>${r.map((c, i) => `<td class="${i === 0 ? 'l' : 'r'}${cellText(c) === 'MISSED' ? ' miss' : cellText(c) === 'MET' ? ' met' : ''}">${esc(cellText(c))}</td>`).join('')}</tr>`,
      )
      .join('')}</tbody></table>`;
  const m = report.machine;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sluice load: ${esc(report.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 820px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; } td.r { text-align: right; font-variant-numeric: tabular-nums; }
td.miss { color: #b00; font-weight: 600; } td.met { color: #070; font-weight: 600; }
.meta { color: #555; font-size: 13px; } svg { display: block; margin: 1em 0; border: 1px solid #eee; }
li { margin: 0.3em 0; font-size: 14px; }
</style></head><body>
<h1>sluice load: ${esc(report.title)}</h1>
<p class="meta">${esc(report.date)} &middot; ${esc(m.cpuModel)}, ${m.cores} cores, ${m.memoryGiB} GiB &middot; node ${esc(m.node)} &middot; commit ${esc(m.commit)}${m.srcDirty ? ' (src/ modified)' : ''}
&middot; load average before ${report.loadAverage.before.join(' / ')}, after ${report.loadAverage.after.join(' / ')}${report.loadAverage.quietAtStart ? '' : ' (machine was busy at start)'}
&middot; proxy: ${esc(report.proxy)}${report.quick ? ' &middot; <b>quick run (shortened, not a result)</b>' : ''} &middot; ${report.durationSec} s
<br><code>${esc(report.command)}</code></p>
${table(formatTargets(report.targets, report.targetsTitle))}
${report.tables.map(table).join('\n')}
${report.charts.map(renderChart).join('\n')}
${report.notes.length > 0 ? `<h3>notes</h3><ul>${report.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}

export function round(n: number, digits = 1): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The median of `values` (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
