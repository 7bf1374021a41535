import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { Client } from 'undici';
import type { Config } from './config/schema.js';
import { SECRET_HEADERS, pathWithoutQuery } from './core/http-rules.js';
import { keyDigest } from './core/key-digest.js';
import { adminPlugin } from './http/admin-plugin.js';
import { proxyPlugin, sha256Base64url } from './http/proxy-plugin.js';
import { sendProblem } from './http/problems.js';
import { Router } from './http/router.js';
import { createMetrics } from './metrics/metrics.js';
import type { Clock, Timers } from './core/time.js';
import { systemClock, systemTimers } from './system-time.js';
import type { Exchange, ExchangeObserver } from './upstream/exchange.js';
import { Upstream } from './upstream/upstream.js';
import type { BucketStore } from './store/bucket-store.js';
import { createStore, storeReady } from './store/create-store.js';

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
   * being released at the allowed rate until `graceMs`, what is still queued then gets 503 with
   * Retry-After, in-flight requests finish; then the listeners close.
   */
  shutdown(graceMs?: number): Promise<void>;
  /** Closes at once: queued requests get 503, listeners and connection pools close. */
  close(): Promise<void>;
  /**
   * Swaps to a new, validated configuration atomically. An upstream whose limits keep their shape
   * is updated in place (queues, tokens and pauses kept; a changed rate applies from the next
   * release; other settings from the next attempt); one whose limits changed shape is replaced and
   * the old one drains; removed upstreams drain.
   */
  reload(config: Config): ReloadReport;
}

/** The redacted header paths of every log line (README, Operations). */
export function redactPaths(config: Config): string[] {
  const names = new Set(SECRET_HEADERS);
  for (const upstream of config.upstreams) for (const name of Object.keys(upstream.setHeaders)) names.add(name.toLowerCase());
  return [...names].flatMap((name) => [`headers["${name}"]`, `req.headers["${name}"]`, `res.headers["${name}"]`]);
}

