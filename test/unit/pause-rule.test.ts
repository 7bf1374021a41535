import { describe, expect, it } from 'vitest';
import { decidePause, PAUSE_PATTERN, ThrottleTracker } from '../../src/core/pause-rule.js';
import type { PauseMode } from '../../src/core/throttle-signal.js';

/**
 * What the integrator does on every answer of a key: create its tracker at the first answer,
 * record each answer, and decide for a throttle. Returns, per answer, whether it paused the key.
 */
function replay(answers: readonly { at: number; throttle: PauseMode | undefined }[]): boolean[] {
  let tracker: ThrottleTracker | undefined;
  return answers.map(({ at, throttle }) => {
    tracker ??= new ThrottleTracker(at);
    tracker.record(at, throttle !== undefined);
    return throttle === undefined ? false : decidePause({ mode: throttle, tracker, now: at }).pauseKey;
  });
}

/** `n` answers `stepMs` apart from `from`; `throttled(i)` says which are a throttle of `mode`. */
function answers(n: number, stepMs: number, throttled: (i: number) => boolean, mode: PauseMode = 'pattern', from = 10_000) {
  return Array.from({ length: n }, (_, i) => ({ at: from + i * stepMs, throttle: throttled(i) ? mode : undefined }));
}

const pausesAt = (paused: boolean[]): number[] => paused.flatMap((p, i) => (p ? [i] : []));

