/**
 * Token buckets shared by every replica, in Redis: the store protocol (take, refund, write notice,
 * pause) and the handles' hints. The scripts are scripts.ts, the healthy/failing state health.ts,
 * the connection client.ts.
 *
 * The model is src/core/token-bucket.ts (GCRA) moved into Redis: one hash per bucket holds `t`, the
 * instant the bucket is full again, and `p`, the instant a pause ends (both milliseconds of Redis
 * server time, so replicas with skewed clocks agree). One Lua script takes a token of every bucket
 * of a request, or none (all or nothing), and answers either "granted" or the wait until every bucket
 * could grant and which bucket blocks; the wait is converted into the caller's clock as
 * `retryAt = now + waitMs` (the time the request takes to reach Redis is the time the retry takes
 * too, so the retry arrives when the token is due). Keys expire (PEXPIRE) once the bucket is full
 * and the pause over, plus LATE_BOOKING_WINDOW_MS, so an idle key costs nothing. Every key of an
 * upstream carries the upstream's name as a hash tag, `sluice:{github}:1:acct-42`, so a request's
 * buckets share one Redis Cluster slot.
 *
 * Round trips: one per grant (the take). A refund, a pause and a late write (`usedAt`) are sent
 * without waiting for the answer, on the same connection, so the next take of the key sees them;
 * `usedAt` is sent only when the write was later than `toleranceMs` after the grant arrived, so
 * the ordinary grant path costs exactly one command.
 *
 * Handles keep what the last answer said (the bucket's `t` and `p`, in the caller's clock) as hints
 * for prediction, for arming the gate's timer, and for idle eviction. Another replica may have taken
 * tokens since, so a hint may be early, never authoritative: Redis answers every take.
 *
 * When Redis fails (a connection error, or no answer within the command timeout), the store stops
 * asking it until it answers again (health.ts). Meanwhile, with `onError: 'local'` takes are
 * answered synchronously by an in-process MemoryBucketStore whose buckets run at
 * rate / replicasHint (created per bucket on first use); with `onError: 'deny'` a take answers that
 * the store is unavailable, which the scheduler turns into 503 SLUICE_STORE_UNAVAILABLE. Commands
 * are never queued while disconnected (enableOfflineQueue: false), so a down Redis costs a request
 * nothing, and a silent one at most the command timeout.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { keyDigest } from '../../core/key-digest.js';
import type { Clock, TimerHandle, Timers } from '../../core/time.js';
import { gcra } from '../../core/token-bucket.js';
import { STORE_UNAVAILABLE, type BucketHandle, type BucketSpec, type BucketStore, type TakeResult } from '../bucket-store.js';
import { MemoryBucket, MemoryBucketStore } from '../memory-store.js';
import { RedisHealth, type RedisOperation, type RedisStoreObserver } from './health.js';
import { PENDING_GRACE_MS, defineSluiceCommands, type SluiceCommands } from './scripts.js';

export interface RedisBucketStoreOptions {
  /** The client; the store owns it from now on (adds its commands and listeners, closes it). */
  readonly client: Redis | Cluster;
  /** Prefix of every key (`sluice:`). */
  readonly keyPrefix: string;
  /** What to do while Redis fails: `local` answers from local buckets, `deny` refuses. */
  readonly onError: 'local' | 'deny';
  /** Replicas sharing the limits: a local fallback bucket runs at rate / replicasHint. */
  readonly replicasHint: number;
  /** The caller's clock (the scheduler's), to stamp answers that arrive later. */
  readonly clock: Clock;
  /** Timers on that clock: the health probe, the wait for a first connection, the close. */
  readonly timers: Timers;
  readonly observer?: RedisStoreObserver;
  /** First wait before a silent Redis is probed again; doubles up to `maxProbeBackoffMs`. Default 500. */
  readonly probeBackoffMs?: number;
  /** Default 5000. */
  readonly maxProbeBackoffMs?: number;
}

/** Keys longer than this are replaced by a digest (a header value can be long, or sensitive). */
const MAX_RAW_KEY_LENGTH = 100;

/**
 * A take that reaches Redis up to this long (or a quarter interval, if less) after the instant this
 * process's last answer said the tokens would be there is booked at that instant: the timer's
 * lateness and the trip to Redis must not lengthen every interval. Later than that, the bucket was
 * idle and the grant is booked when it arrives. (A write that then comes later than the booking
 * by more than the round trip and the scheduler's tolerance re-bases the bucket, see `usedAt`.)
 */
const MAX_LATE_CREDIT_MS = 2;