/** Builds sluice from a validated configuration. Nothing listens until `listen()`. */
export async function buildApp(config: Config, deps: AppDeps = {}): Promise<SluiceApp> {
  const clock = deps.clock ?? systemClock;
  const timers = deps.timers ?? systemTimers(clock);
  const logger = deps.logger ?? pino({ level: config.log.level, redact: { paths: redactPaths(config), censor: '[redacted]' } });
  const registry = new Registry();
  let current = config;
  /** The routed upstreams; replaced in place by a reload. */
  const upstreams: Upstream[] = [];
  /** Upstreams replaced or removed by a reload, draining; closed when their last request ends. */
  const retiring = new Set<Upstream>();
  const activeByUpstream = new Map<Upstream, number>();
  const metrics = createMetrics(registry, () => upstreams.map((u) => ({ name: u.name, snapshot: () => u.scheduler.snapshot() })));
  const store = deps.store ?? (await createStore(config.store, { clock, timers, metrics: metrics.store, logger }));
  const newUpstream = (upstreamConfig: Config['upstreams'][number]): Upstream =>
    new Upstream(upstreamConfig, {
      clock,
      timers,
      epochNow: deps.epochNow ?? Date.now,
      random: deps.random ?? Math.random,
      metrics: metrics.forUpstream(upstreamConfig.name),
      store,
      logger: logger.child({ upstream: upstreamConfig.name }),
    });
  for (const upstreamConfig of config.upstreams) upstreams.push(newUpstream(upstreamConfig));
  const router = new Router(upstreams);
  const closeIfDrained = (upstream: Upstream): void => {
    if (!retiring.has(upstream) || (activeByUpstream.get(upstream) ?? 0) > 0) return;
    retiring.delete(upstream);
    void upstream.close();
  };
  const retire = (upstream: Upstream): void => {
    upstream.scheduler.drain();
    retiring.add(upstream);
    closeIfDrained(upstream);
  };
  let state: 'running' | 'draining' | 'closed' = 'running';
  const active = new Set<Exchange>();
  const idleWaiters: (() => void)[] = [];
  /** Resolves once no client request is in progress. */
  const whenIdle = (): Promise<void> => (active.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve)));

  const requestLogger = logger.child({}, { msgPrefix: '' });
  const observer: ExchangeObserver = {
    onStart(exchange) {
      active.add(exchange);
      activeByUpstream.set(exchange.upstream, (activeByUpstream.get(exchange.upstream) ?? 0) + 1);
    },
    onFinish(exchange) {
      active.delete(exchange);
      const left = (activeByUpstream.get(exchange.upstream) ?? 1) - 1;
      if (left > 0) activeByUpstream.set(exchange.upstream, left);
      else activeByUpstream.delete(exchange.upstream);
      closeIfDrained(exchange.upstream);
      if (requestLogger.isLevelEnabled('info')) {
        requestLogger.info(
          {
            upstream: exchange.upstream.name,
            method: exchange.method,
            path: pathWithoutQuery(exchange.req.url ?? '/'),
            status: exchange.status,
            outcome: exchange.outcome,
            attempts: exchange.attempts,
            queueMs: Math.round(exchange.queueMs),
            upstreamMs: exchange.upstreamMs === undefined ? undefined : Math.round(exchange.upstreamMs),
          },
          'request',
        );
      }
      if (active.size === 0) for (const resolve of idleWaiters.splice(0)) resolve();
    },
  };

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
  // Fastify's own errors (a malformed request it refused before routing) as problem+json.
  proxy.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    const status = error.statusCode ?? 500;
    reply.hijack();
    if (status === 413) return sendProblem(reply.raw, 'SLUICE_BODY_TOO_LARGE', 'the request body is larger than listen.bodyLimit', { close: true });
    if (status >= 400 && status < 500) return sendProblem(reply.raw, 'SLUICE_BAD_REQUEST', error.message, { close: true });
    logger.error({ err: error }, 'unexpected error in the proxy listener');
    sendProblem(reply.raw, 'SLUICE_INTERNAL', 'unexpected error', { close: true });
  });
  proxy.setNotFoundHandler((request, reply) => {
    reply.hijack();
    sendProblem(reply.raw, 'SLUICE_NO_ROUTE', `no route for ${request.method} ${pathWithoutQuery(request.url)}`);
  });
  proxyPlugin(proxy, {
    router,
    observer,
    bodyLimitBytes: config.listen.bodyLimit,
    accepting: () => state === 'running',
  });

  const admin: FastifyInstance = Fastify({ loggerInstance: fastifyLogger, logController: new LogController({ disableRequestLogging: true }) });
  adminPlugin(admin, {
    registry,
    ready: () => {
      if (state !== 'running') return { ready: false, reason: state === 'draining' ? 'draining' : 'closed' };
      // A Redis store with onError: deny refuses every request while Redis fails.
      return storeReady(config.store, store) ? { ready: true } : { ready: false, reason: 'store unavailable' };
    },
    state: () => ({
      state,
      upstreams: upstreams.map((u) => {
        const snapshot = u.scheduler.snapshot();
        return {
          name: u.name,
          prefix: u.config.prefix,
          target: u.config.target,
          queued: snapshot.queued,
          inFlight: snapshot.inFlight,
          keys: snapshot.keys,
          limits: snapshot.rules.map((rule) => ({ ...rule, gate: rule.keyed ? undefined : u.scheduler.gateSnapshot(rule.index) })),
          busiestKeys: u.scheduler.busiestLanes(20).map((lane) => ({
            keys: current.admin.redactKeys ? lane.keys.map(hashKey) : lane.keys,
            queued: lane.queued,
            // Each keyed rule's bucket, slots and pause for this key.
            limits: snapshot.rules.flatMap((rule) => {
              const gate = rule.keyed ? u.scheduler.gateSnapshot(rule.index, lane.keys[rule.index] ?? '') : undefined;
              return gate ? [{ rule: rule.index, tokens: gate.tokens, inFlight: gate.inFlight, pausedForMs: gate.pausedForMs }] : [];
            }),
          })),
        };
      }),
    }),
  });

  await Promise.all([proxy.ready(), admin.ready()]);

  const closeAll = async (): Promise<void> => {
    state = 'closed';
    for (const upstream of [...upstreams, ...retiring]) upstream.scheduler.close();
    for (const exchange of active) exchange.shutdown();
    const closing = Promise.all([proxy.close(), admin.close()]);
    // Connections opened but never used would hold close() until the client or headersTimeout
    // closes them; once nothing is in flight, every connection left is one of those or idle.
    await whenIdle();
    proxy.server.closeAllConnections();
    await closing;
    await Promise.all([...upstreams, ...retiring].map((u) => u.close()));
    await store.close();
  };

  return {
    get config() {
      return current;
    },
    proxy,
    admin,
    upstreams,
    registry,
    logger,
    async listen() {
      await proxy.listen({ host: config.listen.host, port: config.listen.port });
      await admin.listen({ host: config.admin.host, port: config.admin.port });
      const addresses = { proxy: proxy.server.address() as AddressInfo, admin: admin.server.address() as AddressInfo };
      await warmUpHttpClient(addresses.admin);
      return addresses;
    },
    async shutdown(graceMs = current.shutdown.grace) {
      if (state !== 'running') return;
      state = 'draining';
      for (const upstream of upstreams) upstream.scheduler.drain();
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([whenIdle(), new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, graceMs)))]);
      clearTimeout(graceTimer);
      // Grace is over: closeAll refuses what is still waiting; in-flight attempts finish on their own.
      await closeAll();
    },
    close: closeAll,
    reload(next) {
      const needsRestart = (['listen', 'admin', 'store'] as const).filter((section) => JSON.stringify(next[section]) !== JSON.stringify(current[section]));
      const updated: string[] = [];
      const replaced: string[] = [];
      const added: string[] = [];
      const byName = new Map(upstreams.map((u) => [u.name, u]));
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
          retire(existing);
          replaced.push(existing.name);
        } else added.push(upstreamConfig.name);
        nextUpstreams.push(newUpstream(upstreamConfig));
      }
      for (const removed of byName.values()) retire(removed);
      upstreams.splice(0, upstreams.length, ...nextUpstreams);
      router.set(upstreams);
      logger.level = next.log.level;
      // What needs a restart stays as it was, so the configuration in force says what runs.
      current = { ...next, listen: current.listen, admin: current.admin, store: current.store };
      return { updated, replaced, added, removed: [...byName.keys()], needsRestart };
    },
  };
}

/** A key as /state shows it with `admin.redactKeys`: stable, not reversible. */
function hashKey(key: string): string {
  return key === '' ? '' : keyDigest(key, sha256Base64url);
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
