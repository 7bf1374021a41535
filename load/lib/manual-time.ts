/**
 * A manual clock and timers for driving the Scheduler in-process, as test/helpers/manual-time.ts
 * does, but with a binary heap instead of a sort on every step, so that benchmarks measure the
 * scheduler and not the harness. `advanceTo(t)` fires every timer due by `t` in order, each with the
 * clock at its due instant.
 */
import type { Clock, TimerHandle, Timers } from '../../src/core/time.js';

interface HeapTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class BenchClock implements Clock {
  current = 0;
  now(): number {
    return this.current;
  }
}

export class BenchTimers implements Timers {
  readonly clock: BenchClock;
  #heap: HeapTimer[] = [];
  #seq = 0;
  fired = 0;

  constructor(clock: BenchClock) {
    this.clock = clock;
  }

  setAt(at: number, fn: () => void): TimerHandle {
    const timer: HeapTimer = { at: Math.max(at, this.clock.current), seq: this.#seq++, fn, cancelled: false };
    this.#push(timer);
    return timer as unknown as TimerHandle;
  }

  clear(handle: TimerHandle): void {
    (handle as unknown as HeapTimer).cancelled = true;
  }

  get pending(): number {
    return this.#heap.filter((t) => !t.cancelled).length;
  }

  /** The due instant of the next live timer, or undefined. */
  nextAt(): number | undefined {
    while (this.#heap.length > 0 && (this.#heap[0] as HeapTimer).cancelled) this.#pop();
    return this.#heap[0]?.at;
  }

  advanceTo(targetMs: number): void {
    while (true) {
      const next = this.#heap[0];
      if (!next || next.at > targetMs) break;
      this.#pop();
      if (next.cancelled) continue;
      if (next.at > this.clock.current) this.clock.current = next.at;
      this.fired++;
      next.fn();
    }
    if (targetMs > this.clock.current) this.clock.current = targetMs;
  }

  #less(a: HeapTimer, b: HeapTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(timer: HeapTimer): void {
    const heap = this.#heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i] as HeapTimer, heap[parent] as HeapTimer)) break;
      [heap[i], heap[parent]] = [heap[parent] as HeapTimer, heap[i] as HeapTimer];
      i = parent;
    }
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop() as HeapTimer;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    while (true) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && this.#less(heap[l] as HeapTimer, heap[m] as HeapTimer)) m = l;
      if (r < heap.length && this.#less(heap[r] as HeapTimer, heap[m] as HeapTimer)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m] as HeapTimer, heap[i] as HeapTimer];
      i = m;
    }
  }
}
