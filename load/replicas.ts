/**
 * `npm run load:replicas`: three sluice processes share one Redis in front of one API that allows
 * 100 requests in any 1000 ms and forgives nothing (the stand-in, its own process). 3000 calls are
 * spread over the replicas (call i to replica i % 3, a bounded number in flight per replica). Reports
 * the combined rate the API accepted, its 429s, each replica's share, and the Redis round trip of a
 * take as the replicas measured it (sluice_store_take_duration_seconds).
 *
 * With `--outage`, Redis is killed a third of the way through and started again on the same port at
 * two thirds (store.onError: local): the run then also reports the rate while Redis was down (each
 * replica at rate / replicasHint) and whether every call still got 200.
 *
 *   npm run load:replicas -- [--calls 3000] [--rate 100] [--replicas 3] [--concurrency 100] [--margin 2%] [--outage]
 *   npm run load:replicas -- --store memory     (the baseline: one sluice, no Redis, same load)
 *   npm run load:replicas -- --grants-only [--rate 5000] [--replicas 1] [--seconds 5]
 *       (no HTTP: schedulers in this process take tokens from Redis as fast as the limit allows, to
 *       see where one round trip per release caps a bucket's rate)
 *
 * Needs redis-server on PATH (Debian: apt-get install redis-server), or REDIS_URL (then --outage
 * is not available). Everything listens on 127.0.0.1 and stops by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { spawnSluice, spawnStandin } from './lib/processes.js';
import type { StandinStats } from './lib/standin.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '3000' },
    rate: { type: 'string', default: '100' },
    replicas: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '100' },
    outage: { type: 'boolean', default: false },
    /** pacing.margin of the upstream (sluice's default is 0.75%). */
    margin: { type: 'string' },
    /** `memory` runs the same load through one sluice without Redis: the baseline on this machine. */
    store: { type: 'string', default: 'redis' },
    json: { type: 'boolean', default: false },
    'grants-only': { type: 'boolean', default: false },
    seconds: { type: 'string', default: '5' },
  },
});
const calls = Number(values.calls);
const rate = Number(values.rate);
const baseline = values.store === 'memory';
const replicaCount = baseline ? 1 : Number(values.replicas);
const concurrency = Number(values.concurrency);