describe('proportionate throttling', () => {
  it('one 503 in ten (with Retry-After) never pauses the key: 1,000 answers at 50/s', () => {
    expect(pausesAt(replay(answers(1_000, 20, (i) => i % 10 === 9)))).toEqual([]);
  });

  it('nor does 10% of 503s at random: 10,000 answers at 50/s, a fixed seed', () => {
    let seed = 20;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const paused = replay(answers(10_000, 20, () => random() < 0.1));
    expect(pausesAt(paused)).toEqual([]);
  });

  it('one 503 in three never pauses it either', () => {
    expect(pausesAt(replay(answers(1_000, 20, (i) => i % 3 === 2)))).toEqual([]);
  });

  it('a maintenance 503 on every answer pauses it at the third answer, at 50/s, 10/s or 2/s', () => {
    expect(pausesAt(replay(answers(3, 20, () => true)))).toEqual([2]);
    expect(pausesAt(replay(answers(3, 100, () => true)))).toEqual([2]);
    expect(pausesAt(replay(answers(3, 500, () => true)))).toEqual([2]);
  });

  it('... and at every answer after that while it lasts', () => {
    expect(pausesAt(replay(answers(10, 20, () => true)))).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('... but not at 1/s: each request waits out its own Retry-After', () => {
    expect(pausesAt(replay(answers(60, 1_000, () => true)))).toEqual([]);
  });

  it('half of the answers throttled is the pattern', () => {
    const paused = replay(answers(100, 20, (i) => i % 2 === 1));
    expect(pausesAt(paused)[0]).toBe(5); // the third throttle, 3 of 6
  });

  it('three 503s in a row in a healthy key do not pause it; thirty do, once they are half of the last second', () => {
    expect(pausesAt(replay(answers(200, 20, (i) => i >= 100 && i < 103)))).toEqual([]);
    // At 50/s the 26th 503 in a row (12 500 ms) is the first: 26 throttles against 26 + 50 * 0.5 answers.
    expect(pausesAt(replay(answers(200, 20, (i) => i >= 100 && i < 130)))).toEqual([125, 126, 127, 128, 129]);
  });

  it('a signal that always pauses does, from the first answer', () => {
    expect(pausesAt(replay(answers(10, 100, (i) => i === 0 || i === 5, 'always')))).toEqual([0, 5]);
  });

  it('the reasons', () => {
    const tracker = new ThrottleTracker(0);
    expect(decidePause({ mode: 'always', tracker: undefined, now: 0 })).toEqual({ pauseKey: true, reason: 'always' });
    expect(decidePause({ mode: 'pattern', tracker: undefined, now: 0 })).toEqual({ pauseKey: false, reason: 'sporadic' });
    for (let i = 0; i < 3; i++) tracker.record(i, true);
    expect(decidePause({ mode: 'pattern', tracker, now: 2 })).toEqual({ pauseKey: true, reason: 'pattern' });
  });
});

describe('ThrottleTracker', () => {
  // Slots of 1 s: [0, 1000), [1000, 2000), ...; the previous slot counts for the part of it still
  // inside the last second.
  it.each<[label: string, events: [at: number, throttled: boolean][], now: number, pattern: boolean]>([
    [
      'three throttles in a slot',
      [
        [0, true],
        [10, true],
        [20, true],
      ],
      20,
      true,
    ],
    [
      'two throttles in a slot',
      [
        [0, true],
        [10, true],
      ],
      20,
      false,
    ],
    [
      'three throttles, three answers',
      [
        [0, true],
        [1, false],
        [2, true],
        [3, false],
        [4, true],
        [5, false],
      ],
      5,
      true,
    ],
    [
      'three throttles, four answers',
      [
        [0, true],
        [1, false],
        [2, true],
        [3, false],
        [4, true],
        [5, false],
        [6, false],
      ],
      6,
      false,
    ],
    // Two in the previous slot, one now: the previous counts in full at the slot's start...
    [
      'previous slot, weight 1',
      [
        [900, true],
        [950, true],
        [1_000, true],
      ],
      1_000,
      true,
    ],
    // ...for three quarters a quarter into the next: 1 + 2 * 0.75 = 2.5 < 3.
    [
      'previous slot, weight 0.75',
      [
        [900, true],
        [950, true],
        [1_250, true],
      ],
      1_250,
      false,
    ],
    [
      'four: 1 + 3 * 0.75 = 3.25',
      [
        [800, true],
        [900, true],
        [950, true],
        [1_250, true],
      ],
      1_250,
      true,
    ],
    // Answers are weighted too: 2 throttles + 6 answers before, 2 throttles + 2 answers now, half-way:
    // throttles 2 + 1 = 3, answers 4 + 4 = 8 -> 3 >= 4 is false.
    [
      'answers weighted like throttles',
      [
        [500, true],
        [510, true],
        [520, false],
        [530, false],
        [540, false],
        [550, false],
        [1_500, true],
        [1_510, true],
      ],
      1_510,
      false,
    ],
    [
      'a slot skipped forgets everything',
      [
        [0, true],
        [10, true],
        [20, true],
      ],
      2_000,
      false,
    ],
    [
      'the slot after: weight 1 at its start',
      [
        [0, true],
        [10, true],
        [20, true],
      ],
      1_000,
      true,
    ],
    [
      'the slot after: weight 0.98 near its end',
      [
        [0, true],
        [10, true],
        [20, true],
      ],
      1_020,
      false,
    ],
    // A clock that goes backwards counts in the current slot.
    [
      'backwards',
      [
        [5_000, true],
        [5_010, true],
        [4_000, true],
      ],
      5_010,
      true,
    ],
  ])('%s', (_label, events, now, pattern) => {
    const tracker = new ThrottleTracker(events[0]?.[0] ?? 0);
    for (const [at, throttled] of events) tracker.record(at, throttled);
    expect(tracker.isPattern(now)).toBe(pattern);
  });

  it('remembers nothing two slots on', () => {
    const tracker = new ThrottleTracker(1_500);
    tracker.record(1_500, true);
    expect(tracker.quietAt()).toBe(3_000);
    tracker.record(3_200, true);
    expect(tracker.quietAt()).toBe(5_000);
  });

  it('saturates without losing the share', () => {
    const tracker = new ThrottleTracker(0);
    for (let i = 0; i < 100_000; i++) tracker.record(0.001 * i, i % 2 === 0); // 100,000 answers in 100 ms, half throttles
    expect(tracker.isPattern(100)).toBe(true);
    const healthy = new ThrottleTracker(0);
    for (let i = 0; i < 100_000; i++) healthy.record(0.001 * i, i % 10 === 0);
    expect(healthy.isPattern(100)).toBe(false);
  });

  it('the constants the README states', () => {
    expect(PAUSE_PATTERN).toEqual({ windowMs: 1000, minThrottles: 3, ratio: 0.5 });
  });
});
