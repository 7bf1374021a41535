import { describe, expect, it } from 'vitest';
import { paceFromQuota } from '../../src/core/quota-pacing.js';
import { parseQuotaHeaders, resetValueToDelayMs, type QuotaDialect, type QuotaInfo } from '../../src/core/ratelimit-headers.js';

// "Now" on the wall clock, in epoch milliseconds: 2023-11-14T22:13:20Z.
const now = 1_700_000_000_000;

/** A response's headers, looked up by lower-case name as the caller does. */
const lookup =
  (headers: Record<string, string>) =>
  (name: string): string | undefined =>
    headers[name];

const parse = (headers: Record<string, string>, dialects?: readonly QuotaDialect[]): QuotaInfo | undefined =>
  parseQuotaHeaders(lookup(headers), now, dialects === undefined ? undefined : new Set(dialects));

type Row = [name: string, headers: Record<string, string>, expected: QuotaInfo | undefined];

describe('parseQuotaHeaders: IETF RateLimit / RateLimit-Policy (drafts 08-10, structured lists)', () => {
  it.each<Row>([
    ['one named policy', { ratelimit: '"default";r=50;t=30' }, { dialect: 'ietf', remaining: 50, resetMs: 30_000 }],
    [
      'with its RateLimit-Policy',
      { ratelimit: '"default";r=50;t=30', 'ratelimit-policy': '"default";q=100;w=60' },
      { dialect: 'ietf', remaining: 50, resetMs: 30_000, limit: 100, windowMs: 60_000 },
    ],
    [
      'token names (draft 08) match like strings',
      { ratelimit: 'default;r=50;t=30', 'ratelimit-policy': 'default;q=100;w=60' },
      { dialect: 'ietf', remaining: 50, resetMs: 30_000, limit: 100, windowMs: 60_000 },
    ],
    ['without t', { ratelimit: '"default";r=999' }, { dialect: 'ietf', remaining: 999 }],
    ['r=0', { ratelimit: '"problemPolicy";r=0;t=10' }, { dialect: 'ietf', remaining: 0, resetMs: 10_000 }],
    ['t=0', { ratelimit: '"default";r=1;t=0' }, { dialect: 'ietf', remaining: 1, resetMs: 0 }],
    ['with a partition key (byte sequence)', { ratelimit: '"default";r=999;pk=:dHJpYWwxMjEzMjM=:' }, { dialect: 'ietf', remaining: 999 }],
    [
      'partition key and quota unit on both fields',
      {
        ratelimit: '"peruser";r=100;t=5;pk=:sdfjLJUOUH==:',
        'ratelimit-policy': '"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:',
      },
      { dialect: 'ietf', remaining: 100, resetMs: 5_000, limit: 65_535, windowMs: 10_000 },
    ],
    ['vendor parameters are comments', { ratelimit: '"default";r=5;t=3;acme-burst=10;note="a, b; c"' }, { dialect: 'ietf', remaining: 5, resetMs: 3_000 }],
    ['spaces after separators', { ratelimit: '"default"; r=5; t=3' }, { dialect: 'ietf', remaining: 5, resetMs: 3_000 }],
    ['a policy without a matching name adds nothing', { ratelimit: '"x";r=5', 'ratelimit-policy': '"y";q=9;w=9' }, { dialect: 'ietf', remaining: 5 }],
    [
      'a malformed RateLimit-Policy is ignored, RateLimit kept',
      { ratelimit: '"default";r=5;t=3', 'ratelimit-policy': '"default";q=' },
      { dialect: 'ietf', remaining: 5, resetMs: 3_000 },
    ],
    ['a policy without q or w adds nothing', { ratelimit: '"default";r=5', 'ratelimit-policy': '"default";qu="requests"' }, { dialect: 'ietf', remaining: 5 }],
  ])('%s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });

  it.each<Row>([
    [
      'the one allowing the fewest requests per second binds (40 per 20 s vs 100 per 1800 s)',
      { ratelimit: '"permin";r=40;t=20, "perhr";r=100;t=1800', 'ratelimit-policy': '"permin";q=50;w=60,"perhr";q=1000;w=3600' },
      { dialect: 'ietf', remaining: 100, resetMs: 1_800_000, limit: 1_000, windowMs: 3_600_000 },
    ],
    [
      'order does not matter',
      { ratelimit: '"perhr";r=100;t=1800,"permin";r=40;t=20', 'ratelimit-policy': '"permin";q=50;w=60,"perhr";q=1000;w=3600' },
      { dialect: 'ietf', remaining: 100, resetMs: 1_800_000, limit: 1_000, windowMs: 3_600_000 },
    ],
    ['an exhausted one binds', { ratelimit: '"burst";r=0;t=1, "daily";r=900;t=40000' }, { dialect: 'ietf', remaining: 0, resetMs: 1_000 }],
    [
      'without t, the policy window decides (10 per 1 s vs 10 per 100 s)',
      { ratelimit: '"a";r=10, "b";r=10', 'ratelimit-policy': '"a";q=10;w=1, "b";q=100;w=100' },
      { dialect: 'ietf', remaining: 10, limit: 100, windowMs: 100_000 },
    ],
    ['a tie keeps the first', { ratelimit: '"a";r=10;t=10, "b";r=20;t=20' }, { dialect: 'ietf', remaining: 10, resetMs: 10_000 }],
    ['a member without r is skipped', { ratelimit: '"a";t=10, "b";r=3;t=10' }, { dialect: 'ietf', remaining: 3, resetMs: 10_000 }],
    ['a member with a negative r is skipped', { ratelimit: '"a";r=-1;t=10, "b";r=3;t=10' }, { dialect: 'ietf', remaining: 3, resetMs: 10_000 }],
    ['three at once', { ratelimit: '"s";r=9;t=1, "m";r=50;t=60, "h";r=2;t=3600' }, { dialect: 'ietf', remaining: 2, resetMs: 3_600_000 }],
  ])('several policies at once: %s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });
});

describe('parseQuotaHeaders: IETF RateLimit dictionary (draft 07)', () => {
  it.each<Row>([
    ['limit, remaining, reset', { ratelimit: 'limit=100, remaining=50, reset=30' }, { dialect: 'ietf-dict', limit: 100, remaining: 50, resetMs: 30_000 }],
    ['in any order, keys in any case', { ratelimit: 'Reset=7, Remaining=1, LIMIT=10' }, { dialect: 'ietf-dict', limit: 10, remaining: 1, resetMs: 7_000 }],
    ['remaining only', { ratelimit: 'remaining=0' }, { dialect: 'ietf-dict', remaining: 0 }],
    ['reset only', { ratelimit: 'reset=5' }, { dialect: 'ietf-dict', resetMs: 5_000 }],
    [
      'unknown members are ignored',
      { ratelimit: 'limit=10, remaining=4, reset=2, policy=daily' },
      { dialect: 'ietf-dict', limit: 10, remaining: 4, resetMs: 2_000 },
    ],
    ['a negative member is ignored, the others kept', { ratelimit: 'limit=10, remaining=-1, reset=3' }, { dialect: 'ietf-dict', limit: 10, resetMs: 3_000 }],
    ['a string member is ignored', { ratelimit: 'limit=10, remaining="5", reset=3' }, { dialect: 'ietf-dict', limit: 10, resetMs: 3_000 }],
    ['limit alone says nothing', { ratelimit: 'limit=100' }, undefined],
  ])('%s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });
});

describe('parseQuotaHeaders: RateLimit-Limit / -Remaining / -Reset (drafts up to 06)', () => {
  it.each<Row>([
    [
      'all three',
      { 'ratelimit-limit': '100', 'ratelimit-remaining': '7', 'ratelimit-reset': '30' },
      { dialect: 'ietf-legacy', limit: 100, remaining: 7, resetMs: 30_000 },
    ],
    ['remaining only', { 'ratelimit-remaining': '0' }, { dialect: 'ietf-legacy', remaining: 0 }],
    ['reset only', { 'ratelimit-reset': '2' }, { dialect: 'ietf-legacy', resetMs: 2_000 }],
    ['limit alone says nothing', { 'ratelimit-limit': '100' }, undefined],
    ['spaces around values', { 'ratelimit-remaining': ' 3 ', 'ratelimit-reset': ' 4 ' }, { dialect: 'ietf-legacy', remaining: 3, resetMs: 4_000 }],
  ])('%s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });
});

describe('parseQuotaHeaders: X-RateLimit-*', () => {
  it.each<Row>([
    [
      'reset in delta seconds',
      { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': '60' },
      { dialect: 'x-ratelimit', limit: 5000, remaining: 4999, resetMs: 60_000 },
    ],
    [
      'reset in epoch seconds (GitHub)',
      { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700000060' },
      { dialect: 'x-ratelimit', limit: 60, remaining: 0, resetMs: 60_000 },
    ],
    [
      'reset in epoch seconds with a fraction (Discord)',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700000060.5' },
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 60_500 },
    ],
    [
      'reset in epoch milliseconds',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700000060000' },
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 60_000 },
    ],
    [
      'reset in epoch seconds, already past',
      { 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': '1699999999' },
      { dialect: 'x-ratelimit', remaining: 5, resetMs: 0 },
    ],
    [
      'reset in epoch milliseconds, already past',
      { 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': '1699999999999' },
      { dialect: 'x-ratelimit', remaining: 5, resetMs: 0 },
    ],
    ['reset 0', { 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': '0' }, { dialect: 'x-ratelimit', remaining: 5, resetMs: 0 }],
    ['Reset-After in seconds', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '1.5' }, { dialect: 'x-ratelimit', remaining: 0, resetMs: 1_500 }],
    [
      'Reset-After wins over Reset',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700000060', 'x-ratelimit-reset-after': '2' },
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 2_000 },
    ],
    [
      'a malformed Reset-After falls back to Reset',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '30', 'x-ratelimit-reset-after': 'soon' },
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 30_000 },
    ],
    ['Used and Limit give Remaining', { 'x-ratelimit-limit': '60', 'x-ratelimit-used': '45' }, { dialect: 'x-ratelimit', limit: 60, remaining: 15 }],
    ['Used over Limit gives 0', { 'x-ratelimit-limit': '60', 'x-ratelimit-used': '61' }, { dialect: 'x-ratelimit', limit: 60, remaining: 0 }],
    [
      'Remaining wins over Limit - Used',
      { 'x-ratelimit-limit': '60', 'x-ratelimit-used': '45', 'x-ratelimit-remaining': '10' },
      { dialect: 'x-ratelimit', limit: 60, remaining: 10 },
    ],
    ['Used without Limit says nothing', { 'x-ratelimit-used': '45' }, undefined],
    ['Limit alone says nothing', { 'x-ratelimit-limit': '60' }, undefined],
    [
      "a far-future epoch is returned as it is: capping a wait is the caller's policy",
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '99999999999' },
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 99_999_999_999_000 - now },
    ],
  ])('%s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });
});

describe('parseQuotaHeaders: which dialect', () => {
  const all = {
    ratelimit: '"default";r=1;t=1',
    'ratelimit-remaining': '2',
    'ratelimit-reset': '2',
    'x-ratelimit-remaining': '3',
    'x-ratelimit-reset': '3',
  };

  it.each<[dialects: readonly QuotaDialect[] | undefined, expected: QuotaInfo | undefined]>([
    [undefined, { dialect: 'ietf', remaining: 1, resetMs: 1_000 }],
    [['x-ratelimit'], { dialect: 'x-ratelimit', remaining: 3, resetMs: 3_000 }],
    [['ietf-legacy', 'x-ratelimit'], { dialect: 'ietf-legacy', remaining: 2, resetMs: 2_000 }],
    [['ietf-dict'], undefined], // the RateLimit field is a list, not a dictionary
    [[], undefined],
  ])('dialects %j -> %j', (dialects, expected) => {
    expect(parse(all, dialects)).toEqual(expected);
  });

  it('a malformed RateLimit falls through to the next dialect present', () => {
    expect(parse({ ratelimit: '"default;r=1', 'x-ratelimit-remaining': '3' })).toEqual({ dialect: 'x-ratelimit', remaining: 3 });
    expect(parse({ ratelimit: 'limit=100', 'ratelimit-remaining': '2' })).toEqual({ dialect: 'ietf-legacy', remaining: 2 });
  });

  it('the dictionary form is tried only when the list form yields nothing', () => {
    expect(parse({ ratelimit: 'limit=100, remaining=50, reset=30' }, ['ietf'])).toBeUndefined();
    expect(parse({ ratelimit: '"default";r=1;t=1' }, ['ietf-dict'])).toBeUndefined();
  });

  it('no quota headers at all', () => {
    expect(parse({})).toBeUndefined();
    expect(parse({ 'content-type': 'text/plain', 'retry-after': '5' })).toBeUndefined();
  });
});

describe('parseQuotaHeaders: malformed and hostile values are ignored, never thrown', () => {
  const HUGE = '9'.repeat(400); // Number(HUGE) is Infinity

  it.each<[name: string, ratelimit: string]>([
    ['empty', ''],
    ['blank', '   '],
    ['only commas', ',,,'],
    ['only semicolons', ';;;'],
    ['unbalanced quote', '"default;r=50;t=30'],
    ['unbalanced quote after a member', '"a";r=1, "b;r=2'],
    ['a lone quote', '"'],
    ['many quotes', '"'.repeat(10_001)],
    ['a dangling escape', '"a\\'],
    ['r not a number', '"default";r=abc;t=30'],
    ['r in exponent form', '"default";r=1e3'],
    ['r with 16 digits (more than a structured integer holds)', '"default";r=1234567890123456'],
    ['r huge', `"default";r=${HUGE}`],
    ['t with 16 digits', '"default";r=1;t=9999999999999999'],
    ['negative r', '"default";r=-1;t=30'],
    ['r as a string', '"default";r="50"'],
    ['r as a boolean', '"default";r'],
    ['a parameter name with a bad character', '"default";r@=5'],
    ['an inner list', '("a" "b");r=5'],
    ['a member that is only parameters', ';r=5'],
    ['a date', 'Wed, 21 Oct 2015 07:28:00 GMT'],
  ])('RateLimit: %s', (_name, ratelimit) => {
    expect(parse({ ratelimit })).toBeUndefined();
  });

  it.each<[name: string, value: string]>([
    ['empty', ''],
    ['blank', ' '],
    ['negative', '-1'],
    ['signed', '+5'],
    ['non-numeric', 'abc'],
    ['exponent', '1e3'],
    ['hexadecimal', '0x10'],
    ['a list', '5, 5'],
    ['trailing dot', '5.'],
    ['leading dot', '.5'],
    ['NaN', 'NaN'],
    ['Infinity', 'Infinity'],
    ['huge (not finite)', HUGE],
  ])('X-RateLimit-Remaining and -Reset %s', (_name, value) => {
    expect(parse({ 'x-ratelimit-remaining': value, 'x-ratelimit-reset': value })).toBeUndefined();
    expect(parse({ 'ratelimit-remaining': value, 'ratelimit-reset': value })).toBeUndefined();
    expect(parse({ 'x-ratelimit-limit': '10', 'x-ratelimit-used': value })).toBeUndefined();
    expect(parse({ 'x-ratelimit-reset-after': value })).toBeUndefined();
  });

  it.each<[name: string, reset: string]>([
    ['an HTTP-date', 'Wed, 21 Oct 2015 07:28:00 GMT'],
    ['a far-future HTTP-date', 'Fri, 31 Dec 9999 23:59:59 GMT'],
    ['an ISO date', '2999-01-01T00:00:00Z'],
    ['negative', '-60'],
    ['huge', HUGE],
  ])('X-RateLimit-Reset as %s is ignored, Remaining kept', (_name, reset) => {
    expect(parse({ 'x-ratelimit-remaining': '4', 'x-ratelimit-reset': reset })).toEqual({ dialect: 'x-ratelimit', remaining: 4 });
  });

  it.each<Row>([
    ['negative t is ignored, r kept', { ratelimit: '"default";r=50;t=-5' }, { dialect: 'ietf', remaining: 50 }],
    ['negative q and w are ignored', { ratelimit: '"d";r=5', 'ratelimit-policy': '"d";q=-1;w=-60' }, { dialect: 'ietf', remaining: 5 }],
    ['a trailing comma is tolerated', { ratelimit: '"default";r=5;t=1,' }, { dialect: 'ietf', remaining: 5, resetMs: 1_000 }],
    ['a garbage remaining beside a good reset', { 'x-ratelimit-remaining': 'many', 'x-ratelimit-reset': '10' }, { dialect: 'x-ratelimit', resetMs: 10_000 }],
  ])('%s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });

  it('reads a long list of members without trouble', () => {
    const ratelimit = Array.from({ length: 5_000 }, (_, i) => `"p${i}";r=${5_000 - i};t=1`).join(', ');
    expect(parse({ ratelimit })).toEqual({ dialect: 'ietf', remaining: 1, resetMs: 1_000 });
  });
});

describe('parseQuotaHeaders: hostile values that are well-formed are returned as they are', () => {
  it.each<Row>([
    [
      'a 20-digit X-RateLimit-Remaining',
      { 'x-ratelimit-remaining': '99999999999999999999', 'x-ratelimit-reset': '1' },
      { dialect: 'x-ratelimit', remaining: 1e20, resetMs: 1_000 },
    ],
    [
      'a far-future epoch in milliseconds (year 5138)',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '99999999999999' },
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 99_999_999_999_999 - now },
    ],
    [
      'a Reset-After of 3000 years',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '99999999999' },
      { dialect: 'x-ratelimit', remaining: 0, resetMs: 99_999_999_999_000 },
    ],
    ['t with 15 digits', { ratelimit: '"d";r=0;t=999999999999999' }, { dialect: 'ietf', remaining: 0, resetMs: 999_999_999_999_999_000 }],
    [
      'reset with 15 digits (draft 07)',
      { ratelimit: 'limit=10, remaining=5, reset=999999999999999' },
      { dialect: 'ietf-dict', limit: 10, remaining: 5, resetMs: 999_999_999_999_999_000 },
    ],
    [
      'a policy window of 0 (no floor: the pacer ignores it)',
      { ratelimit: '"d";r=5;t=1', 'ratelimit-policy': '"d";q=10;w=0' },
      { dialect: 'ietf', remaining: 5, resetMs: 1_000, limit: 10, windowMs: 0 },
    ],
    ['a parameter given twice: the last one counts (RFC 9651)', { ratelimit: '"d";r=5;r=1;t=1' }, { dialect: 'ietf', remaining: 1, resetMs: 1_000 }],
  ])('%s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });

  it.each<Row>([
    ['a dictionary member with 17 digits (more than a structured integer holds)', { ratelimit: 'limit=10, remaining=99999999999999999, reset=1' }, undefined],
    ['an exponent after a fraction', { 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': '1700000000.5e3' }, { dialect: 'x-ratelimit', remaining: 5 }],
    ['digits of another script', { 'x-ratelimit-remaining': '\u0663', 'x-ratelimit-reset': '1' }, { dialect: 'x-ratelimit', resetMs: 1_000 }],
    ['minus zero', { 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '-0' }, { dialect: 'x-ratelimit', remaining: 3 }],
    [
      'RateLimit-Reset as an HTTP-date',
      { 'ratelimit-remaining': '3', 'ratelimit-reset': 'Wed, 21 Oct 2015 07:28:00 GMT' },
      { dialect: 'ietf-legacy', remaining: 3 },
    ],
  ])('malformed, ignored: %s', (_name, headers, expected) => {
    expect(parse(headers)).toEqual(expected);
  });

  // From the header to the pace: whatever an upstream sends, sluice neither pauses nor spreads what
  // remains over longer than pacing.maxPause (10 minutes by default).
  const maxPauseMs = 600_000;
  it.each<[name: string, headers: Record<string, string>]>([
    ['X-RateLimit-Reset in the year 5138, nothing left', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '99999999999999' }],
    ['X-RateLimit-Reset in the year 5138, 3 left', { 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '99999999999999' }],
    ['X-RateLimit-Reset-After of 3000 years', { 'x-ratelimit-remaining': '1', 'x-ratelimit-reset-after': '99999999999' }],
    ['X-RateLimit-Reset in epoch seconds of the year 5138', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '99999999999' }],
    ['t with 15 digits, nothing left', { ratelimit: '"d";r=0;t=999999999999999' }],
    ['t with 15 digits, 1 left', { ratelimit: '"d";r=1;t=999999999999999', 'ratelimit-policy': '"d";q=1;w=999999999999999' }],
    ['draft 07 reset with 15 digits', { ratelimit: 'limit=10, remaining=0, reset=999999999999999' }],
    ['legacy RateLimit-Reset of 31 years', { 'ratelimit-remaining': '2', 'ratelimit-reset': '999999999' }],
  ])('paced within pacing.maxPause: %s', (_name, headers) => {
    const quota = parse(headers) as QuotaInfo;
    const pacing = paceFromQuota(quota, { othersInFlight: 0, maxMs: maxPauseMs });
    expect(pacing).toBeDefined();
    expect(pacing?.forMs).toBe(maxPauseMs);
    if (pacing?.kind === 'rate') expect(((quota.remaining as number) * 1000) / pacing.ratePerSec).toBeLessThanOrEqual(maxPauseMs);
  });
});

describe('resetValueToDelayMs: the unit is read from the size of the value', () => {
  it.each<[value: number, nowEpochMs: number, delayMs: number]>([
    [0, now, 0],
    [0.5, now, 500],
    [60, now, 60_000],
    [999_999_999, now, 999_999_999_000], // below 1e9: delta seconds (up to ~31 years)
    [1_000_000_000, 0, 1_000_000_000_000], // from 1e9: epoch seconds
    [1_700_000_060, now, 60_000],
    [1_700_000_000, now, 0],
    [1_600_000_000, now, 0], // past: 0, never negative
    [999_999_999_999, 0, 999_999_999_999_000],
    [1_000_000_000_000, 0, 1_000_000_000_000], // from 1e12: epoch milliseconds
    [1_700_000_060_000, now, 60_000],
    [1_600_000_000_000, now, 0],
  ])('%d at %d -> %d ms', (value, nowEpochMs, delayMs) => {
    expect(resetValueToDelayMs(value, nowEpochMs)).toBe(delayMs);
  });
});
