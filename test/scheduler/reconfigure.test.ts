import { describe, expect, it } from 'vitest';
import { harness, rules } from './helpers.js';

const bounds = { maxQueued: 10_000, maxQueuedPerKey: 10_000, maxIdleKeys: 1_000, marginFraction: 0 };

describe('Scheduler#reconfigure (hot reload)', () => {
  it('applies a new rate from the next release, keeping the queue and the tokens', () => {
    const h = harness([{ ratePerSec: 10 }]);
    for (let i = 0; i < 6; i++) h.request(`r${i}`);
    h.timers.advance(100); // r0 at 0, r1 at 100
    expect(h.scheduler.reconfigure({ ...bounds, rules: rules({ ratePerSec: 20 }) })).toBe(true);
    h.timers.advance(1000);
    // The bucket was empty at 100 ms and stays so; from there tokens come every 50 ms.
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 100, 150, 200, 250, 300]);
    expect(h.scheduler.snapshot().rules[0]?.configuredRatePerSec).toBe(20);
  });

  it('releases waiters at once when a concurrency cap grows', () => {
    const h = harness([{ concurrency: 1 }]);
    for (const id of ['a', 'b', 'c']) h.request(id);
    expect(h.granted()).toEqual(['a']);
    h.scheduler.reconfigure({ ...bounds, rules: rules({ concurrency: 3 }) });
    expect(h.granted()).toEqual(['a', 'b', 'c']);
  });

  it('keeps a pause', () => {
    const h = harness([{ keyed: true, ratePerSec: 100 }]);
    h.request('a', ['k']);
    h.grants[0]?.ticket.pauseKey(1000 + 500);
    h.releaseAll();
    h.request('b', ['k']);
    h.scheduler.reconfigure({ ...bounds, rules: rules({ keyed: true, ratePerSec: 200 }) });
    h.timers.advance(499);
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(1);
    expect(h.granted()).toEqual(['a', 'b']);
  });

  it('refuses, changing nothing, when the rules change shape', () => {
    const h = harness([{ ratePerSec: 10 }]);
    h.request('a');
    h.request('b');
    expect(h.scheduler.reconfigure({ ...bounds, rules: rules({ ratePerSec: 10 }, { keyed: true, ratePerSec: 1 }) })).toBe(false);
    expect(h.scheduler.reconfigure({ ...bounds, rules: rules({ keyed: true, ratePerSec: 10 }) })).toBe(false);
    expect(h.scheduler.reconfigure({ ...bounds, rules: rules({ concurrency: 10 }) })).toBe(false);
    h.timers.advance(100);
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 100]);
  });

  it('applies new queue bounds to new arrivals', () => {
    const h = harness([{ ratePerSec: 1 }]);
    h.request('a');
    h.request('b');
    h.scheduler.reconfigure({ ...bounds, maxQueued: 1, rules: rules({ ratePerSec: 1 }) });
    expect(h.request('c')).toMatchObject({ code: 'SLUICE_QUEUE_FULL' });
  });
});

describe('Scheduler#reconfigure: keys in memory', () => {
  it('keeps counting keys right when the idle bound changes, expired idle keys included', () => {
    const h = harness([{ keyed: true, ratePerSec: 1 }], { maxIdleKeys: 10 });
    const keys = (): number => h.scheduler.snapshot().keys;
    for (const key of ['A', 'B', 'C']) h.request(key, [key]);
    h.releaseAll();
    expect(keys()).toBe(3); // idle, their buckets refilling for a second
    h.timers.advance(1_001); // expired, not yet dropped by the cache
    h.scheduler.reconfigure({ ...bounds, maxIdleKeys: 20, rules: rules({ keyed: true, ratePerSec: 1 }) });
    expect(keys()).toBe(0);
    h.request('d', ['D']);
    expect(keys()).toBe(1);
  });
});
