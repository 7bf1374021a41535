/**
 * How long a new request would wait before it is granted, predicted from plain numbers of the gates
 * it falls under: used to refuse at once a request that would wait longer than it may
 * (`queue.maxWait`), and for the Retry-After of a refusal.
 */

/** What the prediction reads of one gate. */
export interface GateLoad {
  /** The instant the gate's pause ends, or now when it is not paused (the later of the two). */
  readonly from: number;
  /** The bucket's tokens at `from` (fractional) and ms per token; undefined: the gate has no bucket. */
  readonly tokens: number | undefined;
  readonly intervalMs: number;
  /** Tickets queued through the gate, and the number of lanes (keys) they wait in. */
  readonly queued: number;
  readonly lanes: number;
}

/**
 * Predicts the instant a request at the tail of a lane holding `depth` tickets would be granted:
 * for every gate, the tokens needed by the tickets served before it (its own lane's, plus one per
 * turn of each other lane through a shared gate) after the pause ends. Concurrency caps are not
 * predicted (the backstop at the deadline covers them). Returns milliseconds from `now`.
 *
 * @example
 * // 10/s, empty bucket, two keys with work, the new request third in its own key's queue:
 * predictWaitMs([{ from: 0, tokens: 0, intervalMs: 100, queued: 5, lanes: 2 }], 2, 0); // 600
 */
export function predictWaitMs(gates: readonly GateLoad[], depth: number, now: number): number {
  const position = depth + 1;
  let grantAt = now;
  for (const gate of gates) {
    let t = gate.from;
    if (gate.tokens !== undefined) {
      const lanes = gate.lanes + (depth === 0 ? 1 : 0);
      const ahead = Math.min(gate.queued + 1, position * lanes);
      t += Math.max(0, ahead - gate.tokens) * gate.intervalMs;
    }
    if (t > grantAt) grantAt = t;
  }
  return grantAt - now;
}
