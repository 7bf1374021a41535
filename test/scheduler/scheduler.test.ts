import { describe, expect, it } from 'vitest';
import { Ticket } from '../../src/scheduler/model.js';
import { harness } from './helpers.js';

describe('Scheduler: one rule', () => {
  it('releases at the rate: 10/s, burst 1 grants at t0, +100 ms, +200 ms', () => {
    const h = harness([{ ratePerSec: 10 }]);
    for (const id of ['a', 'b', 'c', 'd', 'e']) h.request(id);
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(99);
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(1);
    expect(h.granted()).toEqual(['a', 'b']);
    h.timers.advance(150);
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 100, 200]);
  });

  it('lets a burst through at once, then paces', () => {
    const h = harness([{ ratePerSec: 10, burst: 3 }]);
    for (const id of ['a', 'b', 'c', 'd', 'e']) h.request(id);
    expect(h.granted()).toEqual(['a', 'b', 'c']);
    h.timers.advance(200);
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 0, 0, 100, 200]);
  });

  it('handles rates below one per second (1/m)', () => {
    const h = harness([{ ratePerSec: 1 / 60 }]);
    h.request('a');
    h.request('b');
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(59_999);
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(1);
    expect(h.granted()).toEqual(['a', 'b']);
  });

  it('keeps arrival order within a key', () => {
    const h = harness([{ keyed: true, ratePerSec: 100 }]);
    for (let i = 0; i < 20; i++) h.request(`r${i}`, ['k']);
    h.timers.advance(1000);
    expect(h.granted()).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
  });

  it('never exceeds the concurrency cap and refills slots on release', () => {
    const h = harness([{ concurrency: 2 }]);
    for (const id of ['a', 'b', 'c', 'd', 'e']) h.request(id);
    expect(h.granted()).toEqual(['a', 'b']);
    expect(h.scheduler.inFlight).toBe(2);
    h.grants[0]?.ticket.release('ok');
    expect(h.granted()).toEqual(['a', 'b', 'c']);
    expect(h.scheduler.inFlight).toBe(2);
    h.grants[0]?.ticket.release('ok'); // idempotent: no extra slot
    expect(h.granted()).toEqual(['a', 'b', 'c']);
    h.releaseAll();
    expect(h.granted()).toEqual(['a', 'b', 'c', 'd', 'e']);
    h.releaseAll();
    expect(h.scheduler.inFlight).toBe(0);
  });

  it('does not drift when timers fire slightly late: releases are accounted when they were due', () => {
    const h = harness([{ ratePerSec: 20 }]);
    h.timers.lateMs = 0.8; // within the 1 ms write tolerance
    for (let i = 0; i < 41; i++) h.request(`r${i}`);
    h.timers.advance(3_000);
    const times = h.grants.map((g) => g.at - 1000);
    // Every release after the first is due at 50 ms * i and happens 0.8 ms late, never later.
    expect(times[0]).toBe(0);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeCloseTo(50 * i + 0.8, 9);
  });

  it('never bunches releases when timers fire very late: the schedule moves instead', () => {
    const h = harness([{ ratePerSec: 20 }]);
    h.timers.lateMs = 5;
    for (let i = 0; i < 21; i++) h.request(`r${i}`);
    h.timers.advance(3_000);
    const times = h.grants.map((g) => g.at - 1000);
    for (let i = 1; i < times.length; i++) expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(49);
    // 21 releases never fit in one second: the first and the 21st are more than 1000 ms apart.
    expect((times[20] as number) - (times[0] as number)).toBeGreaterThan(1000);
  });

  it('re-bases on the write when an attempt leaves late, so the next one keeps its spacing', () => {
    const h = harness([{ ratePerSec: 20 }]);
    const a = h.ticket(h.request('a', [], { written: false }));
    h.request('b');
    h.request('c');
    h.timers.advance(20);
    a.sent(); // written 20 ms after its release (a new connection)
    h.timers.advance(200);
    // b waits for 50 ms after a's write, less the 1 ms tolerance; c 50 ms after b.
    expect(h.grants.map((g) => [g.id, g.at - 1000])).toEqual([
      ['a', 0],
      ['b', 69],
      ['c', 119],
    ]);
  });

  it('ignores write delays within the tolerance', () => {
    const h = harness([{ ratePerSec: 20 }]);
    const a = h.ticket(h.request('a', [], { written: false }));
    h.request('b');
    h.timers.advance(1);
    a.sent();
    h.timers.advance(100);
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 50]);
  });

  it('releases nothing more while a release is not yet written, for at most a second', () => {
    const h = harness([{ ratePerSec: 4, burst: 1 }]);
    h.request('a', [], { written: false });
    h.request('b');
    h.timers.advance(250); // b's token is there, but a is not written yet
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(749);
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(1); // a's connection never opened: the gate stops waiting
    expect(h.granted()).toEqual(['a', 'b']);
  });

  it('keeps the schedule when a release waited for a write that came within the tolerance', () => {
    // 2000/s: releases every 0.5 ms, closer than the 1 ms a write may take without re-basing.
    const h = harness([{ ratePerSec: 2000 }]);
    const a = h.ticket(h.request('a', [], { written: false }));
    h.request('b', [], { written: false });
    h.request('c');
    h.timers.advance(0.8); // b was due at 0.5 but waits for a's write
    a.sent();
    h.grants[1]?.ticket.sent();
    h.timers.advance(5);
    // b goes at a's write, booked at its due time: c is due 0.5 ms after b's due time, not after
    // the write (which would push every later release back by 0.3 ms).
    const times = h.grants.map((g) => g.at - 1000);
    expect(times).toHaveLength(3);
    [0, 0.8, 1].forEach((t, i) => expect(times[i]).toBeCloseTo(t, 6));
  });

  it('holds only the release that takes the last whole token of a burst', () => {
    const h = harness([{ ratePerSec: 1, burst: 3 }]);
    h.request('a', [], { written: false });
    h.request('b', [], { written: false });
    h.request('c');
    // a and b leave a full token or more behind: the bucket allows them at the same instant, so
    // they may reach the upstream together. c would take the last one: it waits for their writes.
    expect(h.granted()).toEqual(['a', 'b']);
    h.timers.advance(999);
    expect(h.granted()).toEqual(['a', 'b']);
    h.timers.advance(1);
    expect(h.granted()).toEqual(['a', 'b', 'c']);
  });

  it('frees the hold when an unwritten release is given back', () => {
    const h = harness([{ ratePerSec: 1000, burst: 5 }]);
    const a = h.ticket(h.request('a', [], { written: false }));
    h.request('b');
    a.release('dropped');
    expect(h.granted()).toEqual(['a', 'b']);
  });

  it('holds back the safety margin', () => {
    const h = harness([{ ratePerSec: 20 }], { marginFraction: 0.01 });
    for (let i = 0; i < 3; i++) h.request(`r${i}`);
    h.timers.advance(1_000);
    const interval = 1000 / (20 * 0.99);
    const times = h.grants.map((g) => g.at - 1000);
    expect(times).toHaveLength(3);
    times.forEach((t, i) => expect(t).toBeCloseTo(i * interval, 6));
  });
});

