import { describe, expect, it } from 'vitest';
import { DEFAULT_TUNING, LimitLearner, learnerPolicy, type LearnerPolicy } from '../../src/core/limit-learner.js';

/** Told 40/s: the ceiling is 40 less the 0.75% margin. */
const CEILING = 39.7;
const policy = (overrides: Partial<Parameters<typeof learnerPolicy>[0]> = {}): LearnerPolicy => learnerPolicy({ ceilingPerSec: CEILING, ...overrides });

/** A throttle answered at `now` for a request granted `answerMs` earlier, the key paused `pauseMs`. */
const throttle = (now: number, o: { answerMs?: number; pauseMs?: number; waitedMs?: number } = {}) => ({
  grantedAt: now - (o.answerMs ?? 10),
  pausedUntil: now + (o.pauseMs ?? 1000),
  waitedMs: o.waitedMs ?? 0,
});

/** Accepted answers every `everyMs` from `from` (granted 10 ms before each) up to `to` (excluded). */
function accept(learner: LimitLearner, from: number, to: number, everyMs: number): number {
  let rate = learner.ratePerSec;
  for (let t = from; t < to; t += everyMs) rate = learner.onAccepted(t, { grantedAt: t - 10 });
  return rate;
}

describe('LimitLearner: the first throttle', () => {
  it.each([
    // [what the first run looked like, waitedMs of the throttled request, answerMs, expected rate]
    ['the second request refused (burst-1 bucket, told 2x): halve, then 4% under', 25, 10, CEILING * 0.5 * 0.96],
    ['20 accepted in 504 ms, then refused (a 20/s sliding window): the window count, 1% under', 504, 10, 20 * 0.99],
    ['everything accepted for 5 s, then refused (a bucket burst drained): 0.7, then 4% under', 5000, 10, CEILING * 0.7 * 0.96],
    ['three requests through, then refused (jitter at a burst-1 bucket): just 4% under', 100, 10, CEILING * 0.96],
  ])('%s', (_what, waitedMs, answerMs, expected) => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 1000, throttle(1000, { waitedMs, answerMs }));
    expect(learner.ratePerSec).toBeCloseTo(expected, 6);
    expect(learner.snapshot(1000).limitPerSec).toBe(CEILING);
  });

  it('counts the requests still in flight at a high rate as unanswered: 2 released in 10 ms at 198.5/s is a halving', () => {
    const learner = LimitLearner.afterFirstThrottle(learnerPolicy({ ceilingPerSec: 198.5 }), 10, throttle(10, { waitedMs: 10, answerMs: 6 }));
    expect(learner.ratePerSec).toBeCloseTo(198.5 * 0.48, 6);
  });
});

describe('LimitLearner: one cut per episode', () => {
  it('ignores throttles of requests released before the cut, and refusals before anything is accepted again', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 1000, throttle(1000, { waitedMs: 25 }));
    const cut = learner.ratePerSec;
    expect(learner.onThrottled(1005, { grantedAt: 990, pausedUntil: 2005, waitedMs: 0 })).toBe(cut); // in flight at the cut
    expect(learner.onThrottled(2060, throttle(2060))).toBe(cut); // the API is still refusing: nothing accepted since
    learner.onAccepted(2100, { grantedAt: 2090 });
    expect(learner.onThrottled(2200, throttle(2200))).toBeLessThan(cut); // now it counts
  });
});

