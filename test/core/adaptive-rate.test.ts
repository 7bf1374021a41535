import { describe, expect, it } from 'vitest';
import { AdaptiveRate, SlidingCounter, type AdaptivePolicy } from '../../src/core/adaptive-rate.js';

const policy = (overrides: Partial<AdaptivePolicy> = {}): AdaptivePolicy => ({
  maxPerSec: 40,
  minPerSec: 1,
  increasePerSec: 1,
  decrease: 0.7,
  windowMs: 1000,
  ...overrides,
});

describe('SlidingCounter', () => {
  it('counts the events of the last window, to within one slot', () => {
    const c = new SlidingCounter(1000, 0);
    for (let t = 0; t < 1000; t += 10) c.add(t); // 100 events in [0, 1000)
    expect(c.count(999)).toBe(100);
    // At 1500 ms, the slots [500, 1000) hold 50 events, the oldest slot counted in proportion.
    expect(c.count(1500)).toBeCloseTo(50, 0);
    expect(c.count(2100)).toBe(0);
  });

  it('measures a rate over the time actually measured before a whole window has passed', () => {
    const c = new SlidingCounter(1000, 0);
    for (let t = 0; t < 500; t += 25) c.add(t); // 20 events in 500 ms
    expect(c.ratePerSec(500)).toBeCloseTo(40, 5);
    expect(c.ratePerSec(1499)).toBeCloseTo(0.4, 0); // one slot of the burst is still in the window
  });

  it('is not fooled by a pause in the window (where a two-bucket estimate is)', () => {
    const c = new SlidingCounter(1000, 0);
    // Sent nothing for 1.67 s (a pause), then 125/s for 0.8 s: 100 events in the last second.
    for (let t = 1670; t < 2470; t += 8) c.add(t);
    expect(c.count(2470)).toBe(100);
  });
});

describe('AdaptiveRate', () => {
  it('on a throttle, drops to just under the rate the upstream accepted over the last window', () => {
    const a = new AdaptiveRate(policy(), 40, 0);
    for (let t = 0; t < 2000; t += 25) a.onSuccess(t); // 40/s accepted
    // The upstream's real limit is 20/s: over the last second it accepted only 20 of our 40.
    const b = new AdaptiveRate(policy(), 40, 0);
    for (let t = 0; t < 1000; t += 50) b.onSuccess(t); // 20 accepted in [0, 1000)
    expect(b.onThrottle(1000)).toBeCloseTo(19.8, 1);
    expect(b.ceilingHint).toBeCloseTo(20, 0);
    // Accepted as much as sent: the measurement says nothing, the rate decreases instead.
    expect(a.onThrottle(2000)).toBeCloseTo(28, 5);
  });

  it('acts once per window on a burst of throttles', () => {
    const a = new AdaptiveRate(policy(), 40, 0);
    expect(a.onThrottle(0)).toBeCloseTo(28, 5);
    expect(a.onThrottle(10)).toBeCloseTo(28, 5);
    expect(a.onThrottle(999)).toBeCloseTo(28, 5);
    expect(a.onThrottle(1000)).toBeCloseTo(19.6, 5);
  });

  it('climbs by at least `increase` per quiet window, never above the maximum', () => {
    const a = new AdaptiveRate(policy({ maxPerSec: 12 }), 10, 0);
    expect(a.onSuccess(999)).toBe(10);
    expect(a.onSuccess(1000)).toBe(11);
    expect(a.onSuccess(2000)).toBe(12);
    expect(a.onSuccess(3000)).toBe(12);
  });

  it('climbs half-way back to just under the last throttle, then probes above it after 30 quiet windows', () => {
    const a = new AdaptiveRate(policy({ increasePerSec: 0.5 }), 40, 0);
    a.onThrottle(0); // 28; nothing was measured, so the hint is the rate throttled at, 40
    const cap = 40 * 0.99;
    expect(a.onSuccess(1000)).toBeCloseTo(28 + (cap - 28) / 2, 5);
    for (let t = 2000; t <= 20_000; t += 1000) a.onSuccess(t);
    expect(a.ratePerSec).toBeCloseTo(cap, 5);
    const b = new AdaptiveRate(policy({ maxPerSec: 100, increasePerSec: 1 }), 20, 0);
    b.onThrottle(0); // hint 20, rate 14
    for (let t = 1000; t <= 40_000; t += 1000) b.onSuccess(t);
    expect(b.ceilingHint).toBeCloseTo(21, 5); // probing: +1 after 30 quiet windows at the hint
    b.onThrottle(40_500); // the probe failed: back to the level that held
    expect(b.ceilingHint).toBeCloseTo(20, 5);
    expect(b.ratePerSec).toBeCloseTo(19.8, 5);
  });

  it('never goes below the minimum', () => {
    const a = new AdaptiveRate(policy({ minPerSec: 5 }), 6, 0);
    expect(a.onThrottle(0)).toBe(5);
    expect(a.onThrottle(5000)).toBe(5);
  });

  /**
   * A strict sliding window of `limit` per second, a sender releasing evenly at the controller's
   * rate, a 429 answered with a whole-second Retry-After the sender waits out. 50 s of simulated
   * time, fixed instants throughout.
   */
  function simulate(limit: number, startPerSec: number) {
    const a = new AdaptiveRate(policy({ maxPerSec: startPerSec, minPerSec: 0.1 }), startPerSec, 0);
    const accepted: number[] = [];
    let throttles = 0;
    let settledAt = Number.NaN;
    let t = 0;
    while (t < 50_000) {
      const inWindow = accepted.filter((x) => x > t - 1000);
      if (inWindow.length >= limit) {
        throttles++;
        a.onThrottle(t);
        t += Math.max(1, Math.ceil(((inWindow[0] as number) + 1000 - t) / 1000)) * 1000;
        continue;
      }
      accepted.push(t);
      a.onSuccess(t);
      if (Math.abs(a.ratePerSec - limit) / limit <= 0.1) settledAt = Number.isNaN(settledAt) ? t : settledAt;
      else settledAt = Number.NaN;
      t += 1000 / a.ratePerSec;
    }
    return { throttles, achieved: accepted.length / 50 / limit, settledAt, finalRate: a.ratePerSec };
  }

  it.each([
    [20, 40],
    [20, 100],
    [100, 150],
    [5, 40],
  ])('against a strict %i/s window from %i/s: few 429s, settled fast, >= 90%% of the limit', (limit, start) => {
    const r = simulate(limit, start);
    expect(r.throttles).toBeLessThanOrEqual(3);
    expect(r.achieved).toBeGreaterThanOrEqual(0.9);
    expect(r.finalRate).toBeLessThanOrEqual(limit);
    expect(r.finalRate).toBeGreaterThanOrEqual(limit * 0.9);
  });

  it('settles within 10% of a 20/s limit within 10 s when configured at 40/s', () => {
    const r = simulate(20, 40);
    expect(r.settledAt).toBeLessThan(10_000);
  });
});
