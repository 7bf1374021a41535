import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRate, parseDurationMs, parseFraction, parseRatePerSec, parseSizeBytes } from '../../src/core/units.js';

/**
 * Fuzzing the unit parsers (durations, sizes, rates, percentages), used by the configuration and
 * by request headers (Sluice-Max-Wait is a duration). For any input, text or not, each returns
 * undefined or a finite number in its range and never throws; text built from their own grammar
 * (digits, dots, units, spaces, slashes, repeated) is answered quickly (no catastrophic
 * backtracking); and well-formed values parse to what they say.
 */

const PARSERS = { parseDurationMs, parseSizeBytes, parseRatePerSec, parseFraction } as const;
const grammar = fc
  .array(
    fc.constantFrom('1', '0', '9', '.', ' ', '\t', '/', 'ms', 's', 'm', 'h', 'd', 'b', 'kb', 'MB', 'gb', '%', 'e', '-', '+', '1e309', 'Infinity', 'NaN', '٣'),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(''));

/** Numbers too large for a double, with each parser's units after them. */
const hugeNumber = fc
  .tuple(
    fc.string({ unit: fc.constantFrom('0', '1', '9'), minLength: 300, maxLength: 400 }),
    fc.constantFrom('', 'ms', 's', 'd', 'kb', 'gb', '/s', '/1ms', '%', '.5'),
  )
  .map(([digits, unit]) => `9${digits}${unit}`);

function check(name: keyof typeof PARSERS, value: unknown): void {
  const started = performance.now();
  const result = PARSERS[name](value);
  const elapsedMs = performance.now() - started;
  if (elapsedMs > 100) expect.fail(`${name}(${fc.stringify(value).slice(0, 80)}) took ${Math.round(elapsedMs)} ms`);
  if (result === undefined) return;
  expect(Number.isFinite(result), `${name}(${fc.stringify(value)}) = ${result}`).toBe(true);
  expect(result).toBeGreaterThanOrEqual(0);
  if (name === 'parseRatePerSec') expect(result).toBeGreaterThan(0);
  if (name === 'parseFraction') expect(result).toBeLessThan(1);
  if (name === 'parseSizeBytes') expect(Number.isSafeInteger(result)).toBe(true);
}

describe.each(Object.keys(PARSERS) as (keyof typeof PARSERS)[])('%s', (name) => {
  it('returns undefined or a finite number in range for any value, never throws', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.anything({ maxDepth: 2 }), fc.string({ unit: 'binary', maxLength: 100 }), grammar, hugeNumber, fc.double(), fc.bigInt()),
        (value) => check(name, value),
      ),
      { numRuns: 2_000 },
    );
  });

  it('answers long grammar-shaped text quickly', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('1', '.', ' ', '1.', '0 ', '/', '/1'), { minLength: 1_000, maxLength: 5_000 }),
        fc.constantFrom('', 'x', 's', 'ms', '/s', 'kb', '%'),
        (parts, tail) => check(name, parts.join('') + tail),
      ),
      { numRuns: 50 },
    );
  });
});

describe('well-formed values', () => {
  it('parse to what they say', () => {
    const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.constantFrom(...(Object.keys(unitMs) as (keyof typeof unitMs)[])),
        fc.integer({ min: 1, max: 100 }),
        (n, unit, multiple) => {
          expect(parseDurationMs(`${n}${unit}`)).toBe(n * unitMs[unit]);
          expect(parseDurationMs(` ${n} ${unit} `)).toBe(n * unitMs[unit]);
          if (n > 0) {
            expect(parseRatePerSec(`${n}/${unit}`)).toBeCloseTo((n * 1000) / unitMs[unit], 9);
            expect(parseRatePerSec(`${n}/${multiple}${unit}`)).toBeCloseTo((n * 1000) / (multiple * unitMs[unit]), 9);
            const formatted = formatRate((n * 1000) / unitMs[unit]);
            expect(parseRatePerSec(formatted)).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