/** The Redis key of a bucket: `${prefix}{${upstream}}:${rule}[:${key}]` (the spec id is `upstream:rule[:key]`). */
export function redisKeyOf(prefix: string, specId: string): string {
  const colon = specId.indexOf(':');
  const upstream = colon === -1 ? specId : specId.slice(0, colon);
  let rest = colon === -1 ? '' : specId.slice(colon + 1);
  const ruleEnd = rest.indexOf(':');
  if (ruleEnd !== -1 && rest.length - ruleEnd - 1 > MAX_RAW_KEY_LENGTH) {
    rest = `${rest.slice(0, ruleEnd)}:${keyDigest(rest.slice(ruleEnd + 1), sha256Base64url)}`;
  }
  return `${prefix}{${upstream}}:${rest}`;
}

/**
 * A bucket in Redis as this process last saw it: `t` and `p` of the last answer, in the caller's
 * clock, and a local fallback bucket once Redis has failed.
 */
export class RedisBucket implements BucketHandle {
  readonly spec: BucketSpec;
  readonly key: string;
  #ratePerSec: number;
  #burst: number;
  /** The bucket is full again from this instant (hint). */
  tat = Number.NEGATIVE_INFINITY;
  /** Paused until this instant (hint; the scheduler keeps its own pause too). */
  pauseEndsAt = Number.NEGATIVE_INFINITY;
  /**
   * The instant the last grant was booked at (caller's clock), and the round trip that answered it:
   * a write later than booked + round trip + tolerance is late (TokenBucket#usedAt).
   */
  bookedAt = Number.NEGATIVE_INFINITY;
  grantRoundTripMs = 0;
  /** The id of this process's grant not yet written (or refunded), which holds the bucket in Redis. */
  pendingGrant: string | undefined;
  #fallback: MemoryBucket | undefined;
  readonly #store: RedisBucketStore;

  constructor(spec: BucketSpec, key: string, store: RedisBucketStore) {
    this.spec = spec;
    this.key = key;
    this.#ratePerSec = spec.ratePerSec;
    this.#burst = spec.burst;
    this.#store = store;
  }

  get ratePerSec(): number {
    return this.#ratePerSec;
  }

  get burst(): number {
    return this.#burst;
  }

  get intervalMs(): number {
    return 1000 / this.#ratePerSec;
  }

  /** The local bucket at rate / replicasHint, created the first time Redis fails for it. */
  get fallback(): MemoryBucket {
    this.#fallback ??= new MemoryBucket({ ...this.spec, ratePerSec: this.#ratePerSec / this.#store.replicasHint, burst: this.#burst });
    return this.#fallback;
  }