describe('LimitLearner: later cuts', () => {
  it('measures a window from a run that ended within a window: 18 accepted in 600 ms', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 25 })); // 19.06
    // The pause ends at 1 s; 18 accepted over 600 ms (granted from 1000 to 1595), then a refusal.
    for (let i = 0; i < 18; i++) learner.onAccepted(1010 + i * 35, { grantedAt: 1000 + i * 35 });
    expect(learner.onThrottled(1650, throttle(1650))).toBeCloseTo(18 * 0.99, 6);
  });

  it('counts what a short pause left in the window: a few requests after it are no measurement of a bucket', () => {
    // A 100-token bucket told 198.5/s: 111 accepted in 560 ms (a window count: 109.9/s).
    const learner = LimitLearner.afterFirstThrottle(learnerPolicy({ ceilingPerSec: 198.5 }), 570, throttle(570, { waitedMs: 560 }));
    expect(learner.ratePerSec).toBeCloseTo(111 * 0.99, 6);
    // A 500 ms pause refilled 10 tokens: 10 accepted from 1070 to 1160, refused at 1180. The window
    // [180, 1180] still holds the part of the first run after 180 ms: 111 x 390/560.
    for (let i = 0; i < 10; i++) learner.onAccepted(1080 + i * 10, { grantedAt: 1070 + i * 10 });
    const inWindow = 10 + (111 * 390) / 560;
    expect(learner.onThrottled(1180, throttle(1180))).toBeCloseTo(inWindow * 0.99, 6); // not 10 x 0.99
  });

  it('a level that held for heldMs and then throttled is just above the limit: 4% under', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 25 })); // 19.056
    const held = accept(learner, 1000, 5000, 50);
    expect(held).toBeCloseTo(19.056, 3);
    expect(learner.snapshot(5000).heldPerSec).toBeCloseTo(19.056, 3);
    expect(learner.onThrottled(5000, throttle(5000))).toBeCloseTo(19.056 * 0.96, 6);
  });

  it('a cut refuted before it held is cut again by the ladder (0.7, 0.7, 0.5), then climbs', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 5000 })); // took-all: 26.68
    const r0 = learner.ratePerSec;
    const steps: number[] = [];
    let t = 1000;
    for (let i = 0; i < 3; i++) {
      for (let k = 0; k < 12; k++) learner.onAccepted(t + k * 80, { grantedAt: t + k * 80 - 10 }); // ~1 s, not held
      t += 1000;
      steps.push(learner.onThrottled(t, throttle(t)));
      t += 1000;
    }
    expect(steps[0]).toBeCloseTo(r0 * 0.7, 6);
    expect(steps[1]).toBeCloseTo(r0 * 0.7 * 0.7, 6);
    expect(steps[2]).toBeCloseTo(r0 * 0.7 * 0.7 * 0.5, 6);
    expect(learner.snapshot(t).phase).toBe('climbing');
  });
});

describe('LimitLearner: a limit shared with another client', () => {
  it('halvings refuted (two at half the rate accepted, then a refusal): back to 4% under the rate first halved, held as shared', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 1000, throttle(1000, { waitedMs: 25 })); // 19.056, paused to 2000
    for (const grantedAt of [2000, 2105, 2210]) learner.onAccepted(grantedAt + 10, { grantedAt });
    expect(learner.onThrottled(2330, throttle(2330))).toBeCloseTo(CEILING * 0.96, 6);
    // The same run after a 4% cut (no halving to refute) is a refuted cut: the ladder.
    const edge = LimitLearner.afterFirstThrottle(policy(), 1000, throttle(1000, { waitedMs: 100 })); // 38.11
    for (const grantedAt of [2000, 2105, 2210]) edge.onAccepted(grantedAt + 10, { grantedAt });
    expect(edge.onThrottled(2330, throttle(2330))).toBeCloseTo(CEILING * 0.96 * 0.7, 6);
  });

  /** Told 20/s: three through, then a refusal (4% under: 19.2), a pause; then a run of `count` at 52 ms. */
  function sharedAtEdge(count: number, pauseMs = 1000): LimitLearner {
    const learner = LimitLearner.afterFirstThrottle(learnerPolicy({ ceilingPerSec: 20 }), 100, throttle(100, { waitedMs: 100, pauseMs }));
    for (let i = 0; i < count; i++) learner.onAccepted(110 + pauseMs + i * 52, { grantedAt: 100 + pauseMs + i * 52 });
    return learner;
  }

  it('a 4% cut refuted by a run at a rate the API has shown it delivers (5 accepted over a second) is held there: cuts do not relieve collisions', () => {
    const shown = sharedAtEdge(30); // 19.2 shown from 1100 + 1 s
    expect(shown.onThrottled(2700, throttle(2700))).toBeCloseTo(19.2, 6);
    // ...and stays held through further collisions, each after a run.
    for (let i = 0; i < 20; i++) shown.onAccepted(3710 + i * 52, { grantedAt: 3700 + i * 52 });
    expect(shown.onThrottled(4800, throttle(4800))).toBeCloseTo(19.2, 6);
    // Not shown (too few accepted), or after a pause shorter than a window (a bucket barely
    // refilled): the ladder cuts.
    expect(sharedAtEdge(4).onThrottled(1400, throttle(1400))).toBeCloseTo(19.2 * 0.7, 6);
    expect(sharedAtEdge(30, 500).onThrottled(2200, throttle(2200))).toBeCloseTo(19.2 * 0.7, 6);
  });

  it('holds a shared rate only while under 3% of its answers are refused', () => {
    const learner = sharedAtEdge(30);
    learner.onThrottled(2700, throttle(2700)); // shared, held at 19.2
    let t = 3700;
    let rate = learner.ratePerSec;
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < 5; k++) learner.onAccepted(t + 10 + k * 52, { grantedAt: t + k * 52 });
      t += 300;
      rate = learner.onThrottled(t, throttle(t));
      t += 1000;
    }
    expect(rate).toBeLessThan(19.2 * 0.8); // 5 refused, 50 accepted: over the limit, not collisions
  });

  it('a first request refused right after the pause says someone else used it: back to what the API has shown', () => {
    const learner = sharedAtEdge(30, 500); // 19.2, shown
    const cut = learner.onThrottled(2200, throttle(2200)); // the ladder: 13.44, paused to 3200
    expect(cut).toBeCloseTo(19.2 * 0.7, 6);
    expect(learner.onThrottled(3220, { grantedAt: 3200, pausedUntil: 4220, waitedMs: 0 })).toBeCloseTo(19.2, 6);
    // A later request refused before anything is accepted is the API still refusing: nothing changes.
    const other = sharedAtEdge(30, 500);
    other.onThrottled(2200, throttle(2200));
    expect(other.onThrottled(3400, { grantedAt: 3390, pausedUntil: 4400, waitedMs: 0 })).toBeCloseTo(cut, 6);
  });
});

