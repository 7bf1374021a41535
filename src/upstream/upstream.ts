import { Pool } from 'undici';
import { compileKeyTemplate, type KeyTemplate } from '../core/key-template.js';
import type { QuotaDialect } from '../core/ratelimit-headers.js';
import { SECRET_HEADERS } from '../core/http-rules.js';
import type { RetryOn, RetryPolicy } from '../core/retry-policy.js';
import type { UpstreamConfig } from '../config/schema.js';
import type { UpstreamMetrics } from '../metrics/metrics.js';
import type { RuleSpec } from '../scheduler/model.js';
import type { Clock, Timers } from '../core/time.js';
import { Scheduler } from '../scheduler/scheduler.js';
import type { BucketStore } from '../store/bucket-store.js';
import type { Logger } from 'pino';

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
  /** The upstream's logger (a child with its name). */
  readonly logger: Logger;
}

/**
 * What an attempt needs from an upstream's configuration, built once per configuration and never
 * changed: a reload replaces it as a whole, and each attempt uses the one current when it is sent.
 */
export class UpstreamSettings {
  readonly config: UpstreamConfig;
  /** The prefix to strip ('' for an upstream mounted at '/'). */
  readonly prefix: string;
  /** `scheme://host:port` of the target. */
  readonly origin: string;
  /** The target's base path without a trailing slash ('' for none), prepended to every path. */
  readonly basePath: string;
  readonly hostHeader: string;
  readonly setHeaders: readonly (readonly [string, string])[];
  /** Header names whose values are never logged: the usual credentials and every `setHeaders` name. */
  readonly secretHeaders: ReadonlySet<string>;
  readonly keyTemplates: readonly (KeyTemplate | undefined)[];
  readonly retryPolicy: RetryPolicy;
  /** The quota-header dialects read, or undefined when `pacing.headers` is off. */
  readonly quotaDialects: ReadonlySet<QuotaDialect> | undefined;
  readonly pool: Pool;

  constructor(config: UpstreamConfig, pool?: Pool) {
    this.config = config;
    this.prefix = config.prefix === '/' ? '' : config.prefix;
    const target = new URL(config.target);
    this.origin = target.origin;
    this.basePath = target.pathname.replace(/\/+$/, '');
    this.hostHeader = target.host;
    this.setHeaders = Object.entries(config.setHeaders).map(([name, value]) => [name.toLowerCase(), value] as const);
    this.secretHeaders = new Set([...SECRET_HEADERS, ...this.setHeaders.map(([name]) => name)]);
    this.keyTemplates = config.limits.map((limit) => {
      if (limit.key === undefined) return undefined;
      const compiled = compileKeyTemplate(limit.key);
      if (!compiled.ok) throw new Error(compiled.error); // validated by the schema already
      return compiled.template;
    });
    const headers = config.pacing.headers;
    this.quotaDialects =
      headers === 'off' ? undefined : new Set<QuotaDialect>(headers === 'auto' ? ['ietf', 'ietf-dict', 'ietf-legacy', 'x-ratelimit'] : headers);
    this.retryPolicy = {
      attempts: config.retry.attempts,
      on: new Set<RetryOn>(config.retry.on),
      backoff: { baseMs: config.retry.backoff.base, maxMs: config.retry.backoff.max },
      respectRetryAfter: config.retry.respectRetryAfter,
    };
    this.pool =
      pool ??
      new Pool(this.origin, {
        // sluice's queue must be the only queue: undici gets as many connections as sluice can have
        // in flight (the tightest concurrency cap of an unkeyed rule), or opens one per request.
        connections: poolSize(buildRules(config)),
        pipelining: 1,
        headersTimeout: config.timeout,
        bodyTimeout: config.bodyTimeout,
        connect: { timeout: config.timeout },
        keepAliveTimeout: 4_000,
      });
  }

  /** Whether `other` can keep this one's connection pool (same origin and pool options). */
  sharesPool(other: UpstreamConfig): boolean {
    const { config } = this;
    return (
      new URL(other.target).origin === this.origin &&
      other.timeout === config.timeout &&
      other.bodyTimeout === config.bodyTimeout &&
      poolSize(buildRules(other)) === poolSize(buildRules(config))
    );
  }

