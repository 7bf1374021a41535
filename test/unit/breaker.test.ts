import { describe, expect, it } from 'vitest';
import { breakerSchema } from '../../src/config/breaker-schema.js';
import { Breaker, refundsTokens, type BreakerAdmission, type BreakerPolicy, type GrantRole, type TransitionCause } from '../../src/core/breaker.js';
import { classifyFailure, type Availability } from '../../src/core/failure-kind.js';
import { TokenBucket } from '../../src/core/token-bucket.js';

/** The defaults, as the configuration gives them: every scenario below runs on them. */
const policy: BreakerPolicy = breakerSchema.parse(undefined);

/** One step of a scenario at a fixed instant, and what it must return. */
type Step =
  | [at: number, op: 'settle', role: GrantRole, verdict: Availability, random: number, cause: TransitionCause | undefined]
  | [at: number, op: 'admission', expected: BreakerAdmission]
  | [at: number, op: 'granted', expected: GrantRole];

function run(breaker: Breaker, steps: readonly Step[]): void {
  for (const [index, step] of steps.entries()) {
    const where = `step ${index} at ${step[0]} ms: ${step[1]}`;
    if (step[1] === 'settle') expect(breaker.settle(step[0], step[2], step[3], step[4])?.cause, where).toBe(step[5]);
    else if (step[1] === 'admission') expect(breaker.admission(step[0]), where).toEqual(step[2]);
    else expect(breaker.granted(step[0]), where).toBe(step[2]);
  }
}

const ALL: BreakerAdmission = { allow: 'all' };
const ONE: BreakerAdmission = { allow: 'one' };
const none = (lookAgainAt: number): BreakerAdmission => ({ allow: 'none', lookAgainAt });
const WAIT_FOR_PROBE = none(Number.POSITIVE_INFINITY);

const fiveDowns = (from: number): Step[] =>
  [0, 1, 2, 3, 4].map((i): Step => [from + i, 'settle', 'normal', 'down', 0.5, i === 4 ? 'consecutive-failures' : undefined]);

