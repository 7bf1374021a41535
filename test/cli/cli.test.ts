/**
 * The built command (`node dist/cli.js`) as users run it: real processes, stdin closed, real
 * sockets on 127.0.0.1 with port 0, and a bound on every wait. `npm test` builds first; run
 * `npm run build` before `npx vitest run test/cli`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load-config.js';
import { EXPECTED_PROBLEMS, fixturePath } from '../config/expected-problems.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');
const SPAWN_TIMEOUT_MS = 10_000;

/** The environment of the test run without any SLUICE_* variable, plus `extra`. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('SLUICE_')) env[name] = value;
  return { ...env, ...extra };
}

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A sluice process we started; killed in afterEach if a test left it running. */
class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Finished>;
  private readonly logs: Record<string, unknown>[] = [];
  private readonly onLog = new Set<() => void>();
  private partial = '';

  constructor(args: readonly string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this);
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // Not a log line (--check prints YAML, --help text).
        }
      }
      for (const notify of this.onLog) notify();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        running.delete(this);
        for (const notify of this.onLog) notify();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first JSON log line on stdout that matches, waiting at most `timeoutMs`. */
  waitForLog(match: (log: Record<string, unknown>) => boolean, timeoutMs = SPAWN_TIMEOUT_MS): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.logs.find(match);
        if (found) done(() => resolve(found));
        else if (!this.running) done(() => reject(new Error(`sluice exited (${this.child.exitCode}) before the log line\n${this.describe()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no such log line within ${timeoutMs} ms\n${this.describe()}`))), timeoutMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        this.onLog.delete(check);
        settle();
      };
      this.onLog.add(check);
      check();
    });
  }

  /** Resolves when the process ends, or rejects after `timeoutMs` (and kills it). */
  async waitForExit(timeoutMs = SPAWN_TIMEOUT_MS): Promise<Finished> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.kill();
        reject(new Error(`sluice did not exit within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  describe(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }
}

const running = new Set<CliProcess>();

/** Runs the command to its end (bounded). */
function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<Finished> {
  return new CliProcess(args, env).waitForExit();
}

/** The `file:line: path: message` lines of a ConfigError on stderr. */
function problemLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

const servers = new Set<net.Server>();

/** A server holding a port (nothing is served): binding it again must fail. */
async function holdPort(): Promise<number> {
  const server = net.createServer((socket) => socket.destroy());
  servers.add(server);
  return listen(server);
}

function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer within 5 s`)));
    request.on('error', reject);
  });
}

/** The port of a `host:port` address as sluice logs it. */
function portOf(address: unknown): number {
  const text = String(address);
  const port = Number(text.slice(text.lastIndexOf(':') + 1));
  expect(port, `port of ${text}`).toBeGreaterThan(0);
  return port;
}

let tmp: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first ("npm test" does)`);
  tmp = await mkdtemp(join(tmpdir(), 'sluice-cli-'));
});

afterEach(async () => {
  for (const cli of running) cli.kill();
  await Promise.all([...servers].map(close));
  servers.clear();
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('sluice --help, --version', () => {
  it('--help prints the usage on stdout and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^sluice: a rate-limiting HTTP proxy/);
    expect(result.stdout).toContain('Usage:');
    expect(result.stdout).toContain('sluice --config sluice.yaml --check');
    expect(result.stdout).toContain('--target URL --rate 20/s');
    expect(result.stderr).toBe('');
  });

  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${version}\n`);
  });
});

