/**
 * `npm run load:scale`: sluice holding many keys and a deep queue.
 *
 * 1. baseline: sluice started and warmed up (2000 requests on one key); RSS and heap.
 * 2. idle keys: 100,000 requests, each with its own key ({header.x-key}, 1/h: every key's bucket
 *    stays not-full, so sluice must remember all of them), through a global rule that never binds;
 *    then RSS, heap and sluice_keys once they are all idle.
 * 3. queued: 20,000 requests with distinct keys sent at once to an upstream limited to 5/s (1000
 *    connections x 20 pipelined: the process file limit is 20,000); held 10 s while RSS,
 *    event-loop delay (prom-client's nodejs_eventloop_lag_*, per scrape) and the /metrics scrape
 *    time are sampled; then the clients go away and the time for the queue to empty is measured.
 * 4. in-process: the Scheduler on a manual clock with the same rules, 100,000 idle keys and 20,000
 *    queued, timing enqueue and every release.
 *
 *   npm run load:scale -- [--keys 100000] [--queued 20000] [--hold 10] [common flags]
 */
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Chart } from '../lib/charts.js';
import { fanout, percentile } from '../lib/fanout.js';
import { startProbe, startSampler, type Sample } from '../lib/observe.js';
import { spawnTsServer } from '../lib/processes.js';
import { createProgress } from '../lib/progress.js';
import { profileTables, startProxy } from '../lib/proxy.js';
import { median, round, type Table } from '../lib/report.js';
import { log, parseScenarioArgs, runScenario } from '../lib/scenario.js';
import { benchScheduler } from '../lib/scheduler-bench.js';
import { heapByConstructor, heapGrowth } from '../lib/heap-snapshot.js';
import type { Ticket } from '../../src/scheduler/model.js';

const { common, values } = parseScenarioArgs(
  {
    keys: { type: 'string', default: '100000' },
    queued: { type: 'string', default: '20000' },
    hold: { type: 'string', default: '10' },
  },
  'npm run load:scale -- [--keys 100000] [--queued 20000] [--hold 10]',
);
if (common.proxyUrl !== undefined) {
  process.stderr.write('load:scale measures sluice itself (its process memory, its /metrics, its Scheduler): --proxy-url is not supported here\n');
  process.exit(2);
}
const keyCount = common.quick ? 10_000 : Number(values.keys);
const queuedCount = common.quick ? 2_000 : Number(values.queued);
const holdSec = common.quick ? 3 : Number(values.hold);
const MB = 1024 * 1024;
const mb = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : round(bytes / MB, 1));
const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

