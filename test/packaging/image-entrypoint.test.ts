/**
 * The container image without a container engine: the Dockerfile's runtime stage reproduced in a
 * clean temporary directory (package.json + package-lock.json, `npm ci --omit=dev --ignore-scripts`,
 * dist/, both pruned of declarations and source maps by the Dockerfile's own `find` commands), and
 * the image's exact ENTRYPOINT and CMD run there against a real upstream on 127.0.0.1.
 * What this cannot check: the base image, the user switch, file ownership and `docker build` itself
 * (.github/workflows/image.yml does, on a machine with Docker).
 *
 * Needs `npm run build` first, and the npm registry (or a warm npm cache) for the install.
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, httpGet, killAll, runOk, SluiceProcess, startEchoUpstream, treeBytes } from './processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** The Dockerfile's instructions per stage, continuation lines joined, comments dropped. */
function dockerfileStages(text: string): { from: string; name: string; instructions: Instruction[] }[] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: { from: string; name: string; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') {
      const [from = '', as, name = ''] = rest;
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : '', instructions: [] });
    } else stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const stages = dockerfileStages(DOCKERFILE);
const stage = (name: string): (typeof stages)[number] => {
  const found = stages.find((s) => s.name === name);
  if (!found) throw new Error(`the Dockerfile has no stage ${name}`);
  return found;
};
const runtime = stages.at(-1) ?? { from: '', name: '', instructions: [] };
const runs = (name: string): string[] =>
  stage(name)
    .instructions.filter((i) => i.keyword === 'RUN')
    .map((i) => i.args);
const last = (keyword: string): string | undefined => runtime.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
const ENTRYPOINT = JSON.parse(last('ENTRYPOINT') ?? 'null') as string[] | null;
const CMD = JSON.parse(last('CMD') ?? 'null') as string[] | null;
const IMAGE_CONFIG_PATH = '/etc/sluice/sluice.yaml';
/** The `find ... -delete` that prunes a stage's files (declarations, source maps), as written there. */
const pruneCommand = (name: string): string => {
  const command = runs(name)
    .flatMap((args) => args.split('&&'))
    .map((part) => part.trim())
    .find((part) => part.startsWith('find ') && part.endsWith('-delete'));
  if (command === undefined) throw new Error(`stage ${name} prunes nothing`);
  return command;
};

