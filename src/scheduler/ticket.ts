import type { ProblemCode } from '../core/errors.js';
import type { ListNode } from '../core/linked-list.js';
import type { QuotaInfo } from '../core/ratelimit-headers.js';
import type { BucketHandle } from '../store/bucket-store.js';
import type { Gate } from './gate.js';
import type { Lane } from './lane.js';
import type { Priority } from './ticket-queue.js';

/**
 * How a granted ticket ended, fed back to the scheduler (the Netflix concurrency-limits Listener
 * protocol): `ok` the upstream answered; `throttled` it answered 429/503; `failed` the attempt
 * errored or timed out; `dropped` nothing was sent, so the tokens are given back.
 */
export type ReleaseOutcome = 'ok' | 'throttled' | 'failed' | 'dropped';

export type TicketState = 'queued' | 'granted' | 'released' | 'cancelled' | 'refused';

/** Why a ticket was refused, with the wait sluice predicts before trying again makes sense. */
export interface Refusal {
  readonly code: Extract<ProblemCode, 'SLUICE_QUEUE_FULL' | 'SLUICE_QUEUE_TIMEOUT' | 'SLUICE_SHUTTING_DOWN' | 'SLUICE_STORE_UNAVAILABLE'>;
  readonly retryAfterMs: number;
  /** The rate the key is released at (its tightest bucket), when one binds: for RateLimit-Policy. */
  readonly keyRatePerSec?: number | undefined;
}

/** What a ticket needs from the scheduler that issued it. */
export interface TicketOwner {
  cancel(ticket: Ticket): boolean;
  sent(ticket: Ticket): void;
  learn(ticket: Ticket, quota: QuotaInfo | undefined): void;
  release(ticket: Ticket, outcome: ReleaseOutcome): void;
  pause(ticket: Ticket, untilMs: number): void;
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
  readonly laneKey: string;
  readonly enqueuedAt: number;
  /** Clock instant by which the ticket must be granted, or it is refused. */
  readonly deadline: number;
  readonly priority: Priority;
  readonly callbacks: TicketCallbacks;
  readonly #owner: TicketOwner;

  constructor(options: {
    owner: TicketOwner;
    gates: readonly Gate[];
    laneKey: string;
    enqueuedAt: number;
    deadline: number;
    priority: Priority;
    callbacks: TicketCallbacks;
  }) {
    this.#owner = options.owner;
    this.priority = options.priority;
    this.gates = options.gates;
    this.laneKey = options.laneKey;
    this.enqueuedAt = options.enqueuedAt;
    this.deadline = options.deadline;
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

  /** Pauses the key this ticket belongs to until the clock reads `untilMs` (see Scheduler#pause). */
  pauseKey(untilMs: number): void {
    this.#owner.pause(this, untilMs);
  }
}
