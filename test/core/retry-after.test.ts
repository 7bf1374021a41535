import { describe, expect, it } from 'vitest';
import { parseRetryAfterMs } from '../../src/core/retry-after.js';

// "Now" on the wall clock: Wednesday, 15 January 2025, 12:00:00 UTC.
const now = Date.parse('2025-01-15T12:00:00Z');

describe('parseRetryAfterMs', () => {
  it.each<[string, number]>([
    // delay-seconds: seconds, not milliseconds.
    ['120', 120_000],
    ['2', 2_000],
    ['0', 0],
    ['00', 0],
    ['86400', 86_400_000],
    ['  30  ', 30_000],
    // Leniently, a decimal number of seconds, rounded to the millisecond.
    ['1.5', 1_500],
    ['2.25', 2_250],
    ['0.0004', 0],
    ['0.0006', 1],
  ])('delay-seconds %j -> %d ms', (value, ms) => {
    expect(parseRetryAfterMs(value, now)).toBe(ms);
  });

  it.each<[string, number]>([
    ['Wed, 15 Jan 2025 12:02:00 GMT', 120_000], // IMF-fixdate
    ['Wednesday, 15-Jan-25 12:02:00 GMT', 120_000], // RFC 850
    ['Wed Jan 15 12:02:00 2025', 120_000], // asctime
    ['Wed, 15 Jan 2025 12:00:01 GMT', 1_000],
    ['Thu, 16 Jan 2025 12:00:00 GMT', 86_400_000],
    ['Wed, 15 Jan 2025 12:00:00 GMT', 0], // exactly now
    ['Wed, 15 Jan 2025 11:59:59 GMT', 0], // a date in the past means now
    ['Sun, 06 Nov 1994 08:49:37 GMT', 0],
    ['Sunday, 06-Nov-94 08:49:37 GMT', 0],
    ['Sun Nov  6 08:49:37 1994', 0],
    // A far-future date is returned as it is: capping a wait is the caller's policy.
    ['Fri, 31 Dec 9999 23:59:59 GMT', Date.parse('9999-12-31T23:59:59Z') - now],
  ])('HTTP-date %j -> %d ms', (value, ms) => {
    expect(parseRetryAfterMs(value, now)).toBe(ms);
  });

  it.each<[string | undefined]>([
    [undefined],
    [''],
    ['   '],
    ['-1'],
    ['-0'],
    ['+5'],
    ['1e3'],
    ['5s'],
    ['0x10'],
    ['1,5'],
    ['1.'],
    ['.5'],
    ['NaN'],
    ['Infinity'],
    ['9'.repeat(400)], // not finite once multiplied out
    ['soon'],
    ['120, 60'],
    ['Sat, 31 Feb 2025 12:00:00 GMT'], // 31 February does not exist
    ['Sun, 30 Feb 2025 12:00:00 GMT'],
    ['Wed, 15 Jan 2025 25:00:00 GMT'],
    ['2025-01-15T12:02:00Z'],
    ['Wed, 15 Jan 2025 12:02:00 UTC'],
  ])('%j -> undefined', (value) => {
    expect(parseRetryAfterMs(value, now)).toBeUndefined();
  });

  it('measures a date from the now it is given', () => {
    const value = 'Wed, 15 Jan 2025 12:02:00 GMT';
    expect(parseRetryAfterMs(value, now - 60_000)).toBe(180_000);
    expect(parseRetryAfterMs(value, now + 60_000)).toBe(60_000);
    expect(parseRetryAfterMs(value, now + 600_000)).toBe(0);
    expect(parseRetryAfterMs('120', now + 600_000)).toBe(120_000); // delay-seconds do not depend on now
  });
});
