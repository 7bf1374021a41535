/**
 * The scheduler's view of time. Production passes the system implementations below; tests pass a
 * manual clock and manual timers (test/helpers/manual-time.ts), so "advance 250 ms, two requests
 * are released" is a synchronous assertion.
 */

/** A monotonic clock in milliseconds (`performance.now()` in production). */
export interface Clock {
  now(): number;
}

export type TimerHandle = { readonly __timer: unique symbol };

/** One-shot timers on the same clock. */
export interface Timers {
  /** Calls `fn` once the clock reads `atMs` or later (never earlier). */
  setAt(atMs: number, fn: () => void): TimerHandle;
  clear(handle: TimerHandle): void;
}

export const systemClock: Clock = { now: () => performance.now() };

/** The coarse part of a wait is left to setTimeout, which fires a millisecond or more late. */
const SPIN_WINDOW_MS = 1.5;

interface SystemTimer {
  timeout: NodeJS.Timeout | undefined;
  immediate: NodeJS.Immediate | undefined;
  cancelled: boolean;
}

/**
 * Timers that fire at the requested instant, not a few milliseconds after it: the coarse part of the
 * wait is a `setTimeout` armed to end ~1.5 ms early, the rest is spent in `setImmediate` turns (which
 * still let I/O run). A strict upstream window forgives nothing, so a 20/s limit needs releases
 * within a millisecond of their due time. Timers are unref'd: the servers keep the process alive,
 * pending releases alone never do.
 */
export function systemTimers(clock: Clock = systemClock): Timers {
  return {
    setAt(atMs, fn) {
      const timer: SystemTimer = { timeout: undefined, immediate: undefined, cancelled: false };
      const wait = (remainingMs: number): void => {
        if (remainingMs > SPIN_WINDOW_MS) {
          timer.timeout = setTimeout(check, Math.floor(remainingMs - SPIN_WINDOW_MS + 1));
          timer.timeout.unref();
        } else timer.immediate = setImmediate(check);
      };
      const check = (): void => {
        timer.timeout = undefined;
        timer.immediate = undefined;
        if (timer.cancelled) return;
        const remainingMs = atMs - clock.now();
        if (remainingMs <= 0) fn();
        else wait(remainingMs);
      };
      // Never call back synchronously: the caller may be in the middle of a state change.
      wait(atMs - clock.now());
      return timer as unknown as TimerHandle;
    },
    clear(handle) {
      const timer = handle as unknown as SystemTimer;
      timer.cancelled = true;
      if (timer.timeout) clearTimeout(timer.timeout);
      if (timer.immediate) clearImmediate(timer.immediate);
    },
  };
}
