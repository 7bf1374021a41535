import type { ListNode } from '../core/linked-list.js';
import type { BucketHandle } from '../store/bucket-store.js';
import type { Gate } from './gate.js';
import type { TimerHandle } from '../core/time.js';
import type { TicketQueue } from './ticket-queue.js';

/**
 * The queue of one key: the tickets of every request that falls under the same gates, in arrival
 * order within each priority (retries first). A lane exists only while it holds tickets. At any moment it is either in
 * the scheduler's run queue, in the waiting list of the one gate that blocks its head, or nowhere
 * (being evaluated).
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
  readonly tickets: TicketQueue;
  /**
   * Since when the head has been at the head with its slots available (an event time: arrival, the
   * previous release, a slot freed). A grant is accounted at max(wakeAt, pauses, the buckets' due
   * instants) rather than at the moment a timer happened to fire, so a late timer never pushes
   * later releases back.
   */
  wakeAt = Number.NEGATIVE_INFINITY;
  /**
   * What the lane waits for while it is in a gate's waiting list: time (a pause, a token), a slot
   * (a concurrency slot freed now: the grant is accounted from then), or the write of the gate's
   * previous release (the grant keeps its place in the bucket's schedule: a write within the send
   * tolerance must not push every later release back).
   */
  blockedOn: 'time' | 'slot' | 'write' | undefined;
  /** A shared store is being asked for the head's tokens (the lane is in no list meanwhile). */
  taking = false;
  expiryTimer: TimerHandle | undefined;
  expiryAt = Number.POSITIVE_INFINITY;

  constructor(key: string, gates: readonly Gate[], tickets: TicketQueue) {
    this.key = key;
    this.tickets = tickets;
    this.gates = gates;
    this.bucketGates = gates.filter((g) => g.bucket !== undefined);
    this.buckets = this.bucketGates.map((g) => g.bucket as BucketHandle);
  }
}
