/**
 * Learning the rate an API really allows, from its throttles alone, without knowing its algorithm.
 *
 * The model. Behind every rate-limited API there is a sustained rate L it accepts (token bucket,
 * sliding or fixed window, shared with other clients or not) and some tolerance to bunching (a
 * bucket's burst, a window's length). A request above it is refused (429), sluice pauses the key
 * for the Retry-After and retries the request. Every throttle therefore costs a whole pause (one
 * second for `Retry-After: 1`, the common answer even when the next token is 50 ms away): the
 * learner's job is to make throttles rare, not only to recover from them. The configured rate is
 * the ceiling (above it only with `probeAbove`); a key that is never throttled keeps no learner at
 * all and releases at the ceiling, exactly as without learning.
 *
 * What it sees: the instant each request was granted and the instant its answer came back (ok or
 * throttled), the end of the pause a throttle caused, and, for the first throttle only, how long
 * the throttled request had waited in the queue. From these it keeps a bracket: `heldPerSec`, the
 * highest rate that went `heldMs` without a throttle (known good), and `limitPerSec`, the last
 * rate that was throttled (known bad). It releases at `ratePerSec`, inside the bracket.
 *
 * One cut per episode: a throttle counts only if its request was granted after the last cut and
 * the API has accepted something since (the requests already in flight, and the refusals while the
 * API is still full, say nothing about the new rate). A counted throttle at rate `s` cuts:
 *
 * 1. a raise failed (s above the held rate: a climb step or a probe): back to the held rate.
 * 2. the second request after a pause was refused (nothing accepted in between): the rate is above
 *    L by an unknown factor; halve it (TCP Reno's decrease) and hold `holdBelow` under that, so a
 *    limit told twice too high lands just under L and stays there. A halving after another cut
 *    means the limit is far: the rate then climbs back, half-way to 4% under the last throttled
 *    rate per `heldMs` held.
 * 3. the API accepted `minSample` or more within less than a window before refusing: that count is
 *    the window's (a sliding window refuses the request after its L-th; the first run measures it
 *    from the queue wait: every request released before was accepted). Hold 1% under it.
 * 4. a level that had held refused, or a few requests went through first (arrival jitter at a
 *    burst-1 bucket): the limit is just below; cut by `holdBelow` (4%).
 * 5. everything was accepted for a window or more, then refused (a bucket's burst ran out, an
 *    outside client started): cut to 0.7 (CUBIC's decrease) and climb back.
 * 6. a cut that did not hold `heldMs` (it was refuted): cut again by the `ladder` (0.7, 0.7, 0.5),
 *    then climb back as in 2. A climb step that fails (1.) keeps climbing below its new limit.
 *
 * A limit shared with another client (it calls the API directly) refuses our requests when its
 * requests come first: collisions, which come at any rate, so cutting does not make them rarer
 * (at a burst-1 bucket each cut hands more of the bucket to the other client). Three signs say
 * "shared", and for `floorMs` after one no cut goes under the best rate the API has shown it
 * delivers to this key lately (`shownSample` answers accepted at it, over a window or more):
 * - the first request after a pause is refused: the pause was as long as the API asked, so
 *   someone else used it (unless the last cut was a window's count: a shared window is a smaller
 *   window, and its count is right). The rate goes back up to what was shown;
 * - halvings refuted: after a halving (2.), two or more accepted at the halved rate and then a
 *   refusal: no unshared shape refuses the second request at a rate and then takes two at half
 *   of it. Back to 4% under the rate the first of the halvings cut;
 * - a 4% cut (4.) refuted, after a pause of a window or more, by a run at a rate the API has
 *   shown: held there (at most the rate before the cut).
 * The floor lasts while the rate's refusals stay under 3% of its answers (the tolerance
 * for a shared limit); more than that is a rate above the limit, and cuts resume.
 *
 * Probing: a level that held for `probeAfterMs` tries 5% more; one that held becomes the level and
 * the next probe comes twice as soon, one that failed sends the rate back and the next probe waits
 * twice as long. The first wait is the last pause divided by `probeCost` (1%): a failed probe
 * costs one pause, so probing costs at most about 1% of the time (100 s with `Retry-After: 1`, at
 * least 30 s, at most 10 minutes). A floor slows a run of cuts that do not help (throttles caused
 * by another client at a burst-1 bucket come at any rate): no cut goes below half the best level
 * that held in the last minute (it still halves once a minute: see the report of the simulator).
 *
 * Defaults and why (see test/sim/ for the measurements behind each):
 * - decrease 0.5: TCP Reno; with holdBelow, a limit told 2x too high settles at 96% of it in one
 *   throttle.
 * - holdBelow 0.96: arrival jitter of 2 ms at 50 ms spacing (20/s) makes a burst-1 bucket refuse
 *   anything above 96% of its rate; windows tolerate more, so this is the strictest case.
 * - measuredHoldBelow 0.99: a window's count is exact; 1% absorbs timer jitter like pacing.margin.
 * - windowMs 1000, minSample 10: the shortest window assumed (per-second limits are the strict
 *   ones); fewer than 10 requests do not make a measurement.
 * - heldMs 3000: three windows; after a one-second pause a fixed window lets about one window
 *   through before refusing again, so a shorter hold would call a refuted rate "held".
 * - probeStep 0.05, probeCost 0.01, probe wait 30 s (a 600-call run told 2x ends before its first
 *   probe) to 10 min, floor kept 60 s.
 *
 * Time is an argument (milliseconds, monotonic); nothing here reads a clock or random numbers.
 * State: none before the first throttle (the gate releases at its ceiling). Once throttled, one
 * object of 24 fields and a pointer to the rule's shared policy: six rates (boxed numbers), twelve
 * instants and counts kept in whole milliseconds (small integers, stored inline), a cut counter, a
 * case number and two flags. Measured as the heap growth over 200,000 learners in the shared state
 * (Node 20 and 24): about 300 bytes each with their rate boxes (about 195 before the shared-limit
 * rules, by the same count). `settled` says when it can be dropped again.
 */

