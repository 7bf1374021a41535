import { describe, expect, it } from 'vitest';
import { calendarWindowAt, instantOf, isTimeZone, type CalendarWindowSpec } from '../../src/core/calendar-window.js';

/** The oracle: ISO 8601 instants with an explicit offset, which Date.parse reads exactly. */
const at = (text: string): number => Date.parse(text);
const iso = (ms: number): string => new Date(ms).toISOString();

const spec = (period: CalendarWindowSpec['period'], resetAt: string, timeZone: string): CalendarWindowSpec => {
  const [h, m] = resetAt.split(':').map(Number) as [number, number];
  return { period, resetMinute: h * 60 + m, timeZone };
};

describe('calendarWindowAt', () => {
  it.each<[string, CalendarWindowSpec, string, string, string]>([
    // [what, spec, now, window start, reset]
    ['a UTC day', spec('day', '00:00', 'UTC'), '2026-12-07T15:00:00Z', '2026-12-07T00:00:00Z', '2026-12-08T00:00:00Z'],
    ['the reset instant starts the next window', spec('day', '00:00', 'UTC'), '2026-12-08T00:00:00Z', '2026-12-08T00:00:00Z', '2026-12-09T00:00:00Z'],
    ['a millisecond before the reset', spec('day', '00:00', 'UTC'), '2026-12-07T23:59:59.999Z', '2026-12-07T00:00:00Z', '2026-12-08T00:00:00Z'],
    ['a day resetting at 08:00 UTC, before 08:00', spec('day', '08:00', 'UTC'), '2026-12-07T07:59:00Z', '2026-12-06T08:00:00Z', '2026-12-07T08:00:00Z'],
    ['a year end', spec('day', '00:00', 'UTC'), '2026-12-31T23:00:00Z', '2026-12-31T00:00:00Z', '2027-01-01T00:00:00Z'],
    ['an hour at minute 0', spec('hour', '00:00', 'UTC'), '2026-12-07T15:42:10Z', '2026-12-07T15:00:00Z', '2026-12-07T16:00:00Z'],
    ['an hour at minute 30, before it', spec('hour', '00:30', 'UTC'), '2026-12-07T15:10:00Z', '2026-12-07T14:30:00Z', '2026-12-07T15:30:00Z'],
    ['an hour across midnight', spec('hour', '00:00', 'UTC'), '2026-12-31T23:30:00Z', '2026-12-31T23:00:00Z', '2027-01-01T00:00:00Z'],
    ['a month of 31 days', spec('month', '00:00', 'UTC'), '2026-01-31T12:00:00Z', '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z'],
    ['February of a common year', spec('month', '00:00', 'UTC'), '2027-02-28T23:59:00Z', '2027-02-01T00:00:00Z', '2027-03-01T00:00:00Z'],
    ['February of a leap year', spec('month', '00:00', 'UTC'), '2028-02-29T12:00:00Z', '2028-02-01T00:00:00Z', '2028-03-01T00:00:00Z'],
    ['December into January', spec('month', '00:00', 'UTC'), '2026-12-15T00:00:00Z', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z'],
    ['a month before its 1st 06:00 reset', spec('month', '06:00', 'UTC'), '2026-03-01T05:00:00Z', '2026-02-01T06:00:00Z', '2026-03-01T06:00:00Z'],
    // Time zones: the reset follows the local wall clock.
    ['a New York day (EST)', spec('day', '00:00', 'America/New_York'), '2026-12-07T03:00:00Z', '2026-12-06T00:00:00-05:00', '2026-12-07T00:00:00-05:00'],
    ['a New York day (EDT)', spec('day', '00:00', 'America/New_York'), '2026-07-07T12:00:00Z', '2026-07-07T00:00:00-04:00', '2026-07-08T00:00:00-04:00'],
    ['Kolkata, half an hour off UTC', spec('day', '00:00', 'Asia/Kolkata'), '2026-12-07T18:29:00Z', '2026-12-07T00:00:00+05:30', '2026-12-08T00:00:00+05:30'],
    [
      'Kolkata, just after its midnight',
      spec('day', '00:00', 'Asia/Kolkata'),
      '2026-12-07T18:30:00Z',
      '2026-12-08T00:00:00+05:30',
      '2026-12-09T00:00:00+05:30',
    ],
    ['an hour in Kolkata resets at :30 UTC', spec('hour', '00:00', 'Asia/Kolkata'), '2026-12-07T10:45:00Z', '2026-12-07T10:30:00Z', '2026-12-07T11:30:00Z'],
    ['a Tokyo month', spec('month', '00:00', 'Asia/Tokyo'), '2026-04-30T16:00:00Z', '2026-05-01T00:00:00+09:00', '2026-06-01T00:00:00+09:00'],
    // Daylight saving time: New York springs forward on 2026-03-08 at 02:00 and falls back on 2026-11-01 at 02:00.
    [
      'the spring-forward day is 23 hours',
      spec('day', '00:00', 'America/New_York'),
      '2026-03-08T12:00:00-04:00',
      '2026-03-08T00:00:00-05:00',
      '2026-03-09T00:00:00-04:00',
    ],
    [
      'the fall-back day is 25 hours',
      spec('day', '00:00', 'America/New_York'),
      '2026-11-01T12:00:00-05:00',
      '2026-11-01T00:00:00-04:00',
      '2026-11-02T00:00:00-05:00',
    ],
    [
      'a reset inside the gap happens when the clocks jump',
      spec('day', '02:30', 'America/New_York'),
      '2026-03-08T01:00:00-05:00',
      '2026-03-07T02:30:00-05:00',
      '2026-03-08T03:00:00-04:00',
    ],
    [
      '...and the window after it is back at 02:30',
      spec('day', '02:30', 'America/New_York'),
      '2026-03-08T12:00:00-04:00',
      '2026-03-08T03:00:00-04:00',
      '2026-03-09T02:30:00-04:00',
    ],
    [
      'a reset inside the overlap happens at its first occurrence',
      spec('day', '01:30', 'America/New_York'),
      '2026-11-01T01:45:00-05:00',
      '2026-11-01T01:30:00-04:00',
      '2026-11-02T01:30:00-05:00',
    ],
    [
      'London springs forward at 01:00 UTC: 01:30 resets at the jump',
      spec('day', '01:30', 'Europe/London'),
      '2026-03-29T00:50:00Z',
      '2026-03-28T01:30:00Z',
      '2026-03-29T01:00:00Z',
    ],
    [
      '...and the next London day at 01:30 BST',
      spec('day', '01:30', 'Europe/London'),
      '2026-03-29T01:10:00Z',
      '2026-03-29T01:00:00Z',
      '2026-03-30T01:30:00+01:00',
    ],
    [
      'an hour across the fall-back overlap is two hours long',
      spec('hour', '00:00', 'America/New_York'),
      '2026-11-01T01:30:00-05:00',
      '2026-11-01T01:00:00-04:00',
      '2026-11-01T02:00:00-05:00',
    ],
    [
      'Lord Howe moves by half an hour',
      spec('day', '02:00', 'Australia/Lord_Howe'),
      '2026-10-04T12:00:00+11:00',
      '2026-10-04T02:30:00+11:00',
      '2026-10-05T02:00:00+11:00',
    ],
  ])('%s', (_what, windowSpec, now, startAt, resetAt) => {
    const window = calendarWindowAt(windowSpec, at(now));
    expect({ startAt: iso(window.startAt), resetAt: iso(window.resetAt) }).toEqual({ startAt: iso(at(startAt)), resetAt: iso(at(resetAt)) });
    expect(window.startAt).toBeLessThanOrEqual(at(now));
    expect(window.resetAt).toBeGreaterThan(at(now));
  });

  it('tiles time: every window starts where the one before it reset, across a year of DST in three zones', () => {
    for (const timeZone of ['America/New_York', 'Europe/London', 'Australia/Lord_Howe']) {
      for (const windowSpec of [spec('day', '02:30', timeZone), spec('hour', '00:15', timeZone), spec('month', '00:00', timeZone)]) {
        let window = calendarWindowAt(windowSpec, at('2026-01-01T00:00:00Z'));
        for (let i = 0; i < 400 && window.resetAt < at('2027-01-01T00:00:00Z'); i++) {
          const next = calendarWindowAt(windowSpec, window.resetAt);
          expect(next.startAt, `${timeZone} ${windowSpec.period} after ${iso(window.resetAt)}`).toBe(window.resetAt);
          expect(calendarWindowAt(windowSpec, window.resetAt - 1)).toEqual(window);
          window = next;
        }
      }
    }
  });
});

describe('instantOf', () => {
  it.each<[string, { year: number; month: number; day: number; hour: number; minute: number }, string]>([
    [
      '2026-03-08 02:30 in New York does not exist: the clocks jump at 02:00 EST',
      { year: 2026, month: 3, day: 8, hour: 2, minute: 30 },
      '2026-03-08T03:00:00-04:00',
    ],
    ['2026-11-01 01:30 in New York exists twice: the first (EDT)', { year: 2026, month: 11, day: 1, hour: 1, minute: 30 }, '2026-11-01T01:30:00-04:00'],
  ])('%s', (_what, local, expected) => {
    expect(iso(instantOf(local, 'America/New_York'))).toBe(iso(at(expected)));
  });
});

describe('isTimeZone', () => {
  it.each([
    ['UTC', true],
    ['America/New_York', true],
    ['Mars/Olympus_Mons', false],
    ['', false],
  ])('%s: %s', (zone, known) => expect(isTimeZone(zone)).toBe(known));
});
