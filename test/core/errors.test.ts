import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INTERNAL_CODES, PROBLEMS, SluiceError, hasCode, type ProblemCode } from '../../src/core/errors.js';

/** The answers table of the README ("Answers sluice gives of its own"): code -> status. */
function readmeAnswers(): Map<string, number> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Answers sluice gives of its own'), readme.indexOf('## Retries'));
  const answers = new Map<string, number>();
  for (const match of section.matchAll(/^\|[^|]*\| (\d{3}) \| `(SLUICE_[A-Z_]+)` \|/gm)) answers.set(match[2] as string, Number(match[1]));
  return answers;
}

describe('the code -> status table', () => {
  it('gives every code sluice answers with its status and a title', () => {
    const expected: Record<ProblemCode, number> = {
      SLUICE_QUEUE_FULL: 429,
      SLUICE_QUEUE_TIMEOUT: 429,
      SLUICE_UPSTREAM_TIMEOUT: 504,
      SLUICE_UPSTREAM_UNREACHABLE: 502,
      SLUICE_NO_ROUTE: 404,
      SLUICE_BODY_TOO_LARGE: 413,
      SLUICE_SHUTTING_DOWN: 503,
      SLUICE_BAD_REQUEST: 400,
      SLUICE_NOT_IMPLEMENTED: 501,
      SLUICE_STORE_UNAVAILABLE: 503,
      SLUICE_INTERNAL: 500,
    };
    expect(Object.fromEntries(Object.entries(PROBLEMS).map(([code, { status }]) => [code, status]))).toEqual(expected);
    for (const { title } of Object.values(PROBLEMS)) expect(title).toMatch(/^[A-Z][a-z].{3,}/);
  });

  it('says what the README answers table says, for every code the table lists', () => {
    const answers = readmeAnswers();
    expect(answers.size).toBeGreaterThanOrEqual(9);
    for (const [code, status] of answers) expect({ code, status: PROBLEMS[code as ProblemCode]?.status }).toEqual({ code, status });
  });

  it('keeps the codes sluice never answers with apart, each saying what becomes of it', () => {
    for (const code of Object.keys(INTERNAL_CODES)) expect(Object.keys(PROBLEMS)).not.toContain(code);
    for (const code of [...Object.keys(PROBLEMS), ...Object.keys(INTERNAL_CODES)]) expect(code).toMatch(/^SLUICE_[A-Z]+(_[A-Z]+)*$/);
    for (const meaning of Object.values(INTERNAL_CODES)) expect(meaning.length).toBeGreaterThan(20);
  });
});

describe('SluiceError', () => {
  it('carries its stable code and names its class', () => {
    class ExampleError extends SluiceError {}
    const err = new ExampleError('SLUICE_CLIENT_GONE', 'client went away');
    expect(err).toBeInstanceOf(Error);
    expect({ code: err.code, name: err.name, message: err.message }).toEqual({ code: 'SLUICE_CLIENT_GONE', name: 'ExampleError', message: 'client went away' });
    expect(hasCode(err, 'SLUICE_CLIENT_GONE')).toBe(true);
    expect(hasCode(err, 'SLUICE_ATTEMPT_TIMEOUT')).toBe(false);
    expect(hasCode(Object.assign(new Error('x'), { code: 'SLUICE_CLIENT_GONE' }), 'SLUICE_CLIENT_GONE')).toBe(false);
  });
});