export interface LearnerTuning {
  readonly decrease: number;
  readonly holdBelow: number;
  readonly measuredHoldBelow: number;
  readonly windowMs: number;
  readonly minSample: number;
  readonly heldMs: number;
  readonly tookAll: number;
  readonly ladder: readonly number[];
  readonly probeStep: number;
  readonly probeCost: number;
  readonly minProbeAfterMs: number;
  readonly maxProbeAfterMs: number;
  readonly floorMs: number;
  /** A rate the API accepted this many answers at (since it was set) is one it has shown it delivers. */
  readonly shownSample: number;
}

export const DEFAULT_TUNING: LearnerTuning = {
  decrease: 0.5,
  holdBelow: 0.96,
  measuredHoldBelow: 0.99,
  windowMs: 1000,
  minSample: 10,
  heldMs: 3000,
  tookAll: 0.7,
  ladder: [0.7, 0.7, 0.5],
  probeStep: 0.05,
  probeCost: 0.01,
  minProbeAfterMs: 30_000,
  maxProbeAfterMs: 600_000,
  floorMs: 60_000,
  shownSample: 5,
};

/** What a rule's learners share (one object per rule, not per key). */
export interface LearnerPolicy {
  /** The configured rate less the margin: released at until the first throttle. */
  readonly ceilingPerSec: number;
  /** The learned rate never goes above this: the ceiling, or Infinity with `probeAbove`. */
  readonly maxPerSec: number;
  /** ...nor below this (`adaptive.min`). */
  readonly minPerSec: number;
  readonly tuning: LearnerTuning;
}

