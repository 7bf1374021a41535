import { LinkedList } from '../core/linked-list.js';
import type { Clock } from '../core/time.js';
import type { Ticket } from './ticket.js';

/** A request's priority within its key: 0 high, 1 normal, 2 low. */
export type Priority = 0 | 1 | 2;

/**
 * The tickets of one key: a FIFO per priority. The head is the ticket of the best *effective*
 * rank among the three FIFOs' heads, where every `agingMs` a ticket has waited raises it one level
 * (a low-priority request waits at most two aging periods behind higher ones: it never starves).
 * Equal ranks go by arrival. Without aging (priorities off) everything is normal and this is one
 * FIFO.
 */
export class TicketQueue {
  readonly #lists: readonly [LinkedList<Ticket>, LinkedList<Ticket>, LinkedList<Ticket>] = [new LinkedList(), new LinkedList(), new LinkedList()];
  readonly #clock: Clock;
  readonly #agingMs: number | undefined;
  /** Deadlines out of queue order: every queued ticket (and some that left), as a min-heap. */
  #byDeadline: Ticket[] | undefined;
  /** With the heap, each ticket's place in its FIFO, for ties: pushes count up, retries down. */
  #seq: Map<Ticket, number> | undefined;
  #lastSeq = 0;
  #firstSeq = 0;

  constructor(clock: Clock, agingMs: number | undefined) {
    this.#clock = clock;
    this.#agingMs = agingMs;
  }

  get size(): number {
    return this.#lists[0].size + this.#lists[1].size + this.#lists[2].size;
  }

  /** The ticket to serve next. */
  get first(): Ticket | undefined {
    if (this.#agingMs === undefined) return this.#lists[1].first;
    const now = this.#clock.now();
    let best: Ticket | undefined;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let priority = 0; priority < 3; priority++) {
      const ticket = this.#lists[priority as Priority].first;
      if (!ticket) continue;
      const rank = Math.max(0, priority - Math.floor((now - ticket.enqueuedAt) / this.#agingMs));
      if (rank < bestRank || (rank === bestRank && best !== undefined && ticket.enqueuedAt < best.enqueuedAt)) {
        best = ticket;
        bestRank = rank;
      }
    }
    return best;
  }

  /**
   * The queued ticket whose deadline comes first. While each FIFO's deadlines grow from its head
   * (every request waits at most queue.maxWait; a retry at the head is older), that is one of the
   * three heads. A client may shorten its own wait (Sluice-Max-Wait), which breaks that order: from
   * then until the queue empties, the tickets are also kept in a binary min-heap by deadline, from
   * which those that left the queue are dropped when they reach the top (and all at once when they
   * are most of it, so it stays within twice the queue).
   */
  get firstDeadline(): Ticket | undefined {
    const heap = this.#byDeadline;
    if (heap === undefined) {
      let first: Ticket | undefined;
      for (const list of this.#lists) {
        const head = list.first;
        if (head && (first === undefined || head.deadline < first.deadline)) first = head;
      }
      return first;
    }
    while (heap.length > 0 && !this.#holds(heap[0] as Ticket)) this.#pop(heap);
    return heap[0];
  }

  push(ticket: Ticket): void {
    const list = this.#lists[ticket.priority];
    const tail = list.last;
    list.push(ticket);
    if (this.#byDeadline !== undefined) {
      this.#seq?.set(ticket, ++this.#lastSeq);
      this.#push(this.#byDeadline, ticket);
    } else if (tail !== undefined && ticket.deadline < tail.deadline) this.#keepHeap();
  }

  /** First of its priority (a retry). */
  unshift(ticket: Ticket): void {
    const list = this.#lists[ticket.priority];
    const head = list.first;
    list.unshift(ticket);
    if (this.#byDeadline !== undefined) {
      this.#seq?.set(ticket, --this.#firstSeq);
      this.#push(this.#byDeadline, ticket);
    } else if (head !== undefined && ticket.deadline > head.deadline) this.#keepHeap();
  }

  remove(ticket: Ticket): boolean {
    if (!this.#lists[ticket.priority].remove(ticket)) return false;
    const heap = this.#byDeadline;
    if (heap !== undefined) {
      this.#seq?.delete(ticket);
      if (this.size === 0) {
        // In order again.
        this.#byDeadline = undefined;
        this.#seq = undefined;
      } else if (heap.length > 2 * this.size + 32) this.#keepHeap();
    }
    return true;
  }

  #holds(ticket: Ticket): boolean {
    return ticket.list === this.#lists[ticket.priority];
  }

  /** (Re)builds the heap from the tickets queued now. */
  #keepHeap(): void {
    const heap: Ticket[] = [];
    const seq = new Map<Ticket, number>();
    this.#seq = seq;
    this.#firstSeq = 0;
    this.#lastSeq = 0;
    for (const list of this.#lists) {
      for (let t = list.first; t; t = t.next) {
        seq.set(t, ++this.#lastSeq);
        this.#push(heap, t);
      }
    }
    this.#byDeadline = heap;
  }

  /** Earlier deadline first; on a tie, queue order (priority, then place in its FIFO). */
  #before(a: Ticket, b: Ticket): boolean {
    if (a.deadline !== b.deadline) return a.deadline < b.deadline;
    if (a.priority !== b.priority) return a.priority < b.priority;
    return (this.#seq?.get(a) ?? 0) < (this.#seq?.get(b) ?? 0);
  }

  #push(heap: Ticket[], ticket: Ticket): void {
    let i = heap.push(ticket) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(ticket, heap[parent] as Ticket)) break;
      heap[i] = heap[parent] as Ticket;
      i = parent;
    }
    heap[i] = ticket;
  }

  #pop(heap: Ticket[]): void {
    const last = heap.pop() as Ticket;
    if (heap.length === 0) return;
    let i = 0;
    while (true) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && this.#before(heap[right] as Ticket, heap[left] as Ticket) ? right : left;
      if (!this.#before(heap[child] as Ticket, last)) break;
      heap[i] = heap[child] as Ticket;
      i = child;
    }
    heap[i] = last;
  }
}
