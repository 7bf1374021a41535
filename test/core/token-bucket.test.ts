import { describe, expect, it } from 'vitest';
import { TokenBucket, gcra } from '../../src/core/token-bucket.js';

// Fixed instants, as in golang.org/x/time/rate's rate_test.go: t(k) = t0 + k * 100 ms. The clock is
// an arbitrary monotonic origin, not an epoch.
const t0 = 1_000_000;
const d = 100;
const t = (k: number): number => t0 + k * d;

/** One call of `take(at, n)` and its expected answer. */
interface Take {
  readonly at: number;
  readonly n: number;
  readonly ok: boolean;
}

function run(bucket: TokenBucket, takes: readonly Take[]): void {
  takes.forEach(({ at, n, ok }, step) => {
    expect(bucket.take(at, n), `step ${step}: take(t0${at >= t0 ? '+' : ''}${at - t0}ms, ${n})`).toBe(ok);
  });
}

describe('TokenBucket: construction', () => {
  it.each([
    { options: { ratePerSec: 0, burst: 1 }, message: 'ratePerSec must be a positive finite number, got 0' },
    { options: { ratePerSec: -1, burst: 1 }, message: 'ratePerSec must be a positive finite number, got -1' },
    { options: { ratePerSec: Number.NaN, burst: 1 }, message: 'ratePerSec must be a positive finite number, got NaN' },
    { options: { ratePerSec: Number.POSITIVE_INFINITY, burst: 1 }, message: 'ratePerSec must be a positive finite number, got Infinity' },
    { options: { ratePerSec: 10, burst: 0 }, message: 'burst must be an integer >= 1, got 0' },
    { options: { ratePerSec: 10, burst: -1 }, message: 'burst must be an integer >= 1, got -1' },
    { options: { ratePerSec: 10, burst: 1.5 }, message: 'burst must be an integer >= 1, got 1.5' },
    { options: { ratePerSec: 10, burst: Number.NaN }, message: 'burst must be an integer >= 1, got NaN' },
  ])('refuses $options with a RangeError', ({ options, message }) => {
    expect(() => new TokenBucket(options)).toThrow(new RangeError(message));
  });

  it.each([
    { ratePerSec: 10, burst: 1, intervalMs: 100 },
    { ratePerSec: 20, burst: 5, intervalMs: 50 },
    { ratePerSec: 1000, burst: 1, intervalMs: 1 },
    { ratePerSec: 0.5, burst: 2, intervalMs: 2000 },
    { ratePerSec: 1 / 60, burst: 1, intervalMs: 60_000 },
  ])('ratePerSec $ratePerSec, burst $burst: one token every $intervalMs ms', ({ ratePerSec, burst, intervalMs }) => {
    const bucket = new TokenBucket({ ratePerSec, burst });
    expect(bucket.ratePerSec).toBe(ratePerSec);
    expect(bucket.burst).toBe(burst);
    expect(bucket.intervalMs).toBe(intervalMs);
  });

  it('starts full: burst tokens at any instant, available since forever', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 3 });
    expect([bucket.tokensAt(t0), bucket.tokensAt(0), bucket.tokensAt(-1e12)]).toEqual([3, 3, 3]);
    expect(bucket.availableAt(1)).toBe(Number.NEGATIVE_INFINITY);
    expect(bucket.availableAt(3)).toBe(Number.NEGATIVE_INFINITY);
    expect(bucket.fullAt()).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('TokenBucket: take(at, n)', () => {
  it('burst 1 at 10/s: one token per 100 ms, n > burst always fails', () => {
    run(new TokenBucket({ ratePerSec: 10, burst: 1 }), [
      { at: t(0), n: 1, ok: true },
      { at: t(0), n: 1, ok: false },
      { at: t(0), n: 1, ok: false },
      { at: t(1) - 1, n: 1, ok: false },
      { at: t(1), n: 1, ok: true },
      { at: t(1), n: 1, ok: false },
      { at: t(2), n: 2, ok: false }, // burst is 1, so n = 2 never fits
      { at: t(2), n: 1, ok: true },
      { at: t(2), n: 1, ok: false },
    ]);
  });

  it('burst 3 at 10/s: takes several tokens at once, refills one per 100 ms, n = 0 always fits', () => {
    run(new TokenBucket({ ratePerSec: 10, burst: 3 }), [
      { at: t(0), n: 2, ok: true },
      { at: t(0), n: 2, ok: false },
      { at: t(0), n: 1, ok: true },
      { at: t(0), n: 1, ok: false },
      { at: t(1), n: 4, ok: false },
      { at: t(2), n: 1, ok: true },
      { at: t(3), n: 1, ok: true },
      { at: t(4), n: 1, ok: true },
      { at: t(4), n: 1, ok: true },
      { at: t(4), n: 1, ok: false },
      { at: t(9), n: 3, ok: true },
      { at: t(9), n: 0, ok: true },
      { at: t(9), n: 1, ok: false },
    ]);
  });

  it('a refused take changes nothing', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    expect(bucket.take(t(0), 2)).toBe(true);
    const before = [bucket.fullAt(), bucket.tokensAt(t(1)), bucket.availableAt(1)];
    expect(bucket.take(t(0), 1)).toBe(false);
    expect(bucket.take(t(1), 3)).toBe(false);
    expect([bucket.fullAt(), bucket.tokensAt(t(1)), bucket.availableAt(1)]).toEqual(before);
    expect(before).toEqual([t(2), 1, t(1)]);
  });

  it('a rate below one per second (1/m): the second token comes 60 s after the first', () => {
    run(new TokenBucket({ ratePerSec: 1 / 60, burst: 1 }), [
      { at: t0, n: 1, ok: true },
      { at: t0 + 1_000, n: 1, ok: false },
      { at: t0 + 59_999, n: 1, ok: false },
      { at: t0 + 60_000, n: 1, ok: true },
      { at: t0 + 60_000, n: 1, ok: false },
      { at: t0 + 180_000, n: 1, ok: true },
      { at: t0 + 180_000, n: 1, ok: false },
    ]);
  });

  it('0.5/s with burst 2: two at once, then one per 2 s', () => {
    run(new TokenBucket({ ratePerSec: 0.5, burst: 2 }), [
      { at: t0, n: 1, ok: true },
      { at: t0, n: 1, ok: true },
      { at: t0, n: 1, ok: false },
      { at: t0 + 1_999, n: 1, ok: false },
      { at: t0 + 2_000, n: 1, ok: true },
      { at: t0 + 6_000, n: 2, ok: true },
      { at: t0 + 6_000, n: 1, ok: false },
    ]);
  });

  it('a rate whose interval is not a whole number of ms (3/s) loses no token to rounding', () => {
    const intervalMs = 1000 / 3;
    run(new TokenBucket({ ratePerSec: 3, burst: 1 }), [
      { at: 0, n: 1, ok: true },
      { at: intervalMs, n: 1, ok: true },
      { at: 2 * intervalMs, n: 1, ok: true },
      { at: 1000, n: 1, ok: true },
      { at: 1000, n: 1, ok: false },
    ]);
    // x/time/rate's TestLimiter_noTruncationErrors: a limit of 1/1.3 per second allows its first token.
    expect(new TokenBucket({ ratePerSec: 0.7692307692307693, burst: 1 }).take(t0)).toBe(true);
  });

  it('books the tokens at `at`, not at a later instant: a late caller does not push later releases back', () => {
    const bucket = new TokenBucket({ ratePerSec: 20, burst: 1 });
    expect(bucket.take(t0)).toBe(true);
    expect(bucket.availableAt()).toBe(t0 + 50);
    // The scheduler's timer fired 3 ms late, but it books the token at the instant it was due.
    expect(bucket.take(t0 + 50)).toBe(true);
    expect(bucket.availableAt()).toBe(t0 + 100);
  });
});

