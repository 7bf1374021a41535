import type { BackoffPolicy } from './backoff.js';
import type { Availability, FailureClass } from './failure-kind.js';

/**
 * The availability breaker of one upstream (per replica): while the upstream cannot be reached,
 * queued requests are held, not flushed as 502s; one probe at a time finds out when it is back.
 *
 *     closed ──(N "down" in a row, or a failure ratio)──> open ──(probe due, one granted)──> probing
 *       ^                                                   ^                                  │
 *       └──────────────(the probe got response headers)─────┼──────────────────────────────────┤
 *                                                           └──(probe failed: backoff grows;    │
 *                                                               no verdict: due at once)────────┘
 *
 * - Verdicts come from failure-kind.ts (`availability`): `down` for a connection never made or a
 *   reset before any response, `up` for response headers (any status: a 503 is an answer), `none`
 *   for the rest (timeouts, the client leaving). Exactly one verdict per attempt: `up` at the
 *   response headers, or the failure's at the error.
 * - Closed: every grant is allowed. `consecutiveFailures` downs in a row open it, or, when
 *   `failureRatio` is set, `ratio` of at least `minAttempts` verdicts within `windowMs`.
 * - Open: nothing is granted until `nextProbeAt`; then exactly one grant, the probe (a real queued
 *   request: it takes its token and slot like any other). Probing: nothing else is granted until
 *   the probe's verdict. `up` closes; `down` re-opens with the next probe after a backoff that
 *   doubles from `probeBackoff.baseMs` up to `maxMs`, with equal jitter (the delay is drawn in
 *   [window / 2, window), so probes of many replicas spread but none comes at once); `none` (the
 *   probe timed out or its client left) re-opens with the probe due at once, as nothing was learnt.
 * - While open or probing, verdicts of attempts granted before the opening are ignored: only the
 *   probe speaks, so a stale answer that was already on its way cannot close it.
 *
 * The scheduler asks `admission(now)` before a grant: `all`, `one` (grant one, the probe), or
 * `none` with `lookAgainAt`, the one instant to arm ONE timer for (Infinity while a probe is in
 * flight: its verdict, through `settle`, is what wakes the scheduler). Nothing here polls.
 * `settle` returns the transition, if any, for a log line and `sluice_upstream_available`
 * (1 closed, 0 open or probing).
 *
 * Resuming at the limit. The breaker only says when grants may happen; the buckets say how fast.
 * Two rules keep a backlog from bursting at the upstream:
 * 1. A grant spends its tokens whatever happens to the attempt (`refundsTokens`): a connection
 *    that was never made gives nothing back. Giving it back let the next request go at once, so a
 *    dead upstream drained the queue as fast as connections were refused (measured on main: 491
 *    502s in 2 s against a 40/s limit). Only an attempt sluice never dispatched (its client left
 *    before the grant reached it, or before the connection was made) refunds. The cost is one
 *    token per rare refused connection of a healthy upstream.
 * 2. While the breaker holds, buckets refill only up to their `burst`, so the first release after
 *    closing is at most `burst` requests at once, then the rate: exactly what the limit allows
 *    after any quiet spell. The breaker itself never grants more than the one probe.
 *
 * Defaults (config/breaker-schema.ts), from the anchors: 5 consecutive failures is Envoy's outlier
 * detection (`consecutive_5xx` = 5, which for TCP counts connection failures); HAProxy's passive
 * `observe layer4` needs `error-limit` 10, its active checks `fall 3`; nginx would eject after
 * `max_fails=1` but never does for a one-server group, which a sluice upstream is. Five costs at
 * most five failed attempts per outage and makes a trip from sporadic resets unlikely (10% random
 * resets: 1e-5 per run of five). The ratio rule is off by default, as Envoy's failure-percentage
 * ejection is (`enforcing_failure_percentage` 0); when on, Envoy's 85% of at least 50 in 10 s.
 * Probes: 250 ms doubling to 2 s, HAProxy's default check interval (`inter 2s`): a dead upstream
 * sees one request every 1-2 s per replica, and a return is noticed within 2 s.
 *
 * State: a few numbers, plus a ring of 10 slots when the ratio rule is on. Time (ms, monotonic)
 * and randomness ([0, 1)) are arguments.
 */

export type BreakerState = 'closed' | 'open' | 'probing';

export interface BreakerPolicy {
  /** Downs in a row that open the breaker; 0 disables this rule. */
  readonly consecutiveFailures: number;
  /** Open when `ratio` of the verdicts of the last `windowMs` were downs, over at least `minAttempts`; undefined: off. */
  readonly failureRatio?: { readonly ratio: number; readonly minAttempts: number; readonly windowMs: number } | undefined;
  /** Wait before a probe: doubles from `baseMs` after each failed probe, up to `maxMs`, equal jitter. */
  readonly probeBackoff: BackoffPolicy;
}

