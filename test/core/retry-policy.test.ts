import { describe, expect, it } from 'vitest';
import { decideRetry, type AttemptOutcome, type RetryContext, type RetryDecision, type RetryOn, type RetryPolicy } from '../../src/core/retry-policy.js';
import { isIdempotent } from '../../src/core/http-rules.js';

const ALL: readonly RetryOn[] = [429, 502, 503, 504, 'timeout', 'connect', 'reset'];

/** Three attempts, every reason on, full jitter from 100 ms up to 10 s, Retry-After respected. */
const policy: RetryPolicy = { attempts: 3, on: new Set(ALL), backoff: { baseMs: 100, maxMs: 10_000 }, respectRetryAfter: true };

/** The first attempt of a GET with a replayable body, plenty of budget, random 0.5 (jitter 50 ms). */
const context: RetryContext = { attempt: 1, method: 'GET', replayable: true, idempotencyKey: false, remainingMs: 60_000, random: 0.5 };

const status = (code: number, retryAfterMs?: number): AttemptOutcome => ({ kind: 'status', status: code, retryAfterMs });
const timeout: AttemptOutcome = { kind: 'timeout' };
const connect: AttemptOutcome = { kind: 'connect' };
const reset: AttemptOutcome = { kind: 'reset' };

const retry = (reason: Extract<RetryDecision, { retry: true }>['reason'], delayMs: number, pauseKey = false): RetryDecision => ({
  retry: true,
  reason,
  delayMs,
  pauseKey,
});
const stop = (why: Extract<RetryDecision, { retry: false }>['stop']): RetryDecision => ({ retry: false, stop: why });

type Row = [label: string, outcome: AttemptOutcome, method: string, replayable: boolean, idempotencyKey: boolean, expected: RetryDecision];

describe('decideRetry: outcome x method x replayable x Idempotency-Key', () => {
  // Jitter on attempt 1 with random 0.5 is floor(100 * 0.5) = 50 ms.
  it.each<Row>([
    // 429: not processed; any method with a replayable body; pauses the key.
    ['429 + Retry-After 2 s', status(429, 2_000), 'GET', true, false, retry('429', 2_000, true)],
    ['429 + Retry-After 2 s', status(429, 2_000), 'POST', true, false, retry('429', 2_000, true)],
    ['429 + Retry-After 2 s', status(429, 2_000), 'PATCH', true, false, retry('429', 2_000, true)],
    ['429 + Retry-After 2 s', status(429, 2_000), 'POST', false, false, stop('not-replayable')],
    ['429 + Retry-After 2 s', status(429, 2_000), 'POST', false, true, stop('not-replayable')],
    ['429 + Retry-After 2 s', status(429, 2_000), 'GET', false, false, stop('not-replayable')],
    ['429 + Retry-After 0', status(429, 0), 'POST', true, false, retry('429', 0, true)],
    ['429 without Retry-After', status(429), 'POST', true, false, retry('429', 50, true)],
    ['429 without Retry-After', status(429), 'GET', true, true, retry('429', 50, true)],
    // 503 with Retry-After: not processed either.
    ['503 + Retry-After 3 s', status(503, 3_000), 'GET', true, false, retry('503', 3_000, true)],
    ['503 + Retry-After 3 s', status(503, 3_000), 'POST', true, false, retry('503', 3_000, true)],
    ['503 + Retry-After 3 s', status(503, 3_000), 'POST', false, true, stop('not-replayable')],
    // 503 without Retry-After: may have been processed; idempotent methods or Idempotency-Key only.
    ['503', status(503), 'GET', true, false, retry('503', 50)],
    ['503', status(503), 'HEAD', true, false, retry('503', 50)],
    ['503', status(503), 'OPTIONS', true, false, retry('503', 50)],
    ['503', status(503), 'PUT', true, false, retry('503', 50)],
    ['503', status(503), 'DELETE', true, false, retry('503', 50)],
    ['503', status(503), 'TRACE', true, false, retry('503', 50)],
    ['503', status(503), 'POST', true, false, stop('unsafe')],
    ['503', status(503), 'PATCH', true, false, stop('unsafe')],
    ['503', status(503), 'POST', true, true, retry('503', 50)],
    ['503', status(503), 'PATCH', true, true, retry('503', 50)],
    ['503', status(503), 'GET', false, false, stop('not-replayable')],
    ['503', status(503), 'POST', false, false, stop('not-replayable')], // the body is checked before the method
    // 502 and 504: may have been processed.
    ['502', status(502), 'GET', true, false, retry('502', 50)],
    ['502', status(502), 'POST', true, false, stop('unsafe')],
    ['502', status(502), 'POST', true, true, retry('502', 50)],
    ['502', status(502), 'POST', false, true, stop('not-replayable')],
    ['502 + Retry-After 1 s', status(502, 1_000), 'GET', true, false, retry('502', 1_000)], // waits, does not pause the key
    ['502 + Retry-After 1 s', status(502, 1_000), 'POST', true, false, stop('unsafe')],
    ['504', status(504), 'PUT', true, false, retry('504', 50)],
    ['504', status(504), 'POST', true, false, stop('unsafe')],
    ['504', status(504), 'POST', true, true, retry('504', 50)],
    ['504', status(504), 'DELETE', false, false, stop('not-replayable')],
    // Timeouts and resets: the request may have been processed.
    ['timeout', timeout, 'GET', true, false, retry('timeout', 50)],
    ['timeout', timeout, 'PUT', true, false, retry('timeout', 50)],
    ['timeout', timeout, 'POST', true, false, stop('unsafe')],
    ['timeout', timeout, 'POST', true, true, retry('timeout', 50)],
    ['timeout', timeout, 'GET', false, false, stop('not-replayable')],
    ['reset', reset, 'GET', true, false, retry('reset', 50)],
    ['reset', reset, 'POST', true, false, stop('unsafe')],
    ['reset', reset, 'PATCH', true, true, retry('reset', 50)],
    ['reset', reset, 'POST', false, true, stop('not-replayable')],
    // A failed connection sent nothing: any method with a replayable body.
    ['connect', connect, 'GET', true, false, retry('connect', 50)],
    ['connect', connect, 'POST', true, false, retry('connect', 50)],
    ['connect', connect, 'PATCH', true, false, retry('connect', 50)],
    ['connect', connect, 'POST', false, false, stop('not-replayable')],
    ['connect', connect, 'POST', false, true, stop('not-replayable')],
    // Anything else is final: no retry reason.
    ['200', status(200), 'GET', true, false, stop('final')],
    ['201', status(201), 'POST', false, false, stop('final')],
    ['404', status(404), 'GET', true, false, stop('final')],
    ['500', status(500), 'GET', true, false, stop('final')],
    ['501', status(501), 'GET', true, false, stop('final')],
    ['200 + Retry-After', status(200, 5_000), 'GET', true, false, stop('final')],
  ])('%s, %s, replayable=%s, Idempotency-Key=%s -> %j', (_label, outcome, method, replayable, idempotencyKey, expected) => {
    expect(decideRetry(outcome, policy, { ...context, method, replayable, idempotencyKey })).toEqual(expected);
  });
});

