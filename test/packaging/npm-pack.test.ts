/**
 * The npm package as a user gets it: `npm pack` into a temp dir, the tarball installed with
 * `npm install --engine-strict <tgz>` in a clean project (its dependencies come from the registry,
 * resolved afresh: the checkout's lockfile and overrides do not apply to a consumer), then
 * `npx sluice --version`, `npx sluice --config example.yaml` proxying a request to a real upstream
 * on 127.0.0.1, and the library entry point imported by its name, @sluice-proxy/sluice.
 *
 * `npm pack` runs with --ignore-scripts: the prepack script (`npm run build`) would rebuild dist/
 * under the other test files that run the built CLI at the same time. Run `npm run build` first.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, httpGet, killAll, run, runOk, SluiceProcess, startEchoUpstream } from './processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACK_TIMEOUT_MS = 60_000;
const INSTALL_TIMEOUT_MS = 180_000;
const COMMAND_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 20_000;
/** Full type-checking of fastify's, pino's and zod's declarations takes ~15 s here. */
const TSC_TIMEOUT_MS = 90_000;

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  files: string[];
  scripts: Record<string, string>;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
  engines: { node: string };
  repository: { type: string; url: string };
};
const semver = createRequire(import.meta.url)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

/**
 * `npx sluice ...` exactly as users type it (`npx --no sluice --config x` would make npm read
 * `--config` as its own option). `yes=false`: never fetch some other "sluice" from the registry if
 * the installed bin were missing; fail instead.
 */
const NPX_ENV = cleanEnv({ npm_config_yes: 'false' });

let work: string;
let project: string;
let packedFiles: string[];

beforeAll(
  async () => {
    if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/index.js is missing: run "npm run build" first');
    work = await mkdtemp(join(tmpdir(), 'sluice-pack-'));
    const packed = await runOk('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
      cwd: ROOT,
      env: cleanEnv(),
      timeoutMs: PACK_TIMEOUT_MS,
    });
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    if (!info) throw new Error(`npm pack printed no package\n${packed.stdout}`);
    packedFiles = info.files.map((f) => f.path).sort();

    project = join(work, 'consumer');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
    // --engine-strict: a dependency whose engines exclude this Node fails the install (on Node 20,
    // light-my-request 6.8 would pull cookie 2, which needs Node 22).
    await runOk('npm', ['install', '--engine-strict', '--no-audit', '--no-fund', join(work, info.filename)], {
      cwd: project,
      env: cleanEnv(),
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
  },
  PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 30_000,
);

afterEach(() => killAll());

afterAll(async () => {
  killAll();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds what runs and nothing else: dist/ (no source maps), schema/, package.json, LICENSE, CHANGELOG.md, README.md', () => {
    const outside = packedFiles.filter((path) => !path.startsWith('dist/') && !path.startsWith('schema/'));
    expect(outside.filter((path) => path !== 'README.md')).toEqual(['CHANGELOG.md', 'LICENSE', 'package.json']);
    expect(packedFiles).toContain('dist/cli.js');
    expect(packedFiles).toContain('dist/index.js');
    expect(packedFiles).toContain('dist/index.d.ts');
    expect(packedFiles).toContain('schema/sluice.schema.json');
    expect(packedFiles.filter((path) => path.endsWith('.map'))).toEqual([]);
    expect(packedFiles.filter((path) => /(^|\/)(src|test|load|scratch|helm)\//.test(path))).toEqual([]);
  });

  it('builds itself before packing when published', () => {
    expect(pkg.scripts.prepack).toBe('npm run build');
  });

  it('is the scoped package @sluice-proxy/sluice with its repository, and the bin is still `sluice`', () => {
    expect(pkg.name).toBe('@sluice-proxy/sluice');
    expect(pkg.bin).toEqual({ sluice: 'dist/cli.js' });
    expect(pkg.repository).toEqual({ type: 'git', url: 'git+https://github.com/sluice-proxy/sluice.git' });
  });
});

describe('the engines floor', () => {
  /** Every package.json under node_modules (scoped ones included), with its engines.node. */
  function installedEngines(modules: string): { name: string; version: string; node: string | undefined }[] {
    const found: { name: string; version: string; node: string | undefined }[] = [];
    const visit = (dir: string): void => {
      if (!existsSync(dir)) return;
      for (const entry of readdirSync(dir)) {
        if (entry.startsWith('.')) continue;
        if (entry.startsWith('@')) {
          visit(join(dir, entry));
          continue;
        }
        const manifest = join(dir, entry, 'package.json');
        if (existsSync(manifest)) {
          const p = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; version: string; engines?: { node?: string } };
          found.push({ name: p.name, version: p.version, node: p.engines?.node });
        }
        visit(join(dir, entry, 'node_modules'));
      }
    };
    visit(modules);
    return found;
  }

  it('is 20.19.0 (require(esm) unflagged: require of the package works), and every installed dependency allows it', () => {
    expect(pkg.engines.node).toBe('>=20.19.0');
    const floor = semver.minVersion(pkg.engines.node)?.version as string;
    const installed = installedEngines(join(project, 'node_modules'));
    expect(installed.length).toBeGreaterThan(20);
    const excluding = installed.filter((p) => p.node !== undefined && !semver.satisfies(floor, p.node)).map((p) => `${p.name}@${p.version} (node ${p.node})`);
    expect(excluding).toEqual([]);
    // The one that did not: light-my-request 6.8 depends on cookie 2 (node >= 22).
    expect(installed.filter((p) => p.name === 'cookie').map((p) => p.version.split('.')[0])).toEqual(['1']);
  });
});