await runScenario({ scenario: 'scale', title: `scale: ${keyCount} idle keys, ${queuedCount} queued requests`, common }, async () => {
  const upstream = await spawnTsServer('upstream-server.ts', ['--port', String(common.upstreamPort)]);
  const proxy = await startProxy(
    common,
    `# written by load/scenarios/scale.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
shutdown: { grace: 1s }
upstreams:
  - name: idle
    prefix: /idle
    target: ${upstream.url}
    limits:
      - rate: 1000000/s
        burst: 10000
      - key: "{header.x-key}"
        rate: 1/h
        burst: 1
    keys: { maxIdle: ${Math.max(keyCount, 100_000)} }
  - name: queued
    prefix: /queued
    target: ${upstream.url}
    limits:
      - rate: 5/s
        burst: 1
      - key: "{header.x-key}"
        rate: 1/h
        burst: 1
    queue: { maxSize: ${queuedCount + 10_000}, maxWait: 1d }
`,
    { label: 'scale', stdout: 'null' },
  );
  // /metrics every 2 s: with 100,000 keys a scrape is itself expensive (see the report).
  const sampler = startSampler({ adminUrl: proxy.adminUrl, pid: proxy.pid, everyMs: 2000 });
  const probe = startProbe(`${proxy.adminUrl as string}/healthz`, 250);
  const progress = createProgress('scale');
  const phases: { phase: string; at: number }[] = [];
  const mark = (phase: string): void => void phases.push({ phase, at: (performance.now() - started) / 1000 });
  const started = performance.now();
  const snapshot = async (): Promise<Sample> => {
    // Two scrapes: the first resets prom-client's event-loop histogram.
    await sampler.sampleNow();
    return sampler.sampleNow();
  };

  // 1. baseline
  mark('warm-up');
  progress.set('warm-up: 2000 requests on one key');
  await fanout({ url: () => `${proxy.proxyUrl}/idle/warm`, headers: () => ({ 'x-key': 'warm' }), count: 2000, concurrency: 50 });
  await sleep(3000);
  const baseline = await snapshot();

  // 2. idle keys
  mark('idle keys');
  const idle = await fanout({
    url: (i) => `${proxy.proxyUrl}/idle/k/${i}`,
    headers: (i) => ({ 'x-key': `key-${i}` }),
    count: keyCount,
    concurrency: 100,
    onResult: (_r, done) => {
      if (done % 1000 === 0) progress.set(`idle keys: ${done}/${keyCount} requests, each with its own key`);
    },
  });
  const idleOk = idle.results.filter((r) => r.status === 200).length;
  const idleRate = (keyCount / idle.wallMs) * 1000;
  mark('idle settle');
  progress.set('idle keys: settling 5 s');
  await sleep(5000);
  const afterIdle = await snapshot();

  // 3. queued
  mark('queueing');
  // Raw sockets with pipelined requests: one connection per request would need more than the
  // process's 20,000 open files (undici's Pool did not pipeline these requests in practice).
  const proxyAddress = new URL(proxy.proxyUrl);
  const perConnection = Math.ceil(queuedCount / 1000);
  const sockets: Socket[] = [];
  const sendStarted = performance.now();
  for (let c = 0; c * perConnection < queuedCount; c++) {
    const socket = connect(Number(proxyAddress.port), proxyAddress.hostname);
    socket.on('error', () => undefined);
    socket.resume();
    let text = '';
    for (let i = c * perConnection; i < Math.min(queuedCount, (c + 1) * perConnection); i++) {
      text += `GET /queued/q/${i} HTTP/1.1\r\nhost: ${proxyAddress.host}\r\nx-key: queued-${i}\r\n\r\n`;
    }
    socket.write(text);
    sockets.push(socket);
    if (c % 50 === 49) await new Promise<void>((resolveTurn) => setImmediate(resolveTurn));
  }
  let queuedSample: Sample | undefined;
  const queueDeadline = performance.now() + 60_000;
  while (performance.now() < queueDeadline) {
    queuedSample = await sampler.sampleNow();
    progress.set(`queueing: sluice_queue_depth ${queuedSample.queueDepth ?? '?'} of ${queuedCount}`);
    if ((queuedSample.queueDepth ?? 0) >= queuedCount - 5 * 120) break; // 5/s keeps releasing meanwhile
    await sleep(1000);
  }
  const queuedInMs = performance.now() - sendStarted;
  mark('holding');
  const holdSamples: Sample[] = [];
  const holdEnd = performance.now() + holdSec * 1000;
  const holdStartSec = (performance.now() - started) / 1000;
  while (performance.now() < holdEnd) {
    await sleep(1000);
    const s = await sampler.sampleNow();
    holdSamples.push(s);
    progress.set(
      `holding ${queuedCount} queued: depth ${s.queueDepth ?? '?'}, RSS ${mb(s.rssBytes)} MB, event-loop p99 ${round(s.eventLoopP99Ms ?? Number.NaN, 1)} ms`,
    );
  }
  mark('clients leave');
  const leaveStarted = performance.now();
  for (const socket of sockets) socket.destroy();
  let drainedMs: number | undefined;
  let leftQueued: number | undefined;
  while (performance.now() - leaveStarted < 10_000) {
    const s = await sampler.sampleNow();
    leftQueued = s.queueDepth;
    if ((s.queueDepth ?? 0) === 0) {
      drainedMs = performance.now() - leaveStarted;
      break;
    }
    await sleep(500);
  }
  mark('after');
  await sleep(2000);
  const afterQueue = await snapshot();
  progress.stop();
  const samples = await sampler.stop();
  const probePoints = await probe.stop();
  const holdEndSec = holdStartSec + holdSec;
  const holdProbe = probePoints.filter(([t, ms]) => t >= holdStartSec && t <= holdEndSec && Number.isFinite(ms)).map(([, ms]) => ms);
  const idleProbe = probePoints.filter(([t, ms]) => t <= (phases.find((p) => p.phase === 'idle keys')?.at ?? 0) && Number.isFinite(ms)).map(([, ms]) => ms);
  const profile = await proxy.stop();
  await upstream.stop();

  // 4. in-process scheduler
  log('  in-process: the Scheduler with the same rules on a manual clock (3 runs, the median of each operation)');
  const runsInProcess: Awaited<ReturnType<typeof schedulerCost>>[] = [];
  for (let i = 0; i < 3; i++) runsInProcess.push(await schedulerCost(keyCount, queuedCount));
  const first = runsInProcess[0] as Awaited<ReturnType<typeof schedulerCost>>;
  const breakdownKeys = Math.min(keyCount, 20_000);
  const breakdown = await idleKeyBreakdown(breakdownKeys);
  const inProcess = {
    store: first.store,
    rows: first.rows.map((row, i) => ({ ...row, ms: median(runsInProcess.map((r) => (r.rows[i] as { ms: number }).ms)) })),
    allRuns: runsInProcess.map((r) => r.rows),
    bytesPerIdleKey: median(runsInProcess.map((r) => r.bytesPerIdleKey)),
    bytesPerQueued: median(runsInProcess.map((r) => r.bytesPerQueued)),
  };

  const peakQueuedRss = Math.max(...holdSamples.map((s) => s.rssBytes ?? 0));
  const idleDelta = (afterIdle.rssBytes ?? 0) - (baseline.rssBytes ?? 0);
  const lagP99 = holdSamples.map((s) => s.eventLoopP99Ms).filter((v): v is number => v !== undefined);
  const lagMax = holdSamples.map((s) => s.eventLoopMaxMs).filter((v): v is number => v !== undefined);
  const scrape = holdSamples.map((s) => s.scrapeMs).filter((v): v is number => v !== undefined);
  const tables: Table[] = [
    {
      title: 'sluice process (RSS from /proc/<pid>/status VmRSS, heap from nodejs_heap_size_used_bytes)',
      columns: ['moment', 'RSS MB', 'heap used MB', 'sluice_keys', 'queue depth', 'event loop p99 ms', 'max ms', '/metrics ms'],
      rows: [
        [
          'baseline (after warm-up)',
          mb(baseline.rssBytes),
          mb(baseline.heapUsedBytes),
          baseline.keys,
          baseline.queueDepth,
          r1(baseline.eventLoopP99Ms),
          r1(baseline.eventLoopMaxMs),
          r1(baseline.scrapeMs),
        ],
        [
          `${keyCount} idle keys`,
          mb(afterIdle.rssBytes),
          mb(afterIdle.heapUsedBytes),
          afterIdle.keys,
          afterIdle.queueDepth,
          r1(afterIdle.eventLoopP99Ms),
          r1(afterIdle.eventLoopMaxMs),
          r1(afterIdle.scrapeMs),
        ],
        [
          `${queuedCount} queued (peak while held)`,
          mb(peakQueuedRss),
          mb(Math.max(...holdSamples.map((s) => s.heapUsedBytes ?? 0))),
          queuedSample?.keys,
          queuedSample?.queueDepth,
          r1(median(lagP99)),
          r1(Math.max(...lagMax)),
          r1(median(scrape)),
        ],
        [
          'after the clients left',
          mb(afterQueue.rssBytes),
          mb(afterQueue.heapUsedBytes),
          afterQueue.keys,
          afterQueue.queueDepth,
          r1(afterQueue.eventLoopP99Ms),
          r1(afterQueue.eventLoopMaxMs),
          r1(afterQueue.scrapeMs),
        ],
      ],
    },
    {
      title: 'timings',
      columns: ['measure', 'value'],
      rows: [
        [`${keyCount} requests with distinct keys`, `${round(idle.wallMs / 1000, 1)} s (${Math.round(idleRate)}/s, ${idleOk} ok)`],
        [`time to queue ${queuedCount}`, `${round(queuedInMs / 1000, 1)} s`],
        ['event-loop delay while queued (prom-client, per 2 s scrape): median p99 / worst max', `${r2(median(lagP99))} / ${r1(Math.max(...lagMax))} ms`],
        ['/metrics scrape while queued (median)', `${r1(median(scrape))} ms`],
        [
          'admin /healthz round trip while queued: p50 / p99 / max (event loop seen from outside)',
          `${r1(percentile(holdProbe, 50))} / ${r1(percentile(holdProbe, 99))} / ${r1(Math.max(...holdProbe))} ms`,
        ],
        ['admin /healthz round trip at baseline: p50 / p99', `${r1(percentile(idleProbe, 50))} / ${r1(percentile(idleProbe, 99))} ms`],
        [
          `queue emptied after the ${queuedCount} clients closed their connections`,
          drainedMs === undefined ? `NO: ${leftQueued ?? '?'} still queued after 10 s` : `${Math.round(drainedMs)} ms`,
        ],
      ],
    },
    {
      title: `in-process Scheduler (${inProcess.store}; manual clock, rules: global 1000/s + per key 1/h)`,
      columns: ['operation', 'count', 'total ms', 'us per op', 'ops/s'],
      rows: inProcess.rows.map((r) => [r.op, r.count, round(r.ms, 1), round((r.ms * 1000) / r.count, 2), Math.round((r.count / r.ms) * 1000)]),
    },
    {
      title: 'in-process Scheduler heap after a full GC (what the scheduler itself keeps, without HTTP)',
      columns: ['what', 'bytes each'],
      rows: [
        ['idle key (gate, bucket, LRU entry)', Math.round(inProcess.bytesPerIdleKey)],
        ['queued request with its own key (ticket, lane, gate; the harness callbacks included)', Math.round(inProcess.bytesPerQueued)],
      ],
    },
    {
      title: `in-process heap growth by constructor for ${breakdownKeys} idle keys (V8 heap snapshots before and after; self sizes)`,
      columns: ['constructor or kind', 'count', 'bytes', 'bytes per key'],
      rows: breakdown.slice(0, 14).map((g) => [g.name, g.count, g.bytes, round(g.bytes / breakdownKeys, 1)]),
    },
    ...profileTables('scale', profile),
  ];
  const charts: Chart[] = [
    {
      kind: 'line',
      title: 'sluice RSS and heap (MB) over the run',
      xLabel: 'seconds',
      yLabel: 'MB',
      series: [
        { name: 'RSS', points: samples.filter((s) => s.rssBytes !== undefined).map((s) => [round(s.t, 1), mb(s.rssBytes) as number]) },
        { name: 'heap used', points: samples.filter((s) => s.heapUsedBytes !== undefined).map((s) => [round(s.t, 1), mb(s.heapUsedBytes) as number]) },
      ],
      hLines: [{ y: 300, label: '300 MB' }],
    },
    {
      kind: 'line',
      title: 'queue depth and keys held (thousands)',
      xLabel: 'seconds',
      yLabel: 'thousands',
      series: [
        { name: 'sluice_queue_depth', points: samples.filter((s) => s.queueDepth !== undefined).map((s) => [round(s.t, 1), (s.queueDepth as number) / 1000]) },
        { name: 'sluice_keys', points: samples.filter((s) => s.keys !== undefined).map((s) => [round(s.t, 1), (s.keys as number) / 1000]) },
      ],
    },
    {
      kind: 'line',
      title: 'admin /healthz round trip every 250 ms (ms): the event loop seen from outside',
      xLabel: 'seconds',
      yLabel: 'ms',
      series: [{ name: '/healthz round trip', points: probePoints.filter(([, ms]) => Number.isFinite(ms)).map(([t, ms]) => [round(t, 2), round(ms, 2)]) }],
    },
    {
      kind: 'line',
      title: 'event-loop delay per scrape interval (ms)',
      xLabel: 'seconds',
      yLabel: 'ms',
      series: [
        { name: 'p99', points: samples.filter((s) => s.eventLoopP99Ms !== undefined).map((s) => [round(s.t, 1), round(s.eventLoopP99Ms as number, 2)]) },
        { name: 'max', points: samples.filter((s) => s.eventLoopMaxMs !== undefined).map((s) => [round(s.t, 1), round(s.eventLoopMaxMs as number, 2)]) },
      ],
    },
  ];
  const releaseUs = inProcess.rows.find((r) => r.op.startsWith('release'));
  return {
    tables,
    targets: [
      { name: `scale: ${queuedCount} queued`, target: '< 300 MB RSS', measured: `${mb(peakQueuedRss)} MB peak RSS`, met: peakQueuedRss < 300 * MB },
      {
        name: `scale: ${keyCount} idle keys`,
        target: '< 100 MB above baseline',
        measured: `+${mb(idleDelta)} MB RSS (heap +${mb((afterIdle.heapUsedBytes ?? 0) - (baseline.heapUsedBytes ?? 0))} MB)`,
        met: idleDelta < 100 * MB,
      },
      {
        name: 'scale: scheduler cost per release',
        target: 'reported (no target)',
        measured: releaseUs ? `${round((releaseUs.ms * 1000) / releaseUs.count, 2)} us` : 'n/a',
        met: undefined,
      },
    ],
    charts,
    notes: [
      `phases (seconds since start): ${phases.map((p) => `${p.phase} ${round(p.at, 1)}`).join(', ')}.`,
      'RSS includes garbage V8 has not yet collected or returned to the OS; heap used (prom-client default metric) is the live JavaScript heap at the scrape.',
      `the ${queuedCount} queued requests arrive over 1000 connections with ${Math.ceil(queuedCount / 1000)} pipelined requests each (raw sockets): the machine allows 20,000 open files per process, so one connection per request cannot reach 20,000.`,
      'event-loop delay: prom-client monitorEventLoopDelay (10 ms resolution), reset at every scrape of /metrics (every 2 s here). A stall inside the scrape itself is not seen by it, so the /healthz round trip (every 250 ms, from this process) is recorded too.',
      'the clients leave by closing their sockets; sluice should then drop their queued requests at once (DESIGN.md: a client that disconnects while queued leaves the queue at once).',
    ],
    data: {
      heapBreakdown: breakdown.slice(0, 40),
      baseline,
      afterIdle,
      afterQueue,
      holdSamples,
      samples,
      probePoints,
      phases,
      inProcess,
      idleRate,
      queuedInMs,
      drainedMs,
      leftQueued,
      idleLatencyMs: {
        p50: percentile(
          idle.results.map((r) => r.endMs - r.startMs),
          50,
        ),
      },
    },
  };
});