describe('TokenBucket: the clock going backwards never creates tokens', () => {
  it('burst 3: after a take at t1, a jump back to t0 sees one token, not two', () => {
    // x/time/rate's TestLimiterJumpBackwards allows two at t0; this bucket extrapolates its state
    // back to t0 (tokens at t0 = tokens at t1 minus one refill), which is stricter, never looser.
    run(new TokenBucket({ ratePerSec: 10, burst: 3 }), [
      { at: t(1), n: 1, ok: true }, // start at t1
      { at: t(0), n: 1, ok: true }, // jump back to t0
      { at: t(0), n: 1, ok: false },
      { at: t(0), n: 1, ok: false },
      { at: t(1), n: 1, ok: true },
      { at: t(1), n: 1, ok: false },
      { at: t(2), n: 1, ok: true },
      { at: t(2), n: 1, ok: false },
    ]);
  });

  it('burst 1: after a take at t5, every earlier instant is refused and t6 is the next token', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 1 });
    expect(bucket.take(t(5))).toBe(true);
    run(
      bucket,
      [0, 1, 2, 3, 4, 5].map((k) => ({ at: t(k), n: 1, ok: false })),
    );
    expect(bucket.take(t(6))).toBe(true);
  });

  it.each([
    { k: 6, tokens: 1 },
    { k: 5, tokens: 0 },
    { k: 4, tokens: -1 },
    { k: 0, tokens: -5 },
  ])('tokensAt(t$k) after a take at t5 (burst 1): $tokens', ({ k, tokens }) => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 1 });
    bucket.take(t(5));
    expect(bucket.tokensAt(t(k))).toBe(tokens);
  });

  it('a clock that zigzags never gets more than burst + elapsed * rate tokens', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    const instants = [t(5), t(0), t(5), t(3), t(1), t(5), t(6), t(2), t(6), t(7), t(0), t(7)];
    const granted = instants.filter((at) => bucket.take(at));
    // From the first take at t5 to t7: burst (2) plus two refills, however the clock moves.
    expect(granted).toEqual([t(5), t(5), t(6), t(7)]);
    expect(bucket.tokensAt(t(7))).toBe(0);
  });
});