describe('Breaker', () => {
  it('opens at the fifth down in a row; an answer in between starts the count again; no verdict changes nothing', () => {
    run(new Breaker(policy), [
      [0, 'admission', ALL],
      [10, 'settle', 'normal', 'down', 0.5, undefined],
      [11, 'settle', 'normal', 'down', 0.5, undefined],
      [12, 'settle', 'normal', 'down', 0.5, undefined],
      [13, 'settle', 'normal', 'down', 0.5, undefined],
      [14, 'settle', 'normal', 'up', 0.5, undefined], // reachable: back to 0
      [15, 'settle', 'normal', 'down', 0.5, undefined],
      [16, 'settle', 'normal', 'none', 0.5, undefined], // a timeout: neither
      [17, 'settle', 'normal', 'down', 0.5, undefined],
      [18, 'settle', 'normal', 'down', 0.5, undefined],
      [19, 'settle', 'normal', 'down', 0.5, undefined],
      [19, 'admission', ALL],
      [20, 'settle', 'normal', 'down', 0.5, 'consecutive-failures'],
      // The first probe waits 250 ms * (0.5 + 0.5 * random): 187 ms with random 0.5.
      [20, 'admission', none(207)],
      [206, 'admission', none(207)],
      [206, 'granted', 'normal'], // a grant against the answer changes nothing
      [207, 'admission', ONE],
    ]);
  });

  it('lets one probe out when due and nothing else until its verdict; an answer closes it', () => {
    run(new Breaker(policy), [
      ...fiveDowns(0),
      [191, 'admission', ONE],
      [191, 'granted', 'probe'],
      [191, 'admission', WAIT_FOR_PROBE],
      [192, 'granted', 'normal'], // a second grant while probing is not a second probe
      [300, 'settle', 'probe', 'up', 0.5, 'probe-succeeded'],
      [300, 'admission', ALL],
      // The count starts again from 0 after closing.
      ...[301, 302, 303, 304].map((at): Step => [at, 'settle', 'normal', 'down', 0.5, undefined]),
      [305, 'admission', ALL],
    ]);
  });

  it('backs off between failed probes, doubling from 250 ms to 2 s, with equal jitter', () => {
    // Windows 250, 500, 1000, 2000, 2000 ms; random 0.5 draws 3/4 of each, random 0 half, random 1 all.
    run(new Breaker(policy), [
      ...fiveDowns(0), // opens at 4; probe at 4 + 187
      [191, 'granted', 'probe'],
      [200, 'settle', 'probe', 'down', 0.5, 'probe-failed'],
      [200, 'admission', none(575)], // 375
      [575, 'granted', 'probe'],
      [580, 'settle', 'probe', 'down', 0, 'probe-failed'],
      [580, 'admission', none(1080)], // 500
      [1080, 'granted', 'probe'],
      [1080, 'settle', 'probe', 'down', 1, 'probe-failed'],
      [1080, 'admission', none(3080)], // 2000: the window is 2000 from the fourth on
      [3080, 'granted', 'probe'],
      [3080, 'settle', 'probe', 'down', 0.5, 'probe-failed'],
      [3080, 'admission', none(4580)], // 1500: capped at 2000
      [4580, 'granted', 'probe'],
      [4580, 'settle', 'probe', 'down', 0.5, 'probe-failed'],
      [4580, 'admission', none(6080)],
      [6080, 'granted', 'probe'],
      [6100, 'settle', 'probe', 'up', 0.5, 'probe-succeeded'],
      [6100, 'admission', ALL],
    ]);
  });

  it('a probe that says nothing (timeout, client gone) lets the next one go at once, the backoff unchanged', () => {
    run(new Breaker(policy), [
      ...fiveDowns(0),
      [191, 'granted', 'probe'],
      [200, 'settle', 'probe', 'down', 0.5, 'probe-failed'],
      [575, 'granted', 'probe'],
      [10_575, 'settle', 'probe', 'none', 0.5, 'probe-void'],
      [10_575, 'admission', ONE],
      [10_575, 'granted', 'probe'],
      [10_580, 'settle', 'probe', 'down', 0.5, 'probe-failed'],
      [10_580, 'admission', none(11_330)], // the third window (1000 ms), not back to the first
    ]);
  });

  it('ignores the verdicts of attempts granted before it opened', () => {
    run(new Breaker(policy), [
      ...fiveDowns(0),
      [50, 'settle', 'normal', 'up', 0.5, undefined], // an answer that was on its way
      [50, 'admission', none(191)],
      [191, 'granted', 'probe'],
      [195, 'settle', 'normal', 'up', 0.5, undefined],
      [196, 'settle', 'normal', 'down', 0.5, undefined],
      [196, 'admission', WAIT_FOR_PROBE],
      [200, 'settle', 'probe', 'up', 0.5, 'probe-succeeded'],
      [201, 'settle', 'probe', 'up', 0.5, undefined], // a second verdict for the same probe: closed already
    ]);
  });

  it('never opens with the count off and no ratio', () => {
    const breaker = new Breaker({ ...policy, consecutiveFailures: 0 });
    for (let at = 0; at < 1_000; at++) expect(breaker.settle(at, 'normal', 'down', 0.5)).toBeUndefined();
    expect(breaker.admission(1_000)).toEqual(ALL);
  });

  describe('failure ratio', () => {
    // 50% of at least 10 verdicts in 1 s (10 slots of 100 ms); the count rule off.
    const ratio: BreakerPolicy = { ...policy, consecutiveFailures: 0, failureRatio: { ratio: 0.5, minAttempts: 10, windowMs: 1_000 } };
    const alternate = (from: number, n: number, stepMs: number): Step[] =>
      Array.from({ length: n }, (_, i): Step => [from + i * stepMs, 'settle', 'normal', i % 2 === 0 ? 'down' : 'up', 0.5, undefined]);

    it('opens at half of ten, not before ten verdicts', () => {
      run(new Breaker(ratio), [
        ...alternate(0, 9, 10), // 5 downs of 9: too few verdicts
        [90, 'settle', 'normal', 'up', 0.5, undefined], // 5 of 10, but an answer never opens it
        [95, 'settle', 'normal', 'down', 0.5, 'failure-ratio'], // 6 of 11
      ]);
    });

    it('forgets verdicts older than the window', () => {
      run(new Breaker(ratio), [
        ...alternate(0, 9, 10), // 5 downs, 4 answers in slot 0
        // 1 s later those slots are gone: 1 down of 1.
        [1_050, 'settle', 'normal', 'down', 0.5, undefined],
        ...alternate(1_060, 8, 10), // 4 downs + 4 answers more: 5 of 9
        [1_140, 'settle', 'normal', 'down', 0.5, 'failure-ratio'], // 6 of 10
      ]);
    });

    it('a clock that goes backwards counts in the newest slot', () => {
      run(new Breaker(ratio), [
        ...alternate(5_000, 9, 10),
        [4_000, 'settle', 'normal', 'up', 0.5, undefined], // 5 of 10
        [4_001, 'settle', 'normal', 'down', 0.5, 'failure-ratio'],
      ]);
    });

    it('starts a new window when it closes', () => {
      run(new Breaker({ ...ratio, consecutiveFailures: 5 }), [
        ...fiveDowns(0), // the count rule opens it first
        [191, 'granted', 'probe'],
        [200, 'settle', 'probe', 'up', 0.5, 'probe-succeeded'],
        // The five downs before the opening are forgotten: 5 of 10 needs ten new verdicts.
        ...alternate(201, 4, 1),
        [205, 'settle', 'normal', 'down', 0.5, undefined],
      ]);
    });
  });

  it('hints a Retry-After and reports its state', () => {
    const breaker = new Breaker(policy);
    expect(breaker.retryAfterMs(0)).toBe(0);
    expect(breaker.snapshot(0)).toEqual({
      state: 'closed',
      available: true,
      consecutiveFailures: 0,
      failedProbes: 0,
      openedAt: undefined,
      nextProbeInMs: undefined,
    });
    run(breaker, fiveDowns(100));
    expect(breaker.available).toBe(false);
    expect(breaker.retryAfterMs(200)).toBe(91); // the probe at 291
    expect(breaker.snapshot(200)).toEqual({ state: 'open', available: false, consecutiveFailures: 5, failedProbes: 0, openedAt: 104, nextProbeInMs: 91 });
    breaker.granted(291);
    expect(breaker.retryAfterMs(291)).toBe(500); // probing: the longest the next probe could wait if this one fails
    expect(breaker.snapshot(291)).toMatchObject({ state: 'probing', nextProbeInMs: undefined });
  });

  it('a transition says what a log line needs', () => {
    const breaker = new Breaker(policy);
    for (let at = 0; at < 4; at++) breaker.settle(at, 'normal', 'down', 0.5);
    expect(breaker.settle(4, 'normal', 'down', 0.5)).toEqual({
      from: 'closed',
      to: 'open',
      at: 4,
      cause: 'consecutive-failures',
      failures: 5,
      nextProbeAt: 191,
    });
    breaker.granted(191);
    expect(breaker.settle(200, 'probe', 'down', 0.5)).toEqual({ from: 'probing', to: 'open', at: 200, cause: 'probe-failed', failures: 1, nextProbeAt: 575 });
    breaker.granted(575);
    expect(breaker.settle(600, 'probe', 'up', 0.5)).toEqual({
      from: 'probing',
      to: 'closed',
      at: 600,
      cause: 'probe-succeeded',
      failures: 0,
      nextProbeAt: undefined,
    });
  });

  it('a reload keeps its state and applies the new thresholds', () => {
    const breaker = new Breaker(policy);
    for (let at = 0; at < 3; at++) breaker.settle(at, 'normal', 'down', 0.5);
    breaker.setPolicy({ ...policy, consecutiveFailures: 4 });
    expect(breaker.settle(3, 'normal', 'down', 0.5)?.cause).toBe('consecutive-failures');
  });
});