describe('Scheduler: several rules', () => {
  it('takes tokens of every rule together, and never spends one rule while another blocks', () => {
    // A global 10/s shared by all keys, and 1/s per key.
    const h = harness([{ ratePerSec: 10 }, { keyed: true, ratePerSec: 1 }]);
    h.request('a1', ['', 'A']);
    h.request('a2', ['', 'A']); // blocked by A's own 1/s until +1000
    h.request('b1', ['', 'B']);
    h.request('c1', ['', 'C']);
    expect(h.granted()).toEqual(['a1']);
    h.timers.advance(100);
    expect(h.granted()).toEqual(['a1', 'b1']); // the global token went to B, not to a2
    h.timers.advance(100);
    expect(h.granted()).toEqual(['a1', 'b1', 'c1']);
    h.timers.advance(800);
    expect(h.granted()).toEqual(['a1', 'b1', 'c1', 'a2']);
    expect(h.grants.map((g) => g.at - 1000)).toEqual([0, 100, 200, 1000]);
  });

  it('serves keys that share a rule in turn: a light key does not wait behind a heavy backlog', () => {
    const h = harness([{ ratePerSec: 10 }, { keyed: true, concurrency: 1000 }]);
    for (let i = 0; i < 50; i++) h.request(`heavy${i}`, ['', 'H']);
    h.timers.advance(100); // heavy0, heavy1 granted
    h.request('light', ['', 'L']);
    h.timers.advance(200);
    const order = h.granted();
    expect(order.indexOf('light')).toBeLessThanOrEqual(3);
    expect(order.slice(0, 2)).toEqual(['heavy0', 'heavy1']);
  });

  it('alternates between two busy keys, in the order they started waiting', () => {
    const h = harness([{ ratePerSec: 10 }, { keyed: true, concurrency: 1000 }]);
    for (let i = 0; i < 4; i++) h.request(`a${i}`, ['', 'A']);
    for (let i = 0; i < 4; i++) h.request(`b${i}`, ['', 'B']);
    h.timers.advance(1000);
    // a0 took the only token; A was then waiting before B arrived, so A goes first, then turns.
    expect(h.granted()).toEqual(['a0', 'a1', 'b0', 'a2', 'b1', 'a3', 'b2', 'b3']);
  });

  it('respects a per-key concurrency cap under a shared rate', () => {
    const h = harness([{ ratePerSec: 100 }, { keyed: true, concurrency: 1 }]);
    for (let i = 0; i < 3; i++) h.request(`a${i}`, ['', 'A']);
    h.request('b0', ['', 'B']);
    h.timers.advance(1000);
    expect(h.granted()).toEqual(['a0', 'b0']);
    h.grants[0]?.ticket.release('ok');
    h.timers.advance(10);
    expect(h.granted()).toEqual(['a0', 'b0', 'a1']);
  });
});

