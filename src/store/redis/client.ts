/**
 * The ioredis client of the Redis store, from a URL or a list of Cluster seeds: the connection
 * options that keep a down Redis from costing a request anything, and the parsing of Redis and
 * Sentinel URLs.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** Where Redis is, and how long a command may take. */
export interface RedisClientOptions {
  /** One Redis (`redis://`, `rediss://`), or Sentinel (`redis+sentinel://`). */
  readonly url?: string | undefined;
  /** Redis Cluster seed nodes (`redis://host:6379`), instead of `url`. */
  readonly cluster?: readonly string[] | undefined;
  /** Longest a command may take before it fails. */
  readonly timeoutMs: number;
}

/**
 * The ioredis client: a single Redis (`url`), Sentinel (`redis+sentinel://` url) or Cluster
 * (`cluster` seed nodes). Commands are never queued while disconnected and fail after `timeoutMs`;
 * unsent commands are not resent after a reconnect (a take retried by the connection could spend a
 * token twice). Reconnects forever, backing off to 2 s.
 */
export function createRedisClient(config: RedisClientOptions): Redis | Cluster {
  const common: RedisOptions = {
    commandTimeout: config.timeoutMs,
    connectTimeout: Math.max(1_000, config.timeoutMs * 4),
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