describe('Dockerfile', () => {
  it('names one base image, pinned by Debian codename and by digest; every stage starts from it', () => {
    const images = stages.filter((s) => !stages.some((other) => other.name === s.from));
    expect(images.map((s) => s.from)).toHaveLength(1);
    expect(stages[0]?.from).toMatch(/^node:24-bookworm-slim@sha256:[0-9a-f]{64}$/);
    expect(stages[0]?.name).toBe('base');
    expect(stages.slice(1).map((s) => `${s.from} AS ${s.name}`)).toEqual(['base AS build', 'base AS deps', 'base AS runtime']);
  });

  it('has Renovate keep the base digest current', () => {
    const renovate = JSON.parse(readFileSync(join(ROOT, 'renovate.json'), 'utf8')) as {
      extends: string[];
      packageRules: { matchDatasources?: string[]; matchUpdateTypes?: string[] }[];
    };
    expect(renovate.extends).toContain('docker:pinDigests');
    expect(renovate.packageRules.some((r) => r.matchDatasources?.includes('docker') && r.matchUpdateTypes?.includes('digest'))).toBe(true);
  });

  it('builds with dev dependencies, installs production ones apart, and runs with neither npm nor a build step', () => {
    expect(runs('build').some((args) => /\bnpm ci\b/.test(args) && !args.includes('--omit=dev'))).toBe(true);
    expect(runs('build').some((args) => args.includes('npm run build'))).toBe(true);
    expect(runs('deps').some((args) => /\bnpm ci\b.*--omit=dev/.test(args))).toBe(true);
    expect(runs('runtime').some((args) => /\bnpm (ci|install|run)\b/.test(args))).toBe(false);
    // npm, npx and corepack removed, and the step fails if npm is still there.
    const removal = runs('runtime').find((args) => args.startsWith('rm -rf')) ?? '';
    for (const path of [
      '/usr/local/lib/node_modules/npm',
      '/usr/local/lib/node_modules/corepack',
      '/usr/local/bin/npm',
      '/usr/local/bin/npx',
      '/usr/local/bin/corepack',
    ])
      expect(removal.split(/\s+/)).toContain(path);
    expect(removal).toContain('! command -v npm');
    // Only the manifest, the production node_modules, the compiled output and the licence reach the runtime stage.
    const copied = runtime.instructions
      .filter((i) => i.keyword === 'COPY')
      .map((i) =>
        i.args
          .replace(/--\S+\s+/g, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    expect(copied.flat().sort()).toEqual(['/app/dist/', '/app/node_modules/', 'LICENSE', 'package.json']);
    expect(runtime.instructions.filter((i) => i.keyword === 'COPY').map((i) => /--from=(\S+)/.exec(i.args)?.[1] ?? 'context')).toEqual([
      'context',
      'deps',
      'build',
      'context',
    ]);
  });

  it('prunes source maps and declarations from dist/ and node_modules/', () => {
    expect(pruneCommand('build')).toMatch(/^find dist .*-name '\*\.map'.*-name '\*\.d\.ts'.*-delete$/);
    expect(pruneCommand('deps')).toMatch(/^find node_modules .*-name '\*\.map'.*-name '\*\.d\.ts'.*-delete$/);
  });

  it('uses a numeric non-root user, ports 8080 and 9090, SIGTERM as the stop signal, and OCI labels', () => {
    const user = last('USER') ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(last('EXPOSE')?.split(/\s+/).sort()).toEqual(['8080', '9090']);
    expect(last('STOPSIGNAL')).toBe('SIGTERM');
    const labels = runtime.instructions
      .filter((i) => i.keyword === 'LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const key of ['title', 'description', 'source', 'licenses', 'version', 'revision', 'base.name'])
      expect(labels).toMatch(new RegExp(`org\\.opencontainers\\.image\\.${key.replace('.', '\\.')}="[^"]+"`));
  });

  it('runs `node dist/cli.js --config /etc/sluice/sluice.yaml`', () => {
    expect(ENTRYPOINT).toEqual(['node', 'dist/cli.js']);
    expect(CMD).toEqual(['--config', IMAGE_CONFIG_PATH]);
  });

  it('.dockerignore lets in only what the build copies', () => {
    const rules = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(rules[0]).toBe('*');
    const allowed = rules.slice(1).map((rule) => rule.replace(/^!/, '').replace(/\/$/, ''));
    const copiedFromContext = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .map((path) => path.replace(/\/$/, ''));
    expect(new Set(allowed)).toEqual(new Set(copiedFromContext));
  });
});

describe('the runtime stage, reproduced in a clean directory', () => {
  let app: string;
  let config: string;
  let upstream: Awaited<ReturnType<typeof startEchoUpstream>>;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: run "npm run build" first');
    app = await mkdtemp(join(tmpdir(), 'sluice-image-'));
    cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    await runOk('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, env: cleanEnv(), timeoutMs: INSTALL_TIMEOUT_MS });
    cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
    // The Dockerfile's own find commands, on the same trees.
    await runOk('sh', ['-c', pruneCommand('deps')], { cwd: app, env: cleanEnv(), timeoutMs: 60_000 });
    await runOk('sh', ['-c', pruneCommand('build')], { cwd: app, env: cleanEnv(), timeoutMs: 60_000 });
    rmSync(join(app, 'package-lock.json'));
    upstream = await startEchoUpstream();
    config = join(app, 'sluice.yaml');
    await writeFile(
      config,
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'admin: { host: 127.0.0.1, port: 0 }',
        'shutdown: { grace: 2s }',
        'upstreams:',
        '  - name: api',
        '    prefix: /api',
        `    target: ${upstream.url}/v1`,
        '    setHeaders: { x-api-key: "${API_KEY}" }',
        '    limits: [{ rate: 50/s, burst: 5 }]',
        '',
      ].join('\n'),
    );
  }, INSTALL_TIMEOUT_MS + 30_000);

  afterEach(() => killAll());

  afterAll(async () => {
    killAll();
    await upstream?.close();
    if (app) await rm(app, { recursive: true, force: true });
  });

  it('has no source maps or declarations left, in dist/ or node_modules/', () => {
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.(map|d\.ts|d\.mts|d\.cts)$/.test(entry.name)) found.push(path);
      }
    };
    walk(join(app, 'dist'));
    walk(join(app, 'node_modules'));
    expect(found).toEqual([]);
  });

  it('has the production dependencies and no development ones', async () => {
    const require = createRequire(join(app, 'dist', 'cli.js'));
    // Resolved from the image's /app, not from the checkout's node_modules.
    expect(require.resolve('fastify').startsWith(app)).toBe(true);
    for (const dev of ['typescript', 'vitest', 'tsx', 'eslint', 'pino-pretty', 'fast-check', 'autocannon'])
      expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
    const modules = await treeBytes(join(app, 'node_modules'));
    const dist = await treeBytes(join(app, 'dist'));
    console.info(`runtime stage on top of the base image: node_modules ${mb(modules)}, dist ${mb(dist)}`);
    // The Dockerfile's size estimate assumes sluice adds well under 60 MB to the base image.
    expect(modules + dist).toBeLessThan(60 * 1024 * 1024);
  });

  async function proxiesAndDrains(sluice: SluiceProcess): Promise<void> {
    const ports = await sluice.ports(START_TIMEOUT_MS);
    const admin = `http://127.0.0.1:${ports.admin}`;
    expect((await httpGet(`${admin}/healthz`)).status).toBe(200);
    expect((await httpGet(`${admin}/readyz`)).status).toBe(200);

    const response = await httpGet(`http://127.0.0.1:${ports.proxy}/api/items?page=2`);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ method: 'GET', url: '/v1/items?page=2' });
    expect(response.headers['sluice-attempts']).toBe('1');
    expect(upstream.seen.at(-1)?.headers['x-api-key']).toBe('secret-from-env');

    const finished = await sluice.stop('SIGTERM', STOP_TIMEOUT_MS);
    expect(finished.code, sluice.describe()).toBe(0);
    expect(sluice.stdout).toContain('"msg":"stopped"');
  }

  it('ENTRYPOINT + CMD (config path mapped into the temp dir) serves /healthz, proxies, and exits 0 on SIGTERM', async () => {
    const [command, ...entryArgs] = ENTRYPOINT as string[];
    expect(command).toBe('node');
    const args = [...entryArgs, ...(CMD as string[]).map((arg) => (arg === IMAGE_CONFIG_PATH ? config : arg))];
    const sluice = new SluiceProcess(process.execPath, args, { cwd: app, env: cleanEnv({ NODE_ENV: 'production', API_KEY: 'secret-from-env' }) });
    await proxiesAndDrains(sluice);
  });

  it('ENTRYPOINT alone with SLUICE_CONFIG serves /healthz, proxies, and exits 0 on SIGTERM', async () => {
    const [, ...entryArgs] = ENTRYPOINT as string[];
    const sluice = new SluiceProcess(process.execPath, entryArgs, {
      cwd: app,
      env: cleanEnv({ NODE_ENV: 'production', SLUICE_CONFIG: config, API_KEY: 'secret-from-env' }),
    });
    await proxiesAndDrains(sluice);
  });
});
