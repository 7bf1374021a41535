/**
 * The Helm chart's files, read without rendering: every template-free file parses, values.schema.json
 * validates the default and example values (merged over the defaults, as Helm does) and refuses an
 * invalid sluice configuration (its `config` property is generated from sluice's own schema), the
 * sluice configuration inside them passes sluice's loader, the chart README is what
 * scripts/chart-readme.ts writes, and the templates are checked as text for the structure that
 * matters (every helper they use is defined, blocks balance, every .Values path exists). The
 * templates are rendered for real in helm-render.test.ts; `helm lint`, kubeconform and chart-testing
 * run in .github/workflows/helm.yml on a machine that has helm.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load-config.js';
import { chartReadmeText, valueRows } from '../../scripts/chart-readme.js';
import { valuesSchemaFileText } from '../../scripts/write-schema.js';
import { compileSchema, schemaErrors } from './json-schema.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'helm', 'sluice');
const TEMPLATES = join(CHART, 'templates');
const EXAMPLES = join(CHART, 'examples');
const PARENT = join(EXAMPLES, 'sidecar-app');

type Values = Record<string, unknown>;

const read = (path: string): string => readFileSync(path, 'utf8');
const readYaml = (path: string): Values => parse(read(path)) as Values;
const isObject = (value: unknown): value is Values => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Helm's coalescing of values: maps merge recursively, anything else replaces, null deletes. */
function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else if (isObject(value) && isObject(out[key])) out[key] = mergeValues(out[key], value);
    else out[key] = value;
  }
  return out;
}

const defaults = readYaml(join(CHART, 'values.yaml'));
const chart = readYaml(join(CHART, 'Chart.yaml'));
const pkg = JSON.parse(read(join(ROOT, 'package.json'))) as { version: string };
const valuesSchema = compileSchema(JSON.parse(read(join(CHART, 'values.schema.json'))) as Values);
const configSchema = compileSchema(JSON.parse(read(join(ROOT, 'schema', 'sluice.schema.json'))) as Values);

/** Every values set the chart is documented with, merged over the defaults. */
const valueSets: { label: string; values: Values }[] = [
  { label: 'values.yaml', values: defaults },
  ...readdirSync(EXAMPLES)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => ({ label: `examples/${name}`, values: mergeValues(defaults, readYaml(join(EXAMPLES, name))) })),
  { label: 'examples/sidecar-app (sluice:)', values: mergeValues(defaults, readYaml(join(PARENT, 'values.yaml')).sluice as Values) },
];

const templateFiles = readdirSync(TEMPLATES).sort();
const helpers = read(join(TEMPLATES, '_helpers.tpl'));
const allTemplates = [
  ...templateFiles.map((name) => ({ label: `templates/${name}`, text: read(join(TEMPLATES, name)) })),
  ...readdirSync(join(PARENT, 'templates')).map((name) => ({ label: `examples/sidecar-app/templates/${name}`, text: read(join(PARENT, 'templates', name)) })),
];

/** The actions of a Go template, `{{ ... }}` with the trim markers and comments removed. */
function actions(text: string): string[] {
  const withoutComments = text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
  return [...withoutComments.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)].map((match) => (match[1] as string).trim());
}

const definedHelpers = new Set([...helpers.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1] as string));

describe('template-free files', () => {
  const yamlFiles = [
    join(CHART, 'Chart.yaml'),
    join(CHART, 'values.yaml'),
    ...readdirSync(EXAMPLES)
      .filter((name) => name.endsWith('.yaml'))
      .map((name) => join(EXAMPLES, name)),
    join(PARENT, 'Chart.yaml'),
    join(PARENT, 'values.yaml'),
    join(ROOT, '.github', 'workflows', 'helm.yml'),
    join(ROOT, '.github', 'workflows', 'image.yml'),
    join(ROOT, '.github', 'workflows', 'release.yml'),
    join(ROOT, 'ct.yaml'),
  ];
  for (const file of yamlFiles) {
    it(`${relative(ROOT, file)} is valid YAML with no duplicate keys`, () => {
      let parsed: unknown;
      expect(() => (parsed = parse(read(file), { uniqueKeys: true, prettyErrors: true }) as unknown)).not.toThrow();
      expect(isObject(parsed)).toBe(true);
    });
  }

  it('values.schema.json is a draft-07 JSON Schema (the draft Helm reads)', () => {
    const schema = JSON.parse(read(join(CHART, 'values.schema.json'))) as Values;
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
  });
});