describe('TokenBucket: tokensAt and availableAt', () => {
  // 10/s, burst 5, three tokens taken at t0: the bucket is full again at t3.
  const bucket = (): TokenBucket => {
    const b = new TokenBucket({ ratePerSec: 10, burst: 5 });
    b.take(t(0), 3);
    return b;
  };

  it.each([
    { at: t(0) - 100, tokens: 1 },
    { at: t(0), tokens: 2 },
    { at: t(0) + 50, tokens: 2.5 },
    { at: t(1), tokens: 3 },
    { at: t(2) + 25, tokens: 4.25 },
    { at: t(3), tokens: 5 },
    { at: t(9), tokens: 5 },
    { at: t(9) + 1e9, tokens: 5 },
  ])('tokensAt($at) = $tokens', ({ at, tokens }) => {
    expect(bucket().tokensAt(at)).toBe(tokens);
  });

  it.each([
    { n: 0, at: t(-2) },
    { n: 1, at: t(-1) },
    { n: 2, at: t(0) },
    { n: 3, at: t(1) },
    { n: 5, at: t(3) },
  ])('availableAt($n) = $at', ({ n, at }) => {
    expect(bucket().availableAt(n)).toBe(at);
  });

  it('availableAt() defaults to one token; fullAt() is availableAt(burst)', () => {
    const b = bucket();
    expect(b.availableAt()).toBe(t(-1));
    expect(b.fullAt()).toBe(t(3));
    expect(b.fullAt()).toBe(b.availableAt(5));
  });

  it('availableAt(n) is the first instant at which take(n) succeeds', () => {
    for (const n of [1, 2, 3, 4, 5]) {
      const b = new TokenBucket({ ratePerSec: 10, burst: 5 });
      b.take(t(0), 5);
      const at = b.availableAt(n);
      expect(at).toBe(t(n));
      expect(b.take(at - 1, n), `n=${n} one ms early`).toBe(false);
      expect(b.take(at, n), `n=${n} on time`).toBe(true);
    }
  });
});

