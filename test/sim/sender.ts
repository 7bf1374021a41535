/**
 * A model of one sluice key in front of an API, faithful to what decides the rate at the API:
 *
 * - calls wait in one FIFO queue; a throttled call is retried at the head of it (Exchange
 *   #scheduleRetry: a retry that paused the key re-enters at once, at the head);
 * - a GCRA gate (the real TokenBucket) releases at the controller's rate, `burst` 1 unless told
 *   otherwise, booked at the instant the token is due, under a concurrency cap (10), the slot
 *   held from the grant to the answer;
 * - each request reaches the API `0..jitterMs` after its grant (uniform), and its answer comes back
 *   `latencyMinMs..latencyMaxMs` after it reached the API;
 * - a 429 pauses the key as Exchange#onResponseStart does: for the Retry-After (parsed by sluice's
 *   own parseRetryAfterMs, capped at pacing.maxPause), or when there is none, for
 *   `retry.throttlePause` (1 s by default: the product's rule for a throttle without Retry-After;
 *   `throttlePauseMs: 'backoff'` models sluice before it, which paused for the retry's full-jitter
 *   backoff, 0-100 ms on a first attempt). Retries follow decideRetry with sluice's defaults (5
 *   attempts, base 100 ms, max 10 s); a throttled retry waits out the pause at the head of the
 *   queue. A call whose attempts run out ends with the 429;
 * - requests granted before a throttle's answer came back are in flight (at most `concurrency`,
 *   1-20 ms each): the pause stops new grants only, and their answers still come back and are
 *   heard (Scheduler#pause sets the gate's pausedUntil; Exchange answers each attempt on its own);
 * - the controller hears every answer (`ok` or `throttled`) at the instant it comes back, and the
 *   gate takes its new rate at once (Scheduler#applyRate: the bucket keeps its tokens).
 *
 * Not modelled: the queue's maxWait (taken long enough for the backlog), write holds and connection
 * set-up (the requests leave at their grant), the retry budget's deadline.
 */
import { TokenBucket } from '../../src/core/token-bucket.js';
import { parseRetryAfterMs } from '../../src/core/retry-after.js';
import { decideRetry, type RetryPolicy } from '../../src/core/retry-policy.js';
import type { SimulatedApi } from './api-models.js';
import type { EventLoop } from './event-loop.js';

/** What the sender tells the rate controller, and asks of it (the scheduler's view of a learner). */
export interface RateControl {
  readonly label: string;
  /** The rate the gate releases at after the last event. */
  ratePerSec(now: number): number;
  /** A request was granted (it leaves now). */
  onGrant(now: number): void;
  /** The API accepted a request granted at `grantedAt` (its answer came back now). */
  onAccepted(now: number, answer: { readonly grantedAt: number }): void;
  /** The API throttled a request granted at `grantedAt`; the key is paused until `pausedUntil`. */
  onThrottled(
    now: number,
    signal: { readonly grantedAt: number; readonly waitedMs: number; readonly retryAfterMs: number | undefined; readonly pausedUntil: number },
  ): void;
}

export interface SenderOptions {
  readonly loop: EventLoop;
  readonly api: SimulatedApi;
  readonly control: RateControl;
  readonly random: () => number;
  /** Epoch milliseconds at a simulated instant (what sluice's epochNow() reads). */
  readonly epochAt: (at: number) => number;
  readonly burst?: number;
  readonly concurrency?: number;
  readonly jitterMs?: number;
  readonly latencyMinMs?: number;
  readonly latencyMaxMs?: number;
  readonly retry?: RetryPolicy;
  readonly maxPauseMs?: number;
  /**
   * How long a throttle without Retry-After pauses the key (`retry.throttlePause`, 1000 by default),
   * or `'backoff'`: the retry's full-jitter backoff, as sluice did before that rule.
   */
  readonly throttlePauseMs?: number | 'backoff';
}

/** `retry.throttlePause`'s default: the pause of a throttle that carries no Retry-After. */
export const DEFAULT_THROTTLE_PAUSE_MS = 1000;

export const SLUICE_RETRY_DEFAULTS: RetryPolicy = {
  attempts: 5,
  on: new Set([429, 503, 'timeout', 'connect']),
  backoff: { baseMs: 100, maxMs: 10_000 },
  respectRetryAfter: true,
};

interface Call {
  readonly id: number;
  attempts: number;
  /** When it (re-)entered the queue. */
  queuedAt: number;
}

export interface SenderStats {
  /** Calls that ended accepted, and those that ended with a 429 (attempts exhausted). */
  ok: number;
  failed: number;
  /** Answers of the API to this sender, and how many were 429s. */
  answers: number;
  throttled: number;
  /** Instant the last call ended. */
  lastEndAt: number;
  /** [instant, rate] each time the gate's rate changed (the first at 0). */
  readonly rates: [number, number][];
}

export class Sender {
  readonly stats: SenderStats = { ok: 0, failed: 0, answers: 0, throttled: 0, lastEndAt: 0, rates: [] };
  readonly #o: Required<Omit<SenderOptions, 'loop' | 'api' | 'control' | 'random' | 'epochAt'>> & SenderOptions;
  readonly #queue: Call[] = [];
  #head = 0;
  #retries: Call[] = [];
  readonly #bucket: TokenBucket;
  #pausedUntil = Number.NEGATIVE_INFINITY;
  #inFlight = 0;
  #timerAt = Number.POSITIVE_INFINITY;
  #appliedRate: number;
  #pending = 0;