describe('Chart.yaml', () => {
  it('is a v2 application chart whose appVersion is the package version', () => {
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'sluice', type: 'application', appVersion: pkg.version });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
  });

  it('sets image.tag to the appVersion, since charts that include the sidecar templates read the value', () => {
    expect((defaults.image as Values).tag).toBe(chart.appVersion);
  });

  it('the example parent chart depends on this chart at its version', () => {
    const parent = readYaml(join(PARENT, 'Chart.yaml'));
    expect(parent.dependencies).toEqual([{ name: 'sluice', version: chart.version, repository: 'file://../..' }]);
  });
});

describe('values', () => {
  for (const { label, values } of valueSets) {
    describe(label, () => {
      it('validate against values.schema.json', () => {
        expect(schemaErrors(valuesSchema, values)).toEqual([]);
      });

      it('hold a sluice configuration that passes the JSON Schema and the loader', () => {
        expect(schemaErrors(configSchema, values.config)).toEqual([]);
        const text = JSON.stringify(values.config);
        const env = Object.fromEntries(
          [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => [m[1] as string, m[1] === 'REDIS_URL' ? 'redis://redis:6379' : 'value']),
        );
        const config = parseConfig(text, { file: label, env });
        expect(config.upstreams.length).toBeGreaterThan(0);
      });

      it('give every ${VAR} of the configuration a source in the container environment', () => {
        const text = JSON.stringify(values.config);
        const env = new Set(((values.env as { name: string }[] | undefined) ?? []).map((e) => e.name));
        if ((values.redis as Values).existingSecret) env.add('REDIS_URL');
        const needed = [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] as string);
        const fromEnvFrom = ((values.envFrom as unknown[] | undefined) ?? []).length > 0;
        if (!fromEnvFrom) for (const name of needed) expect(env.has(name), `${name} has no env entry`).toBe(true);
      });
    });
  }

  it("values.schema.json's config is sluice's schema (run `npm run schema` after changing src/config/schema.ts)", () => {
    const text = read(join(CHART, 'values.schema.json'));
    expect(text).toBe(valuesSchemaFileText(text));
  });

  it('the schema refuses an invalid sluice configuration, as `sluice --check` would, at install time', () => {
    const withConfig = (config: Values): string[] => schemaErrors(valuesSchema, mergeValues(defaults, { config }));
    expect(withConfig({ shutdown: { grace: '30s' } })).toEqual([]);
    expect(withConfig({ shutdown: { grace: 'soon' } })).not.toEqual([]);
    expect(withConfig({ listen: { prot: 8080 } })).not.toEqual([]);
    expect(withConfig({ upstreams: [{ name: 'Bad Name', prefix: '/x', target: 'https://x.example' }] })).not.toEqual([]);
    expect(withConfig({ upstreams: [{ name: 'a', prefix: '/x', target: 'https://x.example', limits: [{ rate: '20 per second' }] }] })).not.toEqual([]);
    expect(withConfig({ upstreams: [{ name: 'a', prefix: '/x', target: 'https://x.example', keys: { maxIdle: 10 } }] })).toEqual([]);
    expect(withConfig({ keys: { maxIdle: 10 } })).not.toEqual([]);
    // ${VAR} references pass, as they do before sluice substitutes them.
    expect(withConfig({ listen: { port: '${PORT}' } })).toEqual([]);
  });

  it('the schema refuses what the chart cannot use', () => {
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { mode: 'daemonset' }))).not.toEqual([]);
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { replicas: 3 }))).not.toEqual([]);
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { config: { upstreams: [] } }))).not.toEqual([]);
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { service: { port: 'http' } }))).not.toEqual([]);
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { terminationGracePeriodSeconds: 0 }))).not.toEqual([]);
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { sidecar: { native: 'yes' } }))).not.toEqual([]);
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { resources: { limits: { memory: '512MB' } } }))).not.toEqual([]);
    expect(schemaErrors(valuesSchema, mergeValues(defaults, { nodeHeap: { percentOfMemoryLimit: 120 } }))).not.toEqual([]);
  });

  it('defaults: IPv6-safe listeners, keys redacted in /state, the heap capped below the memory limit', () => {
    const config = defaults.config as Values;
    expect(config.listen).toMatchObject({ host: '::' });
    expect(config.admin).toMatchObject({ host: '::', redactKeys: true });
    expect(defaults.nodeHeap).toEqual({ percentOfMemoryLimit: 75 });
    expect(defaults.resources).toMatchObject({ requests: { memory: '768Mi' }, limits: { memory: '768Mi' } });
    expect((defaults.sidecar as Values).native).toBe('auto');
  });

  it('defaults: one replica (the memory store has per-pod buckets), non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp', () => {
    expect(defaults.replicaCount).toBe(1);
    expect((defaults.config as Values).store).toEqual({ type: 'memory' });
    expect(defaults.podSecurityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(defaults.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 1000,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('the uid matches the image', () => {
    const user = /^USER\s+(\d+)(?::(\d+))?$/m.exec(read(join(ROOT, 'Dockerfile')));
    expect(Number(user?.[1])).toBe((defaults.securityContext as Values).runAsUser);
  });

  it('the default termination budget covers the preStop pause and the drain', () => {
    // What sluice.terminationGracePeriodSeconds computes from the defaults: 5 + 25 + 10.
    const graceSeconds = Number(/^(\d+)s$/.exec(String(((defaults.config as Values).shutdown as Values).grace))?.[1]);
    expect(defaults.terminationGracePeriodSeconds).toBeNull();
    expect(graceSeconds).toBe(25);
    expect(Number(defaults.preStopSleepSeconds) + graceSeconds + Number(defaults.terminationGraceMarginSeconds)).toBe(40);
  });
});

describe('templates, read as text', () => {
  it('has the conventional files', () => {
    for (const name of [
      '_helpers.tpl',
      'NOTES.txt',
      'configmap.yaml',
      'deployment.yaml',
      'service.yaml',
      'serviceaccount.yaml',
      'poddisruptionbudget.yaml',
      'hpa.yaml',
      'servicemonitor.yaml',
    ]) {
      expect(templateFiles).toContain(name);
    }
    expect(existsSync(join(CHART, '.helmignore'))).toBe(true);
  });

  for (const { label, text } of allTemplates) {
    describe(label, () => {
      it('balances its {{ }} delimiters and its if/with/range/define ... end blocks', () => {
        expect(text.split('{{').length).toBe(text.split('}}').length);
        let depth = 0;
        for (const action of actions(text)) {
          const keyword = /^(\w+)/.exec(action)?.[1];
          if (keyword === 'if' || keyword === 'with' || keyword === 'range' || keyword === 'define' || keyword === 'block') depth++;
          else if (keyword === 'end') depth--;
          expect(depth, `unbalanced at {{ ${action} }}`).toBeGreaterThanOrEqual(0);
        }
        expect(depth).toBe(0);
      });

      it('includes only helpers that _helpers.tpl defines', () => {
        const used = [
          ...actions(text)
            .join('\n')
            .matchAll(/\b(?:include|template)\s+"([^"]+)"/g),
        ].map((m) => m[1] as string);
        if (label.endsWith('deployment.yaml')) expect(used.length).toBeGreaterThan(0);
        for (const name of used) expect(definedHelpers.has(name), `${name} is not defined`).toBe(true);
      });

      it('reads only values that values.yaml declares', () => {
        const scope = label.startsWith('examples/sidecar-app') ? readYaml(join(PARENT, 'values.yaml')) : defaults;
        // Only inside actions: comments and text that only shows a template (NOTES.txt) do not count.
        for (const match of actions(text)
          .join('\n')
          .matchAll(/(?:\$|[\s(]|^)\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/gm)) {
          const path = (match[1] as string).slice(1).split('.');
          let node: unknown = scope;
          for (const key of path) {
            // In the parent chart, .Values.sluice holds this chart's values merged with the defaults.
            if (node === scope && label.startsWith('examples/sidecar-app') && key === 'sluice') {
              node = mergeValues(defaults, scope.sluice as Values);
              continue;
            }
            expect(isObject(node) && key in node, `.Values.${path.join('.')}`).toBe(true);
            node = (node as Values)[key];
          }
        }
      });
    });
  }

  it('the helpers read only values that values.yaml declares (.values.* and $values.*)', () => {
    const paths = [
      ...actions(helpers)
        .join('\n')
        .matchAll(/(?:\$values|[\s(]\.values)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g),
    ];
    expect(paths.length).toBeGreaterThan(10);
    for (const match of paths) {
      const path = (match[1] as string).slice(1).split('.');
      let node: unknown = defaults;
      for (const key of path) {
        expect(isObject(node) && key in node, `values.${path.join('.')}`).toBe(true);
        node = (node as Values)[key];
      }
    }
  });

  it('the Deployment rolls when the ConfigMap changes (checksum/config of the rendered configmap.yaml)', () => {
    const deployment = read(join(TEMPLATES, 'deployment.yaml'));
    expect(deployment).toContain('checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}');
    expect(helpers).toMatch(/define "sluice.sidecarPodAnnotations"[\s\S]*?checksum\/sluice-config: \{\{ include "sluice.configFile" \. \| sha256sum \}\}/);
  });

  it('the ConfigMap renders values.config as sluice.yaml, mounted where the image reads it', () => {
    expect(read(join(TEMPLATES, 'configmap.yaml'))).toMatch(/sluice\.yaml: \|\n\s+\{\{- include "sluice\.configFile" \$args \| nindent 4 \}\}/);
    expect(helpers).toMatch(/define "sluice\.configFile"[\s\S]*?toYaml \.values\.config/);
    expect(helpers).toContain('mountPath: /etc/sluice');
    const cmd = /^CMD\s+(\[.*\])$/m.exec(read(join(ROOT, 'Dockerfile')))?.[1];
    expect(helpers).toContain(`args: ${JSON.stringify(JSON.parse(cmd ?? '[]')).replaceAll(',', ', ')}`);
  });

  it('probes: startup and liveness GET /healthz, readiness GET /readyz, all on the admin port', () => {
    const container = /define "sluice\.container"[\s\S]*?\{\{- end \}\}\n\n/.exec(helpers)?.[0] ?? '';
    expect(container).toContain('{{- $admin := printf "%sadmin" .portPrefix -}}');
    for (const [probe, path] of [
      ['startupProbe', '/healthz'],
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ]) {
      expect(container).toContain(`${probe}:\n    httpGet:\n      path: ${path}\n      port: {{ $admin }}`);
    }
    expect(container).toMatch(/- name: \{\{ \$admin \}\}\n\s+containerPort: \{\{ include "sluice\.adminPort" \. \}\}/);
    expect(helpers).toMatch(/define "sluice\.adminPort"[\s\S]*?dig "admin" "port" 9090 \.values\.config/);
  });

  it('the pod stops gracefully: preStop pause, then terminationGracePeriodSeconds computed above it and shutdown.grace', () => {
    expect(read(join(TEMPLATES, 'deployment.yaml'))).toContain('terminationGracePeriodSeconds: {{ include "sluice.terminationGracePeriodSeconds" $args }}');
    expect(helpers).toMatch(/preStop:[\s\S]*?command: \["sleep", "\{\{ int \$values\.preStopSleepSeconds \}\}"\]/);
    expect(helpers).toMatch(
      /define "sluice\.terminationGracePeriodSeconds"[\s\S]*?add \(int \.values\.preStopSleepSeconds\) \(include "sluice\.shutdownGraceSeconds" \. \| int\)/,
    );
    expect(helpers).toMatch(/if le \$set \$floor[\s\S]*?fail/);
  });

  it('the Redis URL comes from a Secret as REDIS_URL', () => {
    expect(helpers).toMatch(
      /- name: REDIS_URL\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: \{\{ \$values\.redis\.existingSecret \}\}\n\s+key: \{\{ \$values\.redis\.existingSecretKey \}\}/,
    );
  });

  it('uses current API versions: apps/v1, policy/v1, autoscaling/v2, monitoring.coreos.com/v1', () => {
    expect(read(join(TEMPLATES, 'deployment.yaml'))).toContain('apiVersion: apps/v1');
    expect(read(join(TEMPLATES, 'poddisruptionbudget.yaml'))).toContain('apiVersion: policy/v1');
    expect(read(join(TEMPLATES, 'hpa.yaml'))).toContain('apiVersion: autoscaling/v2');
    const monitor = read(join(TEMPLATES, 'servicemonitor.yaml'));
    expect(monitor).toContain('apiVersion: monitoring.coreos.com/v1');
    expect(monitor).toMatch(/- port: admin\n\s+path: \/metrics/);
  });

  it('the sidecar templates give a native sidecar (restartPolicy: Always) and prefixed port and volume names', () => {
    expect(helpers).toMatch(/\{\{- if \.native \}\}\n\s+restartPolicy: Always\n\s+\{\{- end \}\}/);
    expect(helpers).toMatch(/define "sluice\.sidecarContainer"[\s\S]*?"portPrefix" "sluice-"/);
    expect(helpers).toMatch(/define "sluice\.volumes"[\s\S]*?- name: sluice-config[\s\S]*?- name: sluice-tmp/);
    const parent = read(join(PARENT, 'templates', 'deployment.yaml'));
    expect(parent).toMatch(/initContainers:\n\s+\{\{- include "sluice\.sidecarContainer" \$sluice \| nindent 8 \}\}/);
    expect(parent).toContain('{{- include "sluice.sidecarVolumes" $sluice | nindent 8 }}');
  });
});

describe('the chart README', () => {
  it('is what scripts/chart-readme.ts writes from Chart.yaml and values.yaml (run `npm run chart:readme`)', () => {
    expect(read(join(CHART, 'README.md'))).toBe(chartReadmeText(ROOT));
  });

  it('describes every value', () => {
    const rows = valueRows(read(join(CHART, 'values.yaml')));
    expect(rows.length).toBeGreaterThan(50);
    expect(rows.filter((row) => row.description === '').map((row) => row.key)).toEqual([]);
  });
});

describe('CI for a machine with helm', () => {
  it('lints the chart and validates the rendered manifests with kubeconform, strictly, ServiceMonitor included, for every example', () => {
    const workflow = read(join(ROOT, '.github', 'workflows', 'helm.yml'));
    expect(workflow).toContain('helm lint');
    expect(workflow).toContain('helm template');
    expect(workflow).toMatch(/kubeconform[\s\S]*-strict/);
    expect(workflow).toContain('datreeio/CRDs-catalog');
    for (const name of readdirSync(EXAMPLES).filter((n) => n.endsWith('.yaml'))) expect(workflow).toContain(`examples/${name}`);
    expect(workflow).toContain('examples/sidecar-app');
    expect(workflow).toContain('ct lint');
    for (const version of ['1.23.0', '1.28.0', '1.31.0']) expect(workflow).toContain(version);
  });
});