export function learnerPolicy(options: { ceilingPerSec: number; minPerSec?: number; probeAbove?: boolean; tuning?: Partial<LearnerTuning> }): LearnerPolicy {
  return {
    ceilingPerSec: options.ceilingPerSec,
    maxPerSec: options.probeAbove === true ? Number.POSITIVE_INFINITY : options.ceilingPerSec,
    minPerSec: options.minPerSec ?? 1 / 60,
    tuning: { ...DEFAULT_TUNING, ...options.tuning },
  };
}

export interface AcceptedSignal {
  /** When the accepted request was granted. */
  readonly grantedAt: number;
}

export interface ThrottledSignal {
  /** When the throttled request was granted. */
  readonly grantedAt: number;
  /** Until when the key is paused for it (the Retry-After, or the backoff without one). */
  readonly pausedUntil: number;
  /** How long the throttled request waited in the queue before its grant (read at the first throttle). */
  readonly waitedMs: number;
}

export type LearnerPhase = 'holding' | 'climbing' | 'probing';

export interface LearnerSnapshot {
  readonly ratePerSec: number;
  /** The last rate the API throttled. */
  readonly limitPerSec: number;
  /** The highest rate that held since the last cut (NaN when none has yet). */
  readonly heldPerSec: number;
  readonly phase: LearnerPhase;
  /** Milliseconds the current rate has held (without a counted throttle). */
  readonly heldForMs: number;
}

/** What survives a reload: rates, and the probe's back-off. */
export interface LearnerRecord {
  readonly ratePerSec: number;
  readonly limitPerSec: number;
  readonly heldPerSec: number;
  readonly probeAfterMs: number;
}

/**
 * Instants are kept in whole milliseconds (a small integer is stored in the object itself, a
 * fraction in a number box of its own: 16 bytes each), and "never" is a small integer too.
 */
const NEVER = -(2 ** 30);
const ms = Math.floor;

export class LimitLearner {
  readonly policy: LearnerPolicy;
  #rate: number;
  #limit: number;
  #held = Number.NaN;
  /** When the rate last changed (a cut, a climb step, a probe). */
  #changedAt: number;
  /** When the last counted throttle cut the rate. */
  #cutAt = NEVER;
  /** This run (since the last cut): accepted answers, and the grant of the first of them. */
  #accepted = 0;
  #runStartAt = 0;
  /** The run before (its accepted answers and first grant; it ended at the cut). */
  #prevAccepted = 0;
  #prevStartAt = 0;
  #probeAfterMs: number;
  /** The best level that held lately, and when: the floor of a run of cuts. */
  #anchor = 0;
  #anchorAt = NEVER;
  /** When the pause of the last cut ended: the first release after it comes then. */
  #resumeAt = NEVER;
  /** When the first request after a pause was last refused: someone else used the pause. */
  #sharedAt = NEVER;
  /** Answers accepted since the rate last changed; the best rate that had `minSample` of them lately, and when. */
  #sameRate = 0;
  #sameRateAt = 0;
  /** Counted throttles since the rate last changed. */
  #sameRateRefused = 0;
  #shownPerSec = 0;
  #shownAt = NEVER;
  /** While the last counted cuts were halvings (2.): the rate the first of them cut (else 0). */
  #halvedFromPerSec = 0;
  /** Which case (2. to 6.) the last counted cut was (0: none since a level held). */
  #lastCase = 0;
  /** Cuts since a level last held. */
  #series = 0;
  #climbing = false;
  #probing = false;

  private constructor(policy: LearnerPolicy, ratePerSec: number, now: number) {
    this.policy = policy;
    this.#rate = ratePerSec;
    this.#limit = ratePerSec;
    this.#changedAt = ms(now);
    this.#probeAfterMs = policy.tuning.minProbeAfterMs;
  }

  /** The learner of a key at its first throttle (until then it needs none): the cut is applied. */
  static afterFirstThrottle(policy: LearnerPolicy, now: number, signal: ThrottledSignal): LimitLearner {
    const learner = new LimitLearner(policy, policy.ceilingPerSec, now);
    learner.onThrottled(now, signal);
    return learner;
  }

