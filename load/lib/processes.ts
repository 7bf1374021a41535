/**
 * Child processes for the demo and the load scenarios: the stand-in API and sluice itself, each in
 * its own process (as in production), found by the first line they print.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The sluice to run: the build of this checkout, or another build given by SLUICE_CLI. */
export const SLUICE_CLI = process.env.SLUICE_CLI ?? join(ROOT, 'dist', 'cli.js');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

export interface Child {
  readonly process: ChildProcess;
  /** Sends SIGTERM and waits for the exit code (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
}

function track(child: ChildProcess): Child {
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return {
    process: child,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Waits for the first stdout line `accept` returns a value for. */
function firstLine<T>(child: ChildProcess, what: string, accept: (line: string) => T | undefined, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolveLine, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it was ready\n${stderr}`));
    };
    child.once('exit', onExit);
    lines.on('line', (line) => {
      const value = accept(line);
      if (value === undefined) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      lines.removeAllListeners('line');
      // Keep draining output so the child never blocks on a full pipe.
      child.stdout?.resume();
      resolveLine(value);
    });
  });
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * V8 flags of the stand-in API. It is the judge of every pacing test, so its own pauses must not
 * move the arrival times it records: V8's memory reducer runs a full GC a few seconds after start
 * (about 3 ms plus incremental steps, measured with --trace-gc), and a small young generation
 * scavenges often. A production API's limiter typically runs in a proxy without a GC at all.
 */
const STANDIN_V8_FLAGS = ['--no-memory-reducer', '--max-semi-space-size=64'];

/** Starts load/standin-server.ts with the given flags. */
export async function spawnStandin(args: readonly string[]): Promise<Child & { url: string; pid: number }> {
  const child = spawn(process.execPath, [...STANDIN_V8_FLAGS, TSX, join(ROOT, 'load', 'standin-server.ts'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await firstLine(child, 'the stand-in API', (line) => parseJson(line)?.url as string | undefined);
  return { ...track(child), url, pid: child.pid as number };
}

export interface SpawnSluiceOptions {
  /** Extra environment. SLUICE_LOG_LEVEL is `info` unless given here. */
  readonly env?: Record<string, string>;
  /** Flags for node before dist/cli.js, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  readonly nodeArgs?: readonly string[];
  /**
   * Where sluice's stdout (its JSON logs) goes: `pipe` (the default) is read for the "listening" line
   * and then drained by this process; `null` is /dev/null, with the ports chosen here beforehand and
   * readiness taken from the admin /healthz. The overhead scenario uses `null`, so reading the logs
   * costs the load generator nothing.
   */
  readonly stdout?: 'pipe' | 'null';
}

export type SluiceChild = Child & { proxyUrl: string; adminUrl: string; configPath: string; pid: number };

/**
 * Starts the built sluice (`dist/cli.js`) with a configuration written to a temporary file.
 * The second argument is either extra environment (as the demo passes it) or the options.
 */
export async function spawnSluice(configYaml: string, envOrOptions: Record<string, string> | SpawnSluiceOptions = {}): Promise<SluiceChild> {
  const options: SpawnSluiceOptions = isSpawnOptions(envOrOptions) ? envOrOptions : { env: envOrOptions };
  const env = { ...process.env, SLUICE_LOG_LEVEL: 'info', ...options.env };
  const nodeArgs = options.nodeArgs ?? [];
  if (options.stdout === 'null') {
    const [proxyPort, adminPort] = [await freePort(), await freePort()];
    const yaml = configYaml
      .replace(/^listen: \{ host: 127\.0\.0\.1, port: 0 \}$/m, `listen: { host: 127.0.0.1, port: ${proxyPort} }`)
      .replace(/^admin: \{ host: 127\.0\.0\.1, port: 0 \}$/m, `admin: { host: 127.0.0.1, port: ${adminPort} }`);
    if (!yaml.includes(`port: ${proxyPort}`) || !yaml.includes(`port: ${adminPort}`)) {
      throw new Error('spawnSluice({ stdout: "null" }) needs the lines "listen: { host: 127.0.0.1, port: 0 }" and "admin: { host: 127.0.0.1, port: 0 }"');
    }
    const configPath = writeTempFile('sluice.yaml', yaml);
    const devNull = openSync('/dev/null', 'w');
    const child = spawn(process.execPath, [...nodeArgs, SLUICE_CLI, '--config', configPath], { stdio: ['ignore', devNull, 'pipe'], env });
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    await waitForHealthy(child, `${adminUrl}/healthz`);
    return { ...track(child), proxyUrl: `http://127.0.0.1:${proxyPort}`, adminUrl, configPath, pid: child.pid as number };
  }
  const configPath = writeTempFile('sluice.yaml', configYaml);
  const child = spawn(process.execPath, [...nodeArgs, SLUICE_CLI, '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const addresses = await firstLine(child, 'sluice', (line) => {
    const entry = parseJson(line);
    return entry?.msg === 'sluice is listening' ? { proxy: entry.proxy as string, admin: entry.admin as string } : undefined;
  });
  return { ...track(child), proxyUrl: `http://${addresses.proxy}`, adminUrl: `http://${addresses.admin}`, configPath, pid: child.pid as number };
}

function isSpawnOptions(value: Record<string, string> | SpawnSluiceOptions): value is SpawnSluiceOptions {
  return ['env', 'nodeArgs', 'stdout'].some((k) => k in value) || Object.keys(value).length === 0;
}

/** Polls `url` until it answers 200; fails when the child exits or after `timeoutMs`. */
async function waitForHealthy(child: ChildProcess, url: string, timeoutMs = 20_000): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sluice exited with ${child.exitCode} before it was ready\n${stderr}`);
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  throw new Error(`sluice did not answer ${url} within ${timeoutMs} ms\n${stderr}`);
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts a TypeScript server of load/ (run with tsx) that prints {"url": ...} once listening, like
 * the stand-in: the plain upstream and the bare fastify proxy of the overhead scenario.
 */
export async function spawnTsServer(script: string, args: readonly string[], nodeArgs: readonly string[] = []): Promise<Child & { url: string; pid: number }> {
  const child = spawn(process.execPath, [...nodeArgs, TSX, join(ROOT, 'load', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await firstLine(child, script, (line) => parseJson(line)?.url as string | undefined);
  return { ...track(child), url, pid: child.pid as number };
}

export function writeTempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sluice-')), name);
  writeFileSync(path, text);
  return path;
}
