import { describe, expect, it } from 'vitest';
import { harness } from './helpers.js';

describe('Scheduler: pacing learned from quota headers', () => {
  it('lets one request through at a time until the upstream has answered once', () => {
    const h = harness([{ learns: true }]);
    for (const id of ['a', 'b', 'c', 'd']) h.request(id);
    expect(h.granted()).toEqual(['a']);
    h.grants[0]?.ticket.release('ok'); // released without an answer (say the client left)
    expect(h.granted()).toEqual(['a', 'b']);
    // b's answer carries no quota headers: nothing to wait for any more, c and d go at once.
    h.grants[1]?.ticket.learn(undefined);
    expect(h.granted()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('spreads what remains over the time left once it knows', () => {
    const h = harness([{ learns: true }]);
    for (let i = 0; i < 6; i++) h.request(`r${i}`);
    const first = h.grants[0]?.ticket;
    first?.learn({ dialect: 'x-ratelimit', remaining: 50, resetMs: 10_500 }); // 5/s (less half a second of rounding)
    first?.release('ok');
    h.timers.advance(1000);
    // r1 at once (the bucket starts full), then one every 200 ms.
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 0, 200, 400, 600, 800]);
    expect(h.scheduler.snapshot().rules[0]?.effectiveRatePerSec).toBe(5);
  });

  it('pauses until the reset when nothing is left', () => {
    const h = harness([{ learns: true }]);
    h.request('a');
    h.request('b');
    const a = h.grants[0]?.ticket;
    a?.learn({ dialect: 'ietf', remaining: 0, resetMs: 2_000 });
    a?.release('ok');
    h.timers.advance(1_999);
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(1);
    expect(h.granted()).toEqual(['a', 'b']);
  });

  it('never goes above the configured rate on what the headers say...', () => {
    const h = harness([{ ratePerSec: 10, learns: true }]);
    h.request('a');
    h.grants[0]?.ticket.learn({ dialect: 'x-ratelimit', remaining: 1000, resetMs: 1_000 });
    expect(h.scheduler.snapshot().rules[0]?.effectiveRatePerSec).toBe(10);
  });

  it('...unless adaptive.probeAbove is set', () => {
    const h = harness([{ ratePerSec: 10, learns: true, adaptive: { minPerSec: 1, increasePerSec: 1, decrease: 0.7, windowMs: 1000, probeAbove: true } }]);
    h.request('a');
    h.grants[0]?.ticket.learn({ dialect: 'x-ratelimit', remaining: 1000, resetMs: 10_500 });
    expect(h.scheduler.snapshot().rules[0]?.effectiveRatePerSec).toBe(100);
  });
});

describe('Scheduler: what the quota headers leave unsaid', () => {
  const rate = (h: ReturnType<typeof harness>): number | undefined => h.scheduler.snapshot().rules[0]?.effectiveRatePerSec;

  it('never paces slower than the stated policy while something remains (a whole-second t overstates the time left)', () => {
    const h = harness([{ learns: true }]);
    h.request('a');
    h.grants[0]?.ticket.learn({ dialect: 'ietf', remaining: 2, resetMs: 1_000, limit: 100, windowMs: 10_000 });
    expect(rate(h)).toBe(9.9); // not 2/s: 99 per 10 s, one request of the window kept in hand
  });

  it('takes the window of X-RateLimit-* (which states none) from an answer that counted only its own request', () => {
    const h = harness([{ learns: true }]);
    for (const id of ['a', 'b', 'c']) h.request(id);
    const a = h.grants[0]?.ticket;
    a?.learn({ dialect: 'x-ratelimit', limit: 100, remaining: 99, resetMs: 10_000 }); // alone in the window: it is 10 s long
    a?.release('ok');
    expect(rate(h)).toBeCloseTo(99 / 9.5, 10); // 99 over 10 s less the rounding
    // b, released at once, learns that 2 are left with the reset rounded up to a second: the
    // policy's pace (99 per 10 s), not 2/s.
    h.grants[1]?.ticket.learn({ dialect: 'x-ratelimit', limit: 100, remaining: 2, resetMs: 1_000 });
    expect(rate(h)).toBe(9.9);
  });

  it('an answer that did not count its request alone says nothing of the window', () => {
    const h = harness([{ learns: true }]);
    h.request('a');
    h.grants[0]?.ticket.learn({ dialect: 'x-ratelimit', limit: 100, remaining: 50, resetMs: 3_000 });
    expect(rate(h)).toBe(50 / 2.5);
  });

  it('releases no more before an answer can come back than what remains', () => {
    const h = harness([{ learns: true }]);
    h.request('a');
    h.timers.advance(500); // the answer takes 500 ms
    // 5 left for a precise 100 ms would be 50/s: 25 released before the next answer. At most 10/s.
    h.grants[0]?.ticket.learn({ dialect: 'x-ratelimit', remaining: 5, resetMs: 100 });
    expect(rate(h)).toBe(10);
  });

  it('spreads what remains over pacing.maxPause at most, never over a reset a year away', () => {
    const h = harness([{ learns: true }], { maxLearnedPauseMs: 60_000 });
    for (const id of ['a', 'b', 'c']) h.request(id);
    const a = h.grants[0]?.ticket;
    a?.learn({ dialect: 'x-ratelimit', remaining: 10, resetMs: 365 * 86_400_000 });
    a?.release('ok');
    expect(rate(h)).toBeCloseTo(10 / 59.5, 10);
    h.timers.advance(60_000);
    expect(h.granted()).toEqual(['a', 'b', 'c']); // b at once (a full bucket), c 5.95 s later
    expect((h.grants[2]?.at ?? 0) - (h.grants[1]?.at ?? 0)).toBeCloseTo(5_950, 0);
  });

  it('pauses no longer than pacing.maxPause, whatever the reset', () => {
    const h = harness([{ learns: true }], { maxLearnedPauseMs: 60_000 });
    h.request('a');
    h.request('b');
    const a = h.grants[0]?.ticket;
    a?.learn({ dialect: 'ietf', remaining: 0, resetMs: 999_999_999_999_999_000 });
    a?.release('ok');
    h.timers.advance(59_999);
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(1);
    expect(h.granted()).toEqual(['a', 'b']);
  });
});

describe('Scheduler: an adaptive rate', () => {
  const adaptive = { minPerSec: 1, increasePerSec: 1, decrease: 0.5, windowMs: 1000, probeAbove: false };

  it('slows down on a 429 and the bucket follows from the next release', () => {
    const h = harness([{ ratePerSec: 40, adaptive }]);
    for (let i = 0; i < 4; i++) h.request(`r${i}`);
    h.timers.advance(25); // r0 at 0, r1 at 25
    h.grants[1]?.ticket.release('throttled'); // nothing measured yet worth more: 40 * 0.5
    expect(h.scheduler.snapshot().rules[0]?.effectiveRatePerSec).toBe(20);
    h.timers.advance(200);
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 25, 75, 125]);
  });
});