export type BreakerAdmission =
  /** Closed: grant freely (the buckets and slots still decide). */
  | { readonly allow: 'all' }
  /** Open and a probe is due: grant one request, and call `granted`. */
  | { readonly allow: 'one' }
  /** Grant nothing; look again at `lookAgainAt` (Infinity: when the probe's verdict comes). */
  | { readonly allow: 'none'; readonly lookAgainAt: number };

/** What a grant was; kept with the attempt and given back to `settle`. */
export type GrantRole = 'normal' | 'probe';

export type TransitionCause = 'consecutive-failures' | 'failure-ratio' | 'probe-succeeded' | 'probe-failed' | 'probe-void';

export interface BreakerTransition {
  readonly from: BreakerState;
  readonly to: BreakerState;
  readonly at: number;
  readonly cause: TransitionCause;
  /** Downs in a row when it opened; probes failed since it opened, when it re-opened. */
  readonly failures: number;
  /** When the next probe may go (open), or undefined (closed). */
  readonly nextProbeAt: number | undefined;
}

export interface BreakerSnapshot {
  readonly state: BreakerState;
  /** `sluice_upstream_available`: 1 when closed. */
  readonly available: boolean;
  readonly consecutiveFailures: number;
  readonly failedProbes: number;
  readonly openedAt: number | undefined;
  /** Milliseconds until the next probe may go, when open. */
  readonly nextProbeInMs: number | undefined;
}

const RATIO_SLOTS = 10;

function ringIndex(slot: number): number {
  return ((slot % RATIO_SLOTS) + RATIO_SLOTS) % RATIO_SLOTS;
}

/** Verdicts over a sliding window, in RATIO_SLOTS slots (exact to one slot). */
class VerdictWindow {
  readonly #slotMs: number;
  readonly #downs = new Array<number>(RATIO_SLOTS).fill(0);
  readonly #all = new Array<number>(RATIO_SLOTS).fill(0);
  /** The slot index (floor(now / slotMs)) of the newest slot. */
  #newest = Number.NEGATIVE_INFINITY;

  constructor(windowMs: number) {
    this.#slotMs = windowMs / RATIO_SLOTS;
  }

