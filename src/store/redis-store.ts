import { createHash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { keyDigest } from '../core/key-digest.js';
import { gcra } from '../core/token-bucket.js';
import type { Clock } from '../core/time.js';
import { StoreUnavailableError, type BucketHandle, type BucketSpec, type BucketStore, type TakeResult } from './bucket-store.js';
import { MemoryBucket, MemoryBucketStore } from './memory-store.js';

/**
 * Token buckets shared by every replica, in Redis.
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
 * Round trips: one per release (the take). A refund, a pause and a late write (`usedAt`) are sent
 * without waiting for the answer, on the same connection, so the next take of the key sees them;
 * `usedAt` is sent only when the write was later than `toleranceMs` after the grant arrived, so
 * the ordinary grant path costs exactly one command.
 *
 * Handles keep what the last answer said (the bucket's `t` and `p`, in the caller's clock) as hints
 * for prediction, for arming the gate's timer, and for idle eviction. Another replica may have taken
 * tokens since, so a hint may be early, never authoritative: Redis answers every take.
 *
 * When Redis fails (a connection error, or no answer within the command timeout), the store stops
 * asking it until it answers again: ioredis reconnects by itself, and while connected but silent a
 * single unref'd timer probes it with PING on a backoff. Meanwhile, with `onError: 'local'` takes are
 * answered synchronously by an in-process MemoryBucketStore whose buckets run at
 * rate / replicasHint (created per bucket on first use); with `onError: 'deny'` they are rejected
 * with StoreUnavailableError, which the scheduler turns into 503 SLUICE_STORE_UNAVAILABLE. Commands
 * are never queued while disconnected (enableOfflineQueue: false), so a down Redis costs a request
 * nothing, and a silent one at most the command timeout.
 */

/** Operations that talk to Redis, the `operation` label of `sluice_store_errors_total`. */
export type RedisOperation = 'take' | 'refund' | 'used_at' | 'pause' | 'probe' | 'connection';

/** What the store reports; every callback is optional. */
export interface RedisStoreObserver {
  /** A Redis call failed, or the connection reported an error. */
  error?(operation: RedisOperation, err: Error): void;
  /** Serving from the local fallback started (true) or ended (false). */
  fallback?(active: boolean): void;
  /** Redis stopped (false) or started again (true) answering. */
  health?(healthy: boolean, reason: string): void;
  /** Seconds a take's round trip took (answered takes only). */
  takeDuration?(seconds: number): void;
}

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
  readonly observer?: RedisStoreObserver;
  /** First wait before a silent Redis is probed again; doubles up to `maxProbeBackoffMs`. Default 500. */
  readonly probeBackoffMs?: number;
  /** Default 5000. */
  readonly maxProbeBackoffMs?: number;
}

/** Keys longer than this are replaced by a digest (a header value can be long, or sensitive). */
const MAX_RAW_KEY_LENGTH = 100;

/**
 * How far in the past a take may book its tokens (the release was due earlier: a late timer, a
 * pause in this process), and how long a key outlives the instant its bucket is full again. The two
 * go together: a key that has expired must mean its bucket was full before any instant a take may
 * book at, or a booking in the past would spend tokens the expired state had already handed out.
 */
export const LATE_BOOKING_WINDOW_MS = 1000;

/**
 * A take that reaches Redis up to this long (or a quarter interval, if less) after the instant this
 * process's last answer said the tokens would be there is booked at that instant: the timer's
 * lateness and the trip to Redis must not lengthen every interval. Later than that, the bucket was
 * idle and the release is booked when it arrives. (A write that then comes later than the booking
 * by more than the round trip and the scheduler's tolerance re-bases the bucket, see `usedAt`.)
 */
const MAX_LATE_CREDIT_MS = 2;

