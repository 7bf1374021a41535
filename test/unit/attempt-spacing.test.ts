import { describe, expect, it } from 'vitest';
import { connectRetryDelayMs } from '../../src/core/attempt-spacing.js';
import { fullJitterMs, type BackoffPolicy } from '../../src/core/backoff.js';

const backoff: BackoffPolicy = { baseMs: 100, maxMs: 10_000 };

describe('connectRetryDelayMs', () => {
  // share = R / (2^k - 1); delay = floor(min(R, max(share * (0.5 + random / 2), fullJitter(attempt - 1))))
  it.each<[attempt: number, attemptsLeft: number, remainingMs: number, random: number, delayMs: number]>([
    // The defaults: 5 attempts, 100 s to start one in.
    [1, 4, 100_000, 0.5, 5_000], // share 6 666.7 * 0.75 (the JSDoc example)
    [1, 4, 100_000, 0, 3_333], // half the share
    [1, 4, 100_000, 0.999_999, 6_666], // just under the share
    [2, 3, 95_000, 0.5, 10_178], // 95 000 / 7 * 0.75
    [3, 2, 84_822, 0.5, 21_205], // 84 822 / 3 * 0.75
    [4, 1, 63_617, 0.5, 47_712], // the last attempt: R * 0.75
    [4, 1, 63_617, 0, 31_808], // ... never before half of what is left
    // A short budget: the ordinary backoff is the floor, R the ceiling.
    [1, 4, 600, 0.5, 50], // share 40 * 0.75 = 30 < full jitter 50
    [3, 2, 300, 0.5, 200], // full jitter of retry 2 is 200, share 150 * 0.75 = 112
    [3, 2, 150, 0.5, 150], // ... capped at what is left
    [1, 1, 40, 0.5, 40], // one attempt left, 40 ms to go: 30 < 50, capped at 40
    // Many attempts: the ordinary backoff governs the first ones.
    [1, 19, 100_000, 0.5, 50], // share 0.19 ms
    [10, 10, 100_000, 0.5, 5_000], // full jitter of retry 9 (window capped at 10 s) = 5 000 > share 73
    [17, 3, 100_000, 0.5, 10_714], // the spread takes over near the end
    // No attempt or no time left: 0, and decideRetry stops (exhausted, or budget when R < 0).
    [5, 0, 100_000, 0.5, 0],
    [2, 3, 0, 0.5, 0],
    [2, 3, -25, 0.5, 0],
    // Random numbers outside [0, 1) are clamped.
    [1, 4, 100_000, -1, 3_333],
    [1, 4, 100_000, 2, 6_666],
  ])('attempt %d, %d left, %d ms left, random %d -> %d ms', (attempt, attemptsLeft, remainingMs, random, delayMs) => {
    expect(connectRetryDelayMs({ attempt, attemptsLeft, remainingMs, backoff, random })).toBe(delayMs);
  });

  it('backoff.max caps the ordinary backoff, not the spread', () => {
    const capped = { baseMs: 100, maxMs: 1_000 };
    expect(connectRetryDelayMs({ attempt: 1, attemptsLeft: 1, remainingMs: 60_000, backoff: capped, random: 0.5 })).toBe(45_000);
  });

  /** The attempts a request makes in an outage longer than its budget, with one random number throughout. */
  function schedule(options: { attempts: number; budgetMs: number; random: number }): number[] {
    const times: number[] = [0];
    for (let attempt = 1; attempt < options.attempts; attempt++) {
      const now = times[times.length - 1] as number;
      const delayMs = connectRetryDelayMs({
        attempt,
        attemptsLeft: options.attempts - attempt,
        remainingMs: options.budgetMs - now,
        backoff,
        random: options.random,
      });
      times.push(now + delayMs);
    }
    return times;
  }

  it('spreads the five default attempts over the budget, where the ordinary backoff spent them in 1.5 s', () => {
    const ordinary = [0];
    for (let retry = 0; retry < 4; retry++) ordinary.push((ordinary[ordinary.length - 1] as number) + fullJitterMs(retry, backoff, 0.999_999));
    expect(ordinary[4]).toBeLessThan(1_500);

    expect(schedule({ attempts: 5, budgetMs: 100_000, random: 0.5 })).toEqual([0, 5_000, 15_178, 36_383, 84_095]);
    expect(schedule({ attempts: 5, budgetMs: 100_000, random: 0.999_999 })).toEqual([0, 6_666, 19_999, 46_665, 99_999]);
    expect(schedule({ attempts: 5, budgetMs: 100_000, random: 0 })).toEqual([0, 3_333, 10_237, 25_197, 62_598]);
  });

  it('the gaps of one plan double, whatever the random number, and the last attempt starts within the budget', () => {
    for (const attempts of [2, 3, 5, 8]) {
      for (const budgetMs of [1_000, 30_000, 100_000, 3_600_000]) {
        for (const random of [0, 0.1, 0.5, 0.9, 0.999_999]) {
          const times = schedule({ attempts, budgetMs, random });
          const last = times[times.length - 1] as number;
          expect(last).toBeLessThanOrEqual(budgetMs);
          // The last attempt is at least half-way through what was left before it.
          const beforeLast = times[times.length - 2] as number;
          expect(last - beforeLast).toBeGreaterThanOrEqual(Math.floor((budgetMs - beforeLast) / 2));
          for (let i = 1; i < times.length; i++) expect((times[i] as number) >= (times[i - 1] as number)).toBe(true);
        }
      }
    }
  });

  it('is memoryless: computed again after a failure, the plan goes on with the next gap', () => {
    // With the delay at the full share (random -> 1), the next share is twice the previous one.
    const first = connectRetryDelayMs({ attempt: 1, attemptsLeft: 4, remainingMs: 150_000, backoff, random: 1 });
    const second = connectRetryDelayMs({ attempt: 2, attemptsLeft: 3, remainingMs: 150_000 - first, backoff, random: 1 });
    const third = connectRetryDelayMs({ attempt: 3, attemptsLeft: 2, remainingMs: 150_000 - first - second, backoff, random: 1 });
    expect([first, second, third]).toEqual([10_000, 20_000, 40_000]);
  });
});