describe('LimitLearner: climbing and probing', () => {
  it('after two halvings in a row, climbs half-way to 4% under the last throttled rate every heldMs', () => {
    const learner = LimitLearner.afterFirstThrottle(learnerPolicy({ ceilingPerSec: 198.5 }), 0, throttle(0, { waitedMs: 5 })); // 95.28
    learner.onAccepted(1010, { grantedAt: 1000 });
    const second = learner.onThrottled(1050, throttle(1050)); // refused again right after: 45.73
    expect(second).toBeCloseTo(198.5 * 0.48 * 0.48, 6);
    const cap = 198.5 * 0.48 * 0.96;
    expect(learner.snapshot(1050).phase).toBe('climbing');
    expect(accept(learner, 2100, 4050, 50)).toBeCloseTo(second, 6); // not yet held
    const step1 = learner.onAccepted(4050, { grantedAt: 4040 });
    expect(step1).toBeCloseTo(second + (cap - second) / 2, 6);
    const step2 = accept(learner, 4100, 7100, 50);
    expect(step2).toBeCloseTo(step1 + (cap - step1) / 2, 6);
  });

  it('a climb step that fails goes back to the level that held', () => {
    const learner = LimitLearner.afterFirstThrottle(learnerPolicy({ ceilingPerSec: 198.5 }), 0, throttle(0, { waitedMs: 5 }));
    learner.onAccepted(1010, { grantedAt: 1000 });
    const held = learner.onThrottled(1050, throttle(1050));
    const step = accept(learner, 2000, 4100, 50);
    expect(step).toBeGreaterThan(held);
    expect(learner.onThrottled(4200, throttle(4200))).toBeCloseTo(held, 6);
  });

  it('probes 5% higher once a level held for the last pause / 1% (at least 30 s); a probe that held makes the next come sooner', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 504 })); // 19.8, pause 1 s: probe after 100 s
    expect(accept(learner, 1000, 100_000, 100)).toBeCloseTo(19.8, 6);
    expect(learner.onAccepted(100_010, { grantedAt: 100_000 })).toBeCloseTo(19.8 * 1.05, 6);
    expect(learner.snapshot(100_010).phase).toBe('probing');
    // It held 3 s: the level is 20.79 now, the next probe after 50 s.
    expect(accept(learner, 100_100, 103_200, 100)).toBeCloseTo(20.79, 6);
    expect(learner.snapshot(103_100).phase).toBe('holding');
    expect(accept(learner, 103_200, 153_000, 100)).toBeCloseTo(20.79, 6);
    expect(learner.onAccepted(153_100, { grantedAt: 153_090 })).toBeCloseTo(20.79 * 1.05, 6);
  });

  it('a probe that fails goes back, and the next waits twice as long', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 504 })); // 19.8, probe after 100 s
    accept(learner, 1000, 100_100, 100); // the probe starts at 100 s: 20.79
    expect(learner.onThrottled(100_500, throttle(100_500))).toBeCloseTo(19.8, 6);
    expect(accept(learner, 101_600, 300_000, 100)).toBeCloseTo(19.8, 6); // no probe for 200 s after 100.5 s
    expect(learner.onAccepted(300_600, { grantedAt: 300_590 })).toBeCloseTo(19.8 * 1.05, 6);
  });

  it('a short pause makes probes no more frequent than every 30 s', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 504, pauseMs: 50 }));
    expect(accept(learner, 100, 30_000, 100)).toBeCloseTo(19.8, 6);
    expect(learner.onAccepted(30_050, { grantedAt: 30_040 })).toBeCloseTo(19.8 * 1.05, 6);
  });
});

