/**
 * The container image without a container engine: the Dockerfile's runtime stage reproduced in a
 * clean temporary directory (package.json + package-lock.json, `npm ci --omit=dev --ignore-scripts`,
 * dist/), and the image's exact ENTRYPOINT and CMD run there against a real upstream on 127.0.0.1.
 * What this cannot check: the base image, the user switch, file ownership and `docker build` itself
 * (.github/workflows/image.yml does, on a machine with Docker).
 *
 * Needs `npm run build` first, and the npm registry (or a warm npm cache) for the install.
 */
import { cpSync, existsSync, readFileSync } from 'node:fs';
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
function dockerfileStages(text: string): { from: string; instructions: Instruction[] }[] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: { from: string; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') stages.push({ from: instruction.args, instructions: [] });
    else stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const stages = dockerfileStages(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = stages.at(-1) ?? { from: '', instructions: [] };
const last = (keyword: string): string | undefined => runtime.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
const ENTRYPOINT = JSON.parse(last('ENTRYPOINT') ?? 'null') as string[] | null;
const CMD = JSON.parse(last('CMD') ?? 'null') as string[] | null;
const IMAGE_CONFIG_PATH = '/etc/sluice/sluice.yaml';

describe('Dockerfile', () => {
  it('builds with dev dependencies in one stage and runs with production dependencies only in the last', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages[0] as (typeof stages)[number];
    expect(build.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args) && !i.args.includes('--omit=dev'))).toBe(true);
    expect(build.instructions.some((i) => i.keyword === 'RUN' && i.args.includes('npm run build'))).toBe(true);
    const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((args) => /\bnpm ci\b.*--omit=dev/.test(args))).toBe(true);
    expect(runs.some((args) => args.includes('npm run build'))).toBe(false);
    // Only the manifests, the compiled output and the licence reach the runtime stage.
    const copied = runtime.instructions
      .filter((i) => i.keyword === 'COPY')
      .map((i) =>
        i.args
          .replace(/--\S+\s+/g, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    expect(copied.flat().sort()).toEqual(['/app/dist/', 'LICENSE', 'package-lock.json', 'package.json']);
  });

  it('uses a Node LTS slim image, a numeric non-root user, ports 8080 and 9090', () => {
    for (const stage of stages) expect(stage.from).toMatch(/^node:\$\{NODE_VERSION\}-slim\b/);
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^ARG NODE_VERSION=(22|24)$/m);
    const user = last('USER') ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(last('EXPOSE')?.split(/\s+/).sort()).toEqual(['8080', '9090']);
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
      .flatMap((stage) => stage.instructions)
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