  /** The upstream path for the part of a client URL after the prefix (query string kept). */
  upstreamPath(rest: string): string {
    if (rest === '' || rest[0] === '?') return `${this.basePath}/${rest}`;
    return this.basePath + rest;
  }
}

/**
 * One upstream: its name, its scheduler (queues, buckets, pauses) and its current settings. The
 * scheduler outlives reloads that keep the rules' shape; the settings are swapped whole.
 */
export class Upstream {
  readonly name: string;
  readonly scheduler: Scheduler;
  readonly deps: UpstreamDeps;
  #settings: UpstreamSettings;
  /** Pools of earlier settings still finishing their requests. */
  readonly #retiredPools = new Set<Pool>();

  constructor(config: UpstreamConfig, deps: UpstreamDeps) {
    this.deps = deps;
    this.name = config.name;
    this.#settings = new UpstreamSettings(config);
    this.scheduler = new Scheduler({
      ...schedulerLimits(config),
      clock: deps.clock,
      timers: deps.timers,
      store: deps.store,
      name: config.name,
    });
  }

  get settings(): UpstreamSettings {
    return this.#settings;
  }

  get config(): UpstreamConfig {
    return this.#settings.config;
  }

  /**
   * Applies a new configuration of the same upstream in place: returns false, changing nothing,
   * when its limits changed shape (the caller replaces the upstream and lets this one drain).
   */
  apply(config: UpstreamConfig): boolean {
    if (!this.scheduler.reconfigure(schedulerLimits(config))) return false;
    const previous = this.#settings;
    if (previous.sharesPool(config)) this.#settings = new UpstreamSettings(config, previous.pool);
    else {
      this.#settings = new UpstreamSettings(config);
      // Requests already sent finish on the old pool; close() waits for them.
      this.#retiredPools.add(previous.pool);
      void previous.pool.close().finally(() => this.#retiredPools.delete(previous.pool));
    }
    return true;
  }

  async close(): Promise<void> {
    this.scheduler.close();
    await Promise.all([this.#settings.pool.close(), ...[...this.#retiredPools].map((pool) => pool.close())]);
  }
}

/** What the scheduler takes from an upstream's configuration. */
function schedulerLimits(config: UpstreamConfig) {
  return {
    rules: buildRules(config),
    maxQueued: config.queue.maxSize,
    maxQueuedPerKey: config.queue.maxPerKey,
    maxIdleKeys: config.keys.maxIdle,
    marginFraction: config.pacing.margin,
    maxLearnedPauseMs: config.pacing.maxPause,
    priorityAgingMs: config.priority?.aging,
  };
}

/**
 * The configured limits as scheduler rules. With `pacing.headers` on, one rule learns from the
 * upstream's quota headers: the first with a key (quotas are usually per credential), else the
 * first, else an implicit rule without a rate (index limits.length) added for it.
 */
export function buildRules(config: UpstreamConfig): RuleSpec[] {
  const rules: RuleSpec[] = config.limits.map((limit, index) => ({
    index,
    keyed: limit.key !== undefined,
    ratePerSec: limit.rate,
    burst: limit.burst,
    concurrency: limit.concurrency,
    adaptive:
      limit.adaptive === undefined
        ? undefined
        : {
            minPerSec: limit.adaptive.min,
            increasePerSec: limit.adaptive.increase,
            decrease: limit.adaptive.decrease,
            windowMs: limit.adaptive.window,
            probeAbove: limit.adaptive.probeAbove,
          },
  }));
  if (config.pacing.headers === 'off') return rules;
  const learner = rules.find((r) => r.keyed) ?? rules[0];
  if (learner) return rules.map((r) => (r === learner ? { ...r, learns: true } : r));
  return [{ index: 0, keyed: false, ratePerSec: undefined, burst: 1, concurrency: undefined, learns: true }];
}

function poolSize(rules: readonly RuleSpec[]): number | undefined {
  let size: number | undefined;
  for (const rule of rules) {
    if (!rule.keyed && rule.concurrency !== undefined) size = Math.min(size ?? Number.POSITIVE_INFINITY, rule.concurrency);
  }
  return size;
}
