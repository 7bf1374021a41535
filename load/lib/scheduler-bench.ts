/**
 * Builds a Scheduler for in-process measurements (the scale and microbench scenarios) on the
 * manual clock of manual-time.ts. The bucket store, when this version of sluice has one
 * (src/store/memory-store.ts), is the in-memory store, as in production without Redis.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RuleSpec } from '../../src/scheduler/model.js';
import { Scheduler, type SchedulerOptions } from '../../src/scheduler/scheduler.js';
import { BenchClock, BenchTimers } from './manual-time.js';
import { ROOT } from './processes.js';

export interface RuleInput {
  readonly keyed?: boolean;
  readonly ratePerSec?: number;
  readonly burst?: number;
  readonly concurrency?: number;
}

export async function benchScheduler(ruleInputs: readonly RuleInput[], options: { maxQueued?: number; maxIdleKeys?: number } = {}) {
  const clock = new BenchClock();
  clock.current = 1_000;
  const timers = new BenchTimers(clock);
  const rules: RuleSpec[] = ruleInputs.map((r, index) => ({
    index,
    keyed: r.keyed ?? false,
    ratePerSec: r.ratePerSec,
    burst: r.burst ?? 1,
    concurrency: r.concurrency,
  }));
  const extra: Record<string, unknown> = {};
  const storePath = join(ROOT, 'src', 'store', 'memory-store.ts');
  if (existsSync(storePath)) {
    const mod = (await import(pathToFileURL(storePath).href)) as { MemoryBucketStore?: new () => unknown };
    if (mod.MemoryBucketStore) Object.assign(extra, { store: new mod.MemoryBucketStore(), name: 'bench' });
  }
  const base: Record<string, unknown> = {
    rules,
    maxQueued: options.maxQueued ?? 1_000_000,
    maxQueuedPerKey: options.maxQueued ?? 1_000_000,
    maxIdleKeys: options.maxIdleKeys ?? 100_000,
    marginFraction: 0,
    clock,
    timers,
    ...extra,
  };
  const scheduler = new Scheduler(base as unknown as SchedulerOptions);
  return { scheduler, clock, timers, store: 'store' in extra ? 'memory store (src/store/memory-store.ts)' : 'built-in token buckets' };
}
