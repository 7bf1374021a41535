/**
 * The scheduler's data model, in one file because its parts point at each other: a rule as the
 * scheduler sees it (RuleSpec), its state for one key (Gate: bucket, slots, pause), the queue of one
 * key combination (Lane), and one attempt's place in that queue which, once granted, is its permit
 * (Ticket). The behaviour lives in scheduler.ts (the run loop), key-registry.ts, feedback.ts and
 * snapshot.ts; these classes hold state and answer questions about it.
 *
 * Words: the scheduler *grants* a ticket (every rule lets it through); the ticket is *released*
 * when its permit (slots, and for `dropped` the tokens) is given back, with its outcome.
 */
import type { AgingQueue, Priority } from '../core/aging-queue.js';
import type { ProblemCode } from '../core/errors.js';
import { UNBOUNDED_RATE_PER_SEC, type AdaptiveSpec, type GateRate } from '../core/gate-rate.js';
import { LinkedList, type ListNode } from '../core/linked-list.js';
import type { ReleaseOutcome } from '../core/outcomes.js';
import type { QuotaInfo } from '../core/ratelimit-headers.js';
import type { TimerHandle } from '../core/time.js';
import type { BucketHandle } from '../store/bucket-store.js';

/** A limit rule as the scheduler sees it. */
export interface RuleSpec {
  /** Position in the upstream's `limits` list; the `limit` metric label. */
  readonly index: number;
  /** The rule has a key template: one gate per key. Without one, a single gate for the upstream. */
  readonly keyed: boolean;
  /** Configured rate; undefined for a rule that only caps concurrency. */
  readonly ratePerSec: number | undefined;
  readonly burst: number;
  /** Requests in flight per key, across attempts; undefined for no cap. */
  readonly concurrency: number | undefined;
  /** The rate adapts to the upstream's 429s (`limits[].adaptive`). */
  readonly adaptive?: AdaptiveSpec | undefined;
  /**
   * The upstream's quota headers pace this rule's gates (one rule per upstream). Before anything
   * is known, a rule without a configured rate lets one request through at a time.
   */
  readonly learns?: boolean | undefined;
}

/** Whether a rule has a token bucket: a rate, configured, learned or adapted. */
export function hasBucket(rule: RuleSpec): boolean {
  return rule.ratePerSec !== undefined || rule.learns === true || rule.adaptive !== undefined;
}

/**
 * How long a rate-limited gate waits for its previous grant to be written to the upstream before
 * it grants the next one anyway (a connection that takes longer than this to open is rare; a
 * connect that hangs must not stop the gate for the whole connect timeout).
 */
export const WRITE_HOLD_LIMIT_MS = 1000;

/** With this many tokens in the bucket, an unwritten grant does not hold it (see writeHoldEndsAt). */
const HOLD_FREE_TOKENS = 2;

/**
 * The state of one rule for one key: its token bucket, its concurrency slots, its pause, and the
 * lanes currently blocked on it (served in turn, which is what makes keys that share a rule fair).
 * At most one timer per gate, armed for the instant it can next serve.
 */
export class Gate {
  readonly id: string;
  readonly rule: RuleSpec;
  readonly key: string;
  /** The rule's bucket for this key, held by the store; undefined for a rule without a rate. */
  readonly bucket: BucketHandle | undefined;
  /** What the bucket's rate is made of (configured, adaptive, learned); with the bucket. */
  rate: GateRate | undefined;
  /** The rate last given to the bucket. */
  appliedRatePerSec = Number.NaN;
  /** Granted tickets not yet released. */
  inFlight = 0;
  /**
   * Tickets granted through this gate's bucket and not yet written to the upstream. While one was
   * granted less than WRITE_HOLD_LIMIT_MS ago, the bucket grants nothing more: a grant that waits
   * for a new connection would otherwise reach the upstream together with the one after it.
   * Almost always empty or one entry: undici writes at once on a warm connection.
   */
  unwritten: Set<Ticket> | undefined;
  /** Lanes whose tokens a shared store is being asked for; meanwhile the gate serves no other lane. */
  taking = 0;
  /** Until this instant nothing passes (a 429 with Retry-After paused the key). */
  pauseEndsAt = Number.NEGATIVE_INFINITY;
  /** Lanes whose head waits for this gate, in the order they started waiting. */
  readonly waiting = new LinkedList<Lane>();
  timer: TimerHandle | undefined;
  timerAt = Number.POSITIVE_INFINITY;
  /** Queued in the scheduler's list of gates to re-examine. */
  pending = false;
  /** Tickets (queued, granted or in flight) that hold this gate; 0 means idle. */
  refs = 0;
  /** Queued tickets across the lanes through this gate, and the number of those lanes. */
  queued = 0;
  lanes = 0;

