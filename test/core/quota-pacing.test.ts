import { describe, expect, it } from 'vitest';
import { paceFromQuota, type QuotaPacing } from '../../src/core/quota-pacing.js';
import type { QuotaInfo } from '../../src/core/ratelimit-headers.js';

const opts = { othersInFlight: 0, maxMs: 600_000 };

describe('paceFromQuota', () => {
  it.each<[string, QuotaInfo, number, QuotaPacing | undefined]>([
    [
      'spreads what remains over the time left, less the half second a whole-second reset overstates it by on average',
      { dialect: 'x-ratelimit', remaining: 50, resetMs: 10_500 },
      0,
      { kind: 'rate', ratePerSec: 5, forMs: 10_500 },
    ],
    ['a reset of a second or less is taken as it is', { dialect: 'ietf', remaining: 3, resetMs: 1_000 }, 0, { kind: 'rate', ratePerSec: 3, forMs: 1_000 }],
    ['counts requests still in flight as spent', { dialect: 'ietf', remaining: 50, resetMs: 10_500 }, 10, { kind: 'rate', ratePerSec: 4, forMs: 10_500 }],
    ['pauses until the reset when nothing is left', { dialect: 'ietf', remaining: 0, resetMs: 3_000 }, 0, { kind: 'pause', forMs: 3_000 }],
    ['...or when what is left is already in flight', { dialect: 'ietf', remaining: 3, resetMs: 3_000 }, 3, { kind: 'pause', forMs: 3_000 }],
    ['a policy alone paces at quota / window', { dialect: 'ietf', limit: 100, windowMs: 10_000 }, 0, { kind: 'rate', ratePerSec: 10, forMs: 10_000 }],
    ['remaining without a reset says nothing usable', { dialect: 'x-ratelimit', remaining: 10 }, 0, undefined],
    ['a reset of 0 says nothing usable', { dialect: 'x-ratelimit', remaining: 10, resetMs: 0 }, 0, undefined],
    ['nothing at all', { dialect: 'x-ratelimit' }, 0, undefined],
  ])('%s', (_name, quota, othersInFlight, expected) => {
    expect(paceFromQuota(quota, { ...opts, othersInFlight })).toEqual(expected);
  });

  it.each<[string, QuotaInfo, QuotaPacing]>([
    ['a pause of a year lasts maxMs', { dialect: 'x-ratelimit', remaining: 0, resetMs: 365 * 86_400_000 }, { kind: 'pause', forMs: 600_000 }],
    // Spread over a year, 10 requests would be one every 36 days: a pause in all but name.
    [
      '10 left for a year are spread over maxMs',
      { dialect: 'x-ratelimit', remaining: 10, resetMs: 365 * 86_400_000 },
      { kind: 'rate', ratePerSec: 10 / 599.5, forMs: 600_000 },
    ],
    [
      '1 left for 10^18 ms (t with 15 digits)',
      { dialect: 'ietf', remaining: 1, resetMs: 999_999_999_999_999_000 },
      { kind: 'rate', ratePerSec: 1 / 599.5, forMs: 600_000 },
    ],
    [
      'a far-future epoch, nothing left',
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 99_999_999_999_000 - 1_700_000_000_000 },
      { kind: 'pause', forMs: 600_000 },
    ],
    [
      'a huge remaining paces fast, not forever',
      { dialect: 'x-ratelimit', remaining: 2 ** 53, resetMs: 1_000 },
      { kind: 'rate', ratePerSec: 2 ** 53, forMs: 1_000 },
    ],
    [
      'a huge policy window: one request per maxMs at least',
      { dialect: 'ietf', limit: 1, windowMs: 1e18 },
      { kind: 'rate', ratePerSec: 1 / 600, forMs: 600_000 },
    ],
    [
      'half a request left for a year (a fractional remaining)',
      { dialect: 'x-ratelimit', remaining: 0.5, resetMs: 365 * 86_400_000 },
      { kind: 'rate', ratePerSec: 1 / 600, forMs: 600_000 },
    ],
  ])('never pauses or paces for longer than maxMs: %s', (_name, quota, expected) => {
    const pacing = paceFromQuota(quota, opts) as QuotaPacing;
    expect(pacing).toEqual(expected);
    expect(pacing.forMs).toBeLessThanOrEqual(opts.maxMs);
    // A request at least every maxMs, and what remains spent within maxMs.
    if (pacing.kind === 'rate') expect(1000 / pacing.ratePerSec).toBeLessThanOrEqual(opts.maxMs);
    if (pacing.kind === 'rate' && quota.remaining !== undefined) expect((quota.remaining * 1000) / pacing.ratePerSec).toBeLessThanOrEqual(opts.maxMs);
  });

  it('maxMs is the configured pacing.maxPause: a smaller one caps sooner', () => {
    expect(paceFromQuota({ dialect: 'ietf', remaining: 0, resetMs: 60_000 }, { othersInFlight: 0, maxMs: 5_000 })).toEqual({ kind: 'pause', forMs: 5_000 });
    expect(paceFromQuota({ dialect: 'ietf', remaining: 9, resetMs: 60_000 }, { othersInFlight: 0, maxMs: 5_000 })).toEqual({
      kind: 'rate',
      ratePerSec: 2,
      forMs: 5_000,
    });
  });
});

