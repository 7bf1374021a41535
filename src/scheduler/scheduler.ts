/**
 * Admission for one upstream: per-key FIFO queues granted through every limit rule at once. This is
 * the run loop (acquire, pump, evaluate, grant, park, the timers); the gates are kept by the key
 * registry, the answers of the upstream act on them through Feedback, and snapshot.ts reads them.
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
import { AgingQueue, type Priority } from '../core/aging-queue.js';
import { LinkedList } from '../core/linked-list.js';
import type { ReleaseOutcome } from '../core/outcomes.js';
import type { QuotaInfo } from '../core/ratelimit-headers.js';
import type { Clock, Timers } from '../core/time.js';
import type { BucketHandle, BucketStore, TakeResult } from '../store/bucket-store.js';
import { admittedDeadlineAt, refusalOnArrival, timeoutRefusal, waitMs, type AcquireRequest } from './admission.js';
import { Alarms } from './alarms.js';
import { Feedback } from './feedback.js';
import { KeyRegistry } from './key-registry.js';
import { Lane, Ticket, type Gate, type Refusal, type RuleSpec, type TicketOwner } from './model.js';
import {
  busiestLanes,
  gateSnapshot,
  schedulerSnapshot,
  type GateSnapshot,
  type LaneSnapshot,
  type SchedulerSnapshot,
  type SchedulerState,
} from './snapshot.js';

/**
 * How late an attempt may be written after its grant before the buckets re-base on the write
 * (Ticket#sent). Ordinary delays are 0.2 to 0.5 ms; a first connection with a cold HTTP parser is
 * about 20 ms, a TLS handshake more.
 */
const SEND_DELAY_TOLERANCE_MS = 1;

/** Retry-After of a refusal because the shared store cannot be reached. */
const STORE_RETRY_AFTER_MS = 1000;

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

function isTakeResult(value: unknown): value is TakeResult {
  return typeof value === 'object' && value !== null && 'granted' in value;
}

