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

  it('is not fooled by a pause in the window (where a two-bucket estimate is)', () => {
    const c = new SlidingCounter(1000, 0);
    // Sent nothing for 1.67 s (a pause), then 125/s for 0.8 s: 100 events in the last second.
    for (let t = 1670; t < 2470; t += 8) c.add(t);
    expect(c.count(2470)).toBe(100);
  });
});

describe('AdaptiveRate', () => {
  it('on a throttle, drops to just under what the upstream accepted over the last window', () => {
    // The upstream's real limit is 20/s: over the last second it accepted only 20 of our 40.
    const b = new AdaptiveRate(policy(), 40, 0);
    for (let t = 0; t < 1000; t += 25) if (t % 50 === 0) b.onSuccess(t); // 20 accepted in [0, 1000)
    expect(b.onThrottle(1000)).toBeCloseTo(19.8, 1);
    expect(b.ceilingHint).toBeCloseTo(20, 0);
  });

  it('counts what the window holds before a whole window has passed: a first burst measures the limit', () => {
    // 40/s from the start: the upstream accepts 20 in 500 ms and refuses the 21st. 20 per 1 s window.
    const a = new AdaptiveRate(policy(), 40, 0);
    for (let t = 0; t < 500; t += 25) a.onSuccess(t);
    expect(a.onThrottle(500)).toBeCloseTo(19.8, 5);
  });

  it('counts what the window holds through a pause: the upstream held those requests all the same', () => {
    // 12 accepted in 300 ms, a pause (a Retry-After), 8 more in 200 ms, then a 429: 20 in the window.
    const a = new AdaptiveRate(policy(), 40, 0);
    for (let t = 0; t < 300; t += 25) a.onSuccess(t);
    for (let t = 800; t < 1000; t += 25) a.onSuccess(t);
    expect(a.onThrottle(999)).toBeCloseTo(19.8, 5);
  });

  it('at the rate it settled at, a 429 (jitter bunching two requests) costs 1%, not the decrease', () => {
    const a = new AdaptiveRate(policy(), 20, 0);
    for (let t = 0; t < 2000; t += 50) a.onSuccess(t); // 20/s accepted: all that was sent
    expect(a.onThrottle(2000)).toBeCloseTo(19.8, 5);
    expect(a.ceilingHint).toBeCloseTo(20, 5);
  });

  it('decreases when the upstream accepted nothing over the window (the measurement says nothing)', () => {
    const a = new AdaptiveRate(policy(), 40, 0);
    expect(a.onThrottle(5000)).toBeCloseTo(28, 5);
    expect(a.ceilingHint).toBe(40);
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
    b.onThrottle(0); // nothing accepted yet: hint 20, rate 14
    for (let t = 50; t <= 40_000; t += 50) b.onSuccess(t); // a sender that keeps up with the rate (the upstream allows 20/s)
    expect(b.ceilingHint).toBeCloseTo(21, 5); // probing: +1 after 30 quiet windows at the hint
    b.onThrottle(40_025); // the probe failed after 20 accepted in the last second: back to 20
    // (to within one slot of the counter: a twentieth of the window's events)
    expect(Math.abs(b.ceilingHint - 20)).toBeLessThanOrEqual(1);
    expect(b.ratePerSec).toBeCloseTo(b.ceilingHint * 0.99, 10);
    // A failed probe with nothing accepted over the window falls back to the level that held.
    const c = new AdaptiveRate(policy({ maxPerSec: 100, increasePerSec: 1 }), 20, 0);
    c.onThrottle(0);
    for (let t = 1000; t <= 40_000; t += 1000) c.onSuccess(t);
    expect(c.ceilingHint).toBeCloseTo(21, 5);
    c.onThrottle(41_500);
    expect(c.ceilingHint).toBeCloseTo(20, 5);
    expect(c.ratePerSec).toBeCloseTo(19.8, 5);
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
  ])('against a strict %i/s window from %i/s: two 429s (the first burst, one probe), at least 93 percent of the limit', (limit, start) => {
    const r = simulate(limit, start);
    expect(r.throttles).toBeLessThanOrEqual(2);
    expect(r.achieved).toBeGreaterThanOrEqual(0.93);
    expect(r.finalRate).toBeLessThanOrEqual(limit);
    expect(r.finalRate).toBeGreaterThanOrEqual(limit * 0.9);
  });

  it('settles within 10% of a 20/s limit at its first 429 when configured at 40/s (and stays: the pause ends at 1.5 s)', () => {
    const r = simulate(20, 40);
    expect(r.settledAt).toBeLessThan(2_000);
  });
});
