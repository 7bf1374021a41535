import { Pool } from 'undici';
import { compileKeyTemplate, type KeyTemplate } from '../core/key-template.js';
import type { RetryOn, RetryPolicy } from '../core/retry-policy.js';
import type { UpstreamConfig } from '../config/schema.js';
import type { UpstreamMetrics } from '../metrics/metrics.js';
import type { RuleSpec } from '../scheduler/gate.js';
import type { Clock, Timers } from '../scheduler/ports.js';
import { Scheduler } from '../scheduler/scheduler.js';
import type { BucketStore } from '../store/bucket-store.js';

/** Ports an upstream needs from the composition root. */
export interface UpstreamDeps {
  readonly clock: Clock;
  readonly timers: Timers;
  /** Wall-clock epoch milliseconds, only to read HTTP dates (Retry-After). */
  readonly epochNow: () => number;
  /** A random number in [0, 1), for backoff jitter. */
  readonly random: () => number;
  readonly metrics: UpstreamMetrics;
  /** Where the token buckets live (shared by every upstream of the app). */
  readonly store: BucketStore;
}

/** Everything a request to one upstream needs, built once from its configuration. */
export class Upstream {
  readonly config: UpstreamConfig;
  readonly name: string;
  readonly prefix: string;
  /** `scheme://host:port` of the target. */
  readonly origin: string;
  /** The target's base path without a trailing slash ('' for none), prepended to every path. */
  readonly basePath: string;
  readonly hostHeader: string;
  readonly setHeaders: readonly (readonly [string, string])[];
  readonly keyTemplates: readonly (KeyTemplate | undefined)[];
  /** Some template reads the query string or path segments (parsed only then). */
  readonly needsQuery: boolean;
  readonly needsPath: boolean;
  readonly retryPolicy: RetryPolicy;
  readonly scheduler: Scheduler;
  readonly pool: Pool;
  readonly deps: UpstreamDeps;

  constructor(config: UpstreamConfig, deps: UpstreamDeps) {
    this.config = config;
    this.deps = deps;
    this.name = config.name;
    this.prefix = config.prefix === '/' ? '' : config.prefix;
    const target = new URL(config.target);
    this.origin = target.origin;
    this.basePath = target.pathname.replace(/\/+$/, '');
    this.hostHeader = target.host;
    this.setHeaders = Object.entries(config.setHeaders).map(([name, value]) => [name.toLowerCase(), value] as const);
    this.keyTemplates = config.limits.map((limit) => {
      if (limit.key === undefined) return undefined;
      const compiled = compileKeyTemplate(limit.key);
      if (!compiled.ok) throw new Error(compiled.error); // validated by the schema already
      return compiled.template;
    });
    this.needsQuery = config.limits.some((l) => l.key?.includes('{query.') ?? false);
    this.needsPath = config.limits.some((l) => l.key?.includes('{path.') ?? false);
    this.retryPolicy = {
      attempts: config.retry.attempts,
      on: new Set<RetryOn>(config.retry.on),
      backoff: { baseMs: config.retry.backoff.base, maxMs: config.retry.backoff.max },
      respectRetryAfter: config.retry.respectRetryAfter,
    };
    const rules: RuleSpec[] = config.limits.map((limit, index) => ({
      index,
      keyed: limit.key !== undefined,
      ratePerSec: limit.rate,
      burst: limit.burst,
      concurrency: limit.concurrency,
    }));
    this.scheduler = new Scheduler({
      rules,
      maxQueued: config.queue.maxSize,
      maxQueuedPerKey: config.queue.maxPerKey ?? config.queue.maxSize,
      maxIdleKeys: config.keys.maxIdle,
      marginFraction: config.pacing.margin,
      clock: deps.clock,
      timers: deps.timers,
      store: deps.store,
      name: config.name,
    });
    this.pool = new Pool(this.origin, {
      // sluice's queue must be the only queue: undici gets as many connections as sluice can have
      // in flight (the tightest concurrency cap of an unkeyed rule), or opens one per request.
      connections: poolSize(rules),
      pipelining: 1,
      headersTimeout: config.timeout,
      bodyTimeout: config.bodyTimeout,
      connect: { timeout: config.timeout },
      keepAliveTimeout: 4_000,
    });
  }

  /** The upstream path for a client URL under this upstream's prefix (query string kept). */
  upstreamPath(url: string): string {
    const rest = url.slice(this.prefix.length);
    if (rest === '' || rest[0] === '?') return `${this.basePath}/${rest}`;
    return this.basePath + rest;
  }

  async close(): Promise<void> {
    this.scheduler.close();
    await this.pool.close();
  }
}

function poolSize(rules: readonly RuleSpec[]): number | undefined {
  let size: number | undefined;
  for (const rule of rules) {
    if (!rule.keyed && rule.concurrency !== undefined) size = Math.min(size ?? Number.POSITIVE_INFINITY, rule.concurrency);
  }
  return size;
}
