/**
 * Inline SVG charts for the self-contained HTML reports: no library, no script, no external file.
 * Two kinds: lines over time (achieved rate against the limit, queue depth, memory) and grouped bars
 * (latency percentiles per target).
 */

export interface LineSeries {
  readonly name: string;
  /** [x, y] pairs, x ascending. */
  readonly points: readonly (readonly [number, number])[];
  /** Draw as steps (a per-second count holds for the whole second). */
  readonly step?: boolean;
}

export interface LineChart {
  readonly kind: 'line';
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly LineSeries[];
  /** Horizontal reference lines, such as the configured limit. */
  readonly hLines?: readonly { readonly y: number; readonly label: string }[];
  readonly yMin?: number;
}

export interface BarChart {
  readonly kind: 'bar';
  readonly title: string;
  readonly yLabel: string;
  /** One group per x position (e.g. a target), one bar per value (e.g. a percentile). */
  readonly groups: readonly { readonly label: string; readonly values: readonly { readonly name: string; readonly value: number }[] }[];
  readonly logScale?: boolean;
}

export type Chart = LineChart | BarChart;

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 760;
const H = 300;
const M = { left: 64, right: 16, top: 34, bottom: 58 };

export function renderChart(chart: Chart): string {
  return chart.kind === 'line' ? renderLine(chart) : renderBars(chart);
}

function renderLine(chart: LineChart): string {
  const xs = chart.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [...chart.series.flatMap((s) => s.points.map((p) => p[1])), ...(chart.hLines ?? []).map((l) => l.y)];
  if (xs.length === 0) return empty(chart.title);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const yMin = chart.yMin ?? Math.min(0, ...ys);
  const yMax = niceCeil(Math.max(...ys, yMin + 1) * 1.05);
  const sx = (x: number): number => M.left + ((x - xMin) / (xMax - xMin)) * (W - M.left - M.right);
  const sy = (y: number): number => H - M.bottom - ((y - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);
  const parts: string[] = [frame(chart.title), ...axes(ticks(xMin, xMax), ticks(yMin, yMax), sx, sy, chart.xLabel, chart.yLabel)];
  for (const line of chart.hLines ?? []) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${f(sy(line.y))}" y2="${f(sy(line.y))}" stroke="#555" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${W - M.right - 4}" y="${f(sy(line.y) - 4)}" text-anchor="end" font-size="11" fill="#333">${esc(line.label)}</text>`);
  }
  chart.series.forEach((series, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const pts: string[] = [];
    series.points.forEach(([x, y], j) => {
      if (series.step && j > 0) pts.push(`${f(sx(x))},${f(sy((series.points[j - 1] as readonly [number, number])[1]))}`);
      pts.push(`${f(sx(x))},${f(sy(y))}`);
    });
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts.join(' ')}"/>`);
  });
  parts.push(legend(chart.series.map((s) => s.name)));
  return `${parts.join('\n')}\n</svg>`;
}

function renderBars(chart: BarChart): string {
  const names = [...new Set(chart.groups.flatMap((g) => g.values.map((v) => v.name)))];
  const values = chart.groups.flatMap((g) => g.values.map((v) => v.value)).filter((v) => Number.isFinite(v));
  if (values.length === 0) return empty(chart.title);
  const log = chart.logScale === true;
  const floor = log ? Math.min(...values.filter((v) => v > 0), 1) / 2 : 0;
  const top = log ? 10 ** Math.ceil(Math.log10(Math.max(...values) * 1.2)) : niceCeil(Math.max(...values) * 1.1);
  const t = (v: number): number => (log ? Math.log10(Math.max(v, floor)) : v);
  const sy = (v: number): number => H - M.bottom - ((t(v) - t(floor)) / (t(top) - t(floor))) * (H - M.top - M.bottom);
  const parts: string[] = [frame(chart.title)];
  const yTicks = log ? decades(floor, top) : ticks(0, top);
  for (const y of yTicks) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${f(sy(y))}" y2="${f(sy(y))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 6}" y="${f(sy(y) + 4)}" text-anchor="end" font-size="11">${fmt(y)}</text>`);
  }
  parts.push(
    `<text x="14" y="${(H - M.bottom + M.top) / 2}" font-size="12" transform="rotate(-90 14 ${(H - M.bottom + M.top) / 2})" text-anchor="middle">${esc(chart.yLabel)}${log ? ' (log)' : ''}</text>`,
  );
  const groupW = (W - M.left - M.right) / chart.groups.length;
  const barW = Math.min(40, (groupW * 0.8) / names.length);
  chart.groups.forEach((group, gi) => {
    const x0 = M.left + gi * groupW + (groupW - barW * names.length) / 2;
    for (const value of group.values) {
      const ni = names.indexOf(value.name);
      if (!Number.isFinite(value.value)) continue;
      const x = x0 + ni * barW;
      const y = sy(value.value);
      parts.push(
        `<rect x="${f(x)}" y="${f(y)}" width="${f(barW - 2)}" height="${f(H - M.bottom - y)}" fill="${COLORS[ni % COLORS.length]}"><title>${esc(`${group.label} ${value.name}: ${fmt(value.value)}`)}</title></rect>`,
      );
      parts.push(`<text x="${f(x + (barW - 2) / 2)}" y="${f(y - 3)}" text-anchor="middle" font-size="9">${fmt(value.value)}</text>`);
    }
    parts.push(`<text x="${f(M.left + gi * groupW + groupW / 2)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${esc(group.label)}</text>`);
  });
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`);
  parts.push(legend(names));
  return `${parts.join('\n')}\n</svg>`;
}

function frame(title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, sans-serif">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">${esc(title)}</text>`;
}

function empty(title: string): string {
  return `${frame(title)}\n<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#777">no data</text>\n</svg>`;
}

function axes(xTicks: number[], yTicks: number[], sx: (x: number) => number, sy: (y: number) => number, xLabel: string, yLabel: string): string[] {
  const out: string[] = [];
  for (const y of yTicks) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${f(sy(y))}" y2="${f(sy(y))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${f(sy(y) + 4)}" text-anchor="end" font-size="11">${fmt(y)}</text>`);
  }
  for (const x of xTicks) out.push(`<text x="${f(sx(x))}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${fmt(x)}</text>`);
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(`<text x="${(W + M.left) / 2}" y="${H - M.bottom + 32}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  out.push(
    `<text x="14" y="${(H - M.bottom + M.top) / 2}" font-size="12" transform="rotate(-90 14 ${(H - M.bottom + M.top) / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  return out;
}

function legend(names: readonly string[]): string {
  let x = M.left;
  const items = names.map((name, i) => {
    const item = `<rect x="${f(x)}" y="${H - 16}" width="12" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${f(x + 16)}" y="${H - 7}" font-size="11">${esc(name)}</text>`;
    x += 24 + name.length * 6.5;
    return item;
  });
  return items.join('');
}

function ticks(min: number, max: number, count = 6): number[] {
  const span = max - min;
  if (!(span > 0)) return [min];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function decades(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  return ([1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((m) => m * mag >= v) ?? 10) * mag;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (Math.abs(v) >= 100) return String(Math.round(v));
  return String(+v.toFixed(2));
}

function f(v: number): string {
  return v.toFixed(1);
}

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