describe('Scheduler: refusals', () => {
  it('refuses at once when the queue is full, with a predicted Retry-After', () => {
    const h = harness([{ ratePerSec: 10 }], { maxQueued: 3 });
    h.request('a');
    h.request('b');
    h.request('c');
    h.request('d'); // a granted, b c d queued = 3
    const refusal = h.request('e');
    expect(refusal).toEqual({ code: 'SLUICE_QUEUE_FULL', retryAfterMs: 400, keyRatePerSec: 10 });
  });

  it('applies maxPerKey to one key only', () => {
    const h = harness([{ keyed: true, ratePerSec: 1 }], { maxQueuedPerKey: 2 });
    h.request('a0', ['A']);
    h.request('a1', ['A']);
    h.request('a2', ['A']);
    const refused = h.request('a3', ['A']);
    expect(refused).toMatchObject({ code: 'SLUICE_QUEUE_FULL' });
    expect(h.request('b0', ['B'])).toBeInstanceOf(Ticket);
  });

  it('refuses on arrival when the predicted wait passes the deadline', () => {
    const h = harness([{ ratePerSec: 10 }]);
    const deadline = 1000 + 250;
    for (const id of ['a', 'b', 'c']) expect(h.request(id, [], { deadline })).toBeInstanceOf(Ticket);
    expect(h.request('d', [], { deadline })).toEqual({ code: 'SLUICE_QUEUE_TIMEOUT', retryAfterMs: 50, keyRatePerSec: 10 });
    h.timers.advance(1000);
    expect(h.granted()).toEqual(['a', 'b', 'c']);
    expect(h.refusals).toEqual([]);
  });

  it('refuses a queued request still waiting well past its deadline behind a concurrency cap', () => {
    const h = harness([{ concurrency: 1 }]);
    h.request('a', [], { deadline: 1000 + 500 });
    h.request('b', [], { deadline: 1000 + 500 });
    // Admitted requests get the larger of 1 s and a tenth of their wait as slack past the deadline.
    h.timers.advance(1499);
    expect(h.refusals).toEqual([]);
    h.timers.advance(1);
    expect(h.refusals.map((r) => [r.id, r.at - 1000, r.refusal.code])).toEqual([['b', 1500, 'SLUICE_QUEUE_TIMEOUT']]);
    expect(h.scheduler.queued).toBe(0);
  });

  it('still grants an admitted request whose release comes a little after its deadline', () => {
    const h = harness([{ ratePerSec: 10 }]);
    const deadline = 1000 + 200;
    for (const id of ['a', 'b', 'c']) expect(h.request(id, [], { deadline })).toBeInstanceOf(Ticket); // c predicted at 200 ms
    h.grants[0]?.ticket.pauseKey(1000 + 150); // then something the prediction did not know
    h.timers.advance(2000);
    expect(h.granted()).toEqual(['a', 'b', 'c']);
    expect(h.refusals).toEqual([]);
  });
});

