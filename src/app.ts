/**
 * The composition root: buildApp(config, deps) puts sluice together from a validated configuration
 * (the real clock, timers and randomness by default; tests pass their own) and returns it unstarted.
 * Two fastify instances, the client listener and the admin listener, over shared state: the store,
 * the metrics registry, the upstreams (src/lifecycle.ts keeps them over reloads and stops).
 */
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { Client } from 'undici';
import type { Config } from './config/schema.js';
import type { Clock, Timers } from './core/time.js';
import { adminPlugin } from './http/admin-plugin.js';
import { proxyPlugin } from './http/proxy-plugin.js';
import { logRequest, redactPaths } from './http/request-log.js';
import { Router } from './http/router.js';
import { stateView } from './http/state-view.js';
import { Lifecycle, type ReloadReport } from './lifecycle.js';
import { createMetrics } from './metrics/metrics.js';
import type { BucketStore } from './store/bucket-store.js';
import { createStore, storeReady } from './store/create-store.js';
import { systemClock, systemTimers } from './system-time.js';
import { Upstream } from './upstream/upstream.js';

/** Ports and collaborators; every one has a production default. Tests pass their own. */
export interface AppDeps {
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly epochNow?: () => number;
  readonly random?: () => number;
  readonly logger?: Logger;
  /** Where token buckets live; default: the configured store (`store:`, memory unless redis). */
  readonly store?: BucketStore;
}

export interface ListenAddresses {
  readonly proxy: AddressInfo;
  readonly admin: AddressInfo;
}

/** A built sluice: two fastify instances (client and admin listeners) over shared state. */
export interface SluiceApp {
  /** The configuration in force (after reloads). */
  readonly config: Config;
  readonly proxy: FastifyInstance;
  readonly admin: FastifyInstance;
  readonly upstreams: readonly Upstream[];
  readonly registry: Registry;
  readonly logger: Logger;
  /** Binds both listeners (ports from the configuration; 0 picks free ones). */
  listen(): Promise<ListenAddresses>;
  /**
   * Rate-aware drain: /readyz turns 503 and new requests get 503 at once, queued requests keep
   * being granted at the allowed rate until `graceMs`, what is still queued then gets 503 with
   * Retry-After, in-flight requests finish; then the listeners close.
   */
  shutdown(graceMs?: number): Promise<void>;
  /** Closes at once: queued requests get 503, listeners and connection pools close. */
  close(): Promise<void>;
  /** Swaps to a new, validated configuration atomically (see Lifecycle#reload). */
  reload(config: Config): ReloadReport;
}

/** Builds sluice from a validated configuration. Nothing listens until `listen()`. */
export async function buildApp(config: Config, deps: AppDeps = {}): Promise<SluiceApp> {
  const clock = deps.clock ?? systemClock;
  const timers = deps.timers ?? systemTimers(clock);
  const logger = deps.logger ?? pino({ level: config.log.level, redact: { paths: redactPaths(config), censor: '[redacted]' } });
  const registry = new Registry();
  // The metrics read the upstreams only when scraped, after the lifecycle below exists.
  const metrics = createMetrics(registry, () => lifecycle.upstreams.map((u) => ({ name: u.name, snapshot: () => u.scheduler.snapshot() })));
  const store = deps.store ?? (await createStore(config.store, { clock, timers, metrics: metrics.store, logger }));
  const requestLogger = logger.child({}, { msgPrefix: '' });
  const router = new Router([]);
  const lifecycle = new Lifecycle({
    config,
    router,
    clock,
    timers,
    newUpstream: (upstreamConfig) =>
      new Upstream(upstreamConfig, {
        clock,
        timers,
        epochNow: deps.epochNow ?? Date.now,
        random: deps.random ?? Math.random,
        metrics: metrics.forUpstream(upstreamConfig.name),
        store,
        logger: logger.child({ upstream: upstreamConfig.name }),
      }),
    onRequestEnd: (exchange) => logRequest(requestLogger, exchange),
    onLogLevel: (level) => (logger.level = level),
  });

  // Fastify's instance type follows its logger's; both listeners share sluice's pino logger.
  const fastifyLogger: FastifyBaseLogger = logger;
  const proxy: FastifyInstance = Fastify({
    loggerInstance: fastifyLogger,
    // sluice logs one line per request itself (with upstream, attempts and queue time).
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.listen.requestTimeout,
    keepAliveTimeout: config.listen.keepAliveTimeout,
    http: { maxHeaderSize: config.listen.maxHeaderSize, headersTimeout: config.listen.headersTimeout },
    return503OnClosing: false,
  });
  await proxy.register(proxyPlugin, {
    router,
    observer: lifecycle.observer,
    bodyLimitBytes: config.listen.bodyLimit,
    accepting: () => lifecycle.state === 'running',
    upstreams: { close: () => lifecycle.closeUpstreams() },
    logError: (err) => logger.error({ err }, 'unexpected error in the proxy listener'),
  });

  const admin: FastifyInstance = Fastify({ loggerInstance: fastifyLogger, logController: new LogController({ disableRequestLogging: true }) });
  await admin.register(adminPlugin, {
    registry,
    ready: () => {
      if (lifecycle.state !== 'running') return { ready: false, reason: lifecycle.state === 'draining' ? 'draining' : 'closed' };
      // A Redis store with onError: deny refuses every request while Redis fails.
      return storeReady(config.store, store) ? { ready: true } : { ready: false, reason: 'store unavailable' };
    },
    state: () => stateView({ state: lifecycle.state, upstreams: lifecycle.upstreams, redactKeys: lifecycle.config.admin.redactKeys }),
  });

  await Promise.all([proxy.ready(), admin.ready()]);

  /** The listeners close; the pools close with the client listener (its onClose), then the store. */
  const closeListeners = async (): Promise<void> => {
    const closing = Promise.all([proxy.close(), admin.close()]);
    // Connections opened but never used would hold close() until the client or headersTimeout
    // closes them; once nothing is in flight, every connection left is one of those or idle.
    await lifecycle.whenIdle();
    proxy.server.closeAllConnections();
    await closing;
    await store.close();
  };

  return {
    get config() {
      return lifecycle.config;
    },
    proxy,
    admin,
    upstreams: lifecycle.upstreams,
    registry,
    logger,
    async listen() {
      await proxy.listen({ host: config.listen.host, port: config.listen.port });
      await admin.listen({ host: config.admin.host, port: config.admin.port });
      const addresses = { proxy: proxy.server.address() as AddressInfo, admin: admin.server.address() as AddressInfo };
      await warmUpHttpClient(addresses.admin);
      return addresses;
    },
    shutdown: (graceMs = lifecycle.config.shutdown.grace) => lifecycle.shutdown(graceMs, closeListeners),
    close: () => lifecycle.close(closeListeners),
    reload: (next) => lifecycle.reload(next),
  };
}

/**
 * undici compiles its HTTP parser (WebAssembly) on its first connection, which made the first
 * upstream request ~20 ms late and bunched it with the next against a strict window. One request to
 * sluice's own /healthz at start-up pays that cost before any traffic.
 */
async function warmUpHttpClient(admin: AddressInfo): Promise<void> {
  const host = admin.address === '0.0.0.0' || admin.address === '::' ? '127.0.0.1' : admin.address;
  const client = new Client(`http://${admin.family === 'IPv6' && host.includes(':') ? `[${host}]` : host}:${admin.port}`);
  try {
    const response = await client.request({ method: 'GET', path: '/healthz' });
    await response.body.dump();
  } catch {
    // Warming up is an optimisation only.
  } finally {
    await client.close().catch(() => undefined);
  }
}
