/**
 * The system's clock and timers (the production side of the ports in src/core/time.ts). Only the
 * composition root (app.ts) and the tools that run a scheduler outside it use these.
 */
import type { Clock, TimerHandle, Timers } from './core/time.js';

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
 * still let I/O run). A strict upstream window forgives nothing, so a 20/s limit needs grants
 * within a millisecond of their due time. Timers are unref'd: the servers keep the process alive,
 * pending grants alone never do.
 */
export function systemTimers(clock: Clock = systemClock): Timers {
  return {
    setAt(at, fn) {
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
        const remainingMs = at - clock.now();
        if (remainingMs <= 0) fn();
        else wait(remainingMs);
      };
      // Never call back synchronously: the caller may be in the middle of a state change.
      wait(at - clock.now());
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
