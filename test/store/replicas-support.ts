import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { startSluice } from '../helpers/sluice.js';

/**
 * Several sluice replicas in this process, each with its own Redis connection, in front of one
 * upstream; and a client that spreads calls over them with bounded concurrency.
 */

export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly contentType: string | undefined;
  /** performance.now() when the request was sent and when its answer had been read. */
  readonly sentAt: number;
  readonly doneAt: number;
}

export function newAgent(): Agent {
  return new Agent({ keepAliveTimeout: 2_000, connect: { timeout: 5_000 } });
}

/** One GET, read to the end; a transport error is a status of 0. */
export async function get(agent: Agent, url: string): Promise<Answer> {
  const sentAt = performance.now();
  try {
    const response = await request(url, { dispatcher: agent });
    const text = await response.body.text();
    const contentType = response.headers['content-type'];
    return { status: response.statusCode, text, contentType: Array.isArray(contentType) ? contentType[0] : contentType, sentAt, doneAt: performance.now() };
  } catch (err) {
    return { status: 0, text: String(err), contentType: undefined, sentAt, doneAt: performance.now() };
  }
}

/** The `code` of a problem+json answer. */
export function problemCode(answer: Answer): string | undefined {
  if (answer.contentType !== 'application/problem+json') return undefined;
  return (JSON.parse(answer.text) as { code?: string }).code;
}

/** The value of one sample in Prometheus text, matched by name and every given label. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(match[3]);
  }
  return undefined;
}

/** What the tests use of a replica, in this process or in its own. */
export interface Replica {
  /** `http://127.0.0.1:<port>` of the client listener, and of the admin listener. */
  readonly url: string;
  readonly adminUrl: string;
  close(): Promise<void>;
}

export interface Replicas {
  readonly sluices: readonly Replica[];
  close(): Promise<void>;
}

export interface ReplicaOptions {
  readonly redisUrl: string;
  readonly target: string;
  /** The upstream's limit, e.g. `100/s`. */
  readonly rate: string;
  readonly onError?: 'local' | 'deny';
  readonly replicasHint?: number;
  /** A key prefix of its own, so tests sharing a Redis never share buckets. */
  readonly keyPrefix: string;
  readonly extraUpstreamYaml?: string;
}

export function replicaYaml(options: ReplicaOptions): string {
  return `
store:
  type: redis
  url: ${options.redisUrl}
  onError: ${options.onError ?? 'local'}
  replicasHint: ${options.replicasHint ?? 1}
  timeout: 250ms
  keyPrefix: "${options.keyPrefix}"
upstreams:
  - name: api
    prefix: /api
    target: ${options.target}
    limits:
      - { rate: ${options.rate}, burst: 1 }
    queue: { maxWait: 60s }
${options.extraUpstreamYaml ?? ''}`;
}

/**
 * Starts `count` replicas: in this process (`inProcess`, the default), or each in its own process
 * running the TypeScript source with tsx, as replicas run in production: one replica's pauses are
 * then not every replica's, which is what timing assertions need on a small machine.
 */
export async function startReplicas(count: number, options: ReplicaOptions & { processes?: boolean }): Promise<Replicas> {
  const start = options.processes ? spawnReplica : (yaml: string) => startSluice(yaml);
  const sluices = await Promise.all(Array.from({ length: count }, () => start(replicaYaml(options))));
  return {
    sluices,
    close: async () => {
      await Promise.all(sluices.map((s) => s.close()));
    },
  };
}

const ROOT = resolve(import.meta.dirname, '..', '..');

/** `node --import tsx src/cli.ts --config <yaml>` (the source, not a build), ready once it says it listens. */
async function spawnReplica(yaml: string): Promise<Replica> {
  const configPath = join(mkdtempSync(join(tmpdir(), 'sluice-replica-')), 'sluice.yaml');
  writeFileSync(configPath, `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\n${yaml}`);
  // `--import tsx` keeps it one process (tsx's own CLI would run sluice in a child of its own).
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli.ts'), '--config', configPath], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SLUICE_LOG_LEVEL: 'info' },
  });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const addresses = await new Promise<{ proxy: string; admin: string }>((resolveListen, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not listen within 20 s: ${stderr}`)), 20_000);
    void exited.then(() => reject(new Error(`sluice exited before listening: ${stderr}`)));
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; proxy?: string; admin?: string };
        if (entry.msg !== 'sluice is listening') return;
        clearTimeout(timer);
        lines.removeAllListeners('line');
        child.stdout?.resume(); // keep draining the request log
        resolveListen({ proxy: entry.proxy as string, admin: entry.admin as string });
      } catch {
        // not JSON
      }
    });
  });
  return {
    url: `http://${addresses.proxy}`,
    adminUrl: `http://${addresses.admin}`,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

export interface Call {
  readonly replica: number;
  readonly answer: Answer;
}

/**
 * Sends `total` GETs, call i to replica i % n, at most `concurrency` at a time per replica; resolves
 * with every answer (a transport error is a status of 0).
 */
export async function spread(replicas: Replicas, total: number, concurrency: number): Promise<Call[]> {
  const agents: Agent[] = replicas.sluices.map(() => newAgent());
  const n = replicas.sluices.length;
  const calls: Call[] = [];
  try {
    await Promise.all(
      replicas.sluices.map(async (sluice, replica) => {
        const mine = Array.from({ length: total }, (_, i) => i).filter((i) => i % n === replica);
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < mine.length) {
            const i = mine[next++] as number;
            calls.push({ replica, answer: await get(agents[replica] as Agent, `${sluice.url}/api/item/${i}`) });
          }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
      }),
    );
  } finally {
    await Promise.all(agents.map((a) => a.close()));
  }
  return calls;
}

/** `{ status: count }` of the answers. */
export function statusCounts(calls: readonly Call[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const call of calls) counts[call.answer.status] = (counts[call.answer.status] ?? 0) + 1;
  return counts;
}

/** The value of a metric on one replica's /metrics. */
export async function metric(sluice: Replica, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const response = await request(`${sluice.adminUrl}/metrics`);
  return sample(await response.body.text(), name, labels);
}

/** The status /readyz answers. */
export async function readyz(sluice: Replica): Promise<number> {
  const response = await request(`${sluice.adminUrl}/readyz`);
  await response.body.dump();
  return response.statusCode;
}

/** The largest number of instants in any window `[t, t + windowMs)` that starts at one of them. */
export function maxInWindow(instants: readonly number[], windowMs: number): number {
  const sorted = [...instants].sort((a, b) => a - b);
  let best = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && (sorted[end] as number) < (sorted[start] as number) + windowMs) end++;
    best = Math.max(best, end - start);
  }
  return best;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
