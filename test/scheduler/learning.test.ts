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
    first?.learn({ dialect: 'x-ratelimit', remaining: 50, resetMs: 10_000 }); // 5/s
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
    h.grants[0]?.ticket.learn({ dialect: 'x-ratelimit', remaining: 1000, resetMs: 10_000 });
    expect(h.scheduler.snapshot().rules[0]?.effectiveRatePerSec).toBe(100);
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
