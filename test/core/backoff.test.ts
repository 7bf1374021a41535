import { describe, expect, it } from 'vitest';
import { fullJitterMs, type BackoffPolicy } from '../../src/core/backoff.js';

const policy: BackoffPolicy = { baseMs: 100, maxMs: 10_000 };

describe('fullJitterMs', () => {
  // The window doubles from baseMs per retry (100, 200, 400, ... ms) up to maxMs; the delay is
  // floor(window * random). Random values are exact binary fractions, so the products are exact.
  it.each<[retry: number, random: number, delayMs: number]>([
    [0, 0, 0],
    [0, 0.5, 50],
    [0, 0.999, 99],
    [1, 0.5, 100],
    [2, 0.5, 200], // the JSDoc example
    [3, 0.25, 200],
    [3, 0.75, 600],
    [4, 0.125, 200],
    [6, 0.5, 3_200],
    [5, 0.5, 1_600],
    [7, 0.75, 7_500], // window 12 800 ms, capped at 10 000
    [8, 0.5, 5_000],
    [30, 0.5, 5_000],
    [2_000, 0.5, 5_000], // 100 * 2^2000 is Infinity; the cap still holds
    [-1, 0.5, 50], // a negative retry counts as the first
  ])('retry %d, random %d -> %d ms', (retry, random, delayMs) => {
    expect(fullJitterMs(retry, policy, random)).toBe(delayMs);
  });

  it.each<[random: number, delayMs: number]>([
    [-0.5, 0],
    [1, 100],
    [1.5, 100],
  ])('a random number outside [0, 1) is clamped: %d -> %d ms', (random, delayMs) => {
    expect(fullJitterMs(0, policy, random)).toBe(delayMs);
  });

  it.each<[policy: BackoffPolicy, retry: number, random: number, delayMs: number]>([
    [{ baseMs: 0, maxMs: 1_000 }, 0, 0.5, 0],
    [{ baseMs: 0, maxMs: 1_000 }, 5, 0.5, 0],
    [{ baseMs: 0, maxMs: 1_000 }, 2_000, 0.5, 0], // 0 * 2^2000 would be NaN
    [{ baseMs: 500, maxMs: 200 }, 0, 0.5, 100], // maxMs below baseMs caps the first retry too
    [{ baseMs: 100, maxMs: 0 }, 3, 0.5, 0],
    [{ baseMs: 1, maxMs: 60_000 }, 10, 0.5, 512],
  ])('policy %j, retry %d, random %d -> %d ms', (p, retry, random, delayMs) => {
    expect(fullJitterMs(retry, p, random)).toBe(delayMs);
  });

  it('always an integer in [0, min(maxMs, baseMs * 2^retry))', () => {
    for (let retry = 0; retry < 12; retry++) {
      const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** retry);
      for (const random of [0, 0.1, 0.3, 0.7, 0.9, 0.999_999]) {
        const delayMs = fullJitterMs(retry, policy, random);
        expect(Number.isInteger(delayMs)).toBe(true);
        expect(delayMs).toBeGreaterThanOrEqual(0);
        expect(delayMs).toBeLessThan(ceiling);
      }
    }
  });
});
