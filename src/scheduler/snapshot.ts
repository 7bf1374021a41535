/**
 * Read-only views of a scheduler, for metrics and /state: the numbers of the whole (O(rules), plus
 * the gates held by queued or in-flight work and at most IDLE_RATE_SCAN idle keys), one gate, and
 * the busiest lanes. Nothing here changes state.
 */
import { UNBOUNDED_RATE_PER_SEC } from '../core/gate-rate.js';
import type { KeyRegistry } from './key-registry.js';
import type { Gate, Lane, RuleSpec } from './model.js';

/** Idle keys (most recently used first) whose rate `sluice_effective_rate` considers per scrape. */
const IDLE_RATE_SCAN = 1000;

export type SchedulerState = 'open' | 'draining' | 'closed';

export interface RuleSnapshot {
  readonly index: number;
  readonly keyed: boolean;
  readonly configuredRatePerSec: number | undefined;
  /** The rate buckets actually refill at (configured rate minus the safety margin, or as learned). */
  readonly effectiveRatePerSec: number | undefined;
  readonly burst: number;
  readonly concurrency: number | undefined;
  /** Keys of this rule held in memory (active and idle). */
  readonly keys: number;
}

export interface GateSnapshot {
  readonly rule: number;
  readonly key: string;
  readonly tokens: number | undefined;
  readonly inFlight: number;
  readonly queued: number;
  /** Milliseconds until the pause ends, when paused. */
  readonly pausedForMs: number | undefined;
}

export interface LaneSnapshot {
  readonly keys: readonly string[];
  readonly queued: number;
}

export interface SchedulerSnapshot {
  readonly state: SchedulerState;
  readonly queued: number;
  readonly inFlight: number;
  /** Distinct keys held in memory, all keyed rules together. */
  readonly keys: number;
  readonly lanes: number;
  readonly rules: readonly RuleSnapshot[];
}

/** The scheduler's numbers. */
export function schedulerSnapshot(view: {
  readonly state: SchedulerState;
  readonly queued: number;
  readonly inFlight: number;
  readonly lanes: number;
  readonly registry: KeyRegistry;
}): SchedulerSnapshot {
  const { registry } = view;
  return {
    state: view.state,
    queued: view.queued,
    inFlight: view.inFlight,
    keys: registry.keys,
    lanes: view.lanes,
    rules: registry.rules.map((rule) => ({
      index: rule.index,
      keyed: rule.keyed,
      configuredRatePerSec: rule.ratePerSec,
      effectiveRatePerSec: currentRate(rule, registry),
      burst: rule.burst,
      concurrency: rule.concurrency,
      keys: registry.keysOf(rule),
    })),
  };
}

/**
 * The rate a rule grants at now: its gate's for a rule without a key; for a keyed rule, the
 * slowest key with work or among the IDLE_RATE_SCAN idle keys used last (or the configured rate
 * when there is none). Undefined when nothing binds.
 */
function currentRate(rule: RuleSpec, registry: KeyRegistry): number | undefined {
  let slowest: number | undefined;
  const consider = (gate: Gate): void => {
    if (gate.rule !== rule || !gate.rate) return;
    const rate = gate.rate.ratePerSec;
    if (rate < UNBOUNDED_RATE_PER_SEC && (slowest === undefined || rate < slowest)) slowest = rate;
  };
  for (const gate of registry.active.values()) consider(gate);
  // Only a rate that varies per key (adapted, learned) makes an idle key's rate worth a look, and
  // only the most recently used ones: a scrape must not walk 100,000 idle keys.
  if (rule.keyed && (rule.adaptive !== undefined || rule.learns === true)) {
    for (const gate of registry.recentIdle(IDLE_RATE_SCAN)) consider(gate);
  }
  return slowest ?? (rule.ratePerSec === undefined ? undefined : registry.effectiveRate(rule));
}

/** The state of one gate at `now`. */
export function gateSnapshot(gate: Gate, now: number): GateSnapshot {
  return {
    rule: gate.rule.index,
    key: gate.key,
    tokens: gate.bucket?.tokensAt(now),
    inFlight: gate.inFlight,
    queued: gate.queued,
    pausedForMs: gate.pauseEndsAt > now ? gate.pauseEndsAt - now : undefined,
  };
}

/** The `limit` busiest lanes by queue depth, deepest first. */
export function busiestLanes(lanes: Iterable<Lane>, limit: number): LaneSnapshot[] {
  const top: Lane[] = [];
  for (const lane of lanes) {
    if (top.length < limit) top.push(lane);
    else if (lane.tickets.size > (top[top.length - 1] as Lane).tickets.size) top[top.length - 1] = lane;
    else continue;
    top.sort((a, b) => b.tickets.size - a.tickets.size);
  }
  return top.map((lane) => ({ keys: lane.gates.map((g) => g.key), queued: lane.tickets.size }));
}
