/**
 * Child processes for the packaging tests: commands run to the end with a bound, and a running
 * sluice whose JSON log lines can be awaited. Every process started here is tracked and killed by
 * `killAll()` (call it in afterEach/afterAll).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { lstat, readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

const started = new Set<ChildProcess>();

/** The test run's environment without SLUICE_* variables and npm's chatter, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('SLUICE_')) env[name] = value;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end; rejects (after killing it) when it takes longer than `timeoutMs`. */
export function run(command: string, args: readonly string[], options: SpawnOptions & { timeoutMs: number }): Promise<Finished> {
  const { timeoutMs, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
    started.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')}: still running after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      started.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      started.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Like `run`, but a non-zero exit is an error that shows the output. */
export async function runOk(command: string, args: readonly string[], options: SpawnOptions & { timeoutMs: number }): Promise<Finished> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code ?? result.signal}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
  return result;
}

/** A long-running sluice process whose stdout is pino JSON, one object a line. */
export class SluiceProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Finished>;
  readonly #logs: Record<string, unknown>[] = [];
  readonly #waiters = new Set<() => void>();
  #partial = '';

  constructor(command: string, args: readonly string[], options: SpawnOptions) {
    this.child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    started.add(this.child);
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      const lines = (this.#partial + chunk).split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.#logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // Not a log line.
        }
      }
      for (const notify of this.#waiters) notify();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        started.delete(this.child);
        for (const notify of this.#waiters) notify();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line that matches, waiting at most `timeoutMs`. */
  waitForLog(match: (log: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(() => reject(new Error(`no such log line within ${timeoutMs} ms\n${this.describe()}`))), timeoutMs);
      const settle = (then: () => void): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        then();
      };
      const check = (): void => {
        const found = this.#logs.find(match);
        if (found) settle(() => resolve(found));
        else if (!this.running) settle(() => reject(new Error(`sluice exited before the log line\n${this.describe()}`)));
      };
      this.#waiters.add(check);
      check();
    });
  }

  /**
   * The client and admin ports from the "sluice is listening" line, and the pid of the sluice
   * process itself (not the same as `child.pid` when a wrapper such as npx started it).
   */
  async ports(timeoutMs: number): Promise<{ proxy: number; admin: number; pid: number }> {
    const line = await this.waitForLog((log) => log.msg === 'sluice is listening', timeoutMs);
    const portOf = (address: unknown): number => Number(String(address).slice(String(address).lastIndexOf(':') + 1));
    return { proxy: portOf(line.proxy), admin: portOf(line.admin), pid: Number(line.pid) };
  }

  /** Sends `signal` and waits at most `timeoutMs` for the exit (then kills it and rejects). */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<Finished> {
    this.child.kill(signal);
    return this.waitForExit(timeoutMs);
  }

  /** Waits at most `timeoutMs` for the exit (then kills it and rejects). */
  async waitForExit(timeoutMs: number): Promise<Finished> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`the process did not exit within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  describe(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }
}

/** Kills every process these helpers started that is still running. */
export function killAll(): void {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  started.clear();
}

/** GET with a 5 s bound; the body as text. */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer within 5 s`)));
    request.on('error', reject);
  });
}

/** A real upstream on 127.0.0.1, port 0, answering every request with a JSON echo of it. */
export async function startEchoUpstream(): Promise<{
  url: string;
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}> {
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Apparent size in bytes of the files under `dir` (`du -s --apparent-size`, without du). */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(path);
    else total += (await lstat(path)).size;
  }
  return total;
}
