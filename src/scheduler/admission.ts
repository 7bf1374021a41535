/**
 * Admission: whether a new request may wait in its key's queue at all (the queue bounds, its
 * predicted wait against its deadline), how long past its deadline an admitted one may still be
 * granted, and what a refusal tells the client (the predicted wait, the key's rate). Read-only
 * questions about gates; the run loop (scheduler.ts) acts on the answers.
 */
import type { Priority } from '../core/aging-queue.js';
import { predictWaitMs } from '../core/wait-prediction.js';
import type { Gate, Refusal, TicketCallbacks } from './model.js';

/**
 * How far past its deadline an admitted request may still be granted: the larger of a second and
 * a tenth of the wait it was admitted with (see AcquireRequest#deadlineAt).
 */
const DEADLINE_SLACK_MIN_MS = 1000;
const DEADLINE_SLACK_FRACTION = 0.1;

export interface AcquireRequest extends TicketCallbacks {
  /** The request's key under each rule, in rule order; ignored for rules without a key. */
  readonly keys: readonly string[];
  /**
   * Clock instant by which the ticket must be granted; Infinity for none. A request whose predicted
   * wait passes it is refused on arrival; once admitted, it is refused only if it is still queued
   * DEADLINE_SLACK later (a prediction is not a promise: a late timer or a slow first connection
   * must not turn an admitted request into a refusal after it waited all along).
   */
  readonly deadlineAt: number;
  /**
   * A retry of an admitted request: it goes to the head of its key's queue, is not counted against
   * the queue bounds, and is still accepted while draining.
   */
  readonly retry?: boolean;
  /** 0 high, 1 normal (the default), 2 low; ignored unless priorities are on. */
  readonly priority?: Priority;
}

/** The queue bounds a new request is admitted within. */
export interface QueueBounds {
  /** Tickets queued now, across all keys. */
  readonly queued: number;
  readonly maxQueued: number;
  readonly maxQueuedPerKey: number;
}

/**
 * Why a new (not retried) request under `gates`, behind `depth` tickets of its key, is refused at
 * once; undefined when it is admitted.
 */
export function refusalOnArrival(gates: readonly Gate[], depth: number, deadlineAt: number, bounds: QueueBounds, now: number): Refusal | undefined {
  if (bounds.queued >= bounds.maxQueued || depth >= bounds.maxQueuedPerKey) {
    return { code: 'SLUICE_QUEUE_FULL', retryAfterMs: waitMs(gates, depth, now), keyRatePerSec: keyRate(gates) };
  }
  if (depth > 0 || !canServeNow(gates, now)) {
    const wait = waitMs(gates, depth, now);
    if (now + wait > deadlineAt) return { code: 'SLUICE_QUEUE_TIMEOUT', retryAfterMs: wait - Math.max(0, deadlineAt - now), keyRatePerSec: keyRate(gates) };
  }
  return undefined;
}

/** The instant an admitted request is refused at, if it is still queued then. */
export function admittedDeadlineAt(deadlineAt: number, now: number): number {
  return deadlineAt + Math.max(DEADLINE_SLACK_MIN_MS, (deadlineAt - now) * DEADLINE_SLACK_FRACTION);
}

/** A queued ticket's refusal because its deadline passed (or will before `gates` can serve it). */
export function timeoutRefusal(gates: readonly Gate[], retryAfterMs: number): Refusal {
  return { code: 'SLUICE_QUEUE_TIMEOUT', retryAfterMs, keyRatePerSec: keyRate(gates) };
}

/** Predicted milliseconds before a request at the tail of a lane holding `depth` tickets is granted. */
export function waitMs(gates: readonly Gate[], depth: number, now: number): number {
  return predictWaitMs(
    gates.map((gate) => {
      const from = Math.max(now, gate.pauseEndsAt);
      return { from, tokens: gate.bucket?.tokensAt(from), intervalMs: gate.bucket?.intervalMs ?? 0, queued: gate.queued, lanes: gate.lanes };
    }),
    depth,
    now,
  );
}

/** The rate of the tightest bucket that binds among `gates`, if any does (for RateLimit-Policy). */
function keyRate(gates: readonly Gate[]): number | undefined {
  let rate: number | undefined;
  for (const gate of gates) if (gate.paced() && gate.rate && (rate === undefined || gate.rate.ratePerSec < rate)) rate = gate.rate.ratePerSec;
  return rate;
}

/** Whether nothing blocks `gates` at `now`: a slot, no write hold, no pause, a token. */
function canServeNow(gates: readonly Gate[], now: number): boolean {
  for (const gate of gates) if (!gate.hasSlot() || gate.writeHoldEndsAt(now) > now || gate.readyAt() > now) return false;
  return true;
}
