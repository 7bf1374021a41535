import { describe, expect, it } from 'vitest';
import { harness } from './helpers.js';

describe('Scheduler: priorities within a key', () => {
  it('serves high before normal before low, each in arrival order', () => {
    const h = harness([{ keyed: true, ratePerSec: 10 }], { priorityAgingMs: 60_000 });
    h.request('first', ['k']); // granted at once
    h.request('low1', ['k'], { priority: 2 });
    h.request('normal1', ['k'], { priority: 1 });
    h.request('high1', ['k'], { priority: 0 });
    h.request('low2', ['k'], { priority: 2 });
    h.request('high2', ['k'], { priority: 0 });
    h.timers.advance(1000);
    expect(h.granted()).toEqual(['first', 'high1', 'high2', 'normal1', 'low1', 'low2']);
  });

  it('lets a low-priority request rise with age: it never starves behind a stream of high ones', () => {
    const h = harness([{ keyed: true, ratePerSec: 10 }], { priorityAgingMs: 300 });
    h.request('first', ['k']);
    h.request('low', ['k'], { priority: 2 });
    // A high-priority request arrives every 100 ms, as fast as the rate serves them.
    for (let i = 0; i < 10; i++) {
      h.request(`high${i}`, ['k'], { priority: 0 });
      h.timers.advance(100);
    }
    const order = h.granted();
    // After two aging periods (600 ms) the low one ranks as high, and it is older than the rest.
    expect(order.indexOf('low')).toBeGreaterThan(0);
    expect(order.indexOf('low')).toBeLessThanOrEqual(7);
  });

  it('ignores priorities when they are off: one FIFO', () => {
    const h = harness([{ keyed: true, ratePerSec: 10 }]);
    h.request('first', ['k']);
    h.request('low', ['k'], { priority: 2 });
    h.request('high', ['k'], { priority: 0 });
    h.timers.advance(500);
    expect(h.granted()).toEqual(['first', 'low', 'high']);
  });

  it('refuses whichever queued request reaches its deadline first, whatever its priority', () => {
    const h = harness([{ keyed: true, concurrency: 1 }], { priorityAgingMs: 60_000 });
    h.request('busy', ['k']);
    h.request('low', ['k'], { priority: 2, deadline: 1000 + 100 });
    h.request('high', ['k'], { priority: 0 });
    h.timers.advance(2000);
    expect(h.refusals.map((r) => r.id)).toEqual(['low']);
    h.releaseAll();
    expect(h.granted()).toEqual(['busy', 'high']);
  });
});
