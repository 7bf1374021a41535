import { describe, expect, it } from 'vitest';
import { paceFromQuota, type QuotaPacing } from '../../src/core/quota-pacing.js';
import type { QuotaInfo } from '../../src/core/ratelimit-headers.js';

const opts = { othersInFlight: 0, maxMs: 600_000 };

describe('paceFromQuota', () => {
  it.each<[string, QuotaInfo, number, QuotaPacing | undefined]>([
    ['spreads what remains over the time left', { dialect: 'x-ratelimit', remaining: 50, resetMs: 10_000 }, 0, { kind: 'rate', ratePerSec: 5, forMs: 10_000 }],
    ['counts requests still in flight as spent', { dialect: 'ietf', remaining: 50, resetMs: 10_000 }, 10, { kind: 'rate', ratePerSec: 4, forMs: 10_000 }],
    ['pauses until the reset when nothing is left', { dialect: 'ietf', remaining: 0, resetMs: 3_000 }, 0, { kind: 'pause', forMs: 3_000 }],
    ['...or when what is left is already in flight', { dialect: 'ietf', remaining: 3, resetMs: 3_000 }, 3, { kind: 'pause', forMs: 3_000 }],
    ['a policy alone paces at quota / window', { dialect: 'ietf', limit: 100, windowMs: 10_000 }, 0, { kind: 'rate', ratePerSec: 10, forMs: 10_000 }],
    ['remaining without a reset says nothing usable', { dialect: 'x-ratelimit', remaining: 10 }, 0, undefined],
    ['a reset of 0 says nothing usable', { dialect: 'x-ratelimit', remaining: 10, resetMs: 0 }, 0, undefined],
    ['nothing at all', { dialect: 'x-ratelimit' }, 0, undefined],
  ])('%s', (_name, quota, othersInFlight, expected) => {
    expect(paceFromQuota(quota, { ...opts, othersInFlight })).toEqual(expected);
  });

  it('caps a hostile reset: a pause of a year lasts maxMs', () => {
    expect(paceFromQuota({ dialect: 'x-ratelimit', remaining: 0, resetMs: 365 * 86_400_000 }, opts)).toEqual({ kind: 'pause', forMs: 600_000 });
    // The rate still spreads over the real reset: a year for 10 requests is very slow, not fast.
    const slow = paceFromQuota({ dialect: 'x-ratelimit', remaining: 10, resetMs: 365 * 86_400_000 }, opts);
    expect(slow).toMatchObject({ kind: 'rate', forMs: 600_000 });
    expect((slow as { ratePerSec: number }).ratePerSec).toBeLessThan(1e-5);
  });
});