describe('sluice --check', () => {
  it('a valid file: exit 0, the normalized configuration as YAML, setHeaders values redacted', async () => {
    const env = { GITHUB_TOKEN: 'ghp_do_not_print_me' };
    const result = await runCli(['--config', fixturePath('valid-full.yaml'), '--check'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('ghp_do_not_print_me');
    const printed = parse(result.stdout) as Record<string, unknown>;
    const config = parseConfig(readFileSync(fixturePath('valid-full.yaml'), 'utf8'), { env });
    expect(printed).toStrictEqual({
      ...config,
      upstreams: [
        { ...config.upstreams[0], setHeaders: { authorization: '[redacted]' } },
        { ...config.upstreams[1], setHeaders: {} },
      ],
    });
    // Base units: ms, bytes, per second.
    expect(printed).toMatchObject({
      shutdown: { grace: 25_000 },
      upstreams: [
        { timeout: 10_000, limits: [{ burst: 100 }, { rate: 20 }], retry: { maxBodySize: 1_048_576 } },
        { limits: [{ rate: 6 }, { concurrency: 4 }] },
      ],
    });
  });

  it('nothing listens: the ports of the file stay free for their owners', async () => {
    const [proxyPort, adminPort] = [await holdPort(), await holdPort()];
    const file = join(tmp, 'held-ports.yaml');
    await writeFile(
      file,
      `listen: { host: 127.0.0.1, port: ${proxyPort} }\nadmin: { host: 127.0.0.1, port: ${adminPort} }\nupstreams:\n  - { name: api, prefix: /, target: "http://127.0.0.1:1", limits: [{ rate: 5/s }] }\n`,
    );
    const result = await runCli(['--check', '--config', file]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(parse(result.stdout)).toMatchObject({ listen: { port: proxyPort }, admin: { port: adminPort } });
    expect(result.stdout).not.toContain('sluice is listening');
  });

  it('many-errors.yaml: exit 2, every problem on stderr as "file:line: path: message"', async () => {
    const file = fixturePath('many-errors.yaml');
    const expected = EXPECTED_PROBLEMS['many-errors.yaml'] ?? [];
    const result = await runCli(['--config', file, '--check']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toBe(`${file}: ${expected.length} configuration problems`);
    const lines = problemLines(result.stderr);
    expect(lines).toHaveLength(expected.length);
    lines.forEach((line, i) => {
      const problem = expected[i];
      expect(line.startsWith(`${file}:${problem?.line}: ${problem?.path}: `), line).toBe(true);
      expect(line).toContain(problem?.message);
    });
    expect(result.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('SLUICE_CONFIG stands for --config', async () => {
    const result = await runCli(['--check'], { SLUICE_CONFIG: fixturePath('valid-minimal.yaml') });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(parse(result.stdout)).toMatchObject({
      upstreams: [{ name: 'api', prefix: '/', target: 'http://127.0.0.1:3000', limits: [{ rate: 20, burst: 1 }] }],
    });
  });

  it('SLUICE_LOG_LEVEL overrides log.level', async () => {
    const result = await runCli(['--check', '--config', fixturePath('valid-minimal.yaml')], { SLUICE_LOG_LEVEL: 'debug' });
    expect(result.code).toBe(0);
    expect(parse(result.stdout)).toMatchObject({ log: { level: 'debug' } });
  });

  it('quick mode: one upstream at "/" with the given rate, burst, concurrency and ports', async () => {
    const result = await runCli([
      '--target',
      'https://api.example.com',
      '--rate',
      '20/s',
      '--burst',
      '5',
      '--concurrency',
      '10',
      '--port',
      '8181',
      '--admin-port',
      '9191',
      '--check',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const printed = parse(result.stdout) as { listen: { port: number }; admin: { port: number }; upstreams: unknown[] };
    expect(printed.listen.port).toBe(8181);
    expect(printed.admin.port).toBe(9191);
    expect(printed.upstreams).toHaveLength(1);
    expect(printed.upstreams[0]).toMatchObject({
      name: 'default',
      prefix: '/',
      target: 'https://api.example.com',
      limits: [{ rate: 20, burst: 5, concurrency: 10 }],
    });
  });
});

describe('usage and configuration errors exit 2', () => {
  it.each([
    ['an unknown flag', ['--bogus'], {}, "Unknown option '--bogus'"],
    ['a positional argument', ['sluice.yaml'], {}, 'sluice.yaml'],
    [
      '--config with --target',
      ['--config', fixturePath('valid-minimal.yaml'), '--target', 'http://127.0.0.1:1', '--rate', '1/s'],
      {},
      '--target, --rate cannot be combined with a configuration file',
    ],
    [
      'SLUICE_CONFIG with --target',
      ['--target', 'http://127.0.0.1:1'],
      { SLUICE_CONFIG: fixturePath('valid-minimal.yaml') },
      '--target cannot be combined with a configuration file',
    ],
    ['neither --config nor --target', ['--rate', '20/s'], {}, 'give a configuration file (--config, SLUICE_CONFIG) or a target (--target)'],
    ['nothing at all', [], {}, 'give a configuration file'],
    [
      'an invalid SLUICE_LOG_LEVEL',
      ['--config', fixturePath('valid-minimal.yaml')],
      { SLUICE_LOG_LEVEL: 'loud' },
      'SLUICE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
  ])('%s', async (_name, args, env, message) => {
    const result = await runCli(args, env);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
  });

  it('quick mode with bad flags: every problem names its flag', async () => {
    const result = await runCli(['--target', 'ftp://api.example.com', '--rate', 'fast', '--burst', 'lots', '--check']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(problemLines(result.stderr)).toEqual([
      'command line: --target: expected an http:// or https:// URL, got "ftp://api.example.com"',
      'command line: --rate: expected a rate such as 20/s, 1000/m, 5000/h or 30/5s, got "fast"',
      'command line: --burst: expected number, got "lots"',
    ]);
  });

  it('a missing configuration file names the file', async () => {
    const file = join(tmp, 'absent', 'sluice.yaml');
    const result = await runCli(['--config', file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${file}: cannot read the file: ENOENT`);
  });
});

describe('a real run', () => {
  it('proxies a request, answers /healthz, and exits 0 on SIGTERM', async () => {
    const received: { method: string; url: string; host: string }[] = [];
    const upstream = http.createServer((req, res) => {
      received.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host ?? '' });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from upstream');
    });
    servers.add(upstream);
    const upstreamPort = await listen(upstream);

    const sluice = new CliProcess(['--target', `http://127.0.0.1:${upstreamPort}`, '--rate', '50/s', '--port', '0', '--admin-port', '0']);
    const listening = await sluice.waitForLog((log) => log.msg === 'sluice is listening');
    expect(listening).toMatchObject({ level: 30, upstreams: [`/ -> http://127.0.0.1:${upstreamPort}`] });
    const proxyPort = portOf(listening.proxy);
    const adminPort = portOf(listening.admin);
    expect(adminPort).not.toBe(proxyPort);

    const response = await httpGet(`http://127.0.0.1:${proxyPort}/v1/items?page=2`);
    expect(response).toEqual({ status: 200, body: 'hello from upstream' });
    expect(received).toEqual([{ method: 'GET', url: '/v1/items?page=2', host: `127.0.0.1:${upstreamPort}` }]);
    // One log line per request, written promptly (not held back in a buffer).
    await expect(sluice.waitForLog((log) => log.msg === 'request')).resolves.toMatchObject({ upstream: 'default', status: 200, attempts: 1 });

    const health = await httpGet(`http://127.0.0.1:${adminPort}/healthz`);
    expect(health.status).toBe(200);
    // The admin endpoints are not on the client port.
    expect(received).toHaveLength(1);

    sluice.child.kill('SIGTERM');
    const finished = await sluice.waitForExit(5_000);
    expect(finished.signal).toBeNull();
    expect(finished.code).toBe(0);
    expect(finished.stderr).toBe('');
    await expect(sluice.waitForLog((log) => log.msg === 'stopped', 0)).resolves.toBeDefined();
  });

  it.each([
    ['the proxy port', '--port'],
    ['the admin port', '--admin-port'],
  ])('exits 1 when %s is already taken', async (_name, flag) => {
    const taken = await holdPort();
    const ports = { '--port': '0', '--admin-port': '0', [flag]: String(taken) };
    const sluice = new CliProcess(['--target', 'http://127.0.0.1:1', '--rate', '1/s', '--port', ports['--port'], '--admin-port', ports['--admin-port']]);
    const finished = await sluice.waitForExit();
    expect(finished.code).toBe(1);
    const fatal = await sluice.waitForLog((log) => log.msg === 'cannot listen', 0);
    expect(fatal).toMatchObject({ level: 60, err: { code: 'EADDRINUSE', port: taken } });
    expect(finished.stdout).not.toContain('sluice is listening');
  });
});
