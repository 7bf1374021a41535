import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load-config.js';

interface DataSource {
  type: string;
  uid: string;
}

interface Panel {
  title: string;
  datasource: DataSource;
  targets: { expr: string; datasource: DataSource }[];
}

interface Variable {
  name: string;
  type: string;
  query?: unknown;
  definition?: string;
  datasource?: DataSource;
}

const dashboard = JSON.parse(readFileSync(resolve(import.meta.dirname, '..', '..', 'dashboards', 'sluice.json'), 'utf8')) as {
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: Variable[] };
};

const SELECTORS = ['job=~"$job"', 'namespace=~"$namespace"', 'pod=~"$pod"'];

/** Every metric selector of a PromQL expression: `name{matchers}`, or a bare name (no matchers). */
function selectors(expr: string): { metric: string; matchers: string | undefined }[] {
  return [...expr.matchAll(/\b((?:sluice|nodejs|process)_[a-z0-9_]+)\b(\{[^}]*\})?/g)].map((m) => ({ metric: m[1] as string, matchers: m[2] }));
}

const targets = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ panel: panel.title, ...target })));

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

  it('has the panels operators look for: rate vs limit per rule, queue depth, wait p50/p99, 429s, retries, pauses per second', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const word of ['vs the limit, per rule', 'queue depth', 'queue wait p50 / p99', '429', 'retries', 'key pauses per second'])
      expect(titles).toContain(word);
  });

  it('has job, namespace, pod and upstream variables, each narrowed by the ones before it', () => {
    const queries = dashboard.templating.list.filter((v) => v.type === 'query');
    expect(queries.map((v) => v.name)).toEqual(['job', 'namespace', 'pod', 'upstream']);
    const before: string[] = [];
    for (const variable of queries) {
      for (const name of before) expect(variable.definition, variable.name).toContain(`${name}=~"$${name}"`);
      expect(variable.definition).toBe((variable.query as { query: string }).query);
      before.push(variable.name);
    }
  });

  it('narrows every metric of every query by job, namespace and pod (the Node.js process metrics too)', () => {
    expect(targets.length).toBeGreaterThan(15);
    for (const target of targets) {
      const found = selectors(target.expr);
      expect(found.length, target.expr).toBeGreaterThan(0);
      for (const { metric, matchers } of found) for (const selector of SELECTORS) expect(matchers ?? '', `${target.panel}: ${metric}`).toContain(selector);
    }
  });

  it('turns every counter and histogram into a per-second rate over $__rate_interval, never a zoom-dependent increase', () => {
    for (const target of targets) {
      expect(target.expr).not.toMatch(/\b(increase|delta|irate)\(/);
      for (const { metric } of selectors(target.expr).filter((s) => /_(total|bucket|sum|count)$/.test(s.metric)))
        expect(target.expr, `${target.panel}: ${metric}`).toMatch(new RegExp(`rate\\(${metric}\\{[^}]*\\}\\[\\$__rate_interval\\]\\)`));
    }
  });

  it('compares the limit and the sent rate per rule: both series carry the upstream and the rule', () => {
    const panel = dashboard.panels.find((p) => p.title === 'Rate sent vs the limit, per rule') as Panel;
    expect(panel.targets).toHaveLength(2);
    for (const target of panel.targets) expect(target.expr).toMatch(/by \(upstream, limit\)/);
    expect(panel.targets[1]?.expr).toContain('group_right');
  });

  it('uses the DS_PROMETHEUS input everywhere, through a data source variable of the same name', () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect(dashboard.templating.list[0]).toMatchObject({ name: 'DS_PROMETHEUS', type: 'datasource', query: 'prometheus' });
    const sources = [
      ...dashboard.panels.map((p) => p.datasource),
      ...targets.map((t) => t.datasource),
      ...dashboard.templating.list.filter((v) => v.type === 'query').map((v) => v.datasource),
    ];
    for (const source of sources) expect(source).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
  });
});
