import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * redis-server for the tests: found on PATH, started on a free loopback port with nothing persisted,
 * stopped (or killed, or frozen) on demand. The suite's shared server is started by
 * test/helpers/global-setup.ts; tests that kill Redis start their own.
 */

/** The redis-server binary on PATH, or undefined. */
export function redisServerBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why the Redis tests cannot run here, or undefined when they can. */
export function redisUnavailableReason(): string | undefined {
  if (redisServerBinary()) return undefined;
  return 'no redis-server binary on PATH and REDIS_URL is unset (apt-get install redis-server, or set REDIS_URL)';
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** SIGKILL, and wait for the exit (a crash: nothing is saved, clients see the connection drop). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the connection stays open and nothing answers (a hung Redis). */
  freeze(): void;
  thaw(): void;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on 127.0.0.1 (`port`, or a free one) and resolves once it answers PING.
 * `args` are added to the command line (`--cluster-enabled yes`, or a config file first for
 * `--sentinel`).
 */
export async function startRedisServer(options: { port?: number; args?: readonly string[]; configFile?: string } = {}): Promise<RedisServer> {
  const binary = redisServerBinary();
  if (!binary) throw new Error(redisUnavailableReason());
  const port = options.port ?? (await freePort());
  const child = spawn(
    binary,
    [
      ...(options.configFile ? [options.configFile] : []),
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  // redis-server logs to stdout; both are kept for the error message of a server that did not start.
  child.stdout?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = performance.now() + 10_000;
  while (!(await ping(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer on port ${port}: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited;
      }
    },
    freeze: () => void child.kill('SIGSTOP'),
    thaw: () => void child.kill('SIGCONT'),
  };
}

/** Whether a Redis answers PING on 127.0.0.1:`port` within 500 ms. */
export function ping(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk: Buffer) => done(chunk.toString().startsWith('+PONG')));
  });
}

/** Runs redis-cli if it exists (for tests that flush scripts or inspect keys without a client). */
export function redisCli(port: number, ...args: string[]): string {
  const result = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim();
}

/** Whether redis-cli is on PATH (needed to create a cluster). */
export function redisCliAvailable(): boolean {
  return spawnSync('redis-cli', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** A Redis Cluster of `masters` nodes (no replicas) on free loopback ports, every slot assigned. */
export async function startRedisCluster(masters = 3): Promise<{ readonly nodes: readonly RedisServer[]; kill(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-cluster-'));
  const nodes: RedisServer[] = [];
  const kill = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      // The cluster bus listens on port + 10000 unless told otherwise; an ephemeral port + 10000 may
      // be taken or past 65535, so the bus gets a free port of its own.
      const port = await freePort();
      const busPort = await freePort();
      nodes.push(
        await startRedisServer({
          port,
          args: ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir],
        }),
      );
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout} ${create.stderr}`);
    const deadline = performance.now() + 10_000;
    while (!nodes.every((n) => redisCli(n.port, 'cluster', 'info').includes('cluster_state:ok'))) {
      if (performance.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (err) {
    await kill();
    throw err;
  }
  return { nodes, kill };
}

/** A Sentinel (redis-server --sentinel) watching the master on `masterPort` under `name`. */
export async function startSentinel(masterPort: number, name: string): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-sentinel-'));
  const configFile = join(dir, 'sentinel.conf');
  writeFileSync(configFile, `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1\nsentinel down-after-milliseconds ${name} 1000\n`);
  return startRedisServer({ configFile, args: ['--sentinel'] });
}
