import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { throttleSignalsSchema } from '../../src/config/throttle-schema.js';
import { formatPath } from '../../src/config/config-error.js';
import {
  compileThrottleSignals,
  DEFAULT_THROTTLE_SIGNALS,
  THROTTLE_BODY_BYTES,
  utf8,
  type ThrottleMatch,
  type ThrottleSignal,
} from '../../src/core/throttle-signal.js';

const headers =
  (values: Record<string, string> = {}) =>
  (name: string): string | undefined =>
    values[name];

const throttle = (index: number, pause: 'always' | 'pattern' = 'always'): ThrottleMatch => ({ kind: 'throttle', pause, index });
const NONE: ThrottleMatch = { kind: 'none' };
const NEEDS_BODY: ThrottleMatch = { kind: 'needs-body' };

const EC2_BODY =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>';

/** The issue's list, as the schema outputs it. */
const signals: ThrottleSignal[] = [
  { status: 429, pause: 'always' },
  { status: 503, header: 'retry-after', pause: 'pattern' },
  { status: 403, header: 'retry-after', pause: 'always' },
  { status: 503, body: 'RequestLimitExceeded', pause: 'always' },
  { status: 420, pause: 'always' },
  { status: 403, header: 'x-ratelimit-remaining', equals: '0', pause: 'always' },
];

describe('compileThrottleSignals', () => {
  const matcher = compileThrottleSignals(signals);

  it.each<[label: string, status: number, header: Record<string, string>, body: string | undefined, expected: ThrottleMatch]>([
    ['429', 429, {}, undefined, throttle(0)],
    ['429 with Retry-After', 429, { 'retry-after': '1' }, undefined, throttle(0)],
    ['503 with Retry-After: the pattern rule', 503, { 'retry-after': '1' }, undefined, throttle(1, 'pattern')],
    ['503 with an unusable Retry-After: still present', 503, { 'retry-after': 'soon' }, undefined, throttle(1, 'pattern')],
    ['503 with an empty Retry-After: a body rule could still say', 503, { 'retry-after': '  ' }, undefined, NEEDS_BODY],
    ['503 without Retry-After: the body decides', 503, {}, undefined, NEEDS_BODY],
    ["503, EC2's body", 503, {}, EC2_BODY, throttle(3)],
    ['503, another body', 503, {}, '<html>Service Unavailable</html>', NONE],
    ['503, the literal in another case', 503, {}, '<Code>requestlimitexceeded</Code>', NONE],
    ['503, an empty body', 503, {}, '', NONE],
    ["503, EC2's body gzipped: not inspected", 503, { 'content-encoding': 'gzip' }, EC2_BODY, NONE],
    ['503, gzipped, no body yet: nothing to wait for', 503, { 'content-encoding': 'gzip' }, undefined, NONE],
    ["503, EC2's body with identity encoding", 503, { 'content-encoding': 'identity' }, EC2_BODY, throttle(3)],
    ['503 with Retry-After and the body: the first rule wins', 503, { 'retry-after': '2' }, EC2_BODY, throttle(1, 'pattern')],
    ["403 with Retry-After: GitHub's secondary limit", 403, { 'retry-after': '60' }, undefined, throttle(2)],
    ['403, remaining 0', 403, { 'x-ratelimit-remaining': '0' }, undefined, throttle(5)],
    ['403, remaining " 0 "', 403, { 'x-ratelimit-remaining': ' 0 ' }, undefined, throttle(5)],
    ['403, remaining 10: forbidden, not throttled', 403, { 'x-ratelimit-remaining': '10' }, undefined, NONE],
    ['403 alone: forbidden', 403, {}, undefined, NONE],
    ['420', 420, {}, undefined, throttle(4)],
    ['200', 200, { 'retry-after': '1' }, undefined, NONE],
    ['500', 500, {}, undefined, NONE],
    ['502 with Retry-After', 502, { 'retry-after': '1' }, undefined, NONE],
  ])('%s', (_label, status, header, body, expected) => {
    expect(matcher.match(status, headers(header), body === undefined ? undefined : utf8(body))).toEqual(expected);
  });

  it('says which statuses it names and whether it needs bodies', () => {
    expect([...matcher.statuses].sort()).toEqual([403, 420, 429, 503]);
    expect(matcher.inspectsBodies).toBe(true);
    expect(compileThrottleSignals(DEFAULT_THROTTLE_SIGNALS).inspectsBodies).toBe(false);
  });

  it('looks at no header for a status no signal names', () => {
    const asked: string[] = [];
    matcher.match(200, (name) => (asked.push(name), undefined));
    expect(asked).toEqual([]);
  });

  it('the defaults: 429 always, 503 with Retry-After on the pattern, a bare 503 is no throttle', () => {
    const defaults = compileThrottleSignals(DEFAULT_THROTTLE_SIGNALS);
    expect(defaults.match(429, headers())).toEqual(throttle(0));
    expect(defaults.match(503, headers({ 'retry-after': '1' }))).toEqual(throttle(1, 'pattern'));
    expect(defaults.match(503, headers())).toEqual(NONE);
  });

  describe('body patterns', () => {
    const at = (pattern: string) => compileThrottleSignals([{ status: 503, body: pattern, pause: 'always' }]);
    const bytes = (size: number, fill = 'x') => fill.repeat(size);

    it.each<[label: string, pattern: string, body: string, matches: boolean]>([
      ['at the start', 'limit', 'limit exceeded', true],
      ['at the end of the bound', 'limit', bytes(THROTTLE_BODY_BYTES - 5) + 'limit', true],
      ['straddling the bound: not seen', 'limit', bytes(THROTTLE_BODY_BYTES - 4) + 'limit', false],
      ['past the bound: not seen', 'limit', bytes(THROTTLE_BODY_BYTES) + 'limit', false],
      // KMP: a partial match that fails must not skip the real one.
      ['overlapping prefix', 'aab', 'aaab', true],
      ['repeated prefix', 'abab', 'abaabab', true],
      ['repetitive body, no match', 'aaaab', bytes(THROTTLE_BODY_BYTES, 'a'), false],
      ['repetitive body, match at the end', 'aaaab', bytes(THROTTLE_BODY_BYTES - 1, 'a') + 'b', true],
      ['non-ASCII, as UTF-8', 'límite', '{"error":"límite superado"}', true],
      ['non-ASCII, other bytes', 'límite', '{"error":"limite superado"}', false],
      ['an emoji', 'slow 🐢', 'please go slow 🐢', true],
    ])('%s', (_label, pattern, body, matches) => {
      expect(at(pattern).match(503, headers(), utf8(body)).kind).toBe(matches ? 'throttle' : 'none');
    });
  });

  it('utf8 encodes like TextEncoder', () => {
    for (const text of ['', 'ascii', 'límite', '€', '𝄞 clef', 'lone \ud800 surrogate', 'RequestLimitExceeded']) {
      expect(utf8(text)).toEqual(new TextEncoder().encode(text));
    }
  });
});

