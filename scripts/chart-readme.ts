/**
 * Writes helm/sluice/README.md from the chart's Chart.yaml and the comments of its values.yaml, in
 * the manner of helm-docs (`npm run chart:readme`): a comment block that starts with `# -- ` right
 * above a key documents it. A documented map is one row holding its whole default; an undocumented
 * map is descended into, so every value ends up in the table under its dotted path. A test fails
 * when the committed README differs from what this script writes, and when a value has no
 * description.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const CHART_DIR = 'helm/sluice';
export const README_PATH = `${CHART_DIR}/README.md`;

export interface ValueRow {
  readonly key: string;
  readonly type: string;
  readonly default: unknown;
  readonly description: string;
}

/** The `# -- ` comment above each block-mapping key of values.yaml, by dotted path. */
export function valueComments(text: string): Map<string, string> {
  const comments = new Map<string, string>();
  const stack: { indent: number; key: string }[] = [];
  let block: string[] = [];
  for (const line of text.split('\n')) {
    const comment = /^(\s*)#\s?(.*)$/.exec(line);
    if (comment) {
      block.push(comment[2] as string);
      continue;
    }
    const key = /^(\s*)([A-Za-z0-9_]+):(\s|$)/.exec(line);
    if (key) {
      const indent = (key[1] as string).length;
      while (stack.length > 0 && (stack.at(-1) as { indent: number }).indent >= indent) stack.pop();
      stack.push({ indent, key: key[2] as string });
      const start = block.findIndex((l) => l.startsWith('-- '));
      if (start >= 0) {
        const lines = block.slice(start);
        comments.set(
          stack.map((s) => s.key).join('.'),
          [(lines[0] as string).slice(3), ...lines.slice(1)]
            .map((l) => l.trim())
            .join(' ')
            .trim(),
        );
      }
    }
    block = [];
  }
  return comments;
}

const isMap = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (isMap(value)) return 'object';
  return typeof value === 'number' ? (Number.isInteger(value) ? 'int' : 'float') : typeof value;
}

/** One row per documented key or undocumented leaf, in the order of values.yaml. */
export function valueRows(text: string): ValueRow[] {
  const values = parse(text) as Record<string, unknown>;
  const comments = valueComments(text);
  const rows: ValueRow[] = [];
  const visit = (node: Record<string, unknown>, prefix: string): void => {
    for (const [name, value] of Object.entries(node)) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      const description = comments.get(key);
      if (description === undefined && isMap(value) && Object.keys(value).length > 0) visit(value, key);
      else rows.push({ key, type: typeOf(value), default: value, description: description ?? '' });
    }
  };
  visit(values, '');
  return rows;
}

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function defaultCell(value: unknown): string {
  const json = JSON.stringify(value);
  return json.length <= 80 ? `\`${cell(json)}\`` : '(see values.yaml)';
}

/** The exact text of helm/sluice/README.md. */
export function chartReadmeText(root: string): string {
  const chart = parse(readFileSync(`${root}/${CHART_DIR}/Chart.yaml`, 'utf8')) as {
    name: string;
    version: string;
    appVersion: string;
    description: string;
    kubeVersion: string;
  };
  const rows = valueRows(readFileSync(`${root}/${CHART_DIR}/values.yaml`, 'utf8'));
  return [
    `# ${chart.name}`,
    '',
    `<!-- Written by scripts/chart-readme.ts from Chart.yaml and the comments of values.yaml (npm run chart:readme): edit those. -->`,
    '',
    `![Version: ${chart.version}](https://img.shields.io/badge/Version-${chart.version}-informational) ![AppVersion: ${chart.appVersion}](https://img.shields.io/badge/AppVersion-${chart.appVersion}-informational)`,
    '',
    chart.description.trim(),
    '',
    `Kubernetes \`${chart.kubeVersion}\`. Install from the OCI registry the release workflow pushes to, or from a checkout:`,
    '',
    '```sh',
    `helm install api-gateway oci://ghcr.io/sluice-proxy/charts/sluice --version ${chart.version} -f my-values.yaml`,
    'helm install api-gateway helm/sluice -f my-values.yaml',
    '```',
    '',
    "`config` is sluice's configuration file; `values.schema.json` validates it with sluice's own schema, so a typo fails",
    'the install instead of crash-looping the pod. The sidecar mode, the memory sizing, the stop sequence and the alerts are',
    'described in [docs/deployment.md](../../docs/deployment.md); `examples/` has values for a gateway with Redis, for the',
    'sidecar mode, and a complete application chart with sluice as its sidecar.',
    '',
    '## Values',
    '',
    '| Key | Type | Default | Description |',
    '| --- | --- | --- | --- |',
    ...rows.map((row) => `| \`${row.key}\` | ${row.type} | ${defaultCell(row.default)} | ${cell(row.description)} |`),
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  writeFileSync(`${root}/${README_PATH}`, chartReadmeText(root));
  process.stdout.write(`wrote ${README_PATH}\n`);
}
