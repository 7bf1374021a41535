import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js');

export interface SluiceProcess {
  readonly child: ChildProcess;
  readonly configPath: string;
  readonly url: string;
  readonly adminUrl: string;
  /** Every stdout line so far (pino JSON). */
  readonly lines: string[];
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
}

/** Runs the built CLI (`dist/cli.js`) with a YAML configuration and waits until it listens. */
export async function runSluice(yaml: string, env: Record<string, string> = {}, timeoutMs = 10_000): Promise<SluiceProcess> {
  const configPath = join(mkdtempSync(join(tmpdir(), 'sluice-test-')), 'sluice.yaml');
  writeFileSync(configPath, yaml);
  const child = spawn(process.execPath, [CLI, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const addresses = await new Promise<{ proxy: string; admin: string }>((resolveListen, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not listen within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`sluice exited with ${code} before listening: ${stderr}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; proxy?: string; admin?: string };
        if (entry.msg === 'sluice is listening') {
          clearTimeout(timer);
          resolveListen({ proxy: entry.proxy as string, admin: entry.admin as string });
        }
      } catch {
        // not JSON: ignore
      }
    });
  });
  return { child, configPath, url: `http://${addresses.proxy}`, adminUrl: `http://${addresses.admin}`, lines, exited };
}
