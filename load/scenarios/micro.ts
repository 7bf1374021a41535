/**
 * `npm run load:micro`: the pure core and the scheduler in-process, on a manual clock (no I/O, no
 * timers of the runtime): token grants per second of TokenBucket, and acquire/grant/release,
 * enqueue and release per second of the Scheduler. Each benchmark runs a warm-up round and then
 * `--rounds` timed rounds; the median is reported.
 *
 *   npm run load:micro -- [--rounds 5] [--round-ms 1000] [common flags]
 */
import { TokenBucket } from '../../src/core/token-bucket.js';
import type { Ticket } from '../../src/scheduler/model.js';
import { median, round, type TargetResult } from '../lib/report.js';
import { createProgress } from '../lib/progress.js';
import { parseScenarioArgs, runScenario } from '../lib/scenario.js';
import { benchScheduler } from '../lib/scheduler-bench.js';

const { common, values } = parseScenarioArgs(
  { rounds: { type: 'string', default: '5' }, 'round-ms': { type: 'string', default: '1000' } },
  'npm run load:micro -- [--rounds 5] [--round-ms 1000]',
);
const rounds = common.quick ? 2 : Number(values.rounds);
const roundMs = common.quick ? 300 : Number(values['round-ms']);

interface Benchmark {
  readonly name: string;
  /** Prepares a fresh state; returns a function doing `n` operations. */
  readonly setup: () => ((n: number) => void) | Promise<(n: number) => void>;
}

/** Operations per second: repeats batches until `roundMs` has passed. */
async function measure(benchmark: Benchmark, batch: number): Promise<number[]> {
  const results: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const run = await benchmark.setup();
    let ops = 0;
    const t0 = performance.now();
    let elapsed = 0;
    while (elapsed < roundMs) {
      run(batch);
      ops += batch;
      elapsed = performance.now() - t0;
    }
    if (r > 0) results.push((ops / elapsed) * 1000); // round 0 warms the JIT up
  }
  return results;
}

const benchmarks: { benchmark: Benchmark; batch: number; unit: string }[] = [
  {
    unit: 'grants/s',
    batch: 100_000,
    benchmark: {
      name: 'TokenBucket.take (token available)',
      setup() {
        const bucket = new TokenBucket({ ratePerSec: 1_000_000_000, burst: 1 });
        let at = 0;
        return (n) => {
          for (let i = 0; i < n; i++) {
            at += bucket.intervalMs;
            if (!bucket.take(at)) throw new Error('refused');
          }
        };
      },
    },
  },
  {
    unit: 'checks/s',
    batch: 100_000,
    benchmark: {
      name: 'TokenBucket.take (refused: no token)',
      setup() {
        const bucket = new TokenBucket({ ratePerSec: 1, burst: 1 });
        bucket.take(0);
        return (n) => {
          for (let i = 0; i < n; i++) if (bucket.take(1 + (i % 100))) throw new Error('granted');
        };
      },
    },
  },
  {
    unit: 'grants/s',
    batch: 10_000,
    benchmark: {
      name: 'Scheduler acquire -> grant -> sent -> release (one unkeyed rule, never waits)',
      async setup() {
        const { scheduler, clock } = await benchScheduler([{ ratePerSec: 1_000_000_000, burst: 1_000_000 }]);
        const request = {
          keys: [] as string[],
          deadlineAt: Number.POSITIVE_INFINITY,
          onGrant: (t: Ticket) => (t.sent(), t.release('ok')),
          onRefuse: () => undefined,
        };
        return (n) => {
          for (let i = 0; i < n; i++) {
            clock.current += 0.001;
            scheduler.acquire(request);
          }
        };
      },
    },
  },
  {
    unit: 'grants/s',
    batch: 10_000,
    benchmark: {
      name: 'Scheduler acquire -> grant -> release, global + per-key rule (1000 keys)',
      async setup() {
        const { scheduler, clock } = await benchScheduler([
          { ratePerSec: 1_000_000_000, burst: 1_000_000 },
          { keyed: true, ratePerSec: 1_000_000, burst: 1000, concurrency: 10 },
        ]);
        const keys = Array.from({ length: 1000 }, (_, i) => ['', `key-${i}`]);
        const onGrant = (t: Ticket): void => {
          t.sent();
          t.release('ok');
        };
        let k = 0;
        return (n) => {
          for (let i = 0; i < n; i++) {
            clock.current += 0.001;
            scheduler.acquire({ keys: keys[k++ % 1000] as string[], deadlineAt: Number.POSITIVE_INFINITY, onGrant, onRefuse: () => undefined });
          }
        };
      },
    },
  },
  {
    unit: 'enqueues/s',
    batch: 10_000,
    benchmark: {
      name: 'Scheduler enqueue behind an empty bucket (one lane, FIFO)',
      async setup() {
        const { scheduler } = await benchScheduler([{ ratePerSec: 1 / 3600, burst: 1 }]);
        scheduler.acquire({ keys: [], deadlineAt: Number.POSITIVE_INFINITY, onGrant: () => undefined, onRefuse: () => undefined }); // takes the only token
        const request = { keys: [] as string[], deadlineAt: Number.POSITIVE_INFINITY, onGrant: () => undefined, onRefuse: () => undefined };
        return (n) => {
          for (let i = 0; i < n; i++) scheduler.acquire(request);
        };
      },
    },
  },
  {
    unit: 'releases/s',
    batch: 1_000,
    benchmark: {
      name: 'Scheduler release from a queue: timer fires, grant, sent, release (one lane)',
      async setup() {
        const { scheduler, timers } = await benchScheduler([{ ratePerSec: 1000, burst: 1 }]);
        const granted: Ticket[] = [];
        const request = { keys: [] as string[], deadlineAt: Number.POSITIVE_INFINITY, onGrant: (t: Ticket) => void granted.push(t), onRefuse: () => undefined };
        return (n) => {
          for (let i = 0; i < n; i++) scheduler.acquire(request);
          let released = 0;
          while (released < n) {
            const next = timers.nextAt();
            if (next === undefined) break;
            timers.advanceTo(next);
            for (const t of granted) {
              t.sent();
              t.release('ok');
              released++;
            }
            granted.length = 0;
          }
        };
      },
    },
  },
  {
    unit: 'releases/s',
    batch: 1_000,
    benchmark: {
      name: 'Scheduler release round robin over 1000 keys (global rule + per-key rule)',
      async setup() {
        const { scheduler, timers } = await benchScheduler([
          { ratePerSec: 1000, burst: 1 },
          { keyed: true, ratePerSec: 1_000_000, burst: 1000 },
        ]);
        const granted: Ticket[] = [];
        const onGrant = (t: Ticket): void => void granted.push(t);
        const keys = Array.from({ length: 1000 }, (_, i) => ['', `key-${i}`]);
        return (n) => {
          for (let i = 0; i < n; i++)
            scheduler.acquire({ keys: keys[i % 1000] as string[], deadlineAt: Number.POSITIVE_INFINITY, onGrant, onRefuse: () => undefined });
          let released = 0;
          while (released < n) {
            const next = timers.nextAt();
            if (next === undefined) break;
            timers.advanceTo(next);
            for (const t of granted) {
              t.sent();
              t.release('ok');
              released++;
            }
            granted.length = 0;
          }
        };
      },
    },
  },
];