  constructor(options: { id: string; rule: RuleSpec; key: string; bucket: BucketHandle | undefined; rate: GateRate | undefined }) {
    this.id = options.id;
    this.rule = options.rule;
    this.key = options.key;
    this.bucket = options.bucket;
    this.rate = options.rate;
  }

  /** Whether a slot is free. A rule still learning its unknown rate allows one request in flight. */
  hasSlot(): boolean {
    const cap = this.rule.concurrency ?? (this.rate !== undefined && !this.rate.known ? 1 : undefined);
    return cap === undefined || this.inFlight < cap;
  }

  /** Whether the bucket binds at all (a learning rule's bucket does not until it has learned). */
  paced(): boolean {
    return this.rate !== undefined && this.rate.ratePerSec < UNBOUNDED_RATE_PER_SEC;
  }

  /**
   * Until when an unwritten grant holds the bucket (see `unwritten`), or -Infinity if none does.
   * Forgets grants older than the limit. The hold matters only at the edge of the bucket, for the
   * grant that takes its last whole token: while two or more are left, the bucket allows this
   * grant and the unwritten ones at the same instant anyway, so they may reach the upstream
   * together (this keeps a high-rate or bursty rule from granting one request per write).
   */
  writeHoldEndsAt(now: number): number {
    if (this.unwritten === undefined || this.unwritten.size === 0) return Number.NEGATIVE_INFINITY;
    if (this.bucket !== undefined && this.bucket.tokensAt(now) >= HOLD_FREE_TOKENS) return Number.NEGATIVE_INFINITY;
    let endsAt = Number.NEGATIVE_INFINITY;
    for (const ticket of this.unwritten) {
      const end = ticket.grantedAt + WRITE_HOLD_LIMIT_MS;
      if (end <= now) this.dropHold(ticket);
      else if (end > endsAt) endsAt = end;
    }
    return endsAt;
  }

  /** `ticket` was written (or will never be): it holds the bucket no more. */
  dropHold(ticket: Ticket): void {
    if (this.unwritten?.delete(ticket) && this.unwritten.size === 0) this.unwritten = undefined; // an idle key keeps no empty Set
  }

  /** The first instant at which time no longer blocks this gate (pause and tokens). */
  readyAt(): number {
    const tokensAt = this.bucket ? this.bucket.availableAt() : Number.NEGATIVE_INFINITY;
    return Math.max(this.pauseEndsAt, tokensAt);
  }

  /** True when nothing about this gate is worth remembering at `now`. */
  isPristine(now: number): boolean {
    return this.inFlight === 0 && this.pauseEndsAt <= now && (this.bucket === undefined || this.bucket.fullAt() <= now);
  }
}

/**
 * The queue of one key: the tickets of every request that falls under the same gates, in arrival
 * order within each priority (retries first). A lane exists only while it holds tickets. At any
 * moment it is either in the scheduler's run queue, in the waiting list of the one gate that blocks
 * its head, or nowhere (being evaluated).
 */
export class Lane implements ListNode<Lane> {
  prev: Lane | undefined;
  next: Lane | undefined;
  list: object | undefined;

  readonly key: string;
  readonly gates: readonly Gate[];
  /** The gates that have a bucket, and their buckets, in the same order. */
  readonly bucketGates: readonly Gate[];
  readonly buckets: readonly BucketHandle[];
  readonly tickets: AgingQueue<Ticket>;
  /**
   * Since when the head has been at the head with its slots available (an event time: arrival, the
   * previous grant, a slot freed). A grant is accounted at max(wakeAt, pauses, the buckets' due
   * instants) rather than at the moment a timer happened to fire, so a late timer never pushes
   * later grants back.
   */
  wakeAt = Number.NEGATIVE_INFINITY;
  /**
   * What the lane waits for while it is in a gate's waiting list: time (a pause, a token), a slot
   * (a concurrency slot freed now: the grant is accounted from then), or the write of the gate's
   * previous grant (the grant keeps its place in the bucket's schedule: a write within the send
   * tolerance must not push every later grant back).
   */
  blockedOn: 'time' | 'slot' | 'write' | undefined;
  /** A shared store is being asked for the head's tokens (the lane is in no list meanwhile). */
  taking = false;
  expiryTimer: TimerHandle | undefined;
  expiryAt = Number.POSITIVE_INFINITY;

  constructor(key: string, gates: readonly Gate[], tickets: AgingQueue<Ticket>) {
    this.key = key;
    this.tickets = tickets;
    this.gates = gates;
    this.bucketGates = gates.filter((g) => g.bucket !== undefined);
    this.buckets = this.bucketGates.map((g) => g.bucket as BucketHandle);
  }

