/**
 * The acceptance matrix of issue 13 in simulation: every API shape x every Retry-After form x every
 * case, each run over a fixed list of seeds, each cell judged on its worst seed. Shared by
 * learning.test.ts (which asserts it) and print-matrix.ts (which prints it, before and after).
 *
 * The cases (true limit 20/s; calls all queued at once, as a client with a backlog sends them):
 * - `told-2x`: told 40/s, 600 calls: every call ends accepted, <= 2% of the API's answers are 429s,
 *   >= 90% of the true rate over the run (calls / wall time); `told-2x-120s`: 2400 calls, >= 95%.
 * - `told-right`: told 20/s (released at 19.85/s, the 0.75% margin): 0 throttles, >= 99%.
 * - `shared-even`, `shared-bursts`: told 20/s, an outside client sends 6.67/s straight at the API
 *   (evenly, or 10 at once every 1.5 s): >= 85% of what is left (13.33/s), <= 3% 429s.
 * - `told-10x`: told 200/s, 600 calls: >= 85%, <= 2%.
 */
import { describeShape, type ApiShape, type RetryAfterForm } from './api-models.js';
import { runScenario, type ControlFactory, type Outsider, type RunResult } from './scenario.js';

export const SHAPES: readonly { readonly id: string; readonly shape: ApiShape }[] = [
  { id: 'bucket-1', shape: { kind: 'token-bucket', ratePerSec: 20, burst: 1 } },
  { id: 'bucket-100', shape: { kind: 'token-bucket', ratePerSec: 20, burst: 100 } },
  { id: 'sliding', shape: { kind: 'sliding-window', limit: 20, windowMs: 1000 } },
  { id: 'fixed', shape: { kind: 'fixed-window', limit: 20, windowMs: 1000 } },
];

export const FORMS: readonly RetryAfterForm[] = ['absent', 'seconds', 'http-date'];

export interface Verdict {
  readonly ok: boolean;
  /** What failed, for the assertion message. */
  readonly why: string;
}

export interface CaseSpec {
  readonly id: string;
  readonly configuredPerSec: number;
  readonly calls: number;
  readonly outsider?: Outsider;
  /** The shapes the case is asserted on (all by default); others are only reported. */
  readonly assertedOn?: readonly string[];
  readonly judge: (r: RunResult) => Verdict;
}

