/**
 * Calendar quota windows: the wall-clock period (an hour, a day, a month) a quota such as
 * `10000/day` counts in, and the instant it resets, in a time zone. Pure: the instant is an
 * argument and the zone's rules come from the runtime's ICU data (`Intl.DateTimeFormat`), so the
 * same inputs give the same answer anywhere.
 *
 * A window starts at the reset time (`resetAt`, "HH:MM" local) of its period: every hour at minute
 * MM, every day at HH:MM, every month on the 1st at HH:MM. Daylight saving time moves the instant,
 * not the wall time: a day that springs forward is 23 hours long, one that falls back 25. A reset
 * time that does not exist that day (inside the spring-forward gap, 02:30 in New York on the second
 * Sunday of March) resets when the clocks jump, at the first instant after the gap; one that exists
 * twice (inside the fall-back overlap) resets at its first occurrence.
 */

export type CalendarPeriod = 'hour' | 'day' | 'month';

export interface CalendarWindowSpec {
  readonly period: CalendarPeriod;
  /** Local reset time, minutes after midnight (for `hour`, only the minute within the hour counts). */
  readonly resetMinute: number;
  /** An IANA time zone ("UTC", "America/New_York"). */
  readonly timeZone: string;
}

export interface CalendarWindow {
  /** The instant the current window began (epoch ms). */
  readonly startAt: number;
  /** The instant the current window ends and the count resets (epoch ms). */
  readonly resetAt: number;
}

interface LocalTime {
  readonly year: number;
  /** 1-12. */
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is one the runtime knows (for the configuration's check). */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at instant `at`, in ms (positive east of Greenwich), to the second. */
function offsetAt(at: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const { type, value } of formatter(timeZone).formatToParts(new Date(at))) if (type !== 'literal') parts[type] = Number(value);
  const asUtc = Date.UTC(parts.year as number, (parts.month as number) - 1, parts.day, parts.hour, parts.minute, parts.second);
  return asUtc - (at - (((at % 1000) + 1000) % 1000));
}

/** The local wall time at instant `at` in `timeZone`. */
function localTimeAt(at: number, timeZone: string): LocalTime {
  const local = new Date(at + offsetAt(at, timeZone));
  return {
    year: local.getUTCFullYear(),
    month: local.getUTCMonth() + 1,
    day: local.getUTCDate(),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
  };
}

/**
 * The instant the wall clock of `timeZone` shows `local` (Date.UTC normalises overflowing fields:
 * day 32 is the next month's 1st). Inside a gap, the first instant after it; inside an overlap, the
 * first occurrence.
 */
export function instantOf(local: LocalTime, timeZone: string): number {
  const wall = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute);
  // The two offsets on either side of a transition near `wall`; try the earlier instant first.
  const a = wall - offsetAt(wall - 86_400_000, timeZone);
  const b = wall - offsetAt(wall + 86_400_000, timeZone);
  const candidates = [Math.min(a, b), Math.max(a, b)];
  for (const at of candidates) if (at + offsetAt(at, timeZone) === wall) return at;
  // No instant shows this wall time: it is in a gap; the clocks jump at the transition, which lies
  // between the two candidates. Find it to the millisecond.
  let [lo, hi] = candidates as [number, number];
  const before = offsetAt(lo, timeZone);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(mid, timeZone) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The reset instant of the period that local time `local` falls in, shifted by `periods` periods. */
function resetOf(spec: CalendarWindowSpec, local: LocalTime, periods: number): number {
  const minute = spec.resetMinute % 60;
  const hour = Math.floor(spec.resetMinute / 60) % 24;
  switch (spec.period) {
    case 'hour':
      return instantOf({ ...local, hour: local.hour + periods, minute }, spec.timeZone);
    case 'day':
      return instantOf({ ...local, day: local.day + periods, hour, minute }, spec.timeZone);
    case 'month': {
      const months = local.year * 12 + (local.month - 1) + periods;
      return instantOf({ year: Math.floor(months / 12), month: (months % 12) + 1, day: 1, hour, minute }, spec.timeZone);
    }
  }
}

/** The window instant `now` falls in: its start (inclusive) and its reset (exclusive). */
export function calendarWindowAt(spec: CalendarWindowSpec, now: number): CalendarWindow {
  const local = localTimeAt(now, spec.timeZone);
  let startAt = resetOf(spec, local, 0);
  // This period's reset is still ahead (before 00:30 on a day resetting at 00:30): the window
  // began at the previous period's.
  let back = 0;
  while (startAt > now) startAt = resetOf(spec, local, --back);
  return { startAt, resetAt: resetOf(spec, local, back + 1) };
}
