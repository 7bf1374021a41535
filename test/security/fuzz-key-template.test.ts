import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileKeyTemplate, type KeySource } from '../../src/core/key-template.js';

/**
 * Fuzzing key templates: any template text compiles or is refused with a message (never a throw);
 * a compiled template renders any request (any header, query or path values, missing ones, huge
 * ones) to a string without throwing; and text built from the template grammar is handled quickly.
 */

const piece = fc.constantFrom(
  '{',
  '}',
  '{{',
  '}}',
  '{header.',
  '{query.',
  '{path.',
  '{method}',
  '{client.ip}',
  'header',
  'query',
  'path',
  '.',
  '1',
  '0',
  '-1',
  'x-account',
  'region',
  ' ',
  ':',
  '/',
  '\u0000',
  '😀',
  '{header.x-account}',
  '{path.1}',
  '{query.q}',
);
const template = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.array(piece, { maxLength: 30 }).map((p) => p.join('')),
);
const value = fc.option(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constant('x'.repeat(100_000))), { nil: undefined });

function source(values: { header: string | undefined; query: string | undefined; path: string | undefined; method: string; ip: string }): KeySource {
  return {
    method: values.method,
    clientIp: values.ip,
    header: () => values.header,
    query: () => values.query,
    pathSegment: () => values.path,
  };
}

describe('compileKeyTemplate', () => {
  it('compiles or refuses any text with a message, and renders any request to a string', () => {
    fc.assert(
      fc.property(template, value, value, value, fc.string({ maxLength: 10 }), fc.string({ maxLength: 40 }), (text, header, query, path, method, ip) => {
        const started = performance.now();
        const compiled = compileKeyTemplate(text);
        if (!compiled.ok) {
          expect(compiled.error).toBeTypeOf('string');
          expect(compiled.error.length).toBeGreaterThan(0);
        } else {
          const key = compiled.template.render(source({ header, query, path, method, ip }));
          expect(key).toBeTypeOf('string');
          // Literal text is kept, values are inserted: nothing but those makes up the key.
          if (!/[{}]/.test(text)) expect(key).toBe(text);
        }
        expect(performance.now() - started).toBeLessThan(200);
      }),
      { numRuns: 3_000 },
    );
  });

  it('handles long template-shaped text quickly', () => {
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1_000, maxLength: 4_000 }), (pieces) => {
        const started = performance.now();
        const compiled = compileKeyTemplate(pieces.join(''));
        if (compiled.ok) compiled.template.render(source({ header: 'h', query: 'q', path: 'p', method: 'GET', ip: '127.0.0.1' }));
        expect(performance.now() - started).toBeLessThan(200);
      }),
      { numRuns: 50 },
    );
  });
});
