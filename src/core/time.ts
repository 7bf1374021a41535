/**
 * Time as a port: the clock and the one-shot timers everything stateful runs on. Production passes
 * the system implementations (src/system-time.ts); tests pass a manual clock and manual timers
 * (test/helpers/manual-time.ts), so "advance 250 ms, two requests are granted" is a synchronous
 * assertion. Instants are milliseconds on this clock (monotonic, not the epoch).
 */

/** A monotonic clock in milliseconds (`performance.now()` in production). */
export interface Clock {
  now(): number;
}

export type TimerHandle = { readonly __timer: unique symbol };

/** One-shot timers on the same clock. */
export interface Timers {
  /** Calls `fn` once the clock reads `at` or later (never earlier). */
  setAt(at: number, fn: () => void): TimerHandle;
  clear(handle: TimerHandle): void;
}
