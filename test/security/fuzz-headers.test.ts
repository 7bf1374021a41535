import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHttpDate } from '../../src/core/http-date.js';
import { parseQuotaHeaders, type QuotaDialect } from '../../src/core/ratelimit-headers.js';
import { parseRetryAfterMs } from '../../src/core/retry-after.js';
import { forwardRequestHeaders, forwardResponseHeaders, headersForLog } from '../../src/upstream/headers.js';

/**
 * Fuzzing every header parser with what an upstream or a client may send: Retry-After (both
 * forms), HTTP-dates (three forms), the rate-limit dialects (IETF structured fields, the
 * dictionary draft, RateLimit-*, X-RateLimit-*), and the forwarding of request and response
 * headers. Each returns a parse result (undefined, or finite non-negative numbers) and never
 * throws; text built from each grammar, repeated, is handled quickly; and forwarding never lets a
 * hop-by-hop or Connection-named header through, nor a client's copy of a configured header.
 */

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const QUICK_MS = 100;

function timed<T>(what: () => string, run: () => T): T {
  const started = performance.now();
  const result = run();
  const elapsedMs = performance.now() - started;
  if (elapsedMs > QUICK_MS) expect.fail(`${what()} took ${Math.round(elapsedMs)} ms`);
  return result;
}

function expectFiniteNonNegative(value: number | undefined, what: string): void {
  if (value === undefined) return;
  expect(Number.isFinite(value), `${what} = ${value}`).toBe(true);
  expect(value, what).toBeGreaterThanOrEqual(0);
}

const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), fc.string({ maxLength: 40 }));
const dateGrammar = fc
  .array(
    fc.constantFrom(
      'Sun',
      'Sunday',
      ', ',
      ' ',
      '06',
      '6',
      '-',
      'Nov',
      'Feb',
      '1994',
      '94',
      '08',
      ':',
      '49',
      '37',
      '60',
      '99',
      'GMT',
      'UTC',
      '+0000',
      '31',
      '29',
      '0000',
      '9999',
      '275761',
    ),
    { maxLength: 20 },
  )
  .map((parts) => parts.join(''));
/** Numbers too large for a double. */
const hugeNumber = fc.string({ unit: fc.constantFrom('0', '1', '9'), minLength: 300, maxLength: 400 }).map((digits) => `9${digits}`);
const numberGrammar = fc
  .array(fc.constantFrom('0', '1', '9', '.', '-', '+', 'e', 'E', '1e309', ' ', 'Infinity', 'NaN', '0x10'), { maxLength: 20 })
  .map((p) => p.join(''));
const sfGrammar = fc
  .array(
    fc.constantFrom(
      '"default"',
      '"p"',
      'p',
      ';',
      'r=',
      'q=',
      'w=',
      't=',
      '0',
      '10',
      '-1',
      '1.5',
      '1e3',
      ',',
      ', ',
      ' ',
      '=',
      '?1',
      ':YWJj:',
      '(',
      ')',
      '"',
      '\\',
      'limit=',
      'remaining=',
      'reset=',
    ),
    { maxLength: 30 },
  )
  .map((p) => p.join(''));