  /** Queues `ticket` (a retry first of its priority), counted in every gate of the lane. */
  add(ticket: Ticket, atHead: boolean): void {
    const wasEmpty = this.tickets.size === 0;
    if (atHead) this.tickets.unshift(ticket);
    else this.tickets.push(ticket);
    ticket.lane = this;
    for (const gate of this.gates) {
      gate.queued++;
      if (wasEmpty) gate.lanes++;
    }
  }

  /** Takes a queued `ticket` out, uncounted in every gate of the lane. */
  remove(ticket: Ticket): void {
    this.tickets.remove(ticket);
    ticket.lane = undefined;
    const empty = this.tickets.size === 0;
    for (const gate of this.gates) {
      gate.queued--;
      if (empty) gate.lanes--;
    }
  }
}

export type TicketState = 'queued' | 'granted' | 'released' | 'cancelled' | 'refused';

/** Why a ticket was refused, with the wait sluice predicts before trying again makes sense. */
export interface Refusal {
  readonly code: Extract<ProblemCode, 'SLUICE_QUEUE_FULL' | 'SLUICE_QUEUE_TIMEOUT' | 'SLUICE_SHUTTING_DOWN' | 'SLUICE_STORE_UNAVAILABLE'>;
  readonly retryAfterMs: number;
  /** The rate the key is granted at (its tightest bucket), when one binds: for RateLimit-Policy. */
  readonly keyRatePerSec?: number | undefined;
}

/** What a ticket needs from the scheduler that issued it. */
export interface TicketOwner {
  cancel(ticket: Ticket): boolean;
  sent(ticket: Ticket): void;
  learn(ticket: Ticket, quota: QuotaInfo | undefined): void;
  release(ticket: Ticket, outcome: ReleaseOutcome): void;
  pause(ticket: Ticket, untilAt: number): void;
}

export interface TicketCallbacks {
  /** The ticket passed every rule: send the attempt. May be called before `acquire` returns. */
  onGrant(ticket: Ticket): void;
  /** The ticket left the queue without a grant: its deadline passed, or sluice is shutting down. */
  onRefuse(refusal: Refusal): void;
}

/**
 * One attempt's place in a key's queue, and once granted, its permit: a token of every rule and a
 * concurrency slot of every rule with a cap, held until `release`.
 */
export class Ticket implements ListNode<Ticket> {
  prev: Ticket | undefined;
  next: Ticket | undefined;
  list: object | undefined;

  state: TicketState = 'queued';
  /** The granted attempt has been written to the upstream (see Ticket#sent). */
  written = false;
  lane: Lane | undefined;
  grantedAt = Number.NaN;
  readonly gates: readonly Gate[];
  /** The buckets a token was taken from when granted (those that bind). */
  taken: readonly BucketHandle[] = [];
  readonly enqueuedAt: number;
  /** Clock instant by which the ticket must be granted, or it is refused. */
  readonly deadlineAt: number;
  readonly priority: Priority;
  readonly callbacks: TicketCallbacks;
  readonly #owner: TicketOwner;

  constructor(options: { owner: TicketOwner; gates: readonly Gate[]; enqueuedAt: number; deadlineAt: number; priority: Priority; callbacks: TicketCallbacks }) {
    this.#owner = options.owner;
    this.priority = options.priority;
    this.gates = options.gates;
    this.enqueuedAt = options.enqueuedAt;
    this.deadlineAt = options.deadlineAt;
    this.callbacks = options.callbacks;
  }

  /** Milliseconds between entering the queue and the grant. */
  get queuedMs(): number {
    return this.grantedAt - this.enqueuedAt;
  }

  /** Leaves the queue (the client went away). Returns false when the ticket was not queued. */
  cancel(): boolean {
    return this.#owner.cancel(this);
  }

  /**
   * The granted attempt is being written to the upstream now. Buckets re-base on this instant when
   * it is later than the grant, so a slow first connection does not bunch the next requests up.
   */
  sent(): void {
    this.#owner.sent(this);
  }

  /** The upstream answered this attempt, with quota headers to pace the key by, or without. */
  learn(quota: QuotaInfo | undefined): void {
    this.#owner.learn(this, quota);
  }

  /** Gives the slots back; idempotent. `dropped` also gives the tokens back. */
  release(outcome: ReleaseOutcome): void {
    this.#owner.release(this, outcome);
  }

  /** Pauses the key this ticket belongs to until the clock reads `untilAt` (see Scheduler#pause). */
  pauseKey(untilAt: number): void {
    this.#owner.pause(this, untilAt);
  }
}