/**
 * A grant not yet written to the upstream holds the bucket for every replica, as an unwritten
 * release holds its gate in one process (WRITE_HOLD_LIMIT_MS in src/scheduler/gate.ts, the same
 * limit): a replica that stalls between its grant and its write (a GC pause, a CPU quota, a new
 * connection) would otherwise send its request together with the next replica's, and a strict
 * upstream window counts one too many. A grant is recorded in the bucket's hash (`w:<id>`) and
 * removed by the replica's write notice (`usedAt`) or refund; a grant older than
 * PENDING_GRACE_MS (plus twice the round trip) and younger than this blocks other takes, which
 * then ask again shortly. Normally the notice arrives first and nothing ever waits.
 */
export const PENDING_HOLD_MS = 1000;
const PENDING_GRACE_MS = 5;

/**
 * KEYS: one hash per bucket. ARGV[1]: how long ago (ms) the release was due, so a late timer does not
 * shift later releases (at most LATE_BOOKING_WINDOW_MS); ARGV[2]: this take's grant id,
 * `<store instance>.<sequence>` (the store's own unwritten grants are the scheduler's to hold, by
 * its gates); ARGV[3]: how old (ms) another replica's unwritten grant must be to hold the bucket;
 * then per bucket its interval (ms per token) and burst.
 * Returns { granted (1/0), granted ? ms since the tokens were booked : ms to wait, blocker index
 * (0-based), then per bucket `t - now` and `p - now` ("" for none) after the take }.
 */