await runScenario({ scenario: 'micro', title: 'microbench: token bucket and scheduler, in-process', common }, async () => {
  const progress = createProgress('micro');
  const rows: { name: string; unit: string; median: number; min: number; max: number; rounds: number[] }[] = [];
  for (const { benchmark, batch, unit } of benchmarks) {
    progress.set(benchmark.name);
    const results = await measure(benchmark, batch);
    rows.push({
      name: benchmark.name,
      unit,
      median: Math.round(median(results)),
      min: Math.round(Math.min(...results)),
      max: Math.round(Math.max(...results)),
      rounds: results.map(Math.round),
    });
  }
  const { store } = await benchScheduler([]);
  progress.stop();
  const bucket = rows[0] as (typeof rows)[number];
  const schedulerGrants = rows[2] as (typeof rows)[number];
  const targets: TargetResult[] = [
    {
      name: 'micro: token grants/s (TokenBucket)',
      target: '>= 1,000,000/s',
      measured: `${bucket.median.toLocaleString('en-US')}/s`,
      met: bucket.median >= 1_000_000,
    },
    {
      name: 'micro: scheduler grants/s (acquire -> release)',
      target: '>= 1,000,000/s',
      measured: `${schedulerGrants.median.toLocaleString('en-US')}/s`,
      met: schedulerGrants.median >= 1_000_000,
    },
  ];
  return {
    tables: [
      {
        title: `operations per second (median of ${rounds} rounds of ${roundMs} ms after a warm-up round; buckets: ${store})`,
        columns: ['benchmark', 'median', 'min', 'max', 'unit', 'ns/op'],
        rows: rows.map((r) => [r.name, r.median, r.min, r.max, r.unit, round(1e9 / r.median, 1)]),
      },
    ],
    targets,
    charts: [
      {
        kind: 'bar',
        title: 'operations per second (median; log scale)',
        yLabel: 'ops/s',
        logScale: true,
        groups: rows.map((r, i) => ({ label: `#${i + 1}`, values: [{ name: 'ops/s', value: r.median }] })),
      },
    ],
    notes: [
      ...rows.map((r, i) => `#${i + 1}: ${r.name}`),
      'the scheduler runs on a manual clock and manual timers (load/lib/manual-time.ts, a binary heap), as the scheduler tests do: what is timed is the scheduler, not setTimeout.',
      'the code runs as compiled by tsx from src/ (the same JavaScript tsc emits, without type checks).',
    ],
    data: { rows, rounds, roundMs },
  };
});
