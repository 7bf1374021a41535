/**
 * The store a configuration asks for: memory, or Redis (single, Sentinel or Cluster) with what it
 * reports wired to metrics and the log. Takes its own options type, which the configuration's
 * `store` section satisfies as it is (store/ does not import config/).
 */
import type { Clock, Timers } from '../core/time.js';
import type { BucketStore } from './bucket-store.js';
import { MemoryBucketStore } from './memory-store.js';
import { createRedisClient } from './redis/client.js';
import type { RedisStoreObserver } from './redis/health.js';
import { RedisBucketStore } from './redis/redis-store.js';

export type StoreOptions =
  | { readonly type: 'memory' }
  | {
      readonly type: 'redis';
      /** One Redis or Sentinel (`redis+sentinel://`), or `cluster` seeds instead. */
      readonly url?: string | undefined;
      readonly cluster?: readonly string[] | undefined;
      /** While Redis fails: `local` answers from local buckets at rate / replicasHint, `deny` refuses. */
      readonly onError: 'local' | 'deny';
      readonly replicasHint: number;
      /** Longest a Redis command may take, in ms (the configuration's `store.timeout`). */
      readonly timeout: number;
      readonly keyPrefix: string;
    };

/** What a store runs on and may report to: the clock and timers; metrics handles and a logger, optional. */
export interface StoreDeps {
  readonly clock: Clock;
  readonly timers: Timers;
  /** The store's metrics (createMetrics(...).store). */
  readonly metrics?: {
    errors(store: string, operation: string): { inc(): void };
    readonly fallback: { set(value: number): void };
    readonly takeDuration: { observe(seconds: number): void };
  };
  readonly logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** How long start-up waits for Redis before serving without it (onError decides how). Default 2 s. */
  readonly connectWaitMs?: number;
}

/**
 * Builds the configured store. For Redis, waits up to `connectWaitMs` for the first connection, so a
 * healthy Redis serves the first request; an unreachable one does not hold start-up back (the store
 * then starts in its `onError` mode and recovers by itself once Redis answers).
 */
export async function createStore(config: StoreOptions, deps: StoreDeps): Promise<BucketStore> {
  if (config.type === 'memory') return new MemoryBucketStore();
  const metrics = deps.metrics;
  const logger = deps.logger;
  const observer: RedisStoreObserver = {
    error: (operation) => metrics?.errors('redis', operation).inc(),
    fallback: (active) => metrics?.fallback.set(active ? 1 : 0),
    takeDuration: (seconds) => metrics?.takeDuration.observe(seconds),
    health: (healthy, reason) => {
      if (healthy) logger?.info({ store: 'redis' }, 'the Redis store answers again: shared limits');
      else
        logger?.warn(
          { store: 'redis', reason, onError: config.onError },
          config.onError === 'local'
            ? `the Redis store failed: serving from local buckets at rate / ${config.replicasHint}`
            : 'the Redis store failed: refusing requests (store.onError: deny)',
        );
    },
  };
  const store = new RedisBucketStore({
    client: createRedisClient({ url: config.url, cluster: config.cluster, timeoutMs: config.timeout }),
    keyPrefix: config.keyPrefix,
    onError: config.onError,
    replicasHint: config.replicasHint,
    clock: deps.clock,
    timers: deps.timers,
    observer,
  });
  await store.waitUntilHealthy(deps.connectWaitMs ?? 2_000);
  return store;
}

/** Whether the store lets the app report ready: not while a Redis store that must not be bypassed fails. */
export function storeReady(config: StoreOptions, store: BucketStore): boolean {
  return store.healthy || config.type !== 'redis' || config.onError !== 'deny';
}