describe('throttleSignalsSchema', () => {
  /** As it sits in the configuration, so that paths are the user's. */
  const config = z.strictObject({ upstreams: z.array(z.strictObject({ throttleSignals: throttleSignalsSchema })) });
  const problems = (throttleSignals: unknown): string[] => {
    const result = config.safeParse({ upstreams: [{ throttleSignals }] });
    if (result.success) return [];
    return result.error.issues.map(
      (issue) => `${formatPath(issue.path)}: ${issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')}` : issue.message}`,
    );
  };

  it('defaults to 429, and 503 with Retry-After on the pattern', () => {
    const parsed = config.parse({ upstreams: [{}] });
    expect(parsed.upstreams[0]?.throttleSignals).toEqual(
      DEFAULT_THROTTLE_SIGNALS.map((s) => ({ header: undefined, equals: undefined, body: undefined, ...s })),
    );
  });

  it.each<[input: Record<string, unknown>, output: ThrottleSignal]>([
    [{ status: 429 }, { status: 429, header: undefined, equals: undefined, body: undefined, pause: 'always' }],
    [
      { status: 503, header: 'Retry-After' },
      { status: 503, header: 'retry-after', equals: undefined, body: undefined, pause: 'pattern' },
    ],
    [
      { status: 503, body: 'RequestLimitExceeded' },
      { status: 503, header: undefined, equals: undefined, body: 'RequestLimitExceeded', pause: 'always' },
    ],
    [{ status: 503 }, { status: 503, header: undefined, equals: undefined, body: undefined, pause: 'pattern' }],
    [
      { status: 503, pause: 'always' },
      { status: 503, header: undefined, equals: undefined, body: undefined, pause: 'always' },
    ],
    [
      { status: 429, pause: 'pattern' },
      { status: 429, header: undefined, equals: undefined, body: undefined, pause: 'pattern' },
    ],
    [
      { status: 403, header: 'x-ratelimit-remaining', equals: '0' },
      { status: 403, header: 'x-ratelimit-remaining', equals: '0', body: undefined, pause: 'always' },
    ],
  ])('%j', (input, output) => {
    expect(config.parse({ upstreams: [{ throttleSignals: [input] }] }).upstreams[0]?.throttleSignals).toEqual([output]);
  });

  it.each<[input: unknown, expected: string[]]>([
    [[{ status: 200 }], ['upstreams[0].throttleSignals[0].status: a throttle signal is an error status (400-599)']],
    [[{ status: 429 }, { status: 600 }], ['upstreams[0].throttleSignals[1].status: a throttle signal is an error status (400-599)']],
    [[{ status: 429.5 }], ['upstreams[0].throttleSignals[0].status: a status is a whole number']],
    [[{ status: '429' }], ['upstreams[0].throttleSignals[0].status: Invalid input: expected number, received string']],
    [[{ header: 'retry-after' }], ['upstreams[0].throttleSignals[0].status: Invalid input: expected number, received undefined']],
    [[{ status: 403, header: 'retry after' }], ['upstreams[0].throttleSignals[0].header: expected an HTTP header name']],
    [[{ status: 403, equals: '0' }], ['upstreams[0].throttleSignals[0].equals: equals needs a header to compare']],
    [[{ status: 503, body: '' }], ['upstreams[0].throttleSignals[0].body: a body pattern must not be empty']],
    [[{ status: 503, body: 'é'.repeat(513) }], ['upstreams[0].throttleSignals[0].body: a body pattern is at most 1024 bytes']],
    [[{ status: 503, pause: 'sometimes' }], ['upstreams[0].throttleSignals[0].pause: Invalid option: expected one of "always"|"pattern"']],
    [[{ status: 503, statuss: 1 }], ['upstreams[0].throttleSignals[0]: unknown key statuss']],
    [[], ['upstreams[0].throttleSignals: needs at least one signal; list { status: 429 } to keep the default']],
    [
      [
        { status: 200, header: 'a b' },
        { status: 403, equals: '1' },
      ],
      [
        'upstreams[0].throttleSignals[0].status: a throttle signal is an error status (400-599)',
        'upstreams[0].throttleSignals[0].header: expected an HTTP header name',
        'upstreams[0].throttleSignals[1].equals: equals needs a header to compare',
      ],
    ],
  ])('%j', (input, expected) => {
    expect(problems(input)).toEqual(expected);
  });

  it('a body of 1024 bytes of UTF-8 is accepted', () => {
    expect(problems([{ status: 503, body: 'é'.repeat(512) }])).toEqual([]);
  });
});