  /** A learner from the start, for `probeAbove`: it probes above the ceiling while nothing throttles. */
  static probingFrom(policy: LearnerPolicy, now: number): LimitLearner {
    const learner = new LimitLearner(policy, policy.ceilingPerSec, now);
    learner.#limit = Number.POSITIVE_INFINITY;
    return learner;
  }

  /** A learner handed over by a reload, under a policy with a possibly new ceiling. */
  static restore(record: LearnerRecord, policy: LearnerPolicy, now: number): LimitLearner {
    const clampRate = (r: number): number => Math.min(policy.maxPerSec, Math.max(policy.minPerSec, r));
    const learner = new LimitLearner(policy, clampRate(record.ratePerSec), now);
    learner.#limit = record.limitPerSec;
    learner.#held = Number.isNaN(record.heldPerSec) ? Number.NaN : clampRate(record.heldPerSec);
    learner.#probeAfterMs = record.probeAfterMs;
    return learner;
  }

  get ratePerSec(): number {
    return this.#rate;
  }

  /** The rate is back at the ceiling and held there: the key may drop its learner. */
  get settled(): boolean {
    return this.#rate >= this.policy.ceilingPerSec && this.#held >= this.policy.ceilingPerSec && this.policy.maxPerSec === this.policy.ceilingPerSec;
  }

  snapshot(now: number): LearnerSnapshot {
    return {
      ratePerSec: this.#rate,
      limitPerSec: this.#limit,
      heldPerSec: this.#held,
      phase: this.#probing ? 'probing' : this.#climbing ? 'climbing' : 'holding',
      heldForMs: now - this.#changedAt,
    };
  }