describe('TokenBucket: refund', () => {
  it('gives a token back: the next take at the same instant succeeds', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    run(bucket, [
      { at: t(0), n: 2, ok: true },
      { at: t(0), n: 1, ok: false },
    ]);
    bucket.refund();
    expect(bucket.tokensAt(t(0))).toBe(1);
    expect(bucket.availableAt()).toBe(t(0));
    run(bucket, [
      { at: t(0), n: 1, ok: true },
      { at: t(0), n: 1, ok: false },
    ]);
  });

  it('gives back n tokens', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 4 });
    bucket.take(t(0), 4);
    bucket.refund(3);
    expect(bucket.tokensAt(t(0))).toBe(3);
    expect(bucket.fullAt()).toBe(t(1));
  });

  it('never fills the bucket beyond burst, however much is given back', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    bucket.take(t(0));
    bucket.refund(5);
    expect(bucket.tokensAt(t(0))).toBe(2);
    run(bucket, [
      { at: t(0), n: 2, ok: true },
      { at: t(0), n: 1, ok: false },
      { at: t(1), n: 1, ok: true },
      { at: t(1), n: 1, ok: false },
    ]);
  });

  it('on a bucket never used, changes nothing', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    bucket.refund();
    expect(bucket.tokensAt(t(0))).toBe(2);
    expect(bucket.fullAt()).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('TokenBucket: setRate keeps the tokens held', () => {
  it('speeding up (5/s -> 10/s, burst 2): the token held at t2 stays, the next comes 100 ms later', () => {
    const bucket = new TokenBucket({ ratePerSec: 5, burst: 2 });
    expect(bucket.take(t(0), 2)).toBe(true);
    expect(bucket.tokensAt(t(2))).toBe(1);
    bucket.setRate(t(2), 10);
    expect([bucket.ratePerSec, bucket.intervalMs]).toEqual([10, 100]);
    expect(bucket.tokensAt(t(2))).toBe(1);
    expect(bucket.availableAt(1)).toBe(t(2));
    expect(bucket.availableAt(2)).toBe(t(3));
    run(bucket, [
      { at: t(2), n: 2, ok: false },
      { at: t(2), n: 1, ok: true },
      { at: t(2), n: 1, ok: false },
      { at: t(3), n: 1, ok: true },
    ]);
  });

  it('slowing down (10/s -> 1/m, burst 4): two tokens held at t2 stay, the third comes 60 s later', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 4 });
    bucket.take(t(0), 4);
    bucket.setRate(t(2), 1 / 60);
    expect(bucket.intervalMs).toBe(60_000);
    expect(bucket.tokensAt(t(2))).toBe(2);
    expect(bucket.availableAt(3)).toBe(t(2) + 60_000);
    expect(bucket.fullAt()).toBe(t(2) + 120_000);
  });

  it('keeps a fractional token', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 1 });
    bucket.take(t(0));
    expect(bucket.tokensAt(t(0) + 50)).toBe(0.5);
    bucket.setRate(t(0) + 50, 20);
    expect(bucket.tokensAt(t(0) + 50)).toBe(0.5);
    expect(bucket.availableAt()).toBe(t(0) + 75);
  });

  it('a full bucket stays full; a bucket never used stays never used', () => {
    const used = new TokenBucket({ ratePerSec: 10, burst: 3 });
    used.take(t(0));
    used.setRate(t(9), 1);
    expect(used.tokensAt(t(9))).toBe(3);
    expect(used.fullAt()).toBe(t(9));

    const fresh = new TokenBucket({ ratePerSec: 10, burst: 3 });
    fresh.setRate(t(0), 1);
    expect(fresh.intervalMs).toBe(1000);
    expect(fresh.tokensAt(t(0))).toBe(3);
    expect(fresh.fullAt()).toBe(Number.NEGATIVE_INFINITY);
  });

  it('the same rate is a no-op', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    bucket.take(t(0), 2);
    bucket.setRate(t(1), 10);
    expect(bucket.fullAt()).toBe(t(2));
  });

  it('with the clock behind the last take, applies from that take: no token is created', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 1 });
    expect(bucket.take(t(5))).toBe(true);
    bucket.setRate(t(0), 20);
    // Applying the faster rate from t0 would refill the token taken at t5 by then.
    expect(bucket.tokensAt(t(5))).toBe(0);
    expect(bucket.take(t(5))).toBe(false);
    expect(bucket.availableAt()).toBe(t(5) + 50);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('refuses %s with a RangeError and keeps its state', (ratePerSec) => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    bucket.take(t(0), 2);
    expect(() => bucket.setRate(t(1), ratePerSec)).toThrow(new RangeError(`ratePerSec must be a positive finite number, got ${ratePerSec}`));
    expect([bucket.ratePerSec, bucket.intervalMs, bucket.fullAt()]).toEqual([10, 100, t(2)]);
  });
});

