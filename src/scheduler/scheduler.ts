import { LRUCache } from 'lru-cache';
import { LinkedList } from '../core/linked-list.js';
import type { BucketHandle, BucketStore, TakeResult } from '../store/bucket-store.js';
import { paceFromQuota } from '../core/quota-pacing.js';
import type { QuotaInfo } from '../core/ratelimit-headers.js';
import { Gate, type RuleSpec } from './gate.js';
import { GateRate, UNBOUNDED_RATE_PER_SEC } from './gate-rate.js';
import { Lane } from './lane.js';
import type { Clock, Timers } from '../core/time.js';
import { Ticket, type Refusal, type ReleaseOutcome, type TicketCallbacks, type TicketOwner } from './ticket.js';
import { TicketQueue, type Priority } from './ticket-queue.js';

/**
 * How late an attempt may be written after its release before the buckets re-base on the write
 * (Ticket#sent). Ordinary delays are 0.2 to 0.5 ms; a first connection with a cold HTTP parser is
 * about 20 ms, a TLS handshake more.
 */
const SEND_DELAY_TOLERANCE_MS = 1;

/** The longest pause believed from quota headers when the upstream sets none (`pacing.maxPause`). */
const DEFAULT_MAX_LEARNED_PAUSE_MS = 600_000;

/**
 * How far past its deadline an admitted request may still be granted: the larger of a second and
 * a tenth of the wait it was admitted with (see AcquireRequest#deadline).
 */
const DEADLINE_SLACK_MIN_MS = 1000;
const DEADLINE_SLACK_FRACTION = 0.1;

/** Retry-After of a refusal because the shared store cannot be reached. */
const STORE_RETRY_AFTER_MS = 1000;

/** Idle keys (most recently used first) whose rate `sluice_effective_rate` considers per scrape. */
const IDLE_RATE_SCAN = 1000;

export interface SchedulerOptions {
  readonly rules: readonly RuleSpec[];
  /** Queued tickets across all keys (`queue.maxSize`), and per key (`queue.maxPerKey`). */
  readonly maxQueued: number;
  readonly maxQueuedPerKey: number;
  /** Idle keys remembered (an LRU); keys with queued or in-flight work are never evicted. */
  readonly maxIdleKeys: number;
  /**
   * The fraction of every configured rate held back (0.01 sends a 20/s limit at 19.8/s), so timer
   * and network jitter never let one request too many into a strict upstream window.
   */
  readonly marginFraction: number;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Where the buckets live (memory by default, or shared in Redis). */
  readonly store: BucketStore;
  /** Prefix of bucket ids in the store (the upstream's name). */
  readonly name: string;
  /** The longest pause or pacing period believed from quota headers (`pacing.maxPause`). */
  readonly maxLearnedPauseMs?: number;
  /** Priorities are on: a waiter rises one level per this many ms waited (`priority.aging`). */
  readonly priorityAgingMs?: number | undefined;
}

export interface AcquireRequest extends TicketCallbacks {
  /** The request's key under each rule, in rule order; ignored for rules without a key. */
  readonly keys: readonly string[];
  /**
   * Clock instant by which the ticket must be granted; Infinity for none. A request whose predicted
   * wait passes it is refused on arrival; once admitted, it is refused only if it is still queued
   * DEADLINE_SLACK later (a prediction is not a promise: a late timer or a slow first connection
   * must not turn an admitted request into a refusal after it waited all along).
   */
  readonly deadline: number;
  /**
   * A retry of an admitted request: it goes to the head of its key's queue, is not counted against
   * the queue bounds, and is still accepted while draining.
   */
  readonly retry?: boolean;
  /** 0 high, 1 normal (the default), 2 low; ignored unless priorities are on. */
  readonly priority?: Priority;
}

export interface RuleSnapshot {
  readonly index: number;
  readonly keyed: boolean;
  readonly configuredRatePerSec: number | undefined;
  /** The rate buckets actually refill at (configured rate minus the safety margin). */
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
  readonly state: 'open' | 'draining' | 'closed';
  readonly queued: number;
  readonly inFlight: number;
  /** Distinct keys held in memory, all keyed rules together. */
  readonly keys: number;
  readonly lanes: number;
  readonly rules: readonly RuleSnapshot[];
}