describe('refundsTokens', () => {
  const before = { requestStarted: false, responseStarted: false };
  it.each<[label: string, refunds: boolean, ending: Parameters<typeof refundsTokens>[0]]>([
    ['never dispatched (the client left before the grant reached it)', true, 'not-dispatched'],
    ['client gone before the request started', true, classifyFailure({ code: 'SLUICE_CLIENT_GONE', ...before })],
    ['client gone after it started', false, classifyFailure({ code: 'SLUICE_CLIENT_GONE', requestStarted: true, responseStarted: false })],
    ['connection refused', false, classifyFailure({ code: 'ECONNREFUSED', ...before })],
    ['connect timeout', false, classifyFailure({ code: 'UND_ERR_CONNECT_TIMEOUT', ...before })],
    ['TLS rejected', false, classifyFailure({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT', ...before })],
    ['reset after sending', false, classifyFailure({ code: 'ECONNRESET', requestStarted: true, responseStarted: false })],
    ['answered', false, 'answered'],
  ])('%s -> refunds %s', (_label, refunds, ending) => {
    expect(refundsTokens(ending)).toBe(refunds);
  });
});

/**
 * The outage of issue 20 as a pure simulation of what the scheduler does with a breaker and a bucket:
 * 600 requests queued on one upstream at 40/s (burst 1); the upstream refuses connections from 3 s
 * to 8 s. A refused connection fails 1 ms after its grant, an answer comes 20 ms after it; a
 * failed request goes back to the head of the queue. Every grant is counted, failed or not.
 */
function outage(options: { policy: BreakerPolicy; refund: (failure: ReturnType<typeof classifyFailure>) => boolean }) {
  const bucket = new TokenBucket({ ratePerSec: 40, burst: 1 });
  const breaker = new Breaker(options.policy);
  const down = (at: number): boolean => at >= 3_000 && at < 8_000;
  let queued = 600;
  let done = 0;
  const grants: number[] = [];
  const deadGrants: number[] = [];
  const pending: { at: number; role: GrantRole; verdict: Availability }[] = [];
  let now = 0;
  for (let guard = 0; guard < 100_000 && done < 600; guard++) {
    const admission = breaker.admission(now);
    const grantAt =
      queued === 0 ? Number.POSITIVE_INFINITY : admission.allow === 'none' ? Math.max(now, admission.lookAgainAt) : Math.max(now, bucket.availableAt());
    pending.sort((a, b) => a.at - b.at);
    const next = pending[0];
    if (next !== undefined && next.at <= grantAt) {
      pending.shift();
      now = next.at;
      breaker.settle(now, next.role, next.verdict, 0.5);
      if (next.verdict === 'up') done++;
      else {
        queued++;
        if (options.refund(classifyFailure({ code: 'ECONNREFUSED', requestStarted: false, responseStarted: false }))) bucket.refund();
      }
      continue;
    }
    if (grantAt === Number.POSITIVE_INFINITY) throw new Error(`stuck at ${now} ms`);
    now = grantAt;
    if (breaker.admission(now).allow === 'none' || !bucket.take(now)) continue;
    const role = breaker.granted(now);
    queued--;
    grants.push(now);
    if (down(now)) deadGrants.push(now);
    pending.push(down(now) ? { at: now + 1, role, verdict: 'down' } : { at: now + 20, role, verdict: 'up' });
  }
  /** The most grants in any [t, t + 1000 ms). */
  let maxPerSecond = 0;
  for (let i = 0, j = 0; i < grants.length; i++) {
    while (j < grants.length && (grants[j] as number) < (grants[i] as number) + 1_000) j++;
    maxPerSecond = Math.max(maxPerSecond, j - i);
  }
  const resumedAt = grants.find((at) => at >= 8_000);
  return { done, maxPerSecond, deadGrants, resumedAt, endedAt: now };
}

describe('an outage with the breaker and the bucket (simulated)', () => {
  it('holds the queue, probes one at a time, resumes at the limit and never releases faster than it', () => {
    const run = outage({ policy, refund: refundsTokens });
    expect(run.done).toBe(600);
    // Five refused attempts at the rate open it, then five failed probes 187, 375, 750, 1500 and 1500 ms
    // after each failure: ten attempts reach the dead upstream in 5 s, where 200 would without it.
    expect(run.deadGrants).toEqual([3_000, 3_025, 3_050, 3_075, 3_100, 3_288, 3_664, 4_415, 5_916, 7_417]);
    expect(run.resumedAt).toBe(8_918); // the sixth probe, 0.9 s after the upstream came back
    expect(run.endedAt).toBe(20_913); // then the other 479 at 25 ms: no burst, no gap
    expect(run.maxPerSecond).toBe(40);
  });

  it('without the spend rule, the refunds of refused connections release faster than the limit', () => {
    const run = outage({ policy, refund: () => true });
    expect(run.maxPerSecond).toBeGreaterThan(40);
  });

  it('without the breaker, a dead upstream gets an attempt per token for the whole outage', () => {
    const run = outage({ policy: { ...policy, consecutiveFailures: 0 }, refund: refundsTokens });
    expect(run.deadGrants.length).toBe(200);
    expect(run.maxPerSecond).toBe(40);
  });
});
