/**
 * The scheduler's timers, computed and never polled: at most one per gate, armed for the instant
 * the gate can next serve (a timer is only ever moved earlier; a later instant waits for the
 * earlier timer, which looks again), and at most one per lane, the backstop for the first deadline
 * in its queue (armed lazily: when it fires, the next deadline arms the next one).
 */
import type { Timers } from '../core/time.js';
import type { Gate, Lane } from './model.js';

export interface AlarmHandlers {
  /** `gate`'s instant came: it may serve again. */
  readonly gateDue: (gate: Gate) => void;
  /** The first deadline in `lane`'s queue came. */
  readonly deadlineDue: (lane: Lane) => void;
}

export class Alarms {
  readonly #timers: Timers;
  readonly #handlers: AlarmHandlers;

  constructor(timers: Timers, handlers: AlarmHandlers) {
    this.#timers = timers;
    this.#handlers = handlers;
  }

  /** Wakes `gate` at `at`, unless its timer fires earlier already. */
  armGate(gate: Gate, at: number): void {
    if (gate.timer !== undefined) {
      if (gate.timerAt <= at) return; // the earlier timer re-examines the gate
      this.#timers.clear(gate.timer);
    }
    gate.timerAt = at;
    gate.timer = this.#timers.setAt(at, () => {
      gate.timer = undefined;
      gate.timerAt = Number.POSITIVE_INFINITY;
      this.#handlers.gateDue(gate);
    });
  }

  disarmGate(gate: Gate): void {
    if (gate.timer === undefined) return;
    this.#timers.clear(gate.timer);
    gate.timer = undefined;
    gate.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Arms the lane's backstop for the first deadline in its queue, if it is earlier than the armed one. */
  armDeadline(lane: Lane): void {
    const first = lane.tickets.firstDeadline;
    if (!first || first.deadlineAt === Number.POSITIVE_INFINITY) return;
    if (lane.expiryTimer !== undefined) {
      if (lane.expiryAt <= first.deadlineAt) return;
      this.#timers.clear(lane.expiryTimer);
    }
    lane.expiryAt = first.deadlineAt;
    lane.expiryTimer = this.#timers.setAt(first.deadlineAt, () => {
      lane.expiryTimer = undefined;
      lane.expiryAt = Number.POSITIVE_INFINITY;
      this.#handlers.deadlineDue(lane);
    });
  }

  disarmDeadline(lane: Lane): void {
    if (lane.expiryTimer === undefined) return;
    this.#timers.clear(lane.expiryTimer);
    lane.expiryTimer = undefined;
    lane.expiryAt = Number.POSITIVE_INFINITY;
  }
}