describe('decideRetry: attempts', () => {
  it.each<[attempt: number, attempts: number, outcome: AttemptOutcome, method: string, replayable: boolean, expected: RetryDecision]>([
    [1, 3, status(503), 'GET', true, retry('503', 50)],
    [2, 3, status(503), 'GET', true, retry('503', 100)], // window 200 ms
    [3, 3, status(503), 'GET', true, stop('exhausted')],
    [4, 3, status(503), 'GET', true, stop('exhausted')],
    [1, 1, status(503), 'GET', true, stop('exhausted')], // attempts: 1 disables retries
    [1, 1, status(429, 1_000), 'GET', true, stop('exhausted')],
    [2, 2, connect, 'POST', true, stop('exhausted')],
    [1, 2, connect, 'POST', true, retry('connect', 50)],
    // Exhausted is decided before the body and the method are looked at.
    [3, 3, status(503), 'POST', false, stop('exhausted')],
    [3, 3, timeout, 'POST', true, stop('exhausted')],
    // A success is a success whatever the attempt.
    [3, 3, status(200), 'GET', true, stop('final')],
  ])('attempt %d of %d, %j, %s, replayable=%s -> %j', (attempt, attempts, outcome, method, replayable, expected) => {
    expect(decideRetry(outcome, { ...policy, attempts }, { ...context, attempt, method, replayable })).toEqual(expected);
  });
});

describe('decideRetry: remaining budget', () => {
  it.each<[outcome: AttemptOutcome, remainingMs: number, expected: RetryDecision]>([
    [status(429, 2_000), 60_000, retry('429', 2_000, true)],
    [status(429, 2_000), 2_000, retry('429', 2_000, true)], // fits exactly
    [status(429, 2_000), 1_999, stop('budget')],
    [status(503, 30_000), 10_000, stop('budget')],
    [status(429, 0), 0, retry('429', 0, true)],
    [status(429, 0), -1, stop('budget')], // the budget is already spent
    [timeout, 50, retry('timeout', 50)], // jitter 50 ms
    [timeout, 49, stop('budget')],
    [connect, 0, stop('budget')],
  ])('%j with %d ms left -> %j', (outcome, remainingMs, expected) => {
    expect(decideRetry(outcome, policy, { ...context, remainingMs })).toEqual(expected);
  });

  it('checks the safety rules before the budget', () => {
    expect(decideRetry(timeout, policy, { ...context, method: 'POST', remainingMs: 0 })).toEqual(stop('unsafe'));
    expect(decideRetry(timeout, policy, { ...context, replayable: false, remainingMs: 0 })).toEqual(stop('not-replayable'));
  });
});