/** Heap growth by constructor while `keys` keys are made idle in a Scheduler, from two snapshots. */
async function idleKeyBreakdown(keys: number) {
  const { scheduler, clock, timers } = await benchScheduler(
    [
      { ratePerSec: 1000, burst: 1 },
      { keyed: true, ratePerSec: 1 / 3600, burst: 1 },
    ],
    { maxIdleKeys: keys },
  );
  const granted: Ticket[] = [];
  gc();
  const before = heapByConstructor();
  for (let i = 0; i < keys; i++) {
    scheduler.acquire({ keys: ['', `idle-${i}`], deadlineAt: Number.POSITIVE_INFINITY, onGrant: (t) => void granted.push(t), onRefuse: () => undefined });
    timers.advanceTo(clock.current + 1);
    for (const ticket of granted) {
      ticket.sent();
      ticket.release('ok');
    }
    granted.length = 0;
  }
  gc();
  const growth = heapGrowth(before, heapByConstructor());
  if (scheduler.snapshot().keys < keys) throw new Error('idle keys were not kept');
  return growth;
}

/** V8's gc(), for in-process heap measurements (the flag can be set at run time). */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function r2(n: number | undefined): number | undefined {
  return n === undefined || !Number.isFinite(n) ? undefined : round(n, 2);
}