interface RedisProcess {
  readonly url: string;
  readonly port: number;
  kill(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
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

async function startRedis(port?: number): Promise<RedisProcess> {
  const chosen = port ?? (await freePort());
  const child: ChildProcess = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(chosen), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => {
    console.error(`cannot start redis-server (${err.message}); install it (apt-get install redis-server) or set REDIS_URL`);
    process.exit(2);
  });
  for (let i = 0; i < 200 && !(await answersPing(chosen)); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

function sluiceYaml(redisUrl: string): string {
  const store = baseline
    ? 'store: { type: memory }'
    : `store:
  type: redis
  url: ${redisUrl}
  onError: local
  replicasHint: ${replicaCount}
  timeout: 250ms
  keyPrefix: "load-replicas:"`;
  return `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
${store}
upstreams:
  - name: api
    prefix: /api
    target: __TARGET__
    limits:
      - { rate: ${rate}/s, burst: 1 }
    queue: { maxWait: 10m }
${values.margin ? `    pacing: { margin: "${values.margin}" }\n` : ''}`;
}

async function metricsText(adminUrl: string): Promise<string> {
  const response = await fetch(`${adminUrl}/metrics`);
  return response.text();
}

function sampleOf(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

if (values['grants-only']) {
  await grantsOnly();
  process.exit(0);
}

/**
 * Schedulers (one per replica, each with its own Redis connection) and an endless backlog: every
 * grant is written and released at once. Counts grants per second against the limit.
 */
async function grantsOnly(): Promise<void> {
  const { Scheduler } = await import('../src/scheduler/scheduler.js');
  const { systemClock, systemTimers } = await import('../src/system-time.js');
  const { createStore } = await import('../src/store/create-store.js');
  const server = process.env.REDIS_URL ? undefined : await startRedis();
  const url = process.env.REDIS_URL ?? (server as RedisProcess).url;
  const seconds = Number(values.seconds);
  const keyPrefix = `grants-only-${Date.now()}:`;
  const grants: number[] = [];
  const stores = await Promise.all(
    Array.from({ length: replicaCount }, () =>
      createStore(
        { type: 'redis', url, onError: 'deny', replicasHint: replicaCount, timeout: 250, keyPrefix },
        { clock: systemClock, timers: systemTimers(systemClock) },
      ),
    ),
  );
  const endAt = performance.now() + seconds * 1000;
  const schedulers = stores.map(
    (store) =>
      new Scheduler({
        rules: [{ index: 0, keyed: false, ratePerSec: rate, burst: 1, concurrency: undefined }],
        maxQueued: 1e6,
        maxQueuedPerKey: 1e6,
        maxIdleKeys: 10,
        marginFraction: 0.0075,
        clock: systemClock,
        timers: systemTimers(),
        store,
        name: 'api',
      }),
  );
  const feed = (scheduler: InstanceType<typeof Scheduler>): void => {
    scheduler.acquire({
      keys: [],
      deadlineAt: Number.POSITIVE_INFINITY,
      onGrant: (ticket) => {
        grants.push(performance.now());
        ticket.sent();
        setImmediate(() => {
          ticket.release('ok');
          if (performance.now() < endAt) feed(scheduler);
        });
      },
      onRefuse: () => undefined,
    });
  };
  for (const scheduler of schedulers) for (let i = 0; i < 50; i++) feed(scheduler);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000 + 300));
  for (const scheduler of schedulers) scheduler.close();
  await Promise.all(stores.map((s) => s.close()));
  await server?.kill();
  const span = (grants[grants.length - 1] as number) - (grants[0] as number);
  const perSec = ((grants.length - 1) / span) * 1000;
  console.log(
    `grants-only: ${replicaCount} scheduler(s) sharing one Redis bucket limited to ${rate}/s (${(rate * 0.9925).toFixed(1)}/s after the margin): ${perSec.toFixed(1)} grants/s over ${(span / 1000).toFixed(1)} s`,
  );
}

const external = process.env.REDIS_URL;
if (external && values.outage) {
  console.error('--outage starts its own redis-server: unset REDIS_URL');
  process.exit(2);
}
let redis: RedisProcess | undefined = external ? undefined : await startRedis();
const redisUrl = external ?? (redis as RedisProcess).url;
const standin = await spawnStandin(['--rate', String(rate), '--window-ms', '1000']);
const sluices = await Promise.all(Array.from({ length: replicaCount }, () => spawnSluice(sluiceYaml(redisUrl).replace('__TARGET__', standin.url))));
const pools = sluices.map((s) => new Pool(s.proxyUrl, { connections: concurrency, pipelining: 1 }));

interface Done {
  readonly replica: number;
  readonly status: number;
  readonly at: number;
}
const done: Done[] = [];
const startedAt = performance.now();
let outageFrom: number | undefined;
let outageTo: number | undefined;
const expectedMs = (calls / rate) * 1000;

async function drive(replica: number): Promise<void> {
  const pool = pools[replica] as Pool;
  const mine: number[] = [];
  for (let i = replica; i < calls; i += replicaCount) mine.push(i);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < mine.length) {
      const i = mine[next++] as number;
      let status: number;
      try {
        const response = await pool.request({ method: 'GET', path: `/api/item/${i}` });
        await response.body.dump();
        status = response.statusCode;
      } catch {
        status = 0; // a transport error
      }
      done.push({ replica, status, at: performance.now() });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const outage = (async () => {
  if (!values.outage || !redis) return;
  const port = redis.port;
  await new Promise((resolve) => setTimeout(resolve, expectedMs / 3));
  outageFrom = performance.now();
  await redis.kill();
  await new Promise((resolve) => setTimeout(resolve, expectedMs / 3));
  outageTo = performance.now();
  redis = await startRedis(port);
})();

const progress = setInterval(() => process.stderr.write(`\r${done.length}/${calls} answered`), 500);
await Promise.all([...sluices.map((_, i) => drive(i)), outage]);
clearInterval(progress);
process.stderr.write('\n');
const elapsedMs = performance.now() - startedAt;

const statsResponse = await fetch(`${standin.url}/__stats?arrivals=1`);
const stats = (await statsResponse.json()) as StandinStats;
const metrics = await Promise.all(sluices.map((s) => metricsText(s.adminUrl)));
await Promise.all(pools.map((p) => p.close()));
await Promise.all(sluices.map((s) => s.stop()));
await standin.stop();
await redis?.kill();

const statuses: Record<string, number> = {};
for (const d of done) statuses[d.status] = (statuses[d.status] ?? 0) + 1;
const arrivals = stats.arrivalsMs ?? [];
const combinedPerSec = ((stats.accepted - 1) / stats.acceptedSpanMs) * 1000;
// While every replica still had calls queued: each one's share of what was answered.
const allBusyUntil = Math.min(...sluices.map((_, r) => Math.max(...done.filter((d) => d.replica === r).map((d) => d.at))));
const busy = done.filter((d) => d.at <= allBusyUntil && d.status === 200);
const shares = sluices.map((_, r) => busy.filter((d) => d.replica === r).length / Math.max(1, busy.length));
const takeMeans = metrics.map((text) => {
  const sum = sampleOf(text, 'sluice_store_take_duration_seconds_sum');
  const count = sampleOf(text, 'sluice_store_take_duration_seconds_count');
  return sum !== undefined && count ? (sum / count) * 1000 : undefined;
});
// Share of takes whose round trip exceeded 5 ms (a replica or Redis stalled meanwhile).
const slowTakes = metrics.map((text) => {
  const count = sampleOf(text, 'sluice_store_take_duration_seconds_count');
  const fast = text.split('\n').find((l) => l.startsWith('sluice_store_take_duration_seconds_bucket{le="0.005"}'));
  return count && fast ? Math.round((1 - Number(fast.split(' ').pop()) / count) * 10_000) / 100 : undefined;
});
let outageReport: Record<string, number> | undefined;
if (outageFrom !== undefined && outageTo !== undefined) {
  // The stand-in counts from its first request, which arrived within a few ms of startedAt (its
  // clock is another process's); the first 200 ms after the kill are left out.
  const from = outageFrom - startedAt + 200;
  const to = outageTo - startedAt;
  const during = arrivals.filter((t) => t >= from && t < to).length;
  outageReport = {
    downForMs: Math.round(outageTo - outageFrom),
    arrivalsWhileDown: during,
    ratePerSecWhileDown: Math.round((during / (to - from)) * 10_000) / 10,
  };
}

const report = {
  scenario: 'replicas',
  store: baseline ? 'memory' : 'redis',
  replicas: replicaCount,
  limitPerSec: rate,
  calls,
  concurrencyPerReplica: concurrency,
  margin: values.margin ?? '0.75%',
  elapsedMs: Math.round(elapsedMs),
  statuses,
  upstream: {
    accepted: stats.accepted,
    rejected429: stats.rejected,
    maxAcceptedInAnySecond: stats.maxAcceptedInAnySecond,
    // When the 429s came, ms after the first request (a strict window: the 101st in 1000 ms).
    rejectedAtMs: (stats.rejectionsMs ?? []).slice(0, 10).map((t) => Math.round(t)),
  },
  combinedPerSec: Math.round(combinedPerSec * 100) / 100,
  percentOfLimit: Math.round((combinedPerSec / rate) * 1000) / 10,
  sharesWhileAllBusy: shares.map((s) => Math.round(s * 1000) / 10),
  meanTakeRoundTripMs: takeMeans.map((m) => (m === undefined ? undefined : Math.round(m * 100) / 100)),
  percentTakesOver5ms: slowTakes,
  outage: outageReport,
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(
    `${baseline ? 'baseline' : 'replicas'}: ${replicaCount} sluice process(es), ${baseline ? 'memory store' : 'one Redis'}, one API limited to ${rate} in any 1000 ms; ${calls} calls, ${concurrency} in flight per replica, margin ${values.margin ?? '0.75% (default)'}`,
  );
  console.log(`  answers:        ${JSON.stringify(statuses)} in ${(elapsedMs / 1000).toFixed(1)} s`);
  console.log(
    `  upstream:       ${stats.accepted} accepted, ${stats.rejected} answered 429${stats.rejected > 0 ? ` (at ${report.upstream.rejectedAtMs.join(', ')} ms)` : ''}, at most ${stats.maxAcceptedInAnySecond} in any 1000 ms`,
  );
  console.log(`  combined rate:  ${report.combinedPerSec}/s = ${report.percentOfLimit}% of ${rate}/s (first to last accepted request)`);
  console.log(`  shares:         ${report.sharesWhileAllBusy.map((s, i) => `replica ${i}: ${s}%`).join(', ')} (while all had calls queued)`);
  if (!baseline)
    console.log(
      `  take round trip: ${report.meanTakeRoundTripMs.map((m) => `${m} ms`).join(', ')} (mean per replica); over 5 ms: ${slowTakes.map((p) => `${p}%`).join(', ')}`,
    );
  if (outageReport)
    console.log(
      `  outage:         Redis down ${outageReport.downForMs} ms; ${outageReport.arrivalsWhileDown} upstream arrivals, ${outageReport.ratePerSecWhileDown}/s while down`,
    );
}
process.exit(stats.rejected === 0 && statuses['200'] === calls ? 0 : 1);