describe('TokenBucket: setBurst keeps the tokens held', () => {
  it('growing (2 -> 4): the token held at t1 stays, the bucket fills to 4 by t4', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    bucket.take(t(0), 2);
    bucket.setBurst(t(1), 4);
    expect(bucket.burst).toBe(4);
    expect([bucket.tokensAt(t(1)), bucket.tokensAt(t(3)), bucket.tokensAt(t(4))]).toEqual([1, 3, 4]);
    expect(bucket.fullAt()).toBe(t(4));
  });

  it('shrinking (5 -> 2): the four tokens held are capped at 2', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 5 });
    bucket.take(t(0), 1);
    bucket.setBurst(t(0), 2);
    expect(bucket.tokensAt(t(0))).toBe(2);
    expect(bucket.fullAt()).toBe(t(0));
    run(bucket, [
      { at: t(0), n: 2, ok: true },
      { at: t(0), n: 1, ok: false },
    ]);
  });

  it('with the clock behind the last take: no token is created', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 1 });
    bucket.take(t(5));
    bucket.setBurst(t(0), 3);
    expect(bucket.tokensAt(t(5))).toBe(0);
    expect(bucket.take(t(5))).toBe(false);
    expect(bucket.tokensAt(t(6))).toBe(1);
  });

  it('a bucket never used is full at the new burst', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    bucket.setBurst(t(0), 4);
    expect(bucket.tokensAt(t(0))).toBe(4);
    run(bucket, [
      { at: t(0), n: 4, ok: true },
      { at: t(0), n: 1, ok: false },
    ]);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses %s with a RangeError and keeps its state', (burst) => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 2 });
    bucket.take(t(0), 2);
    expect(() => bucket.setBurst(t(1), burst)).toThrow(new RangeError(`burst must be an integer >= 1, got ${burst}`));
    expect([bucket.burst, bucket.fullAt()]).toEqual([2, t(2)]);
  });
});

describe('gcra: the arithmetic on a state of its own (what the Redis store keeps a hint of)', () => {
  // 10/s (100 ms per token), burst 3.
  const interval = 100;
  const burst = 3;

  it('a bucket never used is full, whenever asked', () => {
    expect(gcra.tokensAt(-Infinity, interval, burst, 0)).toBe(3);
    expect(gcra.availableAt(-Infinity, interval, burst)).toBe(-Infinity);
  });

  it('takes, refills, refunds and re-bases on a late use, at fixed instants', () => {
    let tat = -Infinity;
    for (const at of [1000, 1000, 1000]) tat = gcra.take(tat, interval, at);
    expect(tat).toBe(1300);
    expect(gcra.tokensAt(tat, interval, burst, 1000)).toBe(0);
    expect(gcra.availableAt(tat, interval, burst)).toBe(1100);
    expect(gcra.tokensAt(tat, interval, burst, 1150)).toBeCloseTo(1.5, 10);
    expect(gcra.tokensAt(tat, interval, burst, 5000)).toBe(3);
    expect(gcra.refund(tat, interval)).toBe(1200);
    // Used 250 ms after it was taken, 1 ms tolerance: no more tokens than if taken at 1249.
    expect(gcra.usedAt(1100, interval, 1250, 1)).toBe(1349);
    expect(gcra.usedAt(1400, interval, 1250, 1)).toBe(1400);
  });

  it('is the arithmetic TokenBucket runs on', () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 3 });
    let tat = -Infinity;
    for (const at of [0, 10, 20, 130, 135, 400]) {
      expect(bucket.take(at)).toBe(gcra.availableAt(tat, interval, burst) <= at);
      if (gcra.availableAt(tat, interval, burst) <= at) tat = gcra.take(tat, interval, at);
      expect(bucket.fullAt()).toBe(tat);
      expect(bucket.tokensAt(at + 7)).toBe(gcra.tokensAt(tat, interval, burst, at + 7));
    }
  });
});