describe('installed in a clean project', () => {
  it('`npx sluice --version` prints the package version', async () => {
    const result = await runOk('npx', ['sluice', '--version'], { cwd: project, env: NPX_ENV, timeoutMs: COMMAND_TIMEOUT_MS });
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it('`npx sluice --config example.yaml` proxies a request to a real upstream and stops on SIGTERM', async () => {
    const upstream = await startEchoUpstream();
    try {
      await writeFile(
        join(project, 'example.yaml'),
        [
          '# yaml-language-server: $schema=node_modules/@sluice-proxy/sluice/schema/sluice.schema.json',
          'listen: { host: 127.0.0.1, port: 0 }',
          'admin: { host: 127.0.0.1, port: 0 }',
          'shutdown: { grace: 2s }',
          'upstreams:',
          '  - name: example',
          '    prefix: /example',
          `    target: ${upstream.url}`,
          '    limits: [{ rate: 20/s, burst: 2 }]',
          '',
        ].join('\n'),
      );
      // npx runs the bin under `sh -c` and does not forward SIGTERM (npm 11 exits and leaves the
      // bin running), so the signal goes to sluice itself, as Kubernetes sends it to a container's
      // process; npx then exits with sluice's code. `detached` gives them a process group of their
      // own, killed as a whole if anything is left running.
      const sluice = new SluiceProcess('npx', ['sluice', '--config', 'example.yaml'], { cwd: project, env: NPX_ENV, detached: true });
      try {
        const ports = await sluice.ports(START_TIMEOUT_MS);
        expect((await httpGet(`http://127.0.0.1:${ports.admin}/healthz`)).status).toBe(200);
        const response = await httpGet(`http://127.0.0.1:${ports.proxy}/example/hello?x=1`);
        expect(response.status).toBe(200);
        expect(JSON.parse(response.body)).toEqual({ method: 'GET', url: '/hello?x=1' });
        expect(upstream.seen).toHaveLength(1);

        expect(ports.pid).not.toBe(sluice.child.pid);
        process.kill(ports.pid, 'SIGTERM');
        const finished = await sluice.waitForExit(15_000);
        expect(finished.code, sluice.describe()).toBe(0);
        expect(sluice.stdout).toContain('"msg":"stopped"');
      } finally {
        if (sluice.running) process.kill(-(sluice.child.pid as number), 'SIGKILL');
      }
    } finally {
      await upstream.close();
    }
  });

  it('exports the library entry point and the JSON Schema', async () => {
    const script = [
      "import * as sluice from '@sluice-proxy/sluice';",
      "import { createRequire } from 'node:module';",
      'const require = createRequire(import.meta.url);',
      "const schema = require('@sluice-proxy/sluice/schema/sluice.schema.json');",
      "const required = require('@sluice-proxy/sluice');",
      'const config = sluice.parseConfig(\'upstreams: [{ name: a, prefix: /, target: "http://127.0.0.1:1" }]\', { env: {} });',
      'let problems = 0;',
      "try { sluice.parseConfig('upstreams: []', { env: {} }); } catch (err) { problems = err instanceof sluice.ConfigError ? err.problems.length : -1; }",
      'console.log(JSON.stringify({',
      '  exports: Object.keys(sluice).sort(),',
      '  buildApp: typeof sluice.buildApp,',
      '  requiredBuildApp: typeof required.buildApp,',
      '  target: config.upstreams[0].target,',
      '  problems,',
      '  schemaDraft: schema.$schema,',
      '  jsonSchemaTitle: sluice.configJsonSchema().title,',
      '}));',
    ].join('\n');
    const result = await runOk(process.execPath, ['--input-type=module', '-e', script], { cwd: project, env: cleanEnv(), timeoutMs: COMMAND_TIMEOUT_MS });
    expect(JSON.parse(result.stdout)).toEqual({
      exports: ['ConfigError', 'buildApp', 'configJsonSchema', 'configSchema', 'loadConfigFile', 'parseConfig'],
      buildApp: 'function',
      requiredBuildApp: 'function',
      target: 'http://127.0.0.1:1',
      problems: 1,
      schemaDraft: 'https://json-schema.org/draft/2020-12/schema',
      jsonSchemaTitle: 'sluice configuration',
    });
  });

  it(
    'type-checks a TypeScript consumer against the shipped declarations',
    async () => {
      await writeFile(
        join(project, 'consumer.ts'),
        [
          "import { buildApp, ConfigError, configJsonSchema, loadConfigFile, parseConfig, type Config, type SluiceApp, type UpstreamConfig } from '@sluice-proxy/sluice';",
          'const config: Config = parseConfig(\'upstreams: [{ name: a, prefix: /, target: "http://127.0.0.1:1" }]\', { env: {} });',
          'const upstream: UpstreamConfig | undefined = config.upstreams[0];',
          'const build: (c: Config) => Promise<SluiceApp> = (c) => buildApp(c);',
          "const load: Promise<Config> = loadConfigFile('sluice.yaml', process.env);",
          'const port: number = config.listen.port;',
          'void [upstream, build, load, port, configJsonSchema(), ConfigError];',
          // Each of these would pass silently if a declaration had degraded to `any`.
          '// @ts-expect-error: listen.port is a number',
          'const wrong: string = config.listen.port;',
          '// @ts-expect-error: buildApp takes a Config',
          "void buildApp('sluice.yaml');",
          '// @ts-expect-error: SluiceApp has no such method',
          'void build(config).then((app) => app.restart());',
          'void wrong;',
          '',
        ].join('\n'),
      );
      // The checkout's TypeScript and @types/node, so that nothing more is downloaded. skipLibCheck
      // keeps this at a few seconds (checking fastify's and zod's own declarations takes ~15 s);
      // the declarations of sluice itself are still resolved and used.
      await writeFile(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2023',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: ['node'],
            typeRoots: [join(ROOT, 'node_modules', '@types')],
          },
          files: ['consumer.ts'],
        }),
      );
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, env: cleanEnv(), timeoutMs: TSC_TIMEOUT_MS });
      expect(result.stdout + result.stderr).toBe('');
      expect(result.code).toBe(0);
    },
    TSC_TIMEOUT_MS + 5_000,
  );
});
