import { describe, expect, it } from 'vitest';
import {
  FixedWindowLimit,
  SlidingWindowLimit,
  TokenBucketLimit,
  outsideSendAtMs,
  parseRetryAfterForm,
  retryAfterValue,
  throttleAnswer,
  type LimitModel,
  type RetryAfterForm,
  type ThrottleSignal,
} from '../../load/lib/standin-models.js';

/**
 * The stand-in API's decisions, with fixed instants: the judge of every load scenario must itself
 * be right. Each row is [instant ms, expected wait ms (0: accepted, and then taken)].
 */
type Step = readonly [atMs: number, waitMs: number];

function replay(limit: LimitModel, steps: readonly Step[]): number[] {
  return steps.map(([atMs]) => {
    const waitMs = limit.waitMs(atMs);
    if (waitMs === 0) limit.take(atMs);
    return waitMs;
  });
}

function expectWaits(limit: LimitModel, steps: readonly Step[]): void {
  const waits = replay(limit, steps);
  steps.forEach(([atMs, expected], i) => {
    expect({ atMs, waitMs: waits[i] as number }).toEqual({ atMs, waitMs: expect.closeTo(expected, 6) as number });
  });
}

describe('token bucket', () => {
  it('burst 1 at 20/s: one request per 50 ms, a refusal waits for the next whole token', () => {
    expectWaits(new TokenBucketLimit(20, 1), [
      [0, 0],
      [0, 50],
      [25, 25],
      [50, 0],
      [60, 40],
      [99, 1],
      [100, 0],
      [1000, 0], // idle 900 ms: still one token, the bucket holds no more than its burst
      [1000, 50],
    ]);
  });

  it('burst 100 at 20/s: 100 at once from full, then 20/s; refills to 100 and no further', () => {
    const bucket = new TokenBucketLimit(20, 100);
    const burst = replay(
      bucket,
      Array.from({ length: 100 }, () => [0, 0] as const),
    );
    expect(burst.every((w) => w === 0)).toBe(true);
    expect(bucket.waitMs(0)).toBeCloseTo(50, 6);
    expect(bucket.remaining(2500)).toBe(50);
    expect(bucket.remaining(5000)).toBe(100);
    expect(bucket.remaining(60_000)).toBe(100);
  });

  it('a clock that steps back refills nothing', () => {
    expectWaits(new TokenBucketLimit(20, 1), [
      [100, 0],
      [40, 50],
      [100, 50],
      [150, 0],
    ]);
  });
});

describe('sliding window', () => {
  it('at most 2 in any 1000 ms, the interval (t - 1000, t]; a refusal waits until the oldest leaves', () => {
    expectWaits(new SlidingWindowLimit(2, 1000), [
      [0, 0],
      [400, 0],
      [999, 1],
      [1000, 0], // the request at 0 has left
      [1200, 200], // the one at 400 leaves at 1400
      [1400, 0],
      [1401, 599],
    ]);
  });

  it('remaining and reset (draft 10 t: when the oldest leaves; a whole window when empty)', () => {
    const window = new SlidingWindowLimit(3, 1000);
    expect(window.remaining(0)).toBe(3);
    expect(window.resetInMs(0)).toBe(1000);
    window.take(100);
    window.take(300);
    expect(window.remaining(500)).toBe(1);
    expect(window.resetInMs(500)).toBe(600);
    expect(window.remaining(1100)).toBe(2);
    expect(window.resetInMs(1100)).toBe(200);
  });
});

describe('fixed window', () => {
  // 2 per 1000 ms. The first request comes at 1_700_000_000_300 (epoch ms, 300 ms into a second).
  const T = 1_700_000_000_000;
  const steps = (expected: readonly number[]): Step[] => [300, 500, 999, 1000, 1001, 1299, 1300, 1301, 1302].map((ms, i) => [T + ms, expected[i] as number]);

  it('counted from the first request: windows [300, 1300), [1300, 2300), ...', () => {
    expectWaits(new FixedWindowLimit(2, 1000, 'first-request'), steps([0, 0, 301, 300, 299, 1, 0, 0, 998]));
  });

  it('at wall-clock boundaries: windows start at multiples of 1000 ms on the epoch', () => {
    expectWaits(new FixedWindowLimit(2, 1000, 'wall-clock'), steps([0, 0, 1, 0, 0, 701, 700, 699, 698]));
  });

  it('at wall-clock boundaries, twice the quota fits in 2 ms across a boundary (what such APIs allow)', () => {
    expectWaits(new FixedWindowLimit(2, 1000, 'wall-clock'), [
      [T + 999, 0],
      [T + 999, 0],
      [T + 1000, 0],
      [T + 1000, 0],
      [T + 1000, 1000],
    ]);
  });

  it('remaining and reset (the end of the window, when the whole quota comes back)', () => {
    const window = new FixedWindowLimit(5, 10_000, 'wall-clock');
    window.take(T + 2500);
    expect(window.remaining(T + 3000)).toBe(4);
    expect(window.resetInMs(T + 3000)).toBe(7000);
    expect(window.remaining(T + 10_000)).toBe(5);
  });

  it('a clock that steps back into an earlier window keeps the later count', () => {
    expectWaits(new FixedWindowLimit(1, 1000, 'wall-clock'), [
      [T + 1500, 0],
      [T + 900, 1100],
      [T + 2000, 0],
    ]);
  });
});

