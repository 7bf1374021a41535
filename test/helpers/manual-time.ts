import type { Clock, TimerHandle, Timers } from '../../src/core/time.js';

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #now: number;

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  set(ms: number): void {
    this.#now = ms;
  }
}

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * Timers on a ManualClock: `advance(250)` fires, in order, every timer due in the next 250 ms, each
 * with the clock set to its due instant, then leaves the clock at +250 ms. Timers armed while
 * advancing fire in the same call when they fall due.
 */
export class ManualTimers implements Timers {
  readonly clock: ManualClock;
  #timers: ManualTimer[] = [];
  #seq = 0;
  /** Added to every timer's due instant, to simulate timers that fire late. */
  lateMs = 0;

  constructor(clock: ManualClock) {
    this.clock = clock;
  }

  setAt(at: number, fn: () => void): TimerHandle {
    const timer: ManualTimer = { at: Math.max(at + this.lateMs, this.clock.now()), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return timer as unknown as TimerHandle;
  }

  clear(handle: TimerHandle): void {
    (handle as unknown as ManualTimer).cancelled = true;
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  advance(ms: number): void {
    this.advanceTo(this.clock.now() + ms);
  }

  advanceTo(targetMs: number): void {
    while (true) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > targetMs) break;
      this.#timers.shift();
      if (next.at > this.clock.now()) this.clock.set(next.at);
      next.fn();
    }
    if (targetMs > this.clock.now()) this.clock.set(targetMs);
  }
}