describe('LimitLearner: limits', () => {
  it('never cuts below half the best level that held in the last minute (throttles that cuts do not relieve)', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 504 })); // 19.8
    accept(learner, 1000, 5000, 50); // held
    let t = 5000;
    let rate = learner.ratePerSec;
    for (let i = 0; i < 8; i++) {
      learner.onAccepted(t + 20, { grantedAt: t + 10 });
      learner.onAccepted(t + 40, { grantedAt: t + 30 });
      rate = learner.onThrottled(t + 60, throttle(t + 60));
      t += 1100;
    }
    expect(rate).toBeCloseTo(19.8 * 0.5, 6);
  });

  it('stays within min and max; above the configured rate only with probeAbove', () => {
    const low = LimitLearner.afterFirstThrottle(learnerPolicy({ ceilingPerSec: 2, minPerSec: 1.5 }), 0, throttle(0));
    expect(low.ratePerSec).toBe(1.5);
    const capped = LimitLearner.probingFrom(learnerPolicy({ ceilingPerSec: 10 }), 0);
    expect(accept(capped, 0, 200_000, 100)).toBe(10);
    const above = LimitLearner.probingFrom(learnerPolicy({ ceilingPerSec: 10, probeAbove: true }), 0);
    const after = accept(above, 0, 40_000, 100);
    expect(after).toBeCloseTo(10.5, 6);
  });

  it('hands its state over on a reload, under the new ceiling', () => {
    const learner = LimitLearner.afterFirstThrottle(policy(), 0, throttle(0, { waitedMs: 504 }));
    accept(learner, 1000, 5000, 50);
    const record = learner.toRecord();
    expect(record).toEqual({ ratePerSec: 19.8, limitPerSec: CEILING, heldPerSec: 19.8, probeAfterMs: 100_000 });
    const same = LimitLearner.restore(record, policy(), 10_000);
    expect(same.ratePerSec).toBe(19.8);
    const lower = LimitLearner.restore(record, learnerPolicy({ ceilingPerSec: 15 }), 10_000);
    expect(lower.ratePerSec).toBe(15);
    expect(lower.snapshot(10_000).heldPerSec).toBe(15);
  });

  it('says when it may be dropped: back at the ceiling and held there', () => {
    const learner = LimitLearner.afterFirstThrottle(learnerPolicy({ ceilingPerSec: 10 }), 0, throttle(0, { waitedMs: 300 })); // edge: 9.6
    expect(learner.ratePerSec).toBeCloseTo(9.6, 6);
    accept(learner, 1000, 99_000, 100); // held; the probe comes after 100 s
    expect(learner.settled).toBe(false);
    accept(learner, 99_000, 110_000, 100); // the probe to 10.08 is capped at 10, and holds
    expect(learner.ratePerSec).toBe(10);
    expect(learner.settled).toBe(true);
  });

  it('exposes its defaults', () => {
    expect(DEFAULT_TUNING).toMatchObject({ decrease: 0.5, holdBelow: 0.96, measuredHoldBelow: 0.99, windowMs: 1000, heldMs: 3000 });
  });
});
