import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { StoreConfig } from '../config/schema.js';
import type { Clock } from '../core/time.js';
import type { BucketStore } from './bucket-store.js';
import { MemoryBucketStore } from './memory-store.js';
import { RedisBucketStore, type RedisStoreObserver } from './redis-store.js';

/** What a store may report to: metrics handles and a logger, all optional. */
export interface StoreDeps {
  readonly clock: Clock;
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
export async function createStore(config: StoreConfig, deps: StoreDeps): Promise<BucketStore> {
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
    client: createRedisClient(config),
    keyPrefix: config.keyPrefix,
    onError: config.onError,
    replicasHint: config.replicasHint,
    clock: deps.clock,
    observer,
  });
  await store.waitUntilHealthy(deps.connectWaitMs ?? 2_000);
  return store;
}

/** Whether the store lets the app report ready: not while a Redis store that must not be bypassed fails. */
export function storeReady(config: StoreConfig, store: BucketStore): boolean {
  return store.healthy || config.type !== 'redis' || config.onError !== 'deny';
}

type RedisStoreConfig = Extract<StoreConfig, { type: 'redis' }>;

/**
 * The ioredis client for a store configuration: a single Redis (`url`), Sentinel
 * (`redis+sentinel://` url) or Cluster (`cluster` seed nodes). Commands are never queued while
 * disconnected and fail after `timeout`; unsent commands are not resent after a reconnect (a take
 * retried by the connection could spend a token twice). Reconnects forever, backing off to 2 s.
 */
export function createRedisClient(config: RedisStoreConfig): Redis | Cluster {
  const common: RedisOptions = {
    commandTimeout: config.timeout,
    connectTimeout: Math.max(1_000, config.timeout * 4),
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    // Plain RESP2 replies are all the scripts need, and every Redis speaks it.
    protocol: 2,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
  };
  if (config.cluster) {
    const nodes = config.cluster.map((url) => parseRedisUrl(url));
    const first = nodes[0] as ParsedRedisUrl;
    const { retryStrategy: _retryStrategy, enableOfflineQueue: _offline, ...redisOptions } = common;
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
      redisOptions: { ...redisOptions, ...first.auth, ...(first.tls ? { tls: {} } : {}) },
    };
    return new Cluster(
      nodes.map((n) => ({ host: n.host, port: n.port })),
      options,
    );
  }
  const url = config.url as string;
  if (url.startsWith('redis+sentinel://')) return new Redis({ ...common, ...parseSentinelUrl(url) });
  return new Redis(url, common);
}

interface ParsedRedisUrl {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly auth: { username?: string; password?: string };
}

function parseRedisUrl(text: string): ParsedRedisUrl {
  const url = new URL(text);
  const auth: { username?: string; password?: string } = {};
  if (url.username) auth.username = decodeURIComponent(url.username);
  if (url.password) auth.password = decodeURIComponent(url.password);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 6379, tls: url.protocol === 'rediss:', auth };
}

/**
 * `redis+sentinel://[user:password@]host:26379[,host2:26379...]/mastername[/db]`: the password
 * is the master's (and the sentinels' when they use one).
 */
export function parseSentinelUrl(text: string): RedisOptions {
  const match = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/]+)\/([^/?]+)(?:\/(\d+))?\/?$/.exec(text);
  if (!match) throw new Error(`expected redis+sentinel://host:port[,host:port]/mastername, got ${text}`);
  const [, user, password, hosts = '', name = '', db] = match;
  const sentinels = hosts.split(',').map((entry) => {
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) return { host: bracketed[1] as string, port: Number(bracketed[2] ?? 26379) };
    const [host = '', port] = entry.split(':');
    return { host, port: Number(port ?? 26379) };
  });
  return {
    sentinels,
    name: decodeURIComponent(name),
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(password ? { password: decodeURIComponent(password), sentinelPassword: decodeURIComponent(password) } : {}),
    ...(db ? { db: Number(db) } : {}),
  };
}