  toRecord(): LearnerRecord {
    return { ratePerSec: this.#rate, limitPerSec: this.#limit, heldPerSec: this.#held, probeAfterMs: this.#probeAfterMs };
  }

  /** The API accepted a request. Returns the rate to release at. */
  onAccepted(now: number, signal: AcceptedSignal): number {
    const t = this.policy.tuning;
    if (signal.grantedAt >= this.#cutAt) {
      if (this.#accepted === 0) this.#runStartAt = ms(signal.grantedAt);
      this.#accepted++;
      if (++this.#sameRate >= t.shownSample && now - this.#sameRateAt >= t.windowMs && (this.#rate > this.#shownPerSec || now - this.#shownAt > t.floorMs)) {
        this.#shownPerSec = this.#rate;
        this.#shownAt = ms(now);
      }
    }
    const age = now - this.#changedAt;
    if (age < t.heldMs) return this.#rate;
    // The current rate held (so did a halving: it is not refuted later).
    this.#series = 0;
    this.#halvedFromPerSec = 0;
    this.#lastCase = 0;
    if (!(this.#held >= this.#rate)) this.#held = this.#rate;
    if (this.#rate >= this.#anchor || now - this.#anchorAt > t.floorMs) {
      this.#anchor = this.#rate;
      this.#anchorAt = ms(now);
    }
    const cap = Math.min(this.policy.maxPerSec, this.#limit * t.holdBelow);
    if (this.#probing) {
      // The probe held: it is the level now, and the next probe comes sooner.
      this.#probing = false;
      this.#probeAfterMs = Math.max(t.minProbeAfterMs, this.#probeAfterMs / 2);
      this.#changedAt = ms(now);
    } else if (this.#climbing && this.#rate < cap * 0.98) {
      this.#setRate(this.#rate + (cap - this.#rate) / 2, now);
    } else if (this.#rate < this.policy.maxPerSec && age >= this.#probeAfterMs) {
      this.#climbing = false;
      this.#probing = true;
      this.#setRate(this.#rate * (1 + t.probeStep), now);
    }
    return this.#rate;
  }

  /** The API throttled a request (and the key is paused). Returns the rate to release at. */
  onThrottled(now: number, signal: ThrottledSignal): number {
    const t = this.policy.tuning;
    const first = this.#cutAt === NEVER;
    // A request released before the last cut, or a refusal before the API accepted anything since:
    // both belong to the episode already acted on.
    if (!first && signal.grantedAt < this.#cutAt) return this.#rate;
    if (!first && this.#accepted === 0) {
      // The first request after the pause refused: the pause was as long as the API asked, so
      // someone else took the capacity meanwhile. The limit is shared, and its refusals are
      // collisions, which a lower rate does not make rarer (at a bucket it hands the bucket over):
      // back to what the API has shown it delivers to this key.
      if (signal.grantedAt - this.#resumeAt < 1000 / this.#rate && this.#lastCase !== 3) {
        this.#sharedAt = ms(now);
        const floor = this.#sharedFloor(now);
        if (this.#rate < floor) this.#setRate(floor, now);
      }
      return this.#rate;
    }
    const s = this.#rate;
    const W = t.windowMs;
    this.#sameRateRefused++;
    let n = this.#accepted;
    let answered = n;
    let runMs = now - this.#runStartAt;
    if (first) {
      // Every request released before this one was accepted (it is the first refusal): as many as
      // the gate released in its wait, within a window; the ones still in flight are not answered.
      runMs = Math.min(signal.waitedMs, W);
      n = Math.round((s * runMs) / 1000);
      answered = Math.max(0, Math.round((s * (runMs - (now - signal.grantedAt))) / 1000));
    }
    // Accepted over the last window: this run's (its last window at most), and the part of the run
    // before that fell in the window (a short pause leaves a window's earlier requests in it).
    let inWindow = runMs > W ? (n * W) / runMs : n;
    if (!first && this.#prevAccepted > 0) {
      const from = Math.max(this.#prevStartAt, now - W);
      if (this.#cutAt > from) inWindow += (this.#prevAccepted * (this.#cutAt - from)) / Math.max(1, this.#cutAt - this.#prevStartAt);
    }
    const measuredPerSec = (inWindow * 1000) / W;
    const measured = runMs <= W && n >= t.minSample && measuredPerSec < s * t.holdBelow;
    const age = now - this.#changedAt;
    const pauseMs = Math.max(0, signal.pausedUntil - now);

    this.#prevAccepted = n;
    this.#prevStartAt = first ? ms(now - runMs) : this.#runStartAt;
    // The pause before this run (a whole window or more refills any unshared bucket or window).
    const lastPauseMs = this.#resumeAt - this.#cutAt;
    this.#accepted = 0;
    this.#cutAt = Math.ceil(now);
    this.#resumeAt = Math.ceil(signal.pausedUntil);
    const halvedFrom = this.#halvedFromPerSec;
    this.#halvedFromPerSec = 0;

    if (halvedFrom > 0 && answered >= 2 && !measured && !(this.#held > s)) {
      // Halvings refuted: after the second request at a rate was refused (and so on at each
      // half), two or more at half that were accepted and then one refused. No unshared shape
      // does that (a bucket that took two at half the spacing, a window that took two...):
      // someone else's requests collide with ours, and fewer of ours only hand the capacity
      // over. Back to 4% under the rate the first halving cut (where a refusal looked like a
      // factor), or what the API has shown, held as shared.
      this.#sharedAt = ms(now);
      this.#series = 0;
      this.#climbing = false;
      this.#held = Number.NaN;
      this.#setRate(Math.max(halvedFrom * t.holdBelow, this.#shown(now)), now);
      return this.#rate;
    }

    let rate: number;
    let kase = 1;
    if (this.#held < s * 0.999) {
      // 1. A climb step or a probe went too far: back to what held (or under a measurement).
      if (this.#probing) this.#probeAfterMs = Math.min(this.#probeAfterMs * 2, t.maxProbeAfterMs);
      else this.#probeAfterMs = Math.max(this.#probeAfterMs, this.#probeBase(pauseMs));
      this.#climbing = this.#climbing && !this.#probing;
      this.#probing = false;
      rate = measured ? Math.min(this.#held, measuredPerSec * t.measuredHoldBelow) : this.#held;
    } else {
      this.#probeAfterMs = Math.max(this.#probeAfterMs, this.#probeBase(pauseMs));
      this.#probing = false;
      this.#climbing = false;
      this.#held = Number.NaN;
      if (answered <= 1) {
        // 2. Refused right after a pause: above the limit by an unknown factor.
        this.#climbing = this.#series > 0;
        this.#halvedFromPerSec = halvedFrom > 0 ? halvedFrom : s;
        kase = 2;
        rate = s * t.decrease * t.holdBelow;
      } else if (measured) {
        // 3. The window's own count.
        kase = 3;
        rate = measuredPerSec * t.measuredHoldBelow;
      } else if (this.#series === 0 && (age >= t.heldMs || answered < t.minSample)) {
        // 4. Just above the limit.
        kase = 4;
        rate = s * t.holdBelow;
      } else if (this.#series === 0) {
        // 5. Everything went through for a while, then nothing.
        kase = 5;
        this.#climbing = true;
        rate = s * t.tookAll * t.holdBelow;
      } else if (this.#lastCase === 4 && answered >= t.shownSample && this.#shown(now) >= s && lastPauseMs >= W && now - this.#sharedAt > t.floorMs) {
        // 6a. The last cut was refuted, and at a rate the API has shown it delivers (it accepted
        // a run of them): the cut did not make refusals rarer. Shared: back to what was shown.
        this.#sharedAt = ms(now);
        kase = 6;
        rate = Math.min(this.#limit, this.#shown(now));
      } else {
        // 6. The last cut was refuted before it held.
        kase = 6;
        this.#climbing = true;
        rate = s * (t.ladder[Math.min(this.#series - 1, t.ladder.length - 1)] ?? t.decrease);
      }
      this.#series++;
      const floor = now - this.#anchorAt <= t.floorMs ? this.#anchor * t.decrease : 0;
      if (rate < floor && !measured) rate = Math.min(s, floor);
      // Shared: no cut goes under what the API has shown it delivers (collisions come at any rate).
      const shownFloor = this.#sharedFloor(now);
      if (rate < shownFloor) rate = Math.min(s, shownFloor);
    }
    this.#lastCase = kase;
    this.#limit = s;
    this.#setRate(rate, now);
    return this.#rate;
  }

  /**
   * Shared, no cut goes under what the API has shown it delivers: unless the current rate is
   * refused more than collisions may be (3% of its answers, the tolerance of issue 13), then it is over the limit.
   */
  #sharedFloor(now: number): number {
    if (now - this.#sharedAt > this.policy.tuning.floorMs) return 0;
    if (this.#sameRateRefused >= 4 && this.#sameRateRefused * 33 > this.#sameRate) return 0;
    return this.#shown(now);
  }

  /** The best rate a run lately delivered `minSample` accepted answers at (0: none lately). */
  #shown(now: number): number {
    return now - this.#shownAt <= this.policy.tuning.floorMs ? this.#shownPerSec : 0;
  }

  #probeBase(pauseMs: number): number {
    const t = this.policy.tuning;
    return Math.min(t.maxProbeAfterMs, Math.max(t.minProbeAfterMs, pauseMs / t.probeCost));
  }

  #setRate(ratePerSec: number, now: number): void {
    const rate = Math.min(this.policy.maxPerSec, Math.max(this.policy.minPerSec, ratePerSec));
    if (rate !== this.#rate) {
      this.#sameRate = 0;
      this.#sameRateAt = ms(now);
      this.#sameRateRefused = 0;
    }
    this.#rate = rate;
    this.#changedAt = ms(now);
  }
}