describe('paceFromQuota: the policy rate is a floor while something remains', () => {
  const policy = { limit: 100, windowMs: 10_000 }; // 100 per 10 s

  it.each<[string, QuotaInfo, number, QuotaPacing]>([
    // A sliding window at its limit: one request leaves within the next second, which t = 1 says.
    // One request of the window is kept in hand: 99 per 10 s, or every answer at the limit says 0.
    [
      '2 left, t rounded up to 1 s: the policy pace, not 2/s',
      { dialect: 'ietf', remaining: 2, resetMs: 1_000, ...policy },
      0,
      { kind: 'rate', ratePerSec: 9.9, forMs: 1_000 },
    ],
    [
      'a quota of 1 per window is no floor',
      { dialect: 'ietf', remaining: 1, resetMs: 5_000, limit: 1, windowMs: 10_000 },
      0,
      { kind: 'rate', ratePerSec: 1 / 4.5, forMs: 5_000 },
    ],
    [
      'more left than the policy pace would spend: spread it',
      { dialect: 'ietf', remaining: 90, resetMs: 3_500, ...policy },
      0,
      { kind: 'rate', ratePerSec: 30, forMs: 3_500 },
    ],
    ['nothing left: still a pause, whatever the policy', { dialect: 'ietf', remaining: 0, resetMs: 1_000, ...policy }, 0, { kind: 'pause', forMs: 1_000 }],
    ['what is left is in flight: a pause', { dialect: 'ietf', remaining: 2, resetMs: 1_000, ...policy }, 2, { kind: 'pause', forMs: 1_000 }],
    [
      'a limit without a window is no floor',
      { dialect: 'x-ratelimit', remaining: 2, resetMs: 1_000, limit: 100 },
      0,
      { kind: 'rate', ratePerSec: 2, forMs: 1_000 },
    ],
  ])('%s', (_name, quota, othersInFlight, expected) => {
    expect(paceFromQuota(quota, { ...opts, othersInFlight })).toEqual(expected);
  });
});

describe('paceFromQuota: no more released before an answer can say more than what remains', () => {
  it.each<[string, QuotaInfo, number, number]>([
    ['5 left, answers take 500 ms: at most 10/s (not 50/s over a precise 100 ms reset)', { dialect: 'x-ratelimit', remaining: 5, resetMs: 100 }, 500, 10],
    ['...and the policy floor is bounded the same way', { dialect: 'ietf', remaining: 5, resetMs: 1_000, limit: 101, windowMs: 1_000 }, 500, 10],
    ['answers at once: no bound', { dialect: 'x-ratelimit', remaining: 5, resetMs: 100 }, 0, 50],
    ['a bound looser than the spread changes nothing', { dialect: 'x-ratelimit', remaining: 50, resetMs: 10_500 }, 200, 5],
  ])('%s', (_name, quota, answerDelayMs, ratePerSec) => {
    expect(paceFromQuota(quota, { ...opts, answerDelayMs })).toMatchObject({ kind: 'rate', ratePerSec });
  });
});
