import { describe, expect, it } from 'vitest';
import { parseHttpDate } from '../../src/core/http-date.js';

/** The oracle: an ISO 8601 instant with `Z`, which Date.parse reads exactly and in UTC. */
const iso = (text: string): number => Date.parse(text);

describe('parseHttpDate', () => {
  it.each<[string, number]>([
    // The three forms of RFC 9110 §5.6.7, for the same instant.
    ['Sun, 06 Nov 1994 08:49:37 GMT', iso('1994-11-06T08:49:37Z')], // IMF-fixdate
    ['Sunday, 06-Nov-94 08:49:37 GMT', iso('1994-11-06T08:49:37Z')], // RFC 850
    ['Sun Nov  6 08:49:37 1994', iso('1994-11-06T08:49:37Z')], // asctime, UTC (Date.parse would use local time)
    ['Sun Nov 06 08:49:37 1994', iso('1994-11-06T08:49:37Z')],
    ['Wed Nov 16 08:49:37 1994', iso('1994-11-16T08:49:37Z')],
    ['  Sun, 06 Nov 1994 08:49:37 GMT  ', iso('1994-11-06T08:49:37Z')],
    ['Thu, 01 Jan 1970 00:00:00 GMT', 0],
    ['Wed, 31 Dec 1969 23:59:59 GMT', -1000],
    ['Wed, 15 Jan 2025 12:00:00 GMT', iso('2025-01-15T12:00:00Z')],
    ['Fri, 31 Dec 9999 23:59:59 GMT', iso('9999-12-31T23:59:59Z')],
    // Every month name.
    ...['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].map((name, i): [string, number] => [
      `Mon, 01 ${name} 2024 00:00:00 GMT`,
      iso(`2024-${String(i + 1).padStart(2, '0')}-01T00:00:00Z`),
    ]),
    // RFC 850's two-digit year: 00-69 are 20xx, 70-99 are 19xx.
    ['Thursday, 01-Jan-70 00:00:00 GMT', 0],
    ['Friday, 31-Dec-99 23:59:59 GMT', iso('1999-12-31T23:59:59Z')],
    ['Saturday, 01-Jan-00 00:00:00 GMT', iso('2000-01-01T00:00:00Z')],
    ['Wednesday, 15-Jan-25 12:00:00 GMT', iso('2025-01-15T12:00:00Z')],
    ['Sunday, 31-Dec-69 23:59:59 GMT', iso('2069-12-31T23:59:59Z')],
    // Calendar edges.
    ['Thu, 29 Feb 2024 12:00:00 GMT', iso('2024-02-29T12:00:00Z')],
    ['Tue, 29 Feb 2000 12:00:00 GMT', iso('2000-02-29T12:00:00Z')],
    ['Thu Feb 29 12:00:00 2024', iso('2024-02-29T12:00:00Z')],
    ['Tue, 31 Dec 2024 23:59:59 GMT', iso('2024-12-31T23:59:59Z')],
    // A leap second reads as the instant after it. Real ones fall on 23:59:60 of a month's last day.
    ['Tue, 30 Jun 2015 23:59:60 GMT', iso('2015-07-01T00:00:00Z')],
    ['Sat, 31 Dec 2016 23:59:60 GMT', iso('2017-01-01T00:00:00Z')],
    ['Sun, 06 Nov 1994 08:49:60 GMT', iso('1994-11-06T08:50:00Z')],
    // A four-digit year below 100 is that year, not 19xx.
    ['Sat, 06 Nov 0094 08:49:37 GMT', iso('0094-11-06T08:49:37Z')],
  ])('%j -> %d', (value, ms) => {
    expect(parseHttpDate(value)).toBe(ms);
  });

  it.each<[string]>([
    // Impossible dates.
    ['Sat, 31 Feb 2024 00:00:00 GMT'],
    ['Thu, 30 Feb 2024 00:00:00 GMT'],
    ['Wed, 29 Feb 2023 00:00:00 GMT'],
    ['Mon, 29 Feb 1900 00:00:00 GMT'], // 1900 is not a leap year
    ['Thu, 31 Apr 2024 00:00:00 GMT'],
    ['Saturday, 31-Feb-24 00:00:00 GMT'],
    ['Sat Feb 31 00:00:00 2024'],
    ['Mon, 00 Jan 2024 00:00:00 GMT'],
    ['Mon, 32 Jan 2024 00:00:00 GMT'],
    ['Mon, 01 Jan 2024 24:00:00 GMT'],
    ['Mon, 01 Jan 2024 23:60:00 GMT'],
    ['Mon, 01 Jan 2024 23:59:61 GMT'],
    ['Mon, 01 Foo 2024 00:00:00 GMT'],
    ['Mon, 01 jan 2024 00:00:00 GMT'],
    ['Mon, 01 JAN 2024 00:00:00 GMT'],
    // Not an HTTP-date.
    [''],
    ['   '],
    ['tomorrow'],
    ['120'],
    ['-1'],
    ['2025-01-15T12:00:00Z'],
    ['Sun, 06 Nov 1994 08:49:37 UTC'],
    ['Sun, 06 Nov 1994 08:49:37 gmt'],
    ['Sun, 06 Nov 1994 08:49:37 +0000'],
    ['Sun, 06 Nov 1994 08:49:37'],
    ['Sun, 6 Nov 1994 08:49:37 GMT'],
    ['Sun, 06 Nov 94 08:49:37 GMT'],
    ['Sun 06 Nov 1994 08:49:37 GMT'],
    ['Xyz, 06 Nov 1994 08:49:37 GMT'],
    ['Sunday, 06 Nov 1994 08:49:37 GMT'],
    ['Sun, 06-Nov-94 08:49:37 GMT'],
    ['Sunday, 06-Nov-1994 08:49:37 GMT'],
    ['Sun Nov 6 08:49:37 1994'],
    ['Sun Nov  6 08:49:37 94'],
    ['Sun Nov  6 08:49 1994'],
    ['Sun, 06 Nov 1994 8:49:37 GMT'],
    ['Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT'],
  ])('%j -> undefined', (value) => {
    expect(parseHttpDate(value)).toBeUndefined();
  });
});