  availableAt(): number {
    if (this.#store.fallback) return this.fallback.availableAt();
    return Math.max(gcra.availableAt(this.tat, this.intervalMs, this.#burst), this.pauseEndsAt);
  }

  tokensAt(now: number): number {
    if (this.#store.fallback) return this.fallback.tokensAt(now);
    return gcra.tokensAt(this.tat, this.intervalMs, this.#burst, now);
  }

  fullAt(): number {
    const local = this.#fallback ? this.#fallback.fullAt() : Number.NEGATIVE_INFINITY;
    return Math.max(this.tat, this.pauseEndsAt, local);
  }

  /**
   * Changes the rate from `now` on. Unlike the memory store, the shared state is not rewritten:
   * every replica reconfigures at its own moment, and rescaling `t` once per replica would compound.
   * Redis keeps its `t`, read with the new interval from the next take on (each take sends its
   * interval and burst), so the tokens held change once by the ratio of the rates; the fallback
   * bucket converts exactly.
   */
  setRate(now: number, ratePerSec: number): void {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) throw new RangeError(`ratePerSec must be a positive finite number, got ${ratePerSec}`);
    this.#ratePerSec = ratePerSec;
    this.#fallback?.setRate(now, ratePerSec / this.#store.replicasHint);
  }

  /** Changes the burst from the next take on; as with the rate, Redis keeps its `t` (a larger burst adds its extra tokens at once). */
  setBurst(now: number, burst: number): void {
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
    this.#burst = burst;
    this.#fallback?.setBurst(now, burst);
  }
}

/** The `redis` store: buckets in Redis, one script round trip per grant. */
export class RedisBucketStore implements BucketStore {
  readonly kind = 'redis';
  readonly replicasHint: number;
  readonly onError: 'local' | 'deny';
  readonly #client: Redis | Cluster;
  readonly #commands: SluiceCommands;
  readonly #keyPrefix: string;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #observer: RedisStoreObserver;
  readonly #health: RedisHealth;
  readonly #local = new MemoryBucketStore();
  /** Grant ids: this store's random prefix and a sequence number. */
  readonly #instance = randomBytes(6).toString('base64url');
  #grantSeq = 0;
  /** Round trip of a take, smoothed (ms). */
  #roundTripMs = 1;

  constructor(options: RedisBucketStoreOptions) {
    if (!Number.isInteger(options.replicasHint) || options.replicasHint < 1)
      throw new RangeError(`replicasHint must be an integer >= 1, got ${options.replicasHint}`);
    this.#client = options.client;
    this.#keyPrefix = options.keyPrefix;
    this.onError = options.onError;
    this.replicasHint = options.replicasHint;
    this.#clock = options.clock;
    this.#timers = options.timers;
    this.#observer = options.observer ?? {};
    this.#commands = defineSluiceCommands(this.#client);
    this.#health = new RedisHealth({
      client: this.#client,
      clock: options.clock,
      timers: options.timers,
      onError: options.onError,
      observer: this.#observer,
      probeBackoffMs: options.probeBackoffMs ?? 500,
      maxProbeBackoffMs: options.maxProbeBackoffMs ?? 5_000,
    });
  }

  /** Whether Redis currently answers. */
  get healthy(): boolean {
    return this.#health.healthy;
  }

  /** Whether takes are answered by the local fallback buckets (Redis failing, `onError: local`). */
  get fallback(): boolean {
    return this.#health.fallback;
  }

  /** Errors since the store was created, by operation. */
  get errors(): ReadonlyMap<RedisOperation, number> {
    return this.#health.errors;
  }

  /** Resolves once Redis answers, or with false after `timeoutMs`. */
  waitUntilHealthy(timeoutMs: number): Promise<boolean> {
    return this.#health.waitUntilHealthy(timeoutMs);
  }

  bucket(spec: BucketSpec): RedisBucket {
    return new RedisBucket(spec, redisKeyOf(this.#keyPrefix, spec.id), this);
  }

  take(handles: readonly BucketHandle[], at: number, now: number): TakeResult | Promise<TakeResult> {
    const buckets = handles as unknown as readonly RedisBucket[];
    if (!this.#health.healthy) return this.#takeWithoutRedis(buckets, at, now);
    const args: (string | number)[] = [];
    for (const bucket of buckets) args.push(bucket.key);
    // How long ago the grant was due: the scheduler's `at`, or the instant the last answer
    // predicted the tokens for, if that was only just now (see MAX_LATE_CREDIT_MS).
    let predicted = Number.NEGATIVE_INFINITY;
    let creditMs = MAX_LATE_CREDIT_MS;
    for (const bucket of buckets) {
      predicted = Math.max(predicted, bucket.availableAt());
      creditMs = Math.min(creditMs, bucket.intervalMs / 4);
    }
    const due = predicted <= now && predicted >= now - creditMs ? Math.min(at, predicted) : at;
    args.push(Number.isFinite(now - due) ? Math.max(0, now - due) : 0);
    const grant = `${this.#instance}.${++this.#grantSeq}`;
    args.push(grant, PENDING_GRACE_MS + 2 * this.#roundTripMs);
    for (const bucket of buckets) args.push(bucket.intervalMs, bucket.burst);
    return this.#commands.sluiceTake(buckets.length, ...args).then(
      (reply) => {
        const arrivedAt = this.#clock.now();
        this.#roundTripMs += (Math.min(arrivedAt - now, 50) - this.#roundTripMs) / 8;
        this.#observer.takeDuration?.((arrivedAt - now) / 1000);
        const result = this.#settle(buckets, reply, now, arrivedAt);
        if (result.granted) for (const bucket of buckets) bucket.pendingGrant = grant;
        return result;
      },
      (err: unknown) => {
        this.#health.failed('take', err);
        const later = this.#clock.now();
        // The grant was due a timeout ago; booking it then would hand out the tokens of that wait.
        return this.#takeWithoutRedis(buckets, later, later);
      },
    );
  }

  refund(handles: readonly BucketHandle[]): void {
    const buckets = handles as unknown as readonly RedisBucket[];
    if (!this.#health.healthy) return this.#local.refund(buckets.map((b) => b.fallback));
    const grant = takePendingGrant(buckets);
    for (const bucket of buckets) bucket.tat = gcra.refund(bucket.tat, bucket.intervalMs);
    this.#send('refund', this.#commands.sluiceRefund(buckets.length, ...buckets.map((b) => b.key), grant, ...buckets.map((b) => b.intervalMs)));
  }

  /**
   * The write notice: ends the grant's hold on the buckets (PENDING_HOLD_MS), and, when the
   * write came more than the round trip plus `toleranceMs` after the instant the tokens were booked
   * (a new connection, a stalled process, a grant booked in the past to catch up), re-bases the
   * buckets on it, so no bucket holds more than if its token had been taken at the write.
   * Fire-and-forget, so the grant path stays one round trip: a lost notice holds the bucket
   * PENDING_HOLD_MS at most.
   */
  usedAt(handles: readonly BucketHandle[], at: number, toleranceMs: number): void {
    const buckets = handles as unknown as readonly RedisBucket[];
    if (!this.#health.healthy)
      return this.#local.usedAt(
        buckets.map((b) => b.fallback),
        at,
        toleranceMs,
      );
    const late = buckets.some((b) => at - b.bookedAt - b.grantRoundTripMs > toleranceMs);
    const grant = takePendingGrant(buckets);
    if (!late && grant === '') return;
    if (late) for (const bucket of buckets) bucket.tat = gcra.usedAt(bucket.tat, bucket.intervalMs, at, toleranceMs);
    const sinceMs = Math.max(0, this.#clock.now() - at);
    this.#send(
      'used_at',
      this.#commands.sluiceUsedAt(buckets.length, ...buckets.map((b) => b.key), grant, sinceMs, toleranceMs, late ? 1 : 0, ...buckets.map((b) => b.intervalMs)),
    );
  }

  /** Pauses the buckets in Redis (every replica sees it on its next take) and in the local hints. */
  pause(handles: readonly BucketHandle[], now: number, untilAt: number): void {
    const buckets = handles as unknown as readonly RedisBucket[];
    for (const bucket of buckets) if (untilAt > bucket.pauseEndsAt) bucket.pauseEndsAt = untilAt;
    if (!this.#health.healthy)
      return this.#local.pause(
        buckets.map((b) => b.fallback),
        now,
        untilAt,
      );
    this.#send('pause', this.#commands.sluicePause(buckets.length, ...buckets.map((b) => b.key), Math.max(0, untilAt - now)));
  }

  async close(): Promise<void> {
    this.#health.close();
    const client = this.#client;
    if (client.status === 'ready') {
      // QUIT, or a second at most.
      let timer: TimerHandle | undefined;
      const atMost = new Promise((resolve) => (timer = this.#timers.setAt(this.#clock.now() + 1_000, () => resolve(undefined))));
      await Promise.race([client.quit().catch(() => undefined), atMost]);
      if (timer) this.#timers.clear(timer);
    }
    client.disconnect();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Converts the script's answer (times relative to Redis's now) into the caller's clock. */
  #settle(buckets: readonly RedisBucket[], reply: (string | number)[], now: number, arrivedAt: number): TakeResult {
    const relative = (value: string | number | undefined): number => (value === '' || value === undefined ? Number.NEGATIVE_INFINITY : now + Number(value));
    buckets.forEach((bucket, i) => {
      bucket.tat = relative(reply[3 + 2 * i]);
      bucket.pauseEndsAt = Math.max(bucket.pauseEndsAt, relative(reply[4 + 2 * i]));
    });
    if (Number(reply[0]) === 1) {
      const bookedAt = now - Number(reply[1]);
      for (const bucket of buckets) {
        bucket.bookedAt = bookedAt;
        bucket.grantRoundTripMs = arrivedAt - now;
      }
      return { granted: true, at: bookedAt };
    }
    return { granted: false, retryAt: now + Number(reply[1]), blocker: Number(reply[2]) };
  }

  #takeWithoutRedis(buckets: readonly RedisBucket[], at: number, now: number): TakeResult {
    if (this.onError === 'deny') return STORE_UNAVAILABLE;
    return this.#local.take(
      buckets.map((b) => b.fallback),
      at,
      now,
    );
  }

  #send(operation: RedisOperation, command: Promise<unknown>): void {
    command.catch((err: unknown) => this.#health.failed(operation, err));
  }
}

function sha256Base64url(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** The grant these buckets still hold ('' for none), forgotten locally: its notice is being sent. */
function takePendingGrant(buckets: readonly RedisBucket[]): string {
  let grant = '';
  for (const bucket of buckets) {
    if (bucket.pendingGrant !== undefined) grant = bucket.pendingGrant;
    bucket.pendingGrant = undefined;
  }
  return grant;
}