describe('Scheduler: cancellation, pauses and retries', () => {
  it('removes a cancelled request at once, without spending its token', () => {
    const h = harness([{ ratePerSec: 10 }]);
    h.request('a');
    const b = h.ticket(h.request('b'));
    h.request('c');
    expect(b.cancel()).toBe(true);
    expect(b.cancel()).toBe(false);
    expect(h.scheduler.queued).toBe(1);
    h.timers.advance(100);
    expect(h.grants.map((g) => [g.id, g.at - 1000])).toEqual([
      ['a', 0],
      ['c', 100],
    ]);
  });

  it('gives the tokens back when a granted request was never sent', () => {
    const h = harness([{ ratePerSec: 10 }]);
    h.request('a');
    h.request('b');
    h.grants[0]?.ticket.release('dropped');
    expect(h.granted()).toEqual(['a', 'b']);
    expect(h.grants[1]?.at).toBe(1000);
  });

  it('pauses a key until the given instant; other keys keep flowing', () => {
    const h = harness([{ ratePerSec: 100 }, { keyed: true, ratePerSec: 100 }]);
    h.request('a0', ['', 'A']);
    h.grants[0]?.ticket.pauseKey(1000 + 2_000);
    h.grants[0]?.ticket.release('throttled');
    for (let i = 1; i <= 3; i++) h.request(`a${i}`, ['', 'A']);
    h.request('b0', ['', 'B']);
    h.timers.advance(1_999);
    expect(h.granted()).toEqual(['a0', 'b0']);
    h.timers.advance(1);
    expect(h.granted()).toEqual(['a0', 'b0', 'a1']);
    h.timers.advance(20);
    expect(h.granted()).toEqual(['a0', 'b0', 'a1', 'a2', 'a3']);
    expect(h.grants.slice(2).map((g) => g.at - 1000)).toEqual([2000, 2010, 2020]);
  });

  it('puts a retry at the head of its key, past the queue bounds', () => {
    const h = harness([{ keyed: true, ratePerSec: 10 }], { maxQueuedPerKey: 1 });
    h.request('first', ['A']);
    h.request('queued', ['A']);
    expect(h.request('extra', ['A'])).toMatchObject({ code: 'SLUICE_QUEUE_FULL' });
    expect(h.request('retry', ['A'], { retry: true })).toBeInstanceOf(Ticket);
    h.timers.advance(500);
    expect(h.granted()).toEqual(['first', 'retry', 'queued']);
  });
});

