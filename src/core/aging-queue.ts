import { LinkedList, type ListNode } from './linked-list.js';

/** A request's priority within its key: 0 high, 1 normal, 2 low. */
export type Priority = 0 | 1 | 2;

/** What the queue reads of what it holds: its priority, when it arrived, when it must leave. */
export interface Queued<T> extends ListNode<T> {
  readonly priority: Priority;
  readonly enqueuedAt: number;
  /** The instant by which it must have left the queue (Infinity for none). */
  readonly deadlineAt: number;
}

/**
 * The aging priority queue of one key: a FIFO per priority. The head is the entry of the best
 * *effective* rank among the three FIFOs' heads, where every `agingMs` an entry has waited raises it
 * one level (a low-priority request waits at most two aging periods behind higher ones: it never
 * starves). Equal ranks go by arrival. Without aging (priorities off) everything is normal and this
 * is one FIFO. Time is an argument: `firstAt(now)`.
 */
export class AgingQueue<T extends Queued<T>> {
  readonly #lists: readonly [LinkedList<T>, LinkedList<T>, LinkedList<T>] = [new LinkedList(), new LinkedList(), new LinkedList()];
  readonly #agingMs: number | undefined;
  /** Deadlines out of queue order: every queued entry (and some that left), as a min-heap. */
  #byDeadline: T[] | undefined;
  /** With the heap, each entry's place in its FIFO, for ties: pushes count up, retries down. */
  #seq: Map<T, number> | undefined;
  #lastSeq = 0;
  #firstSeq = 0;

  constructor(agingMs: number | undefined) {
    this.#agingMs = agingMs;
  }

  get size(): number {
    return this.#lists[0].size + this.#lists[1].size + this.#lists[2].size;
  }

  /** The entry to serve next at `now`. */
  firstAt(now: number): T | undefined {
    if (this.#agingMs === undefined) return this.#lists[1].first;
    let best: T | undefined;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let priority = 0; priority < 3; priority++) {
      const entry = this.#lists[priority as Priority].first;
      if (!entry) continue;
      const rank = Math.max(0, priority - Math.floor((now - entry.enqueuedAt) / this.#agingMs));
      if (rank < bestRank || (rank === bestRank && best !== undefined && entry.enqueuedAt < best.enqueuedAt)) {
        best = entry;
        bestRank = rank;
      }
    }
    return best;
  }

  /**
   * The queued entry whose deadline comes first. While each FIFO's deadlines grow from its head
   * (every request waits at most queue.maxWait; a retry at the head is older), that is one of the
   * three heads. A client may shorten its own wait (Sluice-Max-Wait), which breaks that order: from
   * then until the queue empties, the entries are also kept in a binary min-heap by deadline, from
   * which those that left the queue are dropped when they reach the top (and all at once when they
   * are most of it, so it stays within twice the queue).
   */
  get firstDeadline(): T | undefined {
    const heap = this.#byDeadline;
    if (heap === undefined) {
      let first: T | undefined;
      for (const list of this.#lists) {
        const head = list.first;
        if (head && (first === undefined || head.deadlineAt < first.deadlineAt)) first = head;
      }
      return first;
    }
    while (heap.length > 0 && !this.#holds(heap[0] as T)) this.#pop(heap);
    return heap[0];
  }

  push(entry: T): void {
    const list = this.#lists[entry.priority];
    const tail = list.last;
    list.push(entry);
    if (this.#byDeadline !== undefined) {
      this.#seq?.set(entry, ++this.#lastSeq);
      this.#push(this.#byDeadline, entry);
    } else if (tail !== undefined && entry.deadlineAt < tail.deadlineAt) this.#keepHeap();
  }

  /** First of its priority (a retry). */
  unshift(entry: T): void {
    const list = this.#lists[entry.priority];
    const head = list.first;
    list.unshift(entry);
    if (this.#byDeadline !== undefined) {
      this.#seq?.set(entry, --this.#firstSeq);
      this.#push(this.#byDeadline, entry);
    } else if (head !== undefined && entry.deadlineAt > head.deadlineAt) this.#keepHeap();
  }

  remove(entry: T): boolean {
    if (!this.#lists[entry.priority].remove(entry)) return false;
    const heap = this.#byDeadline;
    if (heap !== undefined) {
      this.#seq?.delete(entry);
      if (this.size === 0) {
        // In order again.
        this.#byDeadline = undefined;
        this.#seq = undefined;
      } else if (heap.length > 2 * this.size + 32) this.#keepHeap();
    }
    return true;
  }

  #holds(entry: T): boolean {
    return entry.list === this.#lists[entry.priority];
  }

  /** (Re)builds the heap from the entries queued now. */
  #keepHeap(): void {
    const heap: T[] = [];
    const seq = new Map<T, number>();
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
  #before(a: T, b: T): boolean {
    if (a.deadlineAt !== b.deadlineAt) return a.deadlineAt < b.deadlineAt;
    if (a.priority !== b.priority) return a.priority < b.priority;
    return (this.#seq?.get(a) ?? 0) < (this.#seq?.get(b) ?? 0);
  }

  #push(heap: T[], entry: T): void {
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(entry, heap[parent] as T)) break;
      heap[i] = heap[parent] as T;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(heap: T[]): void {
    const last = heap.pop() as T;
    if (heap.length === 0) return;
    let i = 0;
    while (true) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && this.#before(heap[right] as T, heap[left] as T) ? right : left;
      if (!this.#before(heap[child] as T, last)) break;
      heap[i] = heap[child] as T;
      i = child;
    }
    heap[i] = last;
  }
}