function r1(n: number | undefined): number | undefined {
  return n === undefined || !Number.isFinite(n) ? undefined : round(n, 1);
}

/** The Scheduler in-process: enqueue and release costs with `idleKeys` idle and `queued` queued. */
async function schedulerCost(idleKeys: number, queued: number) {
  const { scheduler, clock, timers, store } = await benchScheduler(
    [
      { ratePerSec: 1000, burst: 1 },
      { keyed: true, ratePerSec: 1 / 3600, burst: 1 },
    ],
    {
      maxIdleKeys: idleKeys,
      maxQueued: queued + 10,
    },
  );
  const granted: Ticket[] = [];
  const request = (key: string): void => {
    scheduler.acquire({ keys: ['', key], deadlineAt: Number.POSITIVE_INFINITY, onGrant: (t) => void granted.push(t), onRefuse: () => undefined });
  };
  const rows: { op: string; count: number; ms: number }[] = [];
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  // Idle keys: one request per key, each granted 1 ms after the previous (the global 1000/s).
  let t0 = performance.now();
  for (let i = 0; i < idleKeys; i++) {
    request(`idle-${i}`);
    timers.advanceTo(clock.current + 1);
    for (const ticket of granted) {
      ticket.sent();
      ticket.release('ok');
    }
    granted.length = 0;
  }
  rows.push({ op: 'acquire+grant+release, new key each (building idle keys)', count: idleKeys, ms: performance.now() - t0 });
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  // Queue: all at once (one is granted at once, the rest wait for the global bucket).
  t0 = performance.now();
  for (let i = 0; i < queued; i++) request(`queued-${i}`);
  rows.push({ op: `enqueue (${idleKeys} idle keys held)`, count: queued, ms: performance.now() - t0 });
  gc();
  const heap2 = process.memoryUsage().heapUsed;
  // Release: advance to each timer, release what was granted.
  t0 = performance.now();
  let released = 0;
  while (released < queued) {
    const next = timers.nextAt();
    if (next === undefined) break;
    timers.advanceTo(next);
    for (const ticket of granted) {
      ticket.sent();
      ticket.release('ok');
      released++;
    }
    granted.length = 0;
  }
  rows.push({ op: `release: timer fires, grant, sent, release (round robin over ${queued} lanes)`, count: Math.max(1, released), ms: performance.now() - t0 });
  return { store, rows, bytesPerIdleKey: (heap1 - heap0) / idleKeys, bytesPerQueued: (heap2 - heap1) / queued };
}