  add(now: number, down: boolean): { downs: number; all: number } {
    const slot = Math.floor(now / this.#slotMs);
    // Slots that fell out of the window are emptied; a clock that goes backwards counts in the newest.
    if (slot > this.#newest) {
      const stale = Math.min(RATIO_SLOTS, slot - this.#newest);
      for (let s = slot - stale + 1; s <= slot; s++) {
        this.#downs[ringIndex(s)] = 0;
        this.#all[ringIndex(s)] = 0;
      }
      this.#newest = slot;
    }
    const index = ringIndex(this.#newest);
    this.#all[index] = (this.#all[index] as number) + 1;
    if (down) this.#downs[index] = (this.#downs[index] as number) + 1;
    let downs = 0;
    let all = 0;
    for (let i = 0; i < RATIO_SLOTS; i++) {
      downs += this.#downs[i] as number;
      all += this.#all[i] as number;
    }
    return { downs, all };
  }
}

export class Breaker {
  #policy: BreakerPolicy;
  #state: BreakerState = 'closed';
  #consecutive = 0;
  #failedProbes = 0;
  #openedAt: number | undefined;
  #nextProbeAt = Number.NEGATIVE_INFINITY;
  #window: VerdictWindow | undefined;

  constructor(policy: BreakerPolicy) {
    this.#policy = policy;
    this.#window = policy.failureRatio === undefined ? undefined : new VerdictWindow(policy.failureRatio.windowMs);
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** `sluice_upstream_available`. */
  get available(): boolean {
    return this.#state === 'closed';
  }

  /** A reload: the state is kept, the new thresholds apply from the next verdict. */
  setPolicy(policy: BreakerPolicy): void {
    const ratio = policy.failureRatio;
    if (ratio === undefined) this.#window = undefined;
    else if (this.#window === undefined || ratio.windowMs !== this.#policy.failureRatio?.windowMs) this.#window = new VerdictWindow(ratio.windowMs);
    this.#policy = policy;
  }

  /** May a queued request be granted at `now`? */
  admission(now: number): BreakerAdmission {
    if (this.#state === 'closed') return { allow: 'all' };
    if (this.#state === 'probing') return { allow: 'none', lookAgainAt: Number.POSITIVE_INFINITY };
    return now >= this.#nextProbeAt ? { allow: 'one' } : { allow: 'none', lookAgainAt: this.#nextProbeAt };
  }

  /**
   * A request was granted at `now`. Returns `probe` when it is the probe (the breaker was open and
   * a probe due), `normal` otherwise. A grant while `admission` said `none` is a caller's mistake;
   * it is counted as `normal` and changes nothing.
   */
  granted(now: number): GrantRole {
    if (this.#state !== 'open' || now < this.#nextProbeAt) return 'normal';
    this.#state = 'probing';
    return 'probe';
  }

  /** The verdict of an attempt (exactly one per attempt). Returns the transition it caused, if any. */
  settle(now: number, role: GrantRole, verdict: Availability, random: number): BreakerTransition | undefined {
    if (this.#state === 'closed') return this.#settleClosed(now, verdict, random);
    if (role !== 'probe' || this.#state !== 'probing') return undefined; // a straggler from before the opening
    if (verdict === 'up') {
      this.#state = 'closed';
      this.#consecutive = 0;
      this.#failedProbes = 0;
      this.#openedAt = undefined;
      if (this.#policy.failureRatio !== undefined) this.#window = new VerdictWindow(this.#policy.failureRatio.windowMs);
      return { from: 'probing', to: 'closed', at: now, cause: 'probe-succeeded', failures: 0, nextProbeAt: undefined };
    }
    this.#state = 'open';
    if (verdict === 'down') {
      this.#failedProbes++;
      this.#nextProbeAt = now + this.#probeDelayMs(random);
      return { from: 'probing', to: 'open', at: now, cause: 'probe-failed', failures: this.#failedProbes, nextProbeAt: this.#nextProbeAt };
    }
    this.#nextProbeAt = now;
    return { from: 'probing', to: 'open', at: now, cause: 'probe-void', failures: this.#failedProbes, nextProbeAt: now };
  }

  /**
   * A hint for the `Retry-After` of a request refused while the upstream is unavailable: until the
   * next probe (open), or the longest the next one could wait (probing); 0 when closed.
   */
  retryAfterMs(now: number): number {
    if (this.#state === 'closed') return 0;
    if (this.#state === 'open') return Math.max(0, this.#nextProbeAt - now);
    return this.#probeWindowMs(this.#failedProbes + 1);
  }

  snapshot(now: number): BreakerSnapshot {
    return {
      state: this.#state,
      available: this.#state === 'closed',
      consecutiveFailures: this.#consecutive,
      failedProbes: this.#failedProbes,
      openedAt: this.#openedAt,
      nextProbeInMs: this.#state === 'open' ? Math.max(0, this.#nextProbeAt - now) : undefined,
    };
  }

  #settleClosed(now: number, verdict: Availability, random: number): BreakerTransition | undefined {
    if (verdict === 'none') return undefined;
    const down = verdict === 'down';
    this.#consecutive = down ? this.#consecutive + 1 : 0;
    const counts = this.#window?.add(now, down);
    let cause: TransitionCause | undefined;
    const { consecutiveFailures, failureRatio } = this.#policy;
    if (down && consecutiveFailures > 0 && this.#consecutive >= consecutiveFailures) cause = 'consecutive-failures';
    else if (
      down &&
      counts !== undefined &&
      failureRatio !== undefined &&
      counts.all >= failureRatio.minAttempts &&
      counts.downs >= failureRatio.ratio * counts.all
    ) {
      cause = 'failure-ratio';
    }
    if (cause === undefined) return undefined;
    this.#state = 'open';
    this.#openedAt = now;
    this.#failedProbes = 0;
    this.#nextProbeAt = now + this.#probeDelayMs(random);
    return { from: 'closed', to: 'open', at: now, cause, failures: this.#consecutive, nextProbeAt: this.#nextProbeAt };
  }

  /** The ceiling of the wait before the probe that follows `failedProbes` failed ones. */
  #probeWindowMs(failedProbes: number): number {
    const { baseMs, maxMs } = this.#policy.probeBackoff;
    return Math.min(maxMs, baseMs * 2 ** Math.max(0, failedProbes));
  }

  #probeDelayMs(random: number): number {
    const windowMs = this.#probeWindowMs(this.#failedProbes);
    return Math.floor(windowMs * (0.5 + 0.5 * Math.min(Math.max(random, 0), 1)));
  }
}

/**
 * Whether a granted attempt gives its tokens back when it ends (rule 1 above): only when sluice
 * never sent it, because its client left first. A connection never made spends its tokens.
 */
export function refundsTokens(ending: 'not-dispatched' | 'answered' | FailureClass): boolean {
  if (ending === 'not-dispatched') return true;
  if (ending === 'answered') return false;
  return ending.kind === 'client-gone' && ending.processed === 'no';
}