function verdict(checks: readonly (readonly [boolean, string])[]): Verdict {
  const failed = checks.filter(([ok]) => !ok).map(([, why]) => why);
  return { ok: failed.length === 0, why: failed.join(', ') };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function standard(minAchieved: number, max429: number): (r: RunResult) => Verdict {
  return (r) =>
    verdict([
      [r.failed === 0, `${r.failed} calls failed`],
      [r.throttledFraction <= max429, `429s ${pct(r.throttledFraction)} > ${pct(max429)}`],
      [r.achievedFraction >= minAchieved, `achieved ${pct(r.achievedFraction)} < ${pct(minAchieved)}`],
    ]);
}

export const CASES: readonly CaseSpec[] = [
  { id: 'told-2x', configuredPerSec: 40, calls: 600, judge: standard(0.9, 0.02) },
  { id: 'told-2x-120s', configuredPerSec: 40, calls: 2400, judge: standard(0.95, 0.02) },
  {
    id: 'told-right',
    configuredPerSec: 20,
    calls: 600,
    // A burst-1 bucket is not "told right" at 19.85/s: 2 ms of arrival jitter at 50 ms spacing
    // makes it refuse a third of the requests at any rate above 19.23/s (reported, not asserted).
    assertedOn: ['bucket-100', 'sliding', 'fixed'],
    judge: (r) =>
      verdict([
        [r.throttled === 0, `${r.throttled} throttles`],
        [r.achievedFraction >= 0.99, `achieved ${pct(r.achievedFraction)} < 99%`],
      ]),
  },
  { id: 'shared-even', configuredPerSec: 20, calls: 600, outsider: { ratePerSec: 20 / 3, pattern: 'even' }, judge: standard(0.85, 0.03) },
  {
    id: 'shared-bursts',
    configuredPerSec: 20,
    calls: 600,
    outsider: { ratePerSec: 20 / 3, pattern: 'bursts', burstSize: 10 },
    judge: standard(0.85, 0.03),
  },
  { id: 'told-10x', configuredPerSec: 200, calls: 600, judge: standard(0.85, 0.02) },
];

/**
 * Cells the learner does not meet, each with the reason measured (see the report in
 * print-matrix.ts: the bound is what the best constant rate after the first throttle gets).
 * learning.test.ts expects these to fail, so a change that makes one pass is noticed.
 */
export const KNOWN_MISSES: Readonly<Record<string, string>> = {
  'told-2x/fixed/absent': 'as told-2x/fixed/seconds (a throttle without Retry-After pauses 1 s, like `Retry-After: 1`)',
  'told-2x/fixed/seconds':
    'a first run across a window boundary counts up to twice the limit; telling it from a sliding window of that size takes more throttles, each a whole second',
  'told-2x-120s/bucket-1/absent': 'as told-2x-120s/bucket-1/seconds',
  'told-2x-120s/bucket-1/seconds':
    'bound: one throttle (1 s) is unavoidable and 19.23/s is the most a burst-1 bucket takes with 2 ms jitter: 95.3% at best, landing exactly there',
  'told-2x-120s/bucket-1/http-date': 'as bucket-1/seconds',
  'told-2x-120s/fixed/absent': 'as told-2x/fixed/seconds',
  'told-2x-120s/fixed/seconds': 'as told-2x/fixed/seconds',
  'shared-even/bucket-1/http-date':
    'bound: no constant rate meets it (an HTTP-date pause ends at the next whole second, often within ms, and the retry collides again; calls run out of attempts)',
  'shared-bursts/bucket-1/absent': 'as shared-bursts/bucket-1/seconds',
  'shared-bursts/bucket-1/seconds':
    'collisions as in shared-even/bucket-1; a constant 19.2/s would win the bucket from the bursts (bound 143%), the learner cuts instead',
  'shared-bursts/bucket-1/http-date': 'as shared-bursts/bucket-1/seconds',
  'shared-bursts/sliding/absent': 'as shared-bursts/sliding/seconds',
  'shared-bursts/sliding/seconds': 'bound: a window holding a burst of 10 leaves 10/s to a constant rate (75% of 13.33)',
  'shared-bursts/sliding/http-date': 'as shared-bursts/sliding/seconds',
  'shared-bursts/fixed/absent': 'as shared-bursts/sliding/seconds',
  'shared-bursts/fixed/seconds':
    'a fixed window with bursts of 10: 20/s at once wins the aligned windows (bound 97%), a constant rate below it gets 10/s; the learner gets about 9/s',
  'shared-bursts/fixed/http-date': 'as shared-bursts/sliding/seconds',
  'told-10x/bucket-1/absent': 'as told-10x/bucket-1/seconds',
  'told-10x/bucket-1/seconds': 'four halvings (four 1 s pauses) to get under the limit from 10x with a one-bit signal, then a climb: about 5 s of 35',
  'told-10x/bucket-1/http-date': 'as told-10x/bucket-1/seconds',
};

export interface CellResult {
  readonly caseId: string;
  readonly shapeId: string;
  readonly form: RetryAfterForm;
  readonly key: string;
  readonly asserted: boolean;
  readonly runs: readonly RunResult[];
  /** The worst seed's numbers. */
  readonly worstAchieved: number;
  readonly worst429: number;
  readonly failedCalls: number;
  /** Seeds whose run the case's judge refused, and why (the first). */
  readonly failingSeeds: readonly number[];
  readonly firstWhy: string;
  /** Median seconds to settle within 10% of the target (Infinity if a seed never does). */
  readonly medianSettledSec: number;
}

export const TEST_SEEDS: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/** How the simulated sluice behaves where the product changed (see SenderOptions). */
export interface SimVariant {
  readonly throttlePauseMs?: number | 'backoff';
}

export function runCell(
  c: CaseSpec,
  shape: { id: string; shape: ApiShape },
  form: RetryAfterForm,
  make: ControlFactory,
  seeds: readonly number[],
  variant: SimVariant = {},
): CellResult {
  const runs = seeds.map((seed) =>
    runScenario({ shape: shape.shape, retryAfter: form, configuredPerSec: c.configuredPerSec, calls: c.calls, outsider: c.outsider, seed, ...variant }, make),
  );
  const verdicts = runs.map((r) => c.judge(r));
  const failingSeeds = seeds.filter((_, i) => !(verdicts[i] as Verdict).ok);
  const settled = runs.map((r) => r.settledSec ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
  return {
    caseId: c.id,
    shapeId: shape.id,
    form,
    key: `${c.id}/${shape.id}/${form}`,
    asserted: c.assertedOn === undefined || c.assertedOn.includes(shape.id),
    runs,
    worstAchieved: Math.min(...runs.map((r) => r.achievedFraction)),
    worst429: Math.max(...runs.map((r) => r.throttledFraction)),
    failedCalls: runs.reduce((sum, r) => sum + r.failed, 0),
    failingSeeds,
    firstWhy: verdicts.find((v) => !v.ok)?.why ?? '',
    medianSettledSec: settled[Math.floor(settled.length / 2)] as number,
  };
}

export function runMatrix(make: ControlFactory, seeds: readonly number[] = TEST_SEEDS, variant: SimVariant = {}): CellResult[] {
  const cells: CellResult[] = [];
  for (const c of CASES) for (const shape of SHAPES) for (const form of FORMS) cells.push(runCell(c, shape, form, make, seeds, variant));
  return cells;
}

export function shapeLabel(id: string): string {
  const entry = SHAPES.find((s) => s.id === id);
  return entry ? describeShape(entry.shape) : id;
}
