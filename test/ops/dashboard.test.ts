import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load-config.js';

interface Panel {
  title: string;
  targets: { expr: string }[];
}

const dashboard = JSON.parse(readFileSync(resolve(import.meta.dirname, '..', '..', 'dashboards', 'sluice.json'), 'utf8')) as {
  panels: Panel[];
  templating: { list: { query?: unknown; definition?: string }[] };
};

/** Metric names a PromQL expression uses: identifiers followed by `{`, `[` or `)`-less position. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(sluice_[a-z_]+|nodejs_[a-z0-9_]+|process_[a-z_]+)\b/g)].map((m) => m[1] as string);
}

describe('the Grafana dashboard', () => {
  it('queries only metrics sluice exports (histograms by their _bucket series)', async () => {
    const config = parseConfig(
      'admin: { port: 0 }\nlisten: { port: 0 }\nupstreams: [{ name: a, prefix: /, target: "http://127.0.0.1:1", limits: [{ rate: 1/s }] }]',
      { env: {} },
    );
    const app = await buildApp(config, { logger: pino({ level: 'silent' }) });
    const exported = new Set<string>();
    for (const metric of await app.registry.getMetricsAsJSON()) {
      exported.add(metric.name);
      if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(metric.name + suffix);
    }
    await app.close();
    const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => metricNames(t.expr)));
    used.push(...dashboard.templating.list.flatMap((v) => metricNames(v.definition ?? '')));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !exported.has(name))).toEqual([]);
  });

  it('has the panels operators look for: rate vs limit, queue depth, wait p50/p99, 429s, retries, pauses', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const word of ['vs the limit', 'queue depth', 'queue wait p50 / p99', '429', 'retries', 'pauses']) expect(titles).toContain(word);
  });
});