export class Scheduler implements TicketOwner {
  #options: SchedulerOptions;
  readonly #clock: Clock;
  readonly #alarms: Alarms;
  readonly #store: BucketStore;
  readonly #registry: KeyRegistry;
  readonly #feedback: Feedback;
  readonly #lanes = new Map<string, Lane>();
  readonly #run = new LinkedList<Lane>();
  #pendingGates: Gate[] = [];
  #pumping = false;
  #queued = 0;
  #inFlight = 0;
  #state: SchedulerState = 'open';

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#clock = options.clock;
    this.#alarms = new Alarms(options.timers, {
      gateDue: (gate) => {
        this.#markPending(gate);
        this.#pump();
      },
      deadlineDue: (lane) => this.#deadlineDue(lane),
    });
    this.#store = options.store;
    this.#registry = new KeyRegistry({
      rules: options.rules,
      clock: options.clock,
      store: options.store,
      name: options.name,
      maxIdleKeys: options.maxIdleKeys,
      marginFraction: options.marginFraction,
      onInactive: (gate) => this.#alarms.disarmGate(gate),
    });
    this.#feedback = new Feedback({ store: options.store, maxLearnedPauseMs: () => this.#options.maxLearnedPauseMs, wake: (gate) => this.#markPending(gate) });
  }

  get queued(): number {
    return this.#queued;
  }

  get inFlight(): number {
    return this.#inFlight;
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
    const gates = this.#registry.rules.map((rule) => this.#registry.find(rule, request.keys[rule.index] ?? ''));
    const laneKey = this.#registry.laneKey(request.keys);
    let lane = this.#lanes.get(laneKey);
    if (!request.retry) {
      const refusal = refusalOnArrival(
        gates,
        lane?.tickets.size ?? 0,
        request.deadlineAt,
        { queued: this.#queued, maxQueued: this.#options.maxQueued, maxQueuedPerKey: this.#options.maxQueuedPerKey },
        now,
      );
      if (refusal) return refusal;
    }
    const deadlineAt = admittedDeadlineAt(request.deadlineAt, now);
    const priority: Priority = this.#options.priorityAgingMs === undefined ? 1 : (request.priority ?? 1);
    const ticket = new Ticket({ owner: this, gates, enqueuedAt: now, deadlineAt, priority, callbacks: request });
    for (const gate of gates) this.#registry.retain(gate);
    if (!lane) {
      lane = new Lane(laneKey, gates, new AgingQueue(this.#options.priorityAgingMs));
      this.#lanes.set(laneKey, lane);
    }
    this.#enqueue(lane, ticket, request.retry === true, now);
    this.#pump();
    return ticket;
  }

  /**
   * Applies new limits in place when the rules keep their shape (as many rules, each with or without
   * a key and a rate as before): buckets keep their tokens and pauses, queues are kept, a changed
   * rate or burst applies from the next grant, a larger concurrency grants to waiters at once.
   * Returns false, changing nothing, when the shape differs (the caller builds a new scheduler).
   */
  reconfigure(options: Omit<SchedulerOptions, 'clock' | 'timers' | 'store' | 'name'>): boolean {
    const rules = options.rules;
    if (!this.#registry.sameShape(rules)) return false;
    const now = this.#clock.now();
    this.#options = { ...this.#options, ...options, rules: this.#options.rules };
    for (const gate of this.#registry.reconfigure({ rules, maxIdleKeys: options.maxIdleKeys, marginFraction: this.#options.marginFraction }, now)) {
      if (gate.bucket) this.#feedback.applyRate(gate, now);
      // A waiting lane may pass now (more slots, an earlier token): let its gate look again.
      if (gate.waiting.size > 0) this.#markPending(gate);
    }
    this.#pump();
    return true;
  }

  /** Stop admitting new requests; queued ones and retries keep being granted at the allowed rate. */
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
    for (const gate of this.#registry.active.values()) this.#alarms.disarmGate(gate);
  }

  /** The scheduler's numbers, for metrics and /state (see snapshot.ts). */
  snapshot(): SchedulerSnapshot {
    return schedulerSnapshot({ state: this.#state, queued: this.#queued, inFlight: this.#inFlight, lanes: this.#lanes.size, registry: this.#registry });
  }

  /** The gate state of one rule for one key (or the rule's only gate); undefined if not in memory. */
  gateSnapshot(ruleIndex: number, key = ''): GateSnapshot | undefined {
    const rule = this.#registry.rules[ruleIndex];
    const gate = rule && this.#registry.peek(rule, key);
    return gate ? gateSnapshot(gate, this.#clock.now()) : undefined;
  }

  /** The `limit` busiest keys by queue depth, deepest first. */
  busiestLanes(limit: number): LaneSnapshot[] {
    return busiestLanes(this.#lanes.values(), limit);
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
      this.#feedback.released(gate, outcome, now);
      gate.inFlight--;
      if (!ticket.written) gate.dropHold(ticket);
      if (gate.waiting.size > 0) this.#markPending(gate);
    }
    this.#dropRefs(ticket);
    this.#pump();
  }

  /** Pauses the key of `ticket` until `untilAt` (see Feedback#pause). */
  pause(ticket: Ticket, untilAt: number): void {
    this.#feedback.pause(ticket, untilAt, this.#clock.now());
  }

  learn(ticket: Ticket, quota: QuotaInfo | undefined): void {
    if (ticket.state !== 'granted') return;
    this.#feedback.learned(ticket, quota, this.#clock.now());
    this.#pump();
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
    for (let expired = lane.tickets.firstDeadline; expired && expired.deadlineAt <= now; expired = lane.tickets.firstDeadline) {
      this.#refuse(expired, timeoutRefusal(lane.gates, waitMs(lane.gates, 0, now)));
    }
    const head = lane.tickets.firstAt(now);
    if (!head) return this.#retireLane(lane);

    // What this process knows blocks the head: pauses, slots, grants not yet written, and tokens
    // a shared store is still being asked for by another lane.
    let pausedGate: Gate | undefined;
    for (const gate of lane.gates) if (gate.pauseEndsAt > now && gate.pauseEndsAt > (pausedGate?.pauseEndsAt ?? now)) pausedGate = gate;
    if (pausedGate) return this.#park(lane, pausedGate, 'time', now, pausedGate.pauseEndsAt);
    for (const gate of lane.gates) if (!gate.hasSlot()) return this.#park(lane, gate, 'slot', now);
    for (const gate of lane.bucketGates) {
      if (gate.taking > 0) return this.#park(lane, gate, 'slot', now);
      const holdEndsAt = gate.writeHoldEndsAt(now);
      if (holdEndsAt > now) {
        this.#alarms.armGate(gate, holdEndsAt);
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
    const head = lane.tickets.firstAt(now);
    const granted = isTakeResult(result) && result.granted;
    if (!head || this.#state === 'closed' || (granted && lane.gates.some((g) => g.pauseEndsAt > now || !g.hasSlot()))) {
      // Everyone left, or a pause arrived meanwhile: the tokens go back.
      if (granted) this.#store.refund(buckets);
      if (head) this.#run.push(lane);
      else this.#retireLane(lane);
    } else if (isTakeResult(result)) {
      this.#settleTake(lane, gates, buckets, result, now);
    } else {
      // A store that failed (rejected) is treated as one that cannot answer, rather than let through unlimited.
      this.#storeUnavailable(lane, head);
    }
    this.#pump();
  }

  /** The store cannot answer and must not be bypassed (`store.onError: deny`): the head is refused. */
  #storeUnavailable(lane: Lane, head: Ticket): void {
    this.#refuse(head, { code: 'SLUICE_STORE_UNAVAILABLE', retryAfterMs: STORE_RETRY_AFTER_MS });
    if (lane.tickets.size > 0) this.#run.push(lane);
  }

  #settleTake(lane: Lane, gates: readonly Gate[], buckets: readonly BucketHandle[], result: TakeResult, now: number): void {
    const head = lane.tickets.firstAt(now) as Ticket;
    if (result.granted) return this.#grant(lane, head, now, result.at, buckets);
    if ('unavailable' in result) return this.#storeUnavailable(lane, head);
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
      for (let head = lane.tickets.firstAt(now); head && head.deadlineAt < readyAt; head = lane.tickets.firstAt(now)) {
        this.#refuse(head, timeoutRefusal(lane.gates, readyAt - now));
      }
      if (lane.tickets.size === 0) return this.#retireLane(lane);
      this.#alarms.armGate(gate, readyAt);
    }
    lane.blockedOn = blockedOn;
    gate.waiting.push(lane);
    this.#alarms.armDeadline(lane);
  }

  /** Moves the first waiting lane of `gate` to the run queue if the gate can serve it now. */
  #serveGate(gate: Gate): void {
    const lane = gate.waiting.first;
    if (!lane || !gate.hasSlot() || gate.taking > 0) return; // a release, or the store's answer, wakes it
    const now = this.#clock.now();
    const holdEndsAt = gate.writeHoldEndsAt(now);
    if (holdEndsAt > now) return this.#alarms.armGate(gate, holdEndsAt); // or the write wakes it
    const readyAt = gate.readyAt();
    if (readyAt > now) return this.#alarms.armGate(gate, readyAt);
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

  /** The first deadline in `lane`'s queue came: refuses what is past it. */
  #deadlineDue(lane: Lane): void {
    const now = this.#clock.now();
    for (let head = lane.tickets.firstDeadline; head && head.deadlineAt <= now; head = lane.tickets.firstDeadline) {
      this.#refuse(head, timeoutRefusal(lane.gates, waitMs(lane.gates, 0, now)));
    }
    if (lane.tickets.size > 0) this.#alarms.armDeadline(lane);
    this.#pump();
  }

  // ---- bookkeeping --------------------------------------------------------------------------

  #enqueue(lane: Lane, ticket: Ticket, atHead: boolean, now: number): void {
    lane.add(ticket, atHead);
    this.#queued++;
    if (lane.list === undefined && !lane.taking) {
      lane.wakeAt = now;
      this.#run.push(lane);
    } else if (atHead) {
      this.#alarms.armDeadline(lane);
    }
  }

  /** Takes a queued ticket out of its lane. */
  #dequeue(ticket: Ticket): void {
    const lane = ticket.lane as Lane;
    lane.remove(ticket);
    this.#queued--;
    if (lane.tickets.size === 0) this.#retireLane(lane);
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
    this.#alarms.disarmDeadline(lane);
    if (this.#lanes.get(lane.key) === lane) this.#lanes.delete(lane.key);
  }

  #dropRefs(ticket: Ticket): void {
    const now = this.#clock.now();
    for (const gate of ticket.gates) this.#registry.unretain(gate, now);
  }
}
