import type { RuleSpec } from '../../src/scheduler/model.js';
import { Scheduler, type SchedulerOptions } from '../../src/scheduler/scheduler.js';
import { MemoryBucketStore } from '../../src/store/memory-store.js';
import { Ticket, type Refusal } from '../../src/scheduler/model.js';
import { ManualClock, ManualTimers } from '../helpers/manual-time.js';

export interface RuleInput {
  keyed?: boolean;
  ratePerSec?: number;
  burst?: number;
  concurrency?: number;
  adaptive?: RuleSpec['adaptive'];
  learns?: boolean;
}

export function rules(...inputs: RuleInput[]): RuleSpec[] {
  return inputs.map((r, index) => ({
    index,
    keyed: r.keyed ?? false,
    ratePerSec: r.ratePerSec,
    burst: r.burst ?? 1,
    concurrency: r.concurrency,
    adaptive: r.adaptive,
    learns: r.learns,
  }));
}

/** A scheduler on manual time that records every grant and refusal. */
export function harness(ruleInputs: RuleInput[], options: Partial<Omit<SchedulerOptions, 'rules' | 'clock' | 'timers'>> = {}) {
  const clock = new ManualClock(1_000);
  const timers = new ManualTimers(clock);
  const scheduler = new Scheduler({
    rules: rules(...ruleInputs),
    maxQueued: 10_000,
    maxQueuedPerKey: 10_000,
    maxIdleKeys: 1_000,
    marginFraction: 0,
    clock,
    timers,
    store: new MemoryBucketStore(),
    name: 'test',
    ...options,
  });
  const grants: { id: string; at: number; ticket: Ticket }[] = [];
  const refusals: { id: string; at: number; refusal: Refusal }[] = [];

  /**
   * Queues a request under `keys`; returns the ticket or the immediate refusal. A grant is written
   * to the upstream at once (a warm connection), unless `written: false`.
   */
  function request(
    id: string,
    keys: string[] = [],
    extra: { deadline?: number; retry?: boolean; written?: boolean; priority?: 0 | 1 | 2 } = {},
  ): Ticket | Refusal {
    return scheduler.acquire({
      keys,
      deadlineAt: extra.deadline ?? Number.POSITIVE_INFINITY,
      retry: extra.retry,
      priority: extra.priority,
      onGrant: (ticket) => {
        grants.push({ id, at: clock.now(), ticket });
        if (extra.written !== false) ticket.sent();
      },
      onRefuse: (refusal) => refusals.push({ id, at: clock.now(), refusal }),
    });
  }

  function ticket(result: Ticket | Refusal): Ticket {
    if (!(result instanceof Ticket)) throw new Error(`expected a ticket, got refusal ${result.code}`);
    return result;
  }

  const granted = (): string[] => grants.map((g) => g.id);
  /** Releases every granted ticket not yet released. */
  const releaseAll = (outcome: 'ok' | 'dropped' = 'ok'): void => {
    for (const g of grants) g.ticket.release(outcome);
  };

  return { clock, timers, scheduler, grants, refusals, request, ticket, granted, releaseAll };
}