describe('Scheduler: keys', () => {
  it('forgets idle keys: a million keys sent once each stay bounded by the idle LRU', () => {
    const h = harness([{ keyed: true, ratePerSec: 1 }], { maxIdleKeys: 100 });
    for (let i = 0; i < 1_000_000; i++) {
      h.request(`r${i}`, [`key-${i}`]);
      h.grants[i]?.ticket.release('ok');
    }
    expect(h.grants.length).toBe(1_000_000);
    const snapshot = h.scheduler.snapshot();
    expect(snapshot.keys).toBe(100);
    expect(snapshot.lanes).toBe(0);
    expect(snapshot.queued).toBe(0);
  });

  it('never evicts a key with queued work', () => {
    const h = harness([{ keyed: true, ratePerSec: 1 }], { maxIdleKeys: 10 });
    h.request('busy0', ['busy']);
    h.request('busy1', ['busy']); // waits a second
    for (let i = 0; i < 1000; i++) {
      h.request(`r${i}`, [`key-${i}`]);
    }
    h.releaseAll();
    expect(h.scheduler.gateSnapshot(0, 'busy')?.queued).toBe(1);
    h.timers.advance(1000);
    expect(h.granted()).toContain('busy1');
  });

  it('remembers an idle key while its bucket is refilling, then lets it go', () => {
    const h = harness([{ keyed: true, ratePerSec: 1 }]);
    h.request('a', ['A']);
    h.releaseAll();
    expect(h.scheduler.gateSnapshot(0, 'A')?.tokens).toBe(0);
    h.request('b', ['A']); // must still wait for A's bucket
    expect(h.granted()).toEqual(['a']);
    h.timers.advance(1000);
    expect(h.granted()).toEqual(['a', 'b']);
    h.releaseAll();
    h.timers.advance(1001);
    expect(h.scheduler.gateSnapshot(0, 'A')).toBeUndefined();
  });

  it('counts the keys in memory as they come, go idle, come back and are forgotten', () => {
    const h = harness(
      [
        { keyed: true, ratePerSec: 1 },
        { ratePerSec: 1000, burst: 10 },
      ],
      { maxIdleKeys: 2 },
    );
    const keys = (): number => h.scheduler.snapshot().rules[0]?.keys ?? Number.NaN;
    h.request('a', ['A', '']);
    h.request('b', ['B', '']);
    expect(keys()).toBe(2); // in flight
    expect(h.scheduler.snapshot().rules[1]?.keys).toBe(1); // a rule without a key has one
    h.releaseAll();
    expect(keys()).toBe(2); // idle, their buckets refilling
    h.request('c', ['A', '']); // A comes back from the idle cache: still one key
    expect(keys()).toBe(2);
    h.timers.advance(1100);
    expect(h.granted()).toEqual(['a', 'b', 'c']);
    h.releaseAll();
    h.request('d', ['C', '']);
    h.request('e', ['D', '']);
    h.releaseAll();
    expect(keys()).toBe(2); // the idle cache holds two: the oldest were evicted
    expect(h.scheduler.snapshot().keys).toBe(2);
    h.timers.advance(1001);
    h.request('f', ['C', '']); // C's state expired: a new key replaces it
    expect(keys()).toBe(2);
    expect(h.granted()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });
});

describe('Scheduler: shutdown', () => {
  it('keeps releasing queued requests while draining, refuses new ones, then refuses the rest on close', () => {
    const h = harness([{ ratePerSec: 10 }]);
    for (const id of ['a', 'b', 'c', 'd']) h.request(id);
    h.scheduler.drain();
    expect(h.request('late')).toEqual({ code: 'SLUICE_SHUTTING_DOWN', retryAfterMs: 0 });
    expect(h.request('retry', [], { retry: true })).toBeInstanceOf(Ticket);
    h.timers.advance(100);
    expect(h.granted()).toEqual(['a', 'retry']);
    h.scheduler.close();
    expect(h.refusals.map((r) => [r.id, r.refusal.code])).toEqual([
      ['b', 'SLUICE_SHUTTING_DOWN'],
      ['c', 'SLUICE_SHUTTING_DOWN'],
      ['d', 'SLUICE_SHUTTING_DOWN'],
    ]);
    h.timers.advance(1000);
    expect(h.granted()).toEqual(['a', 'retry']);
    expect(h.timers.pending).toBe(0);
  });
});