const TAKE_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local window = ${LATE_BOOKING_WINDOW_MS}
local hold = ${PENDING_HOLD_MS}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local due = now - math.min(tonumber(ARGV[1]), window)
local grant = 'w:' .. ARGV[2]
local mine = string.match(grant, '^(w:[^.]*%.)')
local grace = tonumber(ARGV[3])
local n = #KEYS
local tats, pauses, intervals = {}, {}, {}
local ready, blocker = -math.huge, 1
for i = 1, n do
  local state = redis.call('HGETALL', KEYS[i])
  local interval = tonumber(ARGV[2 * i + 2])
  local burst = tonumber(ARGV[2 * i + 3])
  local tat, pause, pending = -math.huge, -math.huge, math.huge
  for j = 1, #state, 2 do
    local field, value = state[j], tonumber(state[j + 1])
    if field == 't' then tat = value
    elseif field == 'p' then pause = value
    elseif value <= now - hold then redis.call('HDEL', KEYS[i], field)
    elseif value < pending and string.sub(field, 1, #mine) ~= mine then pending = value end
  end
  tats[i], pauses[i], intervals[i] = tat, pause, interval
  local available = math.max(tat - (burst - 1) * interval, pause)
  if pending < now - grace then
    -- Another replica has not written its grant yet: ask again shortly (or when it is forgotten).
    available = math.max(available, math.min(now + math.max(1, math.min(5, interval / 4)), pending + hold))
  end
  if available > ready then ready, blocker = available, i end
end
local granted = ready <= now
local answer
if granted then
  local booked = math.max(due, ready)
  for i = 1, n do
    local tat = math.max(tats[i], booked) + intervals[i]
    tats[i] = tat
    redis.call('HSET', KEYS[i], 't', string.format('%.3f', tat), grant, string.format('%.3f', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(math.max(tat, pauses[i]) - now + window))
  end
  answer = { 1, string.format('%.3f', now - booked), blocker - 1 }
else
  answer = { 0, string.format('%.3f', ready - now), blocker - 1 }
end
for i = 1, n do
  answer[#answer + 1] = tats[i] == -math.huge and '' or string.format('%.3f', tats[i] - now)
  answer[#answer + 1] = pauses[i] == -math.huge and '' or string.format('%.3f', pauses[i] - now)
end
return answer
`;

/**
 * KEYS: buckets. ARGV[1]: the grant id ('' for none), then per bucket its interval. Gives one token
 * back to each bucket that still exists, and forgets the grant.
 */
const REFUND_LUA = `
for i = 1, #KEYS do
  local tat = tonumber(redis.call('HGET', KEYS[i], 't'))
  if tat then redis.call('HSET', KEYS[i], 't', string.format('%.3f', tat - tonumber(ARGV[i + 1]))) end
  if ARGV[1] ~= '' then redis.call('HDEL', KEYS[i], 'w:' .. ARGV[1]) end
end
return 1
`;

/**
 * The write notice. KEYS: buckets. ARGV[1]: the grant id ('' for none), ARGV[2]: ms since the write,
 * ARGV[3]: tolerance ms, ARGV[4]: 1 when the write was late, then per bucket its interval. Forgets the
 * grant; after a late write, no bucket holds more than if its token had been taken at the write
 * (TokenBucket#usedAt).
 */
const USED_AT_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local window = ${LATE_BOOKING_WINDOW_MS}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local written = now - tonumber(ARGV[2])
for i = 1, #KEYS do
  if ARGV[1] ~= '' then redis.call('HDEL', KEYS[i], 'w:' .. ARGV[1]) end
  if ARGV[4] == '1' then
    local state = redis.call('HMGET', KEYS[i], 't', 'p')
    local floor = written - tonumber(ARGV[3]) + tonumber(ARGV[4 + i])
    if floor > (tonumber(state[1]) or -math.huge) then
      redis.call('HSET', KEYS[i], 't', string.format('%.3f', floor))
      redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(math.max(floor, tonumber(state[2]) or -math.huge) - now + window)))
    end
  end
end
return 1
`;

/** KEYS: buckets. ARGV[1]: ms from now until the pause ends. Pauses extend, never shorten. */
const PAUSE_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local window = ${LATE_BOOKING_WINDOW_MS}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local untilMs = now + tonumber(ARGV[1])
for i = 1, #KEYS do
  local state = redis.call('HMGET', KEYS[i], 't', 'p')
  local pause = tonumber(state[2]) or -math.huge
  if untilMs > pause then
    redis.call('HSET', KEYS[i], 'p', string.format('%.3f', untilMs))
    redis.call('PEXPIRE', KEYS[i], math.ceil(math.max(untilMs, tonumber(state[1]) or -math.huge) - now + window))
  end
end
return 1
`;

/** The commands the store defines on its client (EVALSHA, reloaded by ioredis after NOSCRIPT). */
interface SluiceCommands {
  sluiceTake(numKeys: number, ...args: (string | number)[]): Promise<(string | number)[]>;
  sluiceRefund(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  sluiceUsedAt(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  sluicePause(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

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
  pausedUntil = Number.NEGATIVE_INFINITY;
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
    return Math.max(gcra.availableAt(this.tat, this.intervalMs, this.#burst), this.pausedUntil);
  }

  tokensAt(now: number): number {
    if (this.#store.fallback) return this.fallback.tokensAt(now);
    return gcra.tokensAt(this.tat, this.intervalMs, this.#burst, now);
  }

  fullAt(): number {
    const local = this.#fallback ? this.#fallback.fullAt() : Number.NEGATIVE_INFINITY;
    return Math.max(this.tat, this.pausedUntil, local);
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

/** The `redis` store: buckets in Redis, one script round trip per release. */
export class RedisBucketStore implements BucketStore {
  readonly kind = 'redis';
  readonly replicasHint: number;
  readonly onError: 'local' | 'deny';
  readonly #client: Redis | Cluster;
  readonly #commands: SluiceCommands;
  readonly #keyPrefix: string;
  readonly #clock: Clock;
  readonly #observer: RedisStoreObserver;
  readonly #local = new MemoryBucketStore();
  readonly #probeBackoffMs: number;
  readonly #maxProbeBackoffMs: number;
  #healthy = false;
  #closed = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #probeDelayMs: number;
  /** Grant ids: this store's random prefix and a sequence number. */
  readonly #instance = randomBytes(6).toString('base64url');
  #grantSeq = 0;
  /** Round trip of a take, smoothed (ms). */
  #roundTripMs = 1;
  /** Errors since the store was created, by operation. */
  readonly errors = new Map<RedisOperation, number>();

  constructor(options: RedisBucketStoreOptions) {
    if (!Number.isInteger(options.replicasHint) || options.replicasHint < 1)
      throw new RangeError(`replicasHint must be an integer >= 1, got ${options.replicasHint}`);
    this.#client = options.client;
    this.#keyPrefix = options.keyPrefix;
    this.onError = options.onError;
    this.replicasHint = options.replicasHint;
    this.#clock = options.clock;
    this.#observer = options.observer ?? {};
    this.#probeBackoffMs = options.probeBackoffMs ?? 500;
    this.#maxProbeBackoffMs = options.maxProbeBackoffMs ?? 5_000;
    this.#probeDelayMs = this.#probeBackoffMs;
    const client = this.#client;
    client.defineCommand('sluiceTake', { lua: TAKE_LUA });
    client.defineCommand('sluiceRefund', { lua: REFUND_LUA });
    client.defineCommand('sluiceUsedAt', { lua: USED_AT_LUA });
    client.defineCommand('sluicePause', { lua: PAUSE_LUA });
    this.#commands = client as unknown as SluiceCommands;
    client.on('ready', () => this.#setHealthy(true, 'connected'));
    client.on('error', (err: Error) => {
      this.#count('connection', err);
      this.#setHealthy(false, err.message);
    });
    client.on('close', () => this.#setHealthy(false, 'connection closed'));
    if (client.status === 'ready') this.#setHealthy(true, 'connected');
    else this.#observer.fallback?.(this.fallback);
  }

  /** Whether Redis currently answers. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Whether takes are answered by the local fallback buckets (Redis failing, `onError: local`). */
  get fallback(): boolean {
    return !this.#healthy && this.onError === 'local';
  }

  /** Resolves once Redis answers, or with false after `timeoutMs`. */
  async waitUntilHealthy(timeoutMs: number): Promise<boolean> {
    if (this.#healthy) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.#client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(this.#healthy), timeoutMs);
      timer.unref();
      this.#client.on('ready', onReady);
    });
  }

  bucket(spec: BucketSpec): RedisBucket {
    return new RedisBucket(spec, redisKeyOf(this.#keyPrefix, spec.id), this);
  }

  take(handles: readonly BucketHandle[], at: number, now: number): TakeResult | Promise<TakeResult> {
    const buckets = handles as unknown as readonly RedisBucket[];
    if (!this.#healthy) return this.#takeWithoutRedis(buckets, at, now);
    const args: (string | number)[] = [];
    for (const bucket of buckets) args.push(bucket.key);
    // How long ago the release was due: the scheduler's `at`, or the instant the last answer
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
        this.#failed('take', err);
        const later = this.#clock.now();
        // The release was due a timeout ago; booking it then would hand out the tokens of that wait.
        return this.#takeWithoutRedis(buckets, later, later);
      },
    );
  }

  refund(handles: readonly BucketHandle[]): void {
    const buckets = handles as unknown as readonly RedisBucket[];
    if (!this.#healthy) return this.#local.refund(buckets.map((b) => b.fallback));
    const grant = takePendingGrant(buckets);
    for (const bucket of buckets) bucket.tat = gcra.refund(bucket.tat, bucket.intervalMs);
    this.#send('refund', this.#commands.sluiceRefund(buckets.length, ...buckets.map((b) => b.key), grant, ...buckets.map((b) => b.intervalMs)));
  }

  /**
   * The write notice: releases the grant's hold on the buckets (PENDING_HOLD_MS), and, when the
   * write came more than the round trip plus `toleranceMs` after the instant the tokens were booked
   * (a new connection, a stalled process, a release booked in the past to catch up), re-bases the
   * buckets on it, so no bucket holds more than if its token had been taken at the write.
   * Fire-and-forget, so the grant path stays one round trip: a lost notice holds the bucket
   * PENDING_HOLD_MS at most.
   */
  usedAt(handles: readonly BucketHandle[], at: number, toleranceMs: number): void {
    const buckets = handles as unknown as readonly RedisBucket[];
    if (!this.#healthy)
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
  pause(handles: readonly BucketHandle[], now: number, untilMs: number): void {
    const buckets = handles as unknown as readonly RedisBucket[];
    for (const bucket of buckets) if (untilMs > bucket.pausedUntil) bucket.pausedUntil = untilMs;
    if (!this.#healthy)
      return this.#local.pause(
        buckets.map((b) => b.fallback),
        now,
        untilMs,
      );
    this.#send('pause', this.#commands.sluicePause(buckets.length, ...buckets.map((b) => b.key), Math.max(0, untilMs - now)));
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    const client = this.#client;
    if (client.status === 'ready') {
      await Promise.race([client.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    }
    client.disconnect();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Converts the script's answer (times relative to Redis's now) into the caller's clock. */
  #settle(buckets: readonly RedisBucket[], reply: (string | number)[], now: number, arrivedAt: number): TakeResult {
    const relative = (value: string | number | undefined): number => (value === '' || value === undefined ? Number.NEGATIVE_INFINITY : now + Number(value));
    buckets.forEach((bucket, i) => {
      bucket.tat = relative(reply[3 + 2 * i]);
      bucket.pausedUntil = Math.max(bucket.pausedUntil, relative(reply[4 + 2 * i]));
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

  #takeWithoutRedis(buckets: readonly RedisBucket[], at: number, now: number): TakeResult | Promise<TakeResult> {
    if (this.onError === 'deny') return Promise.reject(new StoreUnavailableError('the Redis store is unavailable (store.onError: deny)'));
    return this.#local.take(
      buckets.map((b) => b.fallback),
      at,
      now,
    );
  }

  #send(operation: RedisOperation, command: Promise<unknown>): void {
    command.catch((err: unknown) => this.#failed(operation, err));
  }

  #failed(operation: RedisOperation, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.#count(operation, error);
    this.#setHealthy(false, `${operation}: ${error.message}`);
  }

  #count(operation: RedisOperation, err: Error): void {
    if (this.#closed) return;
    this.errors.set(operation, (this.errors.get(operation) ?? 0) + 1);
    this.#observer.error?.(operation, err);
  }

  #setHealthy(healthy: boolean, reason: string): void {
    if (this.#closed || healthy === this.#healthy) {
      if (!healthy && !this.#closed) this.#armProbe();
      return;
    }
    this.#healthy = healthy;
    if (healthy) {
      this.#probeDelayMs = this.#probeBackoffMs;
      if (this.#probeTimer) clearTimeout(this.#probeTimer);
      this.#probeTimer = undefined;
    } else {
      this.#armProbe();
    }
    this.#observer.health?.(healthy, reason);
    if (this.onError === 'local') this.#observer.fallback?.(!healthy);
  }

  /**
   * While Redis is connected but fails (no answer within the timeout), nothing else would notice it
   * answering again: one unref'd timer PINGs it, backing off. A closed connection is ioredis's to
   * reopen; its `ready` ends the fallback.
   */
  #armProbe(): void {
    if (this.#probeTimer || this.#closed) return;
    const delayMs = this.#probeDelayMs;
    this.#probeDelayMs = Math.min(this.#maxProbeBackoffMs, this.#probeDelayMs * 2);
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      if (this.#closed || this.#healthy) return;
      if (this.#client.status !== 'ready') return this.#armProbe(); // reconnecting: 'ready' will tell
      this.#client.ping().then(
        () => this.#setHealthy(true, 'answered a probe'),
        (err: unknown) => {
          this.#count('probe', err instanceof Error ? err : new Error(String(err)));
          this.#armProbe();
        },
      );
    }, delayMs);
    this.#probeTimer.unref();
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