describe('Retry-After', () => {
  // Sun, 06 Nov 1994 08:49:36.900 GMT (RFC 9110's example date, less 100 ms).
  const NOW = Date.UTC(1994, 10, 6, 8, 49, 36, 900);
  it.each<[RetryAfterForm, number, string | undefined]>([
    ['absent', 50, undefined],
    ['seconds', 50, '1'],
    ['seconds', 0.001, '1'],
    ['seconds', 1000, '1'],
    ['seconds', 1001, '2'],
    ['seconds', 59_000.5, '60'],
    [{ fixedSec: 3 }, 50, '3'],
    [{ fixedSec: 0 }, 5000, '0'],
    ['http-date', 50, 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['http-date', 100, 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['http-date', 101, 'Sun, 06 Nov 1994 08:49:38 GMT'],
    ['http-date', 86_400_000, 'Mon, 07 Nov 1994 08:49:37 GMT'],
  ])('%j for a wait of %d ms: %j', (form, waitMs, expected) => {
    expect(retryAfterValue(form, waitMs, NOW)).toBe(expected);
  });

  it('the HTTP-date is an IMF-fixdate (RFC 9110 5.6.7), two-digit day', () => {
    const value = retryAfterValue('http-date', 0, Date.UTC(2026, 0, 4, 1, 2, 3)) as string;
    expect(value).toBe('Sun, 04 Jan 2026 01:02:03 GMT');
    expect(value).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  });

  it('forms by name', () => {
    expect(parseRetryAfterForm('absent')).toBe('absent');
    expect(parseRetryAfterForm('seconds')).toBe('seconds');
    expect(parseRetryAfterForm('http-date')).toBe('http-date');
    expect(parseRetryAfterForm('7')).toEqual({ fixedSec: 7 });
    expect(() => parseRetryAfterForm('1.5')).toThrow(/retry-after form/);
    expect(() => parseRetryAfterForm('soon')).toThrow(/retry-after form/);
  });
});

describe('throttle signals', () => {
  it.each<[ThrottleSignal, number, string | undefined, RegExp]>([
    ['429', 429, '1', /rate limit exceeded/],
    ['403', 403, '1', /secondary rate limit/],
    ['420', 420, '1', /Enhance Your Calm/],
    ['503-xml', 503, undefined, /<Code>RequestLimitExceeded<\/Code>/],
    ['503-json', 503, undefined, /"__type":"RequestLimitExceeded"/],
  ])('%s: status %d, Retry-After %j, body %s', (signal, status, retryAfter, body) => {
    const answer = throttleAnswer(signal, '1');
    expect(answer.status).toBe(status);
    expect(answer.headers['retry-after']).toBe(retryAfter);
    expect(answer.body).toMatch(body);
    expect(answer.statusText).not.toBe('');
  });

  it('without a Retry-After value none is sent', () => {
    for (const signal of ['429', '403', '420'] as const) expect(Object.keys(throttleAnswer(signal, undefined).headers)).toEqual(['content-type']);
  });

  it("EC2's 503 bodies parse as what they claim to be", () => {
    expect(JSON.parse(throttleAnswer('503-json', undefined).body)).toEqual({ __type: 'RequestLimitExceeded', message: 'Request limit exceeded.' });
    expect(throttleAnswer('503-xml', undefined).headers['content-type']).toMatch(/xml/);
  });
});

describe('outside client schedule', () => {
  it.each<[number, number, readonly number[]]>([
    [5, 1, [0, 200, 400, 600]],
    [5, 2, [0, 0, 400, 400, 800]],
    [20 / 3, 1, [0, 150, 300, 450]],
    [20 / 3, 10, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1500]],
  ])('%d/s in bursts of %d: %j', (ratePerSec, burstSize, expected) => {
    expect(expected.map((_, i) => outsideSendAtMs(i, { ratePerSec, burstSize }))).toEqual(expected.map((ms) => expect.closeTo(ms, 9) as number));
  });
});
