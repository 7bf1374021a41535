/**
 * Parses an HTTP-date (RFC 9110 §5.6.7) into epoch milliseconds: IMF-fixdate, and the obsolete
 * RFC 850 and asctime forms that recipients must still accept. All three are UTC by definition;
 * `Date.parse` would read the asctime form in local time, so this parser does not rely on it.
 */

const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC_850 = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
// Sun Nov  6 08:49:37 1994
const ASCTIME = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/** Epoch milliseconds of an HTTP-date, or undefined when `value` is not one. */
export function parseHttpDate(value: string): number | undefined {
  const text = value.trim();
  let m = IMF_FIXDATE.exec(text);
  if (m) return utc(Number(m[3]), m[2], Number(m[1]), m[4], m[5], m[6]);
  m = RFC_850.exec(text);
  if (m) {
    // RFC 9110: a two-digit year more than 50 years in the future means the previous century.
    const yy = Number(m[3]);
    return utc(yy < 70 ? 2000 + yy : 1900 + yy, m[2], Number(m[1]), m[4], m[5], m[6]);
  }
  m = ASCTIME.exec(text);
  if (m) return utc(Number(m[6]), m[1], Number((m[2] as string).trim()), m[3], m[4], m[5]);
  return undefined;
}

function utc(year: number, monthName: string | undefined, day: number, hh?: string, mm?: string, ss?: string): number | undefined {
  const month = MONTHS[monthName ?? ''];
  const hours = Number(hh);
  const minutes = Number(mm);
  const seconds = Number(ss);
  if (month === undefined || day < 1 || day > 31 || hours > 23 || minutes > 59 || seconds > 60) return undefined;
  // setUTCFullYear, unlike Date.UTC, does not read the years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  // Reject dates that do not exist (31 Feb rolls over into March). The day is checked before the
  // time is added, so that a leap second (23:59:60, always on the last day of a month) is kept.
  if (date.getUTCDate() !== day) return undefined;
  return date.getTime() + ((hours * 60 + minutes) * 60 + seconds) * 1000;
}
