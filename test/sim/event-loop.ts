/**
 * A discrete-event loop on a simulated clock: events are callbacks due at an instant (milliseconds),
 * run in time order (ties in the order they were scheduled), each with the clock set to its
 * instant. Nothing here reads real time; a simulated minute runs in a few milliseconds.
 */
interface SimEvent {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class EventLoop {
  #now = 0;
  #seq = 0;
  /** A binary min-heap on (at, seq). */
  readonly #heap: SimEvent[] = [];

  get now(): number {
    return this.#now;
  }

  /** Runs `fn` at `atMs` (never before now). */
  at(atMs: number, fn: () => void): void {
    this.#push({ at: Math.max(atMs, this.#now), seq: this.#seq++, fn });
  }

  /** Runs events until none is left, or until the next one is later than `untilMs`, or `stop()` returns true. */
  run(options: { untilMs: number; stop?: () => boolean }): void {
    while (this.#heap.length > 0) {
      const next = this.#heap[0] as SimEvent;
      if (next.at > options.untilMs) break;
      this.#pop();
      this.#now = next.at;
      next.fn();
      if (options.stop?.()) break;
    }
  }

  #push(event: SimEvent): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent] as SimEvent)) break;
      heap[i] = heap[parent] as SimEvent;
      i = parent;
    }
    heap[i] = event;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop() as SimEvent;
    if (heap.length === 0) return;
    let i = 0;
    while (true) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right] as SimEvent, heap[left] as SimEvent) ? right : left;
      if (!before(heap[child] as SimEvent, last)) break;
      heap[i] = heap[child] as SimEvent;
      i = child;
    }
    heap[i] = last;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A seeded source of uniform numbers in [0, 1) (mulberry32): the same seed, the same run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