  constructor(options: SenderOptions) {
    this.#o = {
      burst: 1,
      concurrency: 10,
      jitterMs: 2,
      latencyMinMs: 1,
      latencyMaxMs: 20,
      retry: SLUICE_RETRY_DEFAULTS,
      maxPauseMs: 600_000,
      throttlePauseMs: DEFAULT_THROTTLE_PAUSE_MS,
      ...options,
    };
    this.#appliedRate = options.control.ratePerSec(options.loop.now);
    this.#bucket = new TokenBucket({ ratePerSec: this.#appliedRate, burst: this.#o.burst });
    this.stats.rates.push([options.loop.now, this.#appliedRate]);
  }

  /** Calls not yet ended. */
  get pending(): number {
    return this.#pending;
  }

  get ratePerSec(): number {
    return this.#appliedRate;
  }

  /** `n` calls arrive now. */
  submit(n: number): void {
    for (let i = 0; i < n; i++) this.#queue.push({ id: this.#queue.length, attempts: 0, queuedAt: this.#o.loop.now });
    this.#pending += n;
    this.#pump();
  }

  #next(): Call | undefined {
    const retry = this.#retries.pop();
    if (retry) return retry;
    if (this.#head < this.#queue.length) return this.#queue[this.#head++];
    return undefined;
  }

  #hasWork(): boolean {
    return this.#retries.length > 0 || this.#head < this.#queue.length;
  }

  #pump(): void {
    const loop = this.#o.loop;
    const now = loop.now;
    while (this.#hasWork() && this.#inFlight < this.#o.concurrency) {
      const readyAt = Math.max(this.#pausedUntil, this.#bucket.availableAt());
      if (readyAt > now) {
        if (readyAt < this.#timerAt) {
          this.#timerAt = readyAt;
          loop.at(readyAt, () => {
            if (this.#timerAt !== readyAt) return; // superseded by an earlier timer
            this.#timerAt = Number.POSITIVE_INFINITY;
            this.#pump();
          });
        }
        return;
      }
      this.#bucket.take(now);
      this.#grant(this.#next() as Call, now);
    }
  }

  #grant(call: Call, now: number): void {
    const { loop, api, random } = this.#o;
    this.#inFlight++;
    call.attempts++;
    const waitedMs = now - call.queuedAt;
    this.#o.control.onGrant(now);
    const arriveAt = now + random() * this.#o.jitterMs;
    loop.at(arriveAt, () => {
      const answer = api.handle(arriveAt);
      const backAt = arriveAt + this.#o.latencyMinMs + random() * (this.#o.latencyMaxMs - this.#o.latencyMinMs);
      loop.at(backAt, () => this.#answered(call, now, waitedMs, answer.accepted, answer.accepted ? undefined : answer.retryAfter));
    });
  }

  #answered(call: Call, grantedAt: number, waitedMs: number, accepted: boolean, retryAfter: string | undefined): void {
    const { loop, control, random } = this.#o;
    const now = loop.now;
    this.#inFlight--;
    this.stats.answers++;
    if (accepted) {
      control.onAccepted(now, { grantedAt });
      this.#end(now, true);
    } else {
      this.stats.throttled++;
      const parsed = parseRetryAfterMs(retryAfter, this.#o.epochAt(now));
      const retryAfterMs = parsed === undefined ? undefined : Math.min(parsed, this.#o.maxPauseMs);
      const decision = decideRetry({ kind: 'status', status: 429, retryAfterMs }, this.#o.retry, {
        attempt: call.attempts,
        method: 'GET',
        replayable: true,
        idempotencyKey: false,
        remainingMs: Number.POSITIVE_INFINITY,
        random: random(),
      });
      const backoffMs = decision.retry ? decision.delayMs : this.#o.retry.backoff.baseMs;
      const throttlePauseMs = this.#o.throttlePauseMs;
      const pauseMs = retryAfterMs ?? (throttlePauseMs === 'backoff' ? backoffMs : throttlePauseMs);
      if (now + pauseMs > this.#pausedUntil) this.#pausedUntil = now + pauseMs;
      control.onThrottled(now, { grantedAt, waitedMs, retryAfterMs, pausedUntil: this.#pausedUntil });
      if (decision.retry) {
        call.queuedAt = now;
        this.#retries.push(call);
      } else this.#end(now, false);
    }
    this.#applyRate(now);
    this.#pump();
  }

  #end(now: number, ok: boolean): void {
    if (ok) this.stats.ok++;
    else this.stats.failed++;
    this.#pending--;
    this.stats.lastEndAt = now;
  }

  #applyRate(now: number): void {
    const rate = this.#o.control.ratePerSec(now);
    if (rate === this.#appliedRate) return;
    this.#bucket.setRate(now, rate);
    this.#appliedRate = rate;
    this.stats.rates.push([now, rate]);
    // An earlier token may be due now: look again (the timer armed for the old rate may be late).
    this.#timerAt = Number.POSITIVE_INFINITY;
  }
}
