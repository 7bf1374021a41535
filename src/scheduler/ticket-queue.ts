import { LinkedList } from '../core/linked-list.js';
import type { Clock } from './ports.js';
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

  /** The queued ticket whose deadline comes first (heads only: each FIFO's deadlines grow). */
  get firstDeadline(): Ticket | undefined {
    let first: Ticket | undefined;
    for (const list of this.#lists) {
      const head = list.first;
      if (head && (first === undefined || head.deadline < first.deadline)) first = head;
    }
    return first;
  }

  push(ticket: Ticket): void {
    this.#lists[ticket.priority].push(ticket);
  }

  /** First of its priority (a retry). */
  unshift(ticket: Ticket): void {
    this.#lists[ticket.priority].unshift(ticket);
  }

  remove(ticket: Ticket): boolean {
    return this.#lists[ticket.priority].remove(ticket);
  }
}