/**
 * Admission for one upstream: per-key FIFO queues released through every limit rule at once.
 *
 * A request falls under one gate per rule (the rule's bucket, slots and pause for its key) and waits
 * in the lane of its key combination. The head of a lane is granted when every one of its gates
 * has a token and a slot and is not paused; the tokens and slots of all gates are then taken in one
 * step, so no rule's token is spent while another rule blocks.
 *
 * A blocked lane waits in the waiting list of the one gate that blocks it. A gate that can serve
 * again moves its waiting lanes, one at a time and in order, to the run queue; a lane that was just
 * served goes to the back. Lanes that share a gate are therefore served in turn (round robin), and
 * one key's backlog never makes another key's request wait behind it. Each gate arms at most one
 * timer, for the instant it can next serve; nothing polls.
 */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** The rate of the tightest bucket that binds among `gates`, if any does. */
function keyRate(gates: readonly Gate[]): number | undefined {
  let rate: number | undefined;
  for (const gate of gates) if (gate.paced() && gate.rate && (rate === undefined || gate.rate.ratePerSec < rate)) rate = gate.rate.ratePerSec;
  return rate;
}

function isTakeResult(value: unknown): value is TakeResult {
  return typeof value === 'object' && value !== null && 'granted' in value;
}

export class Scheduler implements TicketOwner {
  /** The scheduler's own copies of the rules: gates point at them, `reconfigure` updates them. */
  readonly #rules: Writable<RuleSpec>[];
  #options: SchedulerOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #store: BucketStore;
  /** Gates with refs, plus the permanent gate of every rule without a key. */
  readonly #gates = new Map<string, Gate>();
  /** Idle keyed gates whose state still matters (bucket not full, or paused), until it no longer does. */
  #idle: LRUCache<string, Gate>;
  readonly #lanes = new Map<string, Lane>();
  readonly #run = new LinkedList<Lane>();
  #pendingGates: Gate[] = [];
  #pumping = false;
  /** Keys in memory (active or idle) per keyed rule, kept as gates come and go (no scan to count). */
  readonly #keyCounts: number[];
  #queued = 0;
  #inFlight = 0;
  #state: 'open' | 'draining' | 'closed' = 'open';
  readonly #keyedRules: number;

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#rules = options.rules.map((rule) => ({ ...rule }));
    this.#clock = options.clock;
    this.#timers = options.timers;
    this.#store = options.store;
    this.#keyCounts = options.rules.map(() => 0);
    this.#idle = this.#newIdleCache(options.maxIdleKeys);
    this.#keyedRules = options.rules.filter((r) => r.keyed).length;
    for (const rule of this.#rules) {
      if (!rule.keyed) this.#gates.set(String(rule.index), this.#newGate(rule, ''));
    }
  }

  get queued(): number {
    return this.#queued;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get state(): 'open' | 'draining' | 'closed' {
    return this.#state;
  }

  /**
   * Asks for a ticket. Returns a refusal at once when the queue is full, when the predicted wait
   * would pass the deadline, or while shutting down. Otherwise returns the ticket, whose `onGrant`
   * runs when every rule lets it through; for an idle key that is before `acquire` returns.
   */
  acquire(request: AcquireRequest): Ticket | Refusal {
    const now = this.#clock.now();
    if (this.#state === 'closed' || (this.#state === 'draining' && !request.retry)) {
      return { code: 'SLUICE_SHUTTING_DOWN', retryAfterMs: 0 };
    }
    const gates = this.#rules.map((rule) => this.#findGate(rule, request.keys[rule.index] ?? ''));
    const laneKey = this.#laneKey(request.keys);
    let lane = this.#lanes.get(laneKey);
    if (!request.retry) {
      const depth = lane?.tickets.size ?? 0;
      if (this.#queued >= this.#options.maxQueued || depth >= this.#options.maxQueuedPerKey) {
        return { code: 'SLUICE_QUEUE_FULL', retryAfterMs: this.#predictWaitMs(gates, depth, now), keyRatePerSec: keyRate(gates) };
      }
      if (depth > 0 || !this.#canServeNow(gates, now)) {
        const waitMs = this.#predictWaitMs(gates, depth, now);
        if (now + waitMs > request.deadline) {
          return { code: 'SLUICE_QUEUE_TIMEOUT', retryAfterMs: waitMs - Math.max(0, request.deadline - now), keyRatePerSec: keyRate(gates) };
        }
      }
    }
    const deadline = request.deadline + Math.max(DEADLINE_SLACK_MIN_MS, (request.deadline - now) * DEADLINE_SLACK_FRACTION);
    const priority: Priority = this.#options.priorityAgingMs === undefined ? 1 : (request.priority ?? 1);
    const ticket = new Ticket({ owner: this, gates, laneKey, enqueuedAt: now, deadline, priority, callbacks: request });
    for (const gate of gates) this.#retain(gate);
    if (!lane) {
      lane = new Lane(laneKey, gates, new TicketQueue(this.#clock, this.#options.priorityAgingMs));
      this.#lanes.set(laneKey, lane);
    }
    this.#enqueue(lane, ticket, request.retry === true, now);
    this.#pump();
    return ticket;
  }

  /** Predicted milliseconds before a new request under `keys` would be granted. */
  predictWaitMs(keys: readonly string[]): number {
    const now = this.#clock.now();
    const gates = this.#rules.map((rule) => this.#findGate(rule, keys[rule.index] ?? ''));
    return this.#predictWaitMs(gates, this.#lanes.get(this.#laneKey(keys))?.tickets.size ?? 0, now);
  }

  /**
   * Applies new limits in place when the rules keep their shape (as many rules, each with or without
   * a key and a rate as before): buckets keep their tokens and pauses, queues are kept, a changed
   * rate or burst applies from the next release, a larger concurrency releases waiters at once.
   * Returns false, changing nothing, when the shape differs (the caller builds a new scheduler).
   */
  reconfigure(options: Omit<SchedulerOptions, 'clock' | 'timers' | 'store' | 'name'>): boolean {
    const rules = options.rules;
    const sameShape =
      rules.length === this.#rules.length &&
      rules.every((rule, i) => {
        const current = this.#rules[i] as RuleSpec;
        const hasBucket = (r: RuleSpec): boolean => r.ratePerSec !== undefined || r.learns === true || r.adaptive !== undefined;
        return rule.keyed === current.keyed && hasBucket(rule) === hasBucket(current);
      });
    if (!sameShape) return false;
    const now = this.#clock.now();
    this.#options = { ...this.#options, ...options, rules: this.#options.rules };
    if (options.maxIdleKeys !== this.#idle.max) {
      const idle = this.#newIdleCache(options.maxIdleKeys);
      // Expired keys are forgotten (and uncounted) now: entries() would skip them, and the old
      // cache, dropped whole, disposes nothing. A reload is rare; this walk is fine there.
      this.#idle.purgeStale();
      for (const [id, gate] of [...this.#idle.entries()].reverse()) idle.set(id, gate, { ttl: Math.max(1, this.#idle.getRemainingTTL(id)) });
      this.#idle = idle;
    }
    rules.forEach((rule, i) =>
      Object.assign(this.#rules[i] as Writable<RuleSpec>, {
        ratePerSec: rule.ratePerSec,
        burst: rule.burst,
        concurrency: rule.concurrency,
        adaptive: rule.adaptive,
        learns: rule.learns,
      }),
    );
    for (const gate of [...this.#gates.values(), ...this.#idle.values()]) {
      if (gate.bucket) {
        // Learning and adapting restart from the new configuration.
        gate.rate = this.#gateRate(gate.rule);
        gate.bucket.setBurst(now, gate.rule.burst);
        this.#applyRate(gate, now);
      }
      // A waiting lane may pass now (more slots, an earlier token): let its gate look again.
      if (gate.waiting.size > 0) this.#markPending(gate);
    }
    this.#pump();
    return true;
  }

  /** Stop admitting new requests; queued ones and retries keep being released at the allowed rate. */
  drain(): void {
    if (this.#state === 'open') this.#state = 'draining';
  }

  /** Refuses everything still queued (`SLUICE_SHUTTING_DOWN`) and every later request. */
  close(): void {
    this.#state = 'closed';
    for (const lane of [...this.#lanes.values()]) {
      for (let head = lane.tickets.firstDeadline; head; head = lane.tickets.firstDeadline) {
        this.#refuse(head, { code: 'SLUICE_SHUTTING_DOWN', retryAfterMs: 0 });
      }
    }
    for (const gate of this.#gates.values()) this.#clearGateTimer(gate);
  }

  /**
   * The scheduler's numbers, for metrics and /state: O(rules) plus the gates held by queued or
   * in-flight work, and at most IDLE_RATE_SCAN idle keys (only for a rule whose rate varies per key).
   */
  snapshot(): SchedulerSnapshot {
    let keys = 0;
    for (const n of this.#keyCounts) keys += n;
    return {
      state: this.#state,
      queued: this.#queued,
      inFlight: this.#inFlight,
      keys,
      lanes: this.#lanes.size,
      rules: this.#rules.map((rule) => ({
        index: rule.index,
        keyed: rule.keyed,
        configuredRatePerSec: rule.ratePerSec,
        effectiveRatePerSec: this.#currentRate(rule),
        burst: rule.burst,
        concurrency: rule.concurrency,
        keys: rule.keyed ? (this.#keyCounts[rule.index] ?? 0) : 1,
      })),
    };
  }

  /** The gate state of one rule for one key (or the rule's only gate); undefined if not in memory. */
  gateSnapshot(ruleIndex: number, key = ''): GateSnapshot | undefined {
    const rule = this.#rules[ruleIndex];
    if (!rule) return undefined;
    const id = this.#gateId(rule, key);
    const gate = this.#gates.get(id) ?? this.#idle.peek(id);
    if (!gate) return undefined;
    const now = this.#clock.now();
    return {
      rule: rule.index,
      key: gate.key,
      tokens: gate.bucket?.tokensAt(now),
      inFlight: gate.inFlight,
      queued: gate.queued,
      pausedForMs: gate.pausedUntil > now ? gate.pausedUntil - now : undefined,
    };
  }

  /** The `limit` busiest keys by queue depth, deepest first. */
  busiestLanes(limit: number): LaneSnapshot[] {
    const top: Lane[] = [];
    for (const lane of this.#lanes.values()) {
      if (top.length < limit) top.push(lane);
      else if (lane.tickets.size > (top[top.length - 1] as Lane).tickets.size) top[top.length - 1] = lane;
      else continue;
      top.sort((a, b) => b.tickets.size - a.tickets.size);
    }
    return top.map((lane) => ({ keys: lane.gates.map((g) => g.key), queued: lane.tickets.size }));
  }

  // ---- TicketOwner --------------------------------------------------------------------------

  cancel(ticket: Ticket): boolean {
    if (ticket.state !== 'queued') return false;
    this.#dequeue(ticket);
    ticket.state = 'cancelled';
    this.#dropRefs(ticket);
    this.#pump();
    return true;
  }

  sent(ticket: Ticket): void {
    if (ticket.state !== 'granted' || ticket.written) return;
    ticket.written = true;
    if (ticket.taken.length === 0) return;
    this.#store.usedAt(ticket.taken, this.#clock.now(), SEND_DELAY_TOLERANCE_MS);
    for (const gate of ticket.gates) {
      if (!gate.bucket) continue;
      gate.dropHold(ticket);
      if (gate.waiting.size > 0) this.#markPending(gate);
    }
    this.#pump();
  }

  release(ticket: Ticket, outcome: ReleaseOutcome): void {
    if (ticket.state !== 'granted') return;
    ticket.state = 'released';
    this.#inFlight--;
    if (outcome === 'dropped' && ticket.taken.length > 0) this.#store.refund(ticket.taken);
    const now = this.#clock.now();
    for (const gate of ticket.gates) {
      const adaptive = gate.rate?.adaptive;
      if (adaptive && (outcome === 'throttled' || outcome === 'ok')) {
        if (outcome === 'throttled') adaptive.onThrottle(now);
        else adaptive.onSuccess(now);
        this.#applyRate(gate, now);
      }
      gate.inFlight--;
      if (!ticket.written) gate.dropHold(ticket);
      if (gate.waiting.size > 0) this.#markPending(gate);
    }
    this.#dropRefs(ticket);
    this.#pump();
  }

  /**
   * Pauses the key of `ticket` until `untilMs`: every gate of a rule with a key template, or the
   * upstream's gates when no rule has one. Gates of unkeyed rules shared with other keys are left
   * alone, so one key's 429 never stops the other keys.
   */
  pause(ticket: Ticket, untilMs: number): void {
    const keyed = ticket.gates.filter((g) => g.rule.keyed);
    const paused = keyed.length > 0 ? keyed : ticket.gates;
    for (const gate of paused) {
      if (untilMs > gate.pausedUntil) gate.pausedUntil = untilMs;
    }
    const buckets = paused.flatMap((g) => (g.bucket ? [g.bucket] : []));
    if (buckets.length > 0) this.#store.pause(buckets, this.#clock.now(), untilMs);
  }

  learn(ticket: Ticket, quota: QuotaInfo | undefined): void {
    if (ticket.state !== 'granted') return;
    const now = this.#clock.now();
    for (const gate of ticket.gates) {
      if (!gate.rule.learns || !gate.rate) continue;
      if (!gate.rate.known && gate.waiting.size > 0) this.#markPending(gate); // its one-at-a-time ends
      gate.rate.heard();
      if (quota === undefined) continue;
      const pacing = paceFromQuota(gate.rate.withWindow(quota), {
        othersInFlight: gate.inFlight - 1,
        maxMs: this.#options.maxLearnedPauseMs ?? DEFAULT_MAX_LEARNED_PAUSE_MS,
        answerDelayMs: now - ticket.grantedAt,
      });
      if (pacing === undefined) continue;
      if (pacing.kind === 'pause') {
        const until = now + pacing.forMs;
        if (until > gate.pausedUntil) gate.pausedUntil = until;
        if (gate.bucket) this.#store.pause([gate.bucket], now, until);
      } else {
        gate.rate.learn(pacing.ratePerSec);
        this.#applyRate(gate, now);
      }
      if (gate.waiting.size > 0) this.#markPending(gate);
    }
    this.#pump();
  }

  /** Moves a gate's bucket to the rate its GateRate now says. */
  #applyRate(gate: Gate, now: number): void {
    if (!gate.bucket || !gate.rate) return;
    const rate = gate.rate.ratePerSec;
    if (rate !== gate.appliedRatePerSec) {
      gate.bucket.setRate(now, rate);
      gate.appliedRatePerSec = rate;
      if (gate.waiting.size > 0) this.#markPending(gate);
    }
  }

  // ---- the run loop -------------------------------------------------------------------------

  /** Evaluates lanes until nothing more can be granted now. Re-entrant calls return at once. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      let next = 0;
      while (true) {
        const lane = this.#run.shift();
        if (lane) {
          this.#evaluate(lane);
          continue;
        }
        const gate = this.#pendingGates[next++];
        if (!gate) break;
        gate.pending = false;
        this.#serveGate(gate);
      }
      this.#pendingGates = [];
    } finally {
      this.#pumping = false;
    }
  }

  /** Grants the head of `lane`, or parks the lane on the gate that blocks it. */
  #evaluate(lane: Lane): void {
    const now = this.#clock.now();
    for (let expired = lane.tickets.firstDeadline; expired && expired.deadline <= now; expired = lane.tickets.firstDeadline) {
      this.#refuse(expired, { code: 'SLUICE_QUEUE_TIMEOUT', retryAfterMs: this.#predictWaitMs(lane.gates, 0, now), keyRatePerSec: keyRate(lane.gates) });
    }
    const head = lane.tickets.first;
    if (!head) return this.#retireLane(lane);

    // What this process knows blocks the head: pauses, slots, releases not yet written, and tokens
    // a shared store is still being asked for by another lane.
    let pausedGate: Gate | undefined;
    for (const gate of lane.gates) if (gate.pausedUntil > now && gate.pausedUntil > (pausedGate?.pausedUntil ?? now)) pausedGate = gate;
    if (pausedGate) return this.#park(lane, pausedGate, 'time', now, pausedGate.pausedUntil);
    for (const gate of lane.gates) if (!gate.hasSlot()) return this.#park(lane, gate, 'slot', now);
    for (const gate of lane.bucketGates) {
      if (gate.taking > 0) return this.#park(lane, gate, 'slot', now);
      const holdUntil = gate.writeHoldUntil(now);
      if (holdUntil > now) {
        this.#armGate(gate, holdUntil);
        return this.#park(lane, gate, 'write', now);
      }
    }
    // Only buckets that bind are asked (a rule still learning its rate has none that does).
    let gates = lane.bucketGates;
    for (const gate of gates) {
      if (!gate.paced()) {
        gates = gates.filter((g) => g.paced());
        break;
      }
    }
    if (gates.length === 0) return this.#grant(lane, head, now, now);
    const buckets = gates === lane.bucketGates ? lane.buckets : gates.map((g) => g.bucket as BucketHandle);

    const result = this.#store.take(buckets, Math.min(lane.wakeAt, now), now);
    if (!(result instanceof Promise)) return this.#settleTake(lane, gates, buckets, result, now);
    lane.taking = true;
    for (const gate of lane.bucketGates) gate.taking++;
    result.then(
      (settled) => this.#afterAsyncTake(lane, gates, buckets, settled),
      (err: unknown) => this.#afterAsyncTake(lane, gates, buckets, err),
    );
  }

  /** A shared store answered: continue with the lane as if it had answered at once. */
  #afterAsyncTake(lane: Lane, gates: readonly Gate[], buckets: readonly BucketHandle[], result: unknown): void {
    lane.taking = false;
    for (const gate of lane.bucketGates) {
      gate.taking--;
      this.#markPending(gate);
    }
    const now = this.#clock.now();
    const head = lane.tickets.first;
    const granted = isTakeResult(result) && result.granted;
    if (!head || this.#state === 'closed' || (granted && lane.gates.some((g) => g.pausedUntil > now || !g.hasSlot()))) {
      // Everyone left, or a pause arrived meanwhile: the tokens go back.
      if (granted) this.#store.refund(buckets);
      if (head) this.#run.push(lane);
      else this.#retireLane(lane);
    } else if (isTakeResult(result)) {
      this.#settleTake(lane, gates, buckets, result, now);
    } else {
      // The store cannot answer and must not be bypassed (`store.onError: deny`); any other
      // failure of a store is treated the same way rather than let through unlimited.
      this.#refuse(head, { code: 'SLUICE_STORE_UNAVAILABLE', retryAfterMs: STORE_RETRY_AFTER_MS });
      if (lane.tickets.size > 0) this.#run.push(lane);
    }
    this.#pump();
  }

  #settleTake(lane: Lane, gates: readonly Gate[], buckets: readonly BucketHandle[], result: TakeResult, now: number): void {
    const head = lane.tickets.first as Ticket;
    if (result.granted) return this.#grant(lane, head, now, result.at, buckets);
    const gate = gates[result.blocker] ?? gates[0];
    if (gate === undefined) throw new Error('a store refused tokens of a lane without buckets');
    this.#park(lane, gate, 'time', now, Math.max(result.retryAt, now));
  }

  /** Gives `head` its slots (its tokens are taken) and calls it back. */
  #grant(lane: Lane, head: Ticket, now: number, bookedAt: number, taken: readonly BucketHandle[] = []): void {
    head.grantedAt = now;
    head.taken = taken;
    for (const gate of lane.gates) {
      gate.inFlight++;
      if (gate.paced()) (gate.unwritten ??= new Set()).add(head);
    }
    this.#dequeue(head);
    head.state = 'granted';
    this.#inFlight++;
    lane.wakeAt = bookedAt;
    if (lane.tickets.size > 0) this.#run.push(lane);
    head.callbacks.onGrant(head);
  }

  /** Puts `lane` in the waiting list of `gate`; for time, first refuses heads that cannot make it. */
  #park(lane: Lane, gate: Gate, blockedOn: 'time' | 'slot' | 'write', now: number, readyAt = now): void {
    if (blockedOn === 'time') {
      for (let head = lane.tickets.first; head && head.deadline < readyAt; head = lane.tickets.first) {
        this.#refuse(head, { code: 'SLUICE_QUEUE_TIMEOUT', retryAfterMs: readyAt - now, keyRatePerSec: keyRate(lane.gates) });
      }
      if (lane.tickets.size === 0) return this.#retireLane(lane);
      this.#armGate(gate, readyAt);
    }
    lane.blockedOn = blockedOn;
    gate.waiting.push(lane);
    this.#armExpiry(lane);
  }

  /** Moves the first waiting lane of `gate` to the run queue if the gate can serve it now. */
  #serveGate(gate: Gate): void {
    const lane = gate.waiting.first;
    if (!lane || !gate.hasSlot() || gate.taking > 0) return; // a release, or the store's answer, wakes it
    const now = this.#clock.now();
    const holdUntil = gate.writeHoldUntil(now);
    if (holdUntil > now) return this.#armGate(gate, holdUntil); // or the write wakes it
    const readyAt = gate.readyAt();
    if (readyAt > now) return this.#armGate(gate, readyAt);
    gate.waiting.remove(lane);
    if (lane.blockedOn === 'slot') lane.wakeAt = now;
    lane.blockedOn = undefined;
    this.#run.push(lane);
    // Look at this gate again once the lane has been evaluated: it may not have used the gate.
    this.#markPending(gate);
  }

  #markPending(gate: Gate): void {
    if (gate.pending) return;
    gate.pending = true;
    this.#pendingGates.push(gate);
  }

  #armGate(gate: Gate, at: number): void {
    if (gate.timer !== undefined) {
      if (gate.timerAt <= at) return; // the earlier timer re-examines the gate
      this.#timers.clear(gate.timer);
    }
    gate.timerAt = at;
    gate.timer = this.#timers.setAt(at, () => {
      gate.timer = undefined;
      gate.timerAt = Number.POSITIVE_INFINITY;
      this.#markPending(gate);
      this.#pump();
    });
  }

  #clearGateTimer(gate: Gate): void {
    if (gate.timer === undefined) return;
    this.#timers.clear(gate.timer);
    gate.timer = undefined;
    gate.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Arms the lane's backstop for its head's deadline (lazily: a later head re-arms on expiry). */
  #armExpiry(lane: Lane): void {
    const head = lane.tickets.firstDeadline;
    if (!head || head.deadline === Number.POSITIVE_INFINITY) return;
    if (lane.expiryTimer !== undefined) {
      if (lane.expiryAt <= head.deadline) return;
      this.#timers.clear(lane.expiryTimer);
    }
    lane.expiryAt = head.deadline;
    lane.expiryTimer = this.#timers.setAt(head.deadline, () => {
      lane.expiryTimer = undefined;
      lane.expiryAt = Number.POSITIVE_INFINITY;
      const now = this.#clock.now();
      for (let head = lane.tickets.firstDeadline; head && head.deadline <= now; head = lane.tickets.firstDeadline) {
        this.#refuse(head, { code: 'SLUICE_QUEUE_TIMEOUT', retryAfterMs: this.#predictWaitMs(lane.gates, 0, now), keyRatePerSec: keyRate(lane.gates) });
      }
      if (lane.tickets.size > 0) this.#armExpiry(lane);
      this.#pump();
    });
  }

  // ---- bookkeeping --------------------------------------------------------------------------

  #enqueue(lane: Lane, ticket: Ticket, atHead: boolean, now: number): void {
    const wasEmpty = lane.tickets.size === 0;
    if (atHead) lane.tickets.unshift(ticket);
    else lane.tickets.push(ticket);
    ticket.lane = lane;
    this.#queued++;
    for (const gate of lane.gates) {
      gate.queued++;
      if (wasEmpty) gate.lanes++;
    }
    if (lane.list === undefined && !lane.taking) {
      lane.wakeAt = now;
      this.#run.push(lane);
    } else if (atHead) {
      this.#armExpiry(lane);
    }
  }

  /** Takes a queued ticket out of its lane. */
  #dequeue(ticket: Ticket): void {
    const lane = ticket.lane as Lane;
    lane.tickets.remove(ticket);
    ticket.lane = undefined;
    this.#queued--;
    const empty = lane.tickets.size === 0;
    for (const gate of lane.gates) {
      gate.queued--;
      if (empty) gate.lanes--;
    }
    if (empty) this.#retireLane(lane);
  }

  #refuse(ticket: Ticket, refusal: Refusal): void {
    this.#dequeue(ticket);
    ticket.state = 'refused';
    this.#dropRefs(ticket);
    ticket.callbacks.onRefuse(refusal);
  }

  #retireLane(lane: Lane): void {
    if (lane.tickets.size > 0 || lane.taking) return;
    (lane.list as LinkedList<Lane> | undefined)?.remove(lane);
    lane.blockedOn = undefined;
    if (lane.expiryTimer !== undefined) {
      this.#timers.clear(lane.expiryTimer);
      lane.expiryTimer = undefined;
      lane.expiryAt = Number.POSITIVE_INFINITY;
    }
    if (this.#lanes.get(lane.key) === lane) this.#lanes.delete(lane.key);
  }

  #dropRefs(ticket: Ticket): void {
    const now = this.#clock.now();
    for (const gate of ticket.gates) this.#unretain(gate, now);
  }

  #retain(gate: Gate): void {
    if (gate.refs++ === 0 && gate.rule.keyed) {
      // From the idle cache (a `delete` its dispose ignores), or new: one more key in memory.
      if (!this.#idle.delete(gate.id)) this.#countKey(gate, 1);
      this.#gates.set(gate.id, gate);
    }
  }

  #countKey(gate: Gate, delta: 1 | -1): void {
    this.#keyCounts[gate.rule.index] = (this.#keyCounts[gate.rule.index] ?? 0) + delta;
  }

  /** The idle keys: bounded, each kept until its state stops mattering; leaving it forgets a key. */
  #newIdleCache(maxIdleKeys: number): LRUCache<string, Gate> {
    return new LRUCache<string, Gate>({
      max: Math.max(1, maxIdleKeys),
      ttlResolution: 0,
      perf: this.#clock,
      dispose: (gate, _id, reason) => {
        if (reason === 'evict' || reason === 'expire') this.#countKey(gate, -1);
      },
    });
  }

  /** A keyed gate nobody holds is forgotten, or kept idle for as long as its state matters. */
  #unretain(gate: Gate, now: number): void {
    if (--gate.refs > 0 || !gate.rule.keyed) return;
    this.#clearGateTimer(gate);
    this.#gates.delete(gate.id);
    if (gate.isPristine(now)) return this.#countKey(gate, -1);
    const fullAt = gate.bucket ? gate.bucket.fullAt() : Number.NEGATIVE_INFINITY;
    const ttl = Math.ceil(Math.max(fullAt, gate.pausedUntil) - now);
    this.#idle.set(gate.id, gate, { ttl: Math.max(1, ttl) });
  }

  #findGate(rule: RuleSpec, key: string): Gate {
    const id = this.#gateId(rule, key);
    return this.#gates.get(id) ?? this.#idle.get(id) ?? this.#newGate(rule, key);
  }

  #newGate(rule: RuleSpec, key: string): Gate {
    const id = this.#gateId(rule, key);
    if (rule.ratePerSec === undefined && !rule.learns && !rule.adaptive)
      return new Gate({ id, rule, key: rule.keyed ? key : '', bucket: undefined, rate: undefined });
    const rate = this.#gateRate(rule);
    const bucket = this.#store.bucket({ id: `${this.#options.name}:${id}`, ratePerSec: rate.ratePerSec, burst: rule.burst });
    const gate = new Gate({ id, rule, key: rule.keyed ? key : '', bucket, rate });
    gate.appliedRatePerSec = rate.ratePerSec;
    return gate;
  }

  #gateRate(rule: RuleSpec): GateRate {
    const ceilingPerSec = rule.ratePerSec === undefined ? UNBOUNDED_RATE_PER_SEC : this.#effectiveRate(rule);
    return new GateRate({ ceilingPerSec, marginFraction: this.#options.marginFraction, adaptive: rule.adaptive, now: this.#clock.now() });
  }

  #effectiveRate(rule: RuleSpec): number {
    return (rule.ratePerSec as number) * (1 - this.#options.marginFraction);
  }

  #gateId(rule: RuleSpec, key: string): string {
    return rule.keyed ? `${rule.index}:${key}` : String(rule.index);
  }

  /**
   * The rate a rule releases at now: its gate's for a rule without a key; for a keyed rule, the
   * slowest key with work or among the IDLE_RATE_SCAN idle keys used last (or the configured rate
   * when there is none). Undefined when nothing binds.
   */
  #currentRate(rule: RuleSpec): number | undefined {
    let slowest: number | undefined;
    const consider = (gate: Gate): void => {
      if (gate.rule !== rule || !gate.rate) return;
      const rate = gate.rate.ratePerSec;
      if (rate < UNBOUNDED_RATE_PER_SEC && (slowest === undefined || rate < slowest)) slowest = rate;
    };
    for (const gate of this.#gates.values()) consider(gate);
    // Only a rate that varies per key (adapted, learned) makes an idle key's rate worth a look, and
    // only the most recently used ones: a scrape must not walk 100,000 idle keys.
    if (rule.keyed && (rule.adaptive !== undefined || rule.learns === true)) {
      let looked = 0;
      for (const gate of this.#idle.values()) {
        if (++looked > IDLE_RATE_SCAN) break;
        consider(gate);
      }
    }
    return slowest ?? (rule.ratePerSec === undefined ? undefined : this.#effectiveRate(rule));
  }

  /** One lane per combination of keys; length prefixes keep combinations unambiguous. */
  #laneKey(keys: readonly string[]): string {
    if (this.#keyedRules === 0) return '';
    let laneKey = '';
    for (const rule of this.#rules) {
      if (!rule.keyed) continue;
      const key = keys[rule.index] ?? '';
      laneKey += this.#keyedRules === 1 ? key : `${key.length}:${key}`;
    }
    return laneKey;
  }

  #canServeNow(gates: readonly Gate[], now: number): boolean {
    for (const gate of gates) if (!gate.hasSlot() || gate.writeHoldUntil(now) > now || gate.readyAt() > now) return false;
    return true;
  }

  /**
   * Predicts when a request at the tail of a lane holding `depth` tickets would be granted: for
   * every gate, the tokens needed by the tickets served before it (its own lane's, plus one per
   * turn of each other lane through a shared gate) after the pause ends. Concurrency caps are not
   * predicted (the backstop at the deadline covers them).
   */
  #predictWaitMs(gates: readonly Gate[], depth: number, now: number): number {
    const position = depth + 1;
    let until = now;
    for (const gate of gates) {
      let t = Math.max(now, gate.pausedUntil);
      if (gate.bucket) {
        const lanes = gate.lanes + (depth === 0 ? 1 : 0);
        const ahead = Math.min(gate.queued + 1, position * lanes);
        t += Math.max(0, ahead - gate.bucket.tokensAt(t)) * gate.bucket.intervalMs;
      }
      if (t > until) until = t;
    }
    return until - now;
  }
}