describe('Retry-After and HTTP-dates', () => {
  it('parse to undefined or finite non-negative numbers, never throw', () => {
    fc.assert(
      fc.property(
        fc.oneof(text, dateGrammar, numberGrammar, hugeNumber, fc.constant(undefined)),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        (value, now) => {
          expectFiniteNonNegative(
            timed(
              () => `parseRetryAfterMs(${fc.stringify(value)})`,
              () => parseRetryAfterMs(value, now),
            ),
            `Retry-After ${fc.stringify(value)}`,
          );
          if (value !== undefined) {
            const at = timed(
              () => `parseHttpDate(${fc.stringify(value)})`,
              () => parseHttpDate(value),
            );
            if (at !== undefined) expect(Number.isFinite(at), `${value} = ${at}`).toBe(true);
          }
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('read any valid IMF-fixdate back to its instant', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date(Date.UTC(1970, 0, 1)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }), (date) => {
        const whole = Math.floor(date.getTime() / 1000) * 1000;
        expect(parseHttpDate(new Date(whole).toUTCString())).toBe(whole);
      }),
      { numRuns: 500 },
    );
  });
});

describe('rate-limit headers, every dialect', () => {
  const names = [
    'ratelimit',
    'ratelimit-policy',
    'ratelimit-limit',
    'ratelimit-remaining',
    'ratelimit-reset',
    'x-ratelimit-limit',
    'x-ratelimit-remaining',
    'x-ratelimit-used',
    'x-ratelimit-reset',
    'x-ratelimit-reset-after',
  ];
  const fieldValue = fc.oneof(text, sfGrammar, numberGrammar, hugeNumber);
  const dialects = fc.option(
    fc.subarray<QuotaDialect>(['ietf', 'ietf-dict', 'ietf-legacy', 'x-ratelimit']).map((d) => new Set(d)),
    { nil: undefined },
  );

  it('parse to undefined or a QuotaInfo of finite non-negative numbers, never throw', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom(...names), fieldValue, { maxKeys: 6 }),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        dialects,
        (fields, now, only) => {
          const info = timed(
            () => `parseQuotaHeaders(${fc.stringify(fields)})`,
            () => parseQuotaHeaders((name) => fields[name], now, only),
          );
          if (info === undefined) return;
          expect(['ietf', 'ietf-dict', 'ietf-legacy', 'x-ratelimit']).toContain(info.dialect);
          if (only !== undefined) expect(only.has(info.dialect)).toBe(true);
          for (const key of ['remaining', 'limit'] as const) expectFiniteNonNegative(info[key], `${key} of ${fc.stringify(fields)}`);
          for (const key of ['resetMs', 'windowMs'] as const) expectFiniteNonNegative(info[key], `${key} of ${fc.stringify(fields)}`);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  // Seconds near the largest double overflow to Infinity once turned into ms: malformed, dropped.
  it('never report an infinite reset or window', () => {
    const digits = `9${'0'.repeat(306)}`;
    for (const fields of [
      { 'x-ratelimit-reset-after': digits },
      { ratelimit: `"p";r=1;t=${digits}` },
      { 'ratelimit-policy': `"p";q=1;w=${digits}`, ratelimit: '"p";r=1' },
    ]) {
      const info = parseQuotaHeaders((name) => (fields as Record<string, string | undefined>)[name], NOW);
      expectFiniteNonNegative(info?.resetMs, `resetMs of ${JSON.stringify(fields)}`);
      expectFiniteNonNegative(info?.windowMs, `windowMs of ${JSON.stringify(fields)}`);
    }
  });

  it('handle long structured-field-shaped values quickly', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('"p";r=1;t=2, ', ';', ',', ' ', '"', '(', 'r=', '1'), { minLength: 500, maxLength: 3_000 }), (parts) => {
        const value = parts.join('');
        timed(
          () => `parseQuotaHeaders(${value.length} chars)`,
          () => parseQuotaHeaders((name) => (name === 'ratelimit' || name === 'ratelimit-policy' ? value : undefined), NOW),
        );
      }),
      { numRuns: 50 },
    );
  });
});

describe('forwarding headers', () => {
  const HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
  const name = fc.oneof(
    fc.constantFrom(...HOP, 'Connection', 'TE', 'Host', 'expect', 'authorization', 'AUTHORIZATION', 'x-a', 'X-B', 'content-length', 'x-named'),
    fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/),
  );
  const headerValue = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.array(fc.constantFrom('x-a', 'X-B', 'close', 'keep-alive', 'x-named', 'Upgrade', ',', ' ', ''), { maxLength: 6 }).map((p) => p.join(',')),
  );
  const raw = fc.array(fc.tuple(name, headerValue), { maxLength: 16 });

  it('never forwards a hop-by-hop or Connection-named request header, nor a client copy of a configured one', () => {
    fc.assert(
      fc.property(raw, fc.boolean(), (pairs, dropContentLength) => {
        const rawHeaders = pairs.flat();
        const connection = pairs.filter(([n]) => n.toLowerCase() === 'connection').map(([, v]) => v);
        const named = new Set(
          connection
            .join(',')
            .split(',')
            .map((t) => t.trim().toLowerCase())
            .filter((t) => t !== '' && t !== 'close' && t !== 'keep-alive'),
        );
        const out = forwardRequestHeaders(rawHeaders, connection.length === 0 ? undefined : connection, {
          host: 'upstream.example',
          setHeaders: [['authorization', 'Bearer configured']],
          dropContentLength,
        });
        const outNames = out.filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase());
        for (const n of outNames) {
          expect(HOP, n).not.toContain(n);
          expect(named.has(n), `${n} is named in Connection: ${connection.join(' | ')}`).toBe(false);
        }
        expect(outNames.filter((n) => n === 'host')).toEqual(['host']);
        expect(outNames.filter((n) => n === 'authorization')).toEqual(['authorization']);
        expect(out[out.indexOf('authorization') + 1]).toBe('Bearer configured');
        if (dropContentLength) expect(outNames).not.toContain('content-length');
        const logged = headersForLog(out, new Set(['authorization']));
        expect(logged.authorization).toBe('[redacted]');
      }),
      { numRuns: 2_000 },
    );
  });

  it('never relays a hop-by-hop or Connection-named response header', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          name.map((n) => n.toLowerCase()),
          fc.oneof(headerValue, fc.array(headerValue, { maxLength: 3 })),
          { maxKeys: 12 },
        ),
        (headers) => {
          const connection = headers.connection;
          const named = new Set(
            (Array.isArray(connection) ? connection.join(',') : (connection ?? ''))
              .split(',')
              .map((t) => t.trim().toLowerCase())
              .filter((t) => t !== '' && t !== 'close' && t !== 'keep-alive'),
          );
          const out = forwardResponseHeaders(headers, ['sluice-attempts', '1']);
          for (let i = 0; i < out.length - 2; i += 2) {
            const n = out[i] as string;
            expect(HOP).not.toContain(n);
            expect(named.has(n), n).toBe(false);
          }
          expect(out.slice(-2)).toEqual(['sluice-attempts', '1']);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
