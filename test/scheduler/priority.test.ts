import { describe, expect, it } from 'vitest';
import { AgingQueue } from '../../src/core/aging-queue.js';
import { Ticket, type TicketOwner } from '../../src/scheduler/model.js';
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

  it('refuses a request with a short deadline (Sluice-Max-Wait) queued behind others of its priority with longer ones', () => {
    const h = harness([{ keyed: true, concurrency: 1 }], { priorityAgingMs: 60_000 });
    h.request('busy', ['k']);
    h.request('patient1', ['k'], { deadline: 1000 + 60_000 });
    h.request('patient2', ['k'], { deadline: 1000 + 60_000 });
    h.request('hurried', ['k'], { deadline: 1000 + 100 }); // refused from 1 s after it (an admitted request's slack)
    h.timers.advance(1_500);
    h.grants[0]?.ticket.release('ok');
    // The slot frees: the request past its deadline is refused now, not left behind the patient ones.
    expect(h.refusals.map((r) => ({ id: r.id, at: r.at }))).toEqual([{ id: 'hurried', at: 2_500 }]);
    expect(h.granted()).toEqual(['busy', 'patient1']);
  });
});

describe('AgingQueue: the first deadline, in or out of queue order', () => {
  const ticket = (deadlineAt: number, priority: 0 | 1 | 2 = 1): Ticket =>
    new Ticket({ owner: {} as TicketOwner, gates: [], enqueuedAt: 0, deadlineAt, priority, callbacks: { onGrant: () => {}, onRefuse: () => {} } });

  it('ties go by queue order: priority, then place (a retry first)', () => {
    const q = new AgingQueue<Ticket>(1000);
    const [a, b, retry, high] = [ticket(Infinity), ticket(Infinity), ticket(Infinity), ticket(Infinity, 0)];
    q.push(a);
    q.push(b);
    q.unshift(retry);
    q.push(high);
    expect(q.firstDeadline).toBe(high);
    q.remove(high);
    expect(q.firstDeadline).toBe(retry);
    q.push(ticket(5)); // out of order: from now on the heap answers, with the same ties
    q.remove(q.firstDeadline as Ticket);
    expect([q.firstDeadline, (q.remove(retry), q.firstDeadline), (q.remove(a), q.firstDeadline)]).toEqual([retry, a, b]);
  });

  it('always the earliest of those still queued, through pushes, retries and removals (fixed pseudo-random deadlines)', () => {
    const q = new AgingQueue<Ticket>(1000);
    const queued = new Set<Ticket>();
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let step = 0; step < 5_000; step++) {
      const r = random();
      if (r < 0.45 || queued.size === 0) {
        const t = ticket(Math.floor(random() * 1000), Math.floor(random() * 3) as 0 | 1 | 2);
        if (r < 0.05) q.unshift(t);
        else q.push(t);
        queued.add(t);
      } else {
        const all = [...queued];
        const victim = all[Math.floor(random() * all.length)] as Ticket;
        q.remove(victim);
        queued.delete(victim);
      }
      const min = Math.min(...[...queued].map((t) => t.deadlineAt));
      expect(q.firstDeadline?.deadlineAt ?? Infinity).toBe(min);
      expect(q.size).toBe(queued.size);
    }
  });
});
