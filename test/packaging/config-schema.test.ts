/**
 * The JSON Schema shipped for editors (schema/sluice.schema.json): it is exactly what
 * `npm run schema` generates from the one zod schema, and every configuration we show users (the
 * files in examples/, the README's YAML blocks marked for the YAML language server, and the Helm
 * chart's default `config`) validates against it and passes `sluice --check`'s parser.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { schemaFileText, SCHEMA_PATH } from '../../scripts/write-schema.js';
import { parseConfig } from '../../src/config/load-config.js';
import { compileSchema, schemaErrors } from './json-schema.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA_FILE = join(ROOT, SCHEMA_PATH);
const MODELINE = /^# yaml-language-server: \$schema=(\S+)\s*$/;

/** Values for the `${VAR}` references of the examples; any other reference gets a placeholder. */
const KNOWN_ENV: Readonly<Record<string, string>> = {
  GITHUB_TOKEN: 'ghp_example',
  REDIS_URL: 'redis://redis.example:6379',
  PARTNER_API_KEY: 'partner-key',
};

function envFor(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const match of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)) {
    const name = match[1] as string;
    env[name] = KNOWN_ENV[name] ?? 'example-value';
  }
  return env;
}

interface Example {
  /** Where it comes from, for the test name: `examples/x.yaml` or `README.md:120`. */
  readonly label: string;
  /** The file that holds it; the modeline's schema path is relative to its folder. */
  readonly file: string;
  readonly text: string;
}

function exampleFiles(): Example[] {
  const dir = join(ROOT, 'examples');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yaml') || name.endsWith('.yml'))
    .sort()
    .map((name) => ({ label: `examples/${name}`, file: join(dir, name), text: readFileSync(join(dir, name), 'utf8') }));
}

/** The README's fenced YAML blocks whose first line is the yaml-language-server modeline. */
function readmeBlocks(): Example[] {
  const file = join(ROOT, 'README.md');
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*```ya?ml\s*$/.test(lines[i] as string)) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end] as string)) end++;
    if (MODELINE.test(lines[start] ?? '')) blocks.push({ label: `README.md:${start + 1}`, file, text: lines.slice(start, end).join('\n') });
    i = end;
  }
  return blocks;
}

const validate = compileSchema(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>);

describe('schema/sluice.schema.json', () => {
  it('is what `npm run schema` generates from src/config/schema.ts (run it after changing the schema)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(schemaFileText());
  });

  it('is a draft 2020-12 schema that refuses unknown keys, as the loader does', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['upstreams']);
  });

  it('accepts a minimal configuration and refuses what --check refuses', () => {
    const upstream = { name: 'api', prefix: '/', target: 'https://api.example.com' };
    expect(schemaErrors(validate, { upstreams: [upstream] })).toEqual([]);
    expect(schemaErrors(validate, {})).not.toEqual([]);
    expect(schemaErrors(validate, { upstreams: [{ ...upstream, colour: 'blue' }] }).join('\n')).toContain('additional properties');
    expect(schemaErrors(validate, { upstreams: [{ ...upstream, limits: [{ rate: 'fast' }] }] }).join('\n')).toContain('/upstreams/0/limits/0/rate');
    expect(schemaErrors(validate, { upstreams: [{ ...upstream, name: 'Not Valid' }] }).join('\n')).toContain('/upstreams/0/name');
    expect(schemaErrors(validate, { store: { type: 'redis', url: 'http://redis' }, upstreams: [upstream] }).join('\n')).toContain('/store');
  });

  it('accepts ${VAR} references wherever the loader substitutes them before validating', () => {
    const yaml = [
      'listen:',
      '  port: ${PORT}',
      'store: { type: redis, url: "${REDIS_URL}", onError: "${REDIS_ON_ERROR:-local}" }',
      'upstreams:',
      '  - name: api',
      '    prefix: /',
      '    target: "${API_URL}"',
      '    timeout: "${TIMEOUT:-10s}"',
      '    limits:',
      '      - rate: 20/s',
      '        burst: ${BURST}',
    ].join('\n');
    expect(schemaErrors(validate, parse(yaml))).toEqual([]);
    const config = parseConfig(yaml, { env: { PORT: '8081', REDIS_URL: 'redis://r:6379', API_URL: 'https://api.example.com', BURST: '3' } });
    expect(config.listen.port).toBe(8081);
    expect(config.upstreams[0]?.limits[0]?.burst).toBe(3);
    // Text that is not a reference is still checked.
    expect(schemaErrors(validate, parse(yaml.replace('${PORT}', 'eighty')))).not.toEqual([]);
  });
});

const examples = [...exampleFiles(), ...readmeBlocks()];

describe('the configurations shown to users', () => {
  it('include every file in examples/', () => {
    expect(examples.filter((e) => e.label.startsWith('examples/')).map((e) => e.label)).toEqual(
      expect.arrayContaining(['examples/gateway-redis.yaml', 'examples/sidecar-github.yaml']),
    );
  });

  for (const example of examples) {
    describe(example.label, () => {
      it('starts with a yaml-language-server modeline that points at the shipped schema', () => {
        const reference = MODELINE.exec(example.text.split('\n')[0] ?? '')?.[1];
        expect(reference, 'first line: # yaml-language-server: $schema=<path to schema/sluice.schema.json>').toBeDefined();
        if (/^https?:\/\//.test(reference as string)) expect(reference).toMatch(/\/schema\/sluice\.schema\.json$/);
        else expect(relative(ROOT, resolve(dirname(example.file), reference as string))).toBe(SCHEMA_PATH);
      });

      it('validates against the JSON Schema', () => {
        expect(schemaErrors(validate, parse(example.text))).toEqual([]);
      });

      it('passes the loader (`sluice --check`)', () => {
        const config = parseConfig(example.text, { file: example.label, env: envFor(example.text) });
        expect(config.upstreams.length).toBeGreaterThan(0);
      });
    });
  }
});