describe('decideRetry: full-jitter delay', () => {
  // Window for attempt a: min(10 000, 100 * 2^(a-1)); delay = floor(window * random).
  it.each<[attempt: number, random: number, delayMs: number]>([
    [1, 0, 0],
    [1, 0.5, 50],
    [1, 0.999, 99],
    [2, 0.25, 50],
    [3, 0.75, 300],
    [5, 0.5, 800],
    [7, 0.5, 3_200],
    [7, 0.999, 6_393],
    [8, 0.5, 5_000], // window 12 800 ms, capped at 10 000
    [8, 0.75, 7_500],
    [20, 0.5, 5_000],
  ])('attempt %d, random %d -> %d ms', (attempt, random, delayMs) => {
    const decision = decideRetry(timeout, { ...policy, attempts: 100 }, { ...context, attempt, random });
    expect(decision).toEqual(retry('timeout', delayMs));
  });

  it('uses the random number given, not its own', () => {
    const a = decideRetry(status(503), policy, { ...context, random: 0.25 });
    const b = decideRetry(status(503), policy, { ...context, random: 0.25 });
    expect(a).toEqual(retry('503', 25));
    expect(b).toEqual(a);
  });
});

describe('decideRetry: policy switches', () => {
  it.each<[on: readonly RetryOn[], outcome: AttemptOutcome, expected: RetryDecision]>([
    [[429], status(429, 1_000), retry('429', 1_000, true)],
    [[429], status(503, 1_000), stop('not-retryable')],
    [[429], timeout, stop('not-retryable')],
    [[429], connect, stop('not-retryable')],
    [[429], reset, stop('not-retryable')],
    [[429], status(502), stop('not-retryable')],
    [[429], status(504), stop('not-retryable')],
    [['timeout'], timeout, retry('timeout', 50)],
    [['timeout'], reset, stop('not-retryable')],
    [['connect'], connect, retry('connect', 50)],
    [['reset'], reset, retry('reset', 50)],
    [[502, 504], status(502), retry('502', 50)],
    [[502, 504], status(504), retry('504', 50)],
    [[502, 504], status(503), stop('not-retryable')],
    [[], status(429, 1_000), stop('not-retryable')],
    [[], status(200), stop('final')],
  ])('on %j: %j -> %j', (on, outcome, expected) => {
    expect(decideRetry(outcome, { ...policy, on: new Set(on) }, context)).toEqual(expected);
  });

  it('not-retryable is decided before the attempts and the body', () => {
    expect(decideRetry(status(503), { ...policy, on: new Set([429]) }, { ...context, attempt: 9, replayable: false })).toEqual(stop('not-retryable'));
  });

  it.each<[outcome: AttemptOutcome, method: string, expected: RetryDecision]>([
    // Without respectRetryAfter the header's value is not used: jitter instead.
    [status(429, 2_000), 'GET', retry('429', 50, true)],
    [status(429, 2_000), 'POST', retry('429', 50, true)],
    // ... but a 503 with Retry-After still says "not processed": safe for any method, and the key
    // still pauses (for the backoff instead of the header's value).
    [status(503, 2_000), 'GET', retry('503', 50, true)],
    [status(503, 2_000), 'POST', retry('503', 50, true)],
    [status(502, 2_000), 'GET', retry('502', 50)],
  ])('respectRetryAfter off: %j, %s -> %j', (outcome, method, expected) => {
    expect(decideRetry(outcome, { ...policy, respectRetryAfter: false }, { ...context, method })).toEqual(expected);
  });
});

describe('isIdempotent', () => {
  it.each<[string, boolean]>([
    ['GET', true],
    ['HEAD', true],
    ['OPTIONS', true],
    ['PUT', true],
    ['DELETE', true],
    ['TRACE', true],
    ['POST', false],
    ['PATCH', false],
    ['CONNECT', false],
    ['get', false], // methods are case-sensitive (RFC 9110 §9.1)
    ['', false],
  ])('%s -> %s', (method, idempotent) => {
    expect(isIdempotent(method)).toBe(idempotent);
  });
});
