/**
 * Child processes for the demo and the load scenarios: the stand-in API and sluice itself, each in
 * its own process (as in production), found by the first line they print.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
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
export async function spawnStandin(args: readonly string[]): Promise<Child & { url: string }> {
  const child = spawn(process.execPath, [...STANDIN_V8_FLAGS, TSX, join(ROOT, 'load', 'standin-server.ts'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await firstLine(child, 'the stand-in API', (line) => parseJson(line)?.url as string | undefined);
  return { ...track(child), url };
}

/** Starts the built sluice (`dist/cli.js`) with a configuration written to a temporary file. */
export async function spawnSluice(configYaml: string, env: Record<string, string> = {}): Promise<Child & { proxyUrl: string; adminUrl: string; configPath: string }> {
  const configPath = join(mkdtempSync(join(tmpdir(), 'sluice-')), 'sluice.yaml');
  writeFileSync(configPath, configYaml);
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SLUICE_LOG_LEVEL: 'info', ...env },
  });
  const addresses = await firstLine(child, 'sluice', (line) => {
    const entry = parseJson(line);
    return entry?.msg === 'sluice is listening' ? { proxy: entry.proxy as string, admin: entry.admin as string } : undefined;
  });
  return { ...track(child), proxyUrl: `http://${addresses.proxy}`, adminUrl: `http://${addresses.admin}`, configPath };
}

export function writeTempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sluice-')), name);
  writeFileSync(path, text);
  return path;
}
