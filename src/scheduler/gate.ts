import { LinkedList } from '../core/linked-list.js';
import type { BucketHandle } from '../store/bucket-store.js';
import type { Lane } from './lane.js';
import { UNBOUNDED_RATE_PER_SEC, type AdaptiveSpec, type GateRate } from './gate-rate.js';
import type { TimerHandle } from '../core/time.js';
import type { Ticket } from './ticket.js';

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

/**
 * How long a rate-limited gate waits for its previous release to be written to the upstream before
 * it releases the next one anyway (a connection that takes longer than this to open is rare; a
 * connect that hangs must not stop the gate for the whole connect timeout).
 */
export const WRITE_HOLD_LIMIT_MS = 1000;

/** With this many tokens in the bucket, an unwritten release does not hold it (see writeHoldUntil). */
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
   * granted less than WRITE_HOLD_LIMIT_MS ago, the bucket releases nothing more: a release that
   * waits for a new connection would otherwise reach the upstream together with the one after it.
   * Almost always empty or one entry: undici writes at once on a warm connection.
   */
  unwritten: Set<Ticket> | undefined;
  /** Lanes whose tokens a shared store is being asked for; meanwhile the gate serves no other lane. */
  taking = 0;
  /** Until this instant nothing passes (a 429 with Retry-After paused the key). */
  pausedUntil = Number.NEGATIVE_INFINITY;
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
   * Until when an unwritten release holds the bucket (see `unwritten`), or -Infinity if none does.
   * Forgets releases older than the limit. The hold matters only at the edge of the bucket, for the
   * release that takes its last whole token: while two or more are left, the bucket allows this
   * release and the unwritten ones at the same instant anyway, so they may reach the upstream
   * together (this keeps a high-rate or bursty rule from releasing one request per write).
   */
  writeHoldUntil(now: number): number {
    if (this.unwritten === undefined || this.unwritten.size === 0) return Number.NEGATIVE_INFINITY;
    if (this.bucket !== undefined && this.bucket.tokensAt(now) >= HOLD_FREE_TOKENS) return Number.NEGATIVE_INFINITY;
    let until = Number.NEGATIVE_INFINITY;
    for (const ticket of this.unwritten) {
      const end = ticket.grantedAt + WRITE_HOLD_LIMIT_MS;
      if (end <= now) this.dropHold(ticket);
      else if (end > until) until = end;
    }
    return until;
  }

  /** `ticket` was written (or will never be): it holds the bucket no more. */
  dropHold(ticket: Ticket): void {
    if (this.unwritten?.delete(ticket) && this.unwritten.size === 0) this.unwritten = undefined; // an idle key keeps no empty Set
  }

  /** The first instant at which time no longer blocks this gate (pause and tokens). */
  readyAt(): number {
    const tokensAt = this.bucket ? this.bucket.availableAt() : Number.NEGATIVE_INFINITY;
    return Math.max(this.pausedUntil, tokensAt);
  }

  /** True when nothing about this gate is worth remembering at `now`. */
  isPristine(now: number): boolean {
    return this.inFlight === 0 && this.pausedUntil <= now && (this.bucket === undefined || this.bucket.fullAt() <= now);
  }
}
