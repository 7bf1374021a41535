import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { breakerSchema } from '../../src/config/breaker-schema.js';
import { formatPath } from '../../src/config/config-error.js';

/** As it sits in the configuration, so that paths are the user's. */
const config = z.strictObject({ upstreams: z.array(z.strictObject({ breaker: breakerSchema })) });

const problems = (breaker: unknown): string[] => {
  const result = config.safeParse({ upstreams: [{ breaker }] });
  if (result.success) return [];
  return result.error.issues.map(
    (issue) => `${formatPath(issue.path)}: ${issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')}` : issue.message}`,
  );
};

describe('breakerSchema', () => {
  it('defaults: five in a row, no ratio, probes from 250 ms to 2 s', () => {
    expect(config.parse({ upstreams: [{}] }).upstreams[0]?.breaker).toEqual({
      consecutiveFailures: 5,
      failureRatio: undefined,
      probeBackoff: { baseMs: 250, maxMs: 2_000 },
    });
  });

  it.each<[input: Record<string, unknown>, output: unknown]>([
    [
      { failureRatio: '85%' },
      { consecutiveFailures: 5, failureRatio: { ratio: 0.85, minAttempts: 50, windowMs: 10_000 }, probeBackoff: { baseMs: 250, maxMs: 2_000 } },
    ],
    [
      { consecutiveFailures: 0, failureRatio: 0.5, minAttempts: 10, window: '1s' },
      { consecutiveFailures: 0, failureRatio: { ratio: 0.5, minAttempts: 10, windowMs: 1_000 }, probeBackoff: { baseMs: 250, maxMs: 2_000 } },
    ],
    [{ consecutiveFailures: 0 }, { consecutiveFailures: 0, failureRatio: undefined, probeBackoff: { baseMs: 250, maxMs: 2_000 } }],
    [{ probe: { base: '1s', max: '5s' } }, { consecutiveFailures: 5, failureRatio: undefined, probeBackoff: { baseMs: 1_000, maxMs: 5_000 } }],
    [{ probe: { base: 500 } }, { consecutiveFailures: 5, failureRatio: undefined, probeBackoff: { baseMs: 500, maxMs: 2_000 } }],
  ])('%j', (input, output) => {
    expect(config.parse({ upstreams: [{ breaker: input }] }).upstreams[0]?.breaker).toEqual(output);
  });

  it.each<[input: unknown, expected: string[]]>([
    [{ consecutiveFailures: -1 }, ['upstreams[0].breaker.consecutiveFailures: Too small: expected number to be >=0']],
    [{ consecutiveFailures: 2.5 }, ['upstreams[0].breaker.consecutiveFailures: Invalid input: expected int, received number']],
    [{ failureRatio: '100%' }, ['upstreams[0].breaker.failureRatio: a failure ratio is above 0% and below 100%']],
    [{ failureRatio: '0%' }, ['upstreams[0].breaker.failureRatio: a failure ratio is above 0% and below 100%']],
    [{ failureRatio: 'most' }, ['upstreams[0].breaker.failureRatio: expected a percentage such as 85%']],
    [{ window: 'ten seconds' }, ['upstreams[0].breaker.window: expected a duration such as 250ms, 10s, 5m or 1h']],
    [{ failureRatio: '50%', window: 0 }, ['upstreams[0].breaker.window: a failure ratio needs a window above 0']],
    [{ probe: { base: '3s', max: '1s' } }, ['upstreams[0].breaker.probe.max: probe.max must be at least probe.base']],
    [{ probe: { min: '1s' } }, ['upstreams[0].breaker.probe: unknown key min']],
    [{ consecutive: 3 }, ['upstreams[0].breaker: unknown key consecutive']],
    [false, ['upstreams[0].breaker: Invalid input: expected object, received boolean']],
  ])('%j', (input, expected) => {
    expect(problems(input)).toEqual(expected);
  });
});
