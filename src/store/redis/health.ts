/**
 * Whether the Redis store may ask Redis: healthy while Redis answers, failing from the first error
 * or timeout until it answers again. ioredis reconnects a closed connection by itself (its `ready`
 * ends the failure); while connected but silent, one timer on the injected Timers probes it with
 * PING on a backoff. While failing, the store answers from its local fallback (`onError: local`)
 * or says the store is unavailable (`onError: deny`).
 */
import type { Cluster, Redis } from 'ioredis';
import type { Clock, TimerHandle, Timers } from '../../core/time.js';

/** Operations that talk to Redis, the `operation` label of `sluice_store_errors_total`. */
export type RedisOperation = 'take' | 'refund' | 'used_at' | 'pause' | 'probe' | 'connection';

/** What the Redis store reports; every callback is optional. */
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

export interface RedisHealthOptions {
  readonly client: Redis | Cluster;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly onError: 'local' | 'deny';
  readonly observer: RedisStoreObserver;
  /** First wait before a silent Redis is probed again; doubles up to `maxProbeBackoffMs`. */
  readonly probeBackoffMs: number;
  readonly maxProbeBackoffMs: number;
}

export class RedisHealth {
  readonly #client: Redis | Cluster;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #onError: 'local' | 'deny';
  readonly #observer: RedisStoreObserver;
  readonly #probeBackoffMs: number;
  readonly #maxProbeBackoffMs: number;
  #healthy = false;
  #closed = false;
  #probeTimer: TimerHandle | undefined;
  #probeDelayMs: number;
  /** Errors since the store was created, by operation. */
  readonly errors = new Map<RedisOperation, number>();

  constructor(options: RedisHealthOptions) {
    this.#client = options.client;
    this.#clock = options.clock;
    this.#timers = options.timers;
    this.#onError = options.onError;
    this.#observer = options.observer;
    this.#probeBackoffMs = options.probeBackoffMs;
    this.#maxProbeBackoffMs = options.maxProbeBackoffMs;
    this.#probeDelayMs = this.#probeBackoffMs;
    const client = this.#client;
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
    return !this.#healthy && this.#onError === 'local';
  }

  /** A call to Redis failed: counted, and Redis is not asked again until it answers. */
  failed(operation: RedisOperation, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.#count(operation, error);
    this.#setHealthy(false, `${operation}: ${error.message}`);
  }

  /** Resolves once Redis answers, or with false after `timeoutMs`. */
  async waitUntilHealthy(timeoutMs: number): Promise<boolean> {
    if (this.#healthy) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        this.#timers.clear(timer);
        this.#client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = this.#timers.setAt(this.#clock.now() + timeoutMs, () => done(this.#healthy));
      this.#client.on('ready', onReady);
    });
  }

  /** Nothing is reported or probed from now on. */
  close(): void {
    this.#closed = true;
    if (this.#probeTimer) this.#timers.clear(this.#probeTimer);
    this.#probeTimer = undefined;
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
      if (this.#probeTimer) this.#timers.clear(this.#probeTimer);
      this.#probeTimer = undefined;
    } else {
      this.#armProbe();
    }
    this.#observer.health?.(healthy, reason);
    if (this.#onError === 'local') this.#observer.fallback?.(!healthy);
  }

  /**
   * While Redis is connected but fails (no answer within the timeout), nothing else would notice it
   * answering again: one timer PINGs it, backing off. A closed connection is ioredis's to reopen;
   * its `ready` ends the fallback.
   */
  #armProbe(): void {
    if (this.#probeTimer || this.#closed) return;
    const delayMs = this.#probeDelayMs;
    this.#probeDelayMs = Math.min(this.#maxProbeBackoffMs, this.#probeDelayMs * 2);
    this.#probeTimer = this.#timers.setAt(this.#clock.now() + delayMs, () => {
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
    });
  }
}
