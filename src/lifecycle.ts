/**
 * A built sluice over time: which upstreams are routed, a reload swapping in a new configuration
 * (in place where an upstream's limits keep their shape, else a fresh upstream while the old one
 * drains), the client requests in progress, and the order of a stop: the rate-aware drain, then
 * refusing what is still queued, the listeners, the upstreams' pools, the store.
 */
import type { Config, UpstreamConfig } from './config/schema.js';
import type { Clock, Timers } from './core/time.js';
import type { Exchange, ExchangeObserver } from './forward/exchange.js';
import type { Router } from './http/router.js';
import type { Upstream } from './upstream/upstream.js';

export type RunState = 'running' | 'draining' | 'closed';

/** What a reload did, upstream by upstream. */
export interface ReloadReport {
  /** Applied in place: queues, tokens and pauses kept. */
  readonly updated: readonly string[];
  /** Their limits changed shape: a fresh upstream takes new requests, the old one drains. */
  readonly replaced: readonly string[];
  readonly added: readonly string[];
  /** No longer routed; what was queued drains. */
  readonly removed: readonly string[];
  /** Changed sections a reload cannot apply (listen, admin, store): they need a restart. */
  readonly needsRestart: readonly string[];
}

export interface LifecycleOptions {
  readonly config: Config;
  readonly newUpstream: (config: UpstreamConfig) => Upstream;
  readonly router: Router;
  readonly clock: Clock;
  readonly timers: Timers;
  /** A client request ended (its log line). */
  readonly onRequestEnd: (exchange: Exchange) => void;
  /** A reload changed the log level. */
  readonly onLogLevel: (level: Config['log']['level']) => void;
}

export class Lifecycle {
  /** The routed upstreams; replaced in place by a reload. */
  readonly upstreams: Upstream[] = [];
  #config: Config;
  #state: RunState = 'running';
  /** Upstreams replaced or removed by a reload, draining; closed when their last request ends. */
  readonly #retiring = new Set<Upstream>();
  readonly #activeByUpstream = new Map<Upstream, number>();
  readonly #active = new Set<Exchange>();
  readonly #idleWaiters: (() => void)[] = [];
  readonly #options: LifecycleOptions;

  constructor(options: LifecycleOptions) {
    this.#options = options;
    this.#config = options.config;
    for (const upstreamConfig of options.config.upstreams) this.upstreams.push(options.newUpstream(upstreamConfig));
    options.router.set(this.upstreams);
  }

  /** The configuration in force (after reloads). */
  get config(): Config {
    return this.#config;
  }

  get state(): RunState {
    return this.#state;
  }

  /** What the exchanges report: the requests in progress, per upstream. */
  readonly observer: ExchangeObserver = {
    onStart: (exchange) => {
      this.#active.add(exchange);
      this.#activeByUpstream.set(exchange.upstream, (this.#activeByUpstream.get(exchange.upstream) ?? 0) + 1);
    },
    onFinish: (exchange) => {
      this.#active.delete(exchange);
      const left = (this.#activeByUpstream.get(exchange.upstream) ?? 1) - 1;
      if (left > 0) this.#activeByUpstream.set(exchange.upstream, left);
      else this.#activeByUpstream.delete(exchange.upstream);
      this.#closeIfDrained(exchange.upstream);
      this.#options.onRequestEnd(exchange);
      if (this.#active.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    },
  };

  /**
   * Swaps to a new, validated configuration atomically. An upstream whose limits keep their shape
   * is updated in place (queues, tokens and pauses kept; a changed rate applies from the next
   * grant; other settings from the next attempt); one whose limits changed shape is replaced and
   * the old one drains; removed upstreams drain.
   */
  reload(next: Config): ReloadReport {
    const current = this.#config;
    const needsRestart = (['listen', 'admin', 'store'] as const).filter((section) => JSON.stringify(next[section]) !== JSON.stringify(current[section]));
    const updated: string[] = [];
    const replaced: string[] = [];
    const added: string[] = [];
    const byName = new Map(this.upstreams.map((u) => [u.name, u]));
    const nextUpstreams: Upstream[] = [];
    for (const upstreamConfig of next.upstreams) {
      const existing = byName.get(upstreamConfig.name);
      byName.delete(upstreamConfig.name);
      if (existing?.apply(upstreamConfig)) {
        nextUpstreams.push(existing);
        updated.push(existing.name);
        continue;
      }
      if (existing) {
        this.#retire(existing);
        replaced.push(existing.name);
      } else added.push(upstreamConfig.name);
      nextUpstreams.push(this.#options.newUpstream(upstreamConfig));
    }
    for (const removed of byName.values()) this.#retire(removed);
    this.upstreams.splice(0, this.upstreams.length, ...nextUpstreams);
    this.#options.router.set(this.upstreams);
    this.#options.onLogLevel(next.log.level);
    // What needs a restart stays as it was, so the configuration in force says what runs.
    this.#config = { ...next, listen: current.listen, admin: current.admin, store: current.store };
    return { updated, replaced, added, removed: [...byName.keys()], needsRestart };
  }

  /**
   * Rate-aware drain: new requests are refused at once, queued requests keep being granted at the
   * allowed rate until every request has ended or `graceMs` has passed; then `close`.
   */
  async shutdown(graceMs: number, closeListeners: () => Promise<void>): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'draining';
    for (const upstream of this.upstreams) upstream.scheduler.drain();
    let graceTimer: ReturnType<Timers['setAt']> | undefined;
    const graceOver = new Promise<void>((resolve) => (graceTimer = this.#options.timers.setAt(this.#options.clock.now() + graceMs, resolve)));
    await Promise.race([this.whenIdle(), graceOver]);
    if (graceTimer) this.#options.timers.clear(graceTimer);
    // Grace is over: close refuses what is still waiting; in-flight attempts finish on their own.
    await this.close(closeListeners);
  }

  /**
   * Stops at once: queued requests and those waiting out a backoff get 503, then the listeners
   * close (`closeListeners`, which resolves once no request is in progress; the upstreams' pools
   * close with the client listener).
   */
  async close(closeListeners: () => Promise<void>): Promise<void> {
    this.#state = 'closed';
    for (const upstream of [...this.upstreams, ...this.#retiring]) upstream.scheduler.close();
    for (const exchange of this.#active) exchange.shutdown();
    await closeListeners();
  }

  /** Closes every upstream, routed or draining (their schedulers and connection pools). */
  async closeUpstreams(): Promise<void> {
    await Promise.all([...this.upstreams, ...this.#retiring].map((u) => u.close()));
  }

  /** Resolves once no client request is in progress. */
  whenIdle(): Promise<void> {
    return this.#active.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #retire(upstream: Upstream): void {
    upstream.scheduler.drain();
    this.#retiring.add(upstream);
    this.#closeIfDrained(upstream);
  }

  #closeIfDrained(upstream: Upstream): void {
    if (!this.#retiring.has(upstream) || (this.#activeByUpstream.get(upstream) ?? 0) > 0) return;
    this.#retiring.delete(upstream);
    void upstream.close();
  }
}
