/**
 * The client listener's one route, as a fastify plugin: every method, every path. A request passes
 * the guards (guards.ts), is matched to its upstream by prefix (router.ts), gets its keys
 * (request-keys.ts), its options from its headers (Sluice-Max-Wait, the priority) and its body
 * (request-body.ts), and is handed to an Exchange with a NodeReply. Fastify's body parsing is
 * switched off: sluice reads (or streams) the raw body itself. Fastify's own refusals and unknown
 * routes are answered as problem+json too. The upstreams' connection pools close with the
 * listener (`onClose`), once the requests through it have ended.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { fastifyPlugin } from 'fastify-plugin';
import type { Priority } from '../core/aging-queue.js';
import { SHUTDOWN_RETRY_AFTER_MS, pathWithoutQuery } from '../core/http-rules.js';
import { parseDurationMs } from '../core/units.js';
import { Exchange, type ExchangeObserver } from '../forward/exchange.js';
import type { UpstreamSettings } from '../upstream/upstream.js';
import { sendProblem } from './answers.js';
import { hasBody, refusalBeforeRouting, unsafeRestReason } from './guards.js';
import { NodeReply } from './node-reply.js';
import { prepareBody, type BodyResult } from './request-body.js';
import { keysOf } from './request-keys.js';
import type { Router } from './router.js';

export interface ProxyPluginOptions {
  readonly router: Router;
  readonly observer: ExchangeObserver;
  /** Largest request body accepted (`listen.bodyLimit`). */
  readonly bodyLimitBytes: number;
  /** False once draining: new requests get 503 SLUICE_SHUTTING_DOWN. */
  readonly accepting: () => boolean;
  /** The upstreams behind the route: closed (their connection pools) when the listener closes. */
  readonly upstreams: { close(): Promise<void> };
  /** Where an error fastify did not expect is logged. */
  readonly logError: (err: Error) => void;
}

/** Values of the priority header; anything else is normal. */
const PRIORITIES: Readonly<Record<string, Priority>> = { high: 0, normal: 1, low: 2 };

export const proxyPlugin = fastifyPlugin<ProxyPluginOptions>(
  (app, options, done) => {
    checkTimeoutsPromptly(app.server);
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request: FastifyRequest, _payload: IncomingMessage, parsed: (err: null) => void) => parsed(null));
    // Fastify's own errors (a malformed request it refused before routing) as problem+json.
    app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
      const status = error.statusCode ?? 500;
      reply.hijack();
      if (status === 413) return sendProblem(reply.raw, 'SLUICE_BODY_TOO_LARGE', 'the request body is larger than listen.bodyLimit', { close: true });
      if (status >= 400 && status < 500) return sendProblem(reply.raw, 'SLUICE_BAD_REQUEST', error.message, { close: true });
      options.logError(error);
      sendProblem(reply.raw, 'SLUICE_INTERNAL', 'unexpected error', { close: true });
    });
    app.setNotFoundHandler((request, reply) => {
      reply.hijack();
      sendProblem(reply.raw, 'SLUICE_NO_ROUTE', `no route for ${request.method} ${pathWithoutQuery(request.url)}`);
    });
    const handler = (request: FastifyRequest, reply: FastifyReply): void => {
      reply.hijack();
      forward(request.raw, reply.raw, options);
    };
    // Every method fastify routes (CONNECT never reaches a route: sluice is not a forward proxy).
    app.all('/*', handler);
    app.all('/', handler);
    app.addHook('onClose', () => options.upstreams.close());
    done();
  },
  { name: 'sluice-proxy', fastify: '5.x' },
);

function forward(req: IncomingMessage, res: FastifyReply['raw'], options: ProxyPluginOptions): void {
  const url = req.url ?? '/';
  const refused = refusalBeforeRouting(req, url);
  if (refused) return sendProblem(res, refused.code, refused.detail, { close: true });
  const upstream = options.router.match(url);
  if (!upstream) return sendProblem(res, 'SLUICE_NO_ROUTE', `no upstream is mounted at ${pathWithoutQuery(url)}`, { close: hasBody(req) });
  const settings = upstream.settings;
  const rest = url.slice(settings.prefix.length);
  const unsafe = unsafeRestReason(rest);
  if (unsafe !== undefined) return sendProblem(res, 'SLUICE_BAD_REQUEST', unsafe, { close: hasBody(req) });
  const clientMaxWaitMs = maxWaitOf(req, settings);
  if (clientMaxWaitMs === null) {
    const detail = `${settings.config.queue.maxWaitHeader as string} must be a duration such as 2s or 500ms`;
    return sendProblem(res, 'SLUICE_BAD_REQUEST', detail, { close: hasBody(req) });
  }
  const body = prepareBody(req, { limitBytes: options.bodyLimitBytes, bufferBytes: settings.config.retry.maxBodySize });
  const exchange = new Exchange({
    upstream,
    request: {
      method: req.method ?? 'GET',
      url,
      rawHeaders: req.rawHeaders,
      connection: req.headers.connection,
      idempotencyKey: req.headers['idempotency-key'] !== undefined,
    },
    reply: new NodeReply(req, res),
    rest,
    keys: keysOf(settings.keyTemplates, req, rest),
    dropContentLength: body instanceof Promise || body.kind !== 'stream',
    clientMaxWaitMs,
    priority: priorityOf(req, settings),
    observer: options.observer,
  });
  if (!options.accepting()) {
    return exchange.refuse('SLUICE_SHUTTING_DOWN', 'sluice is shutting down', 'rejected', { retryAfterMs: SHUTDOWN_RETRY_AFTER_MS, close: hasBody(req) });
  }
  if (body instanceof Promise) void body.then((result) => begin(exchange, result));
  else begin(exchange, body);
}

function begin(exchange: Exchange, body: BodyResult): void {
  switch (body.kind) {
    case 'too-large':
      return exchange.refuse('SLUICE_BODY_TOO_LARGE', 'the request body is larger than listen.bodyLimit', 'rejected', { close: true });
    case 'aborted':
      return; // the client went away while sending: the close handler already ended the exchange
    default:
      return exchange.start(body);
  }
}

/** The client's own limit on its queue wait (`queue.maxWaitHeader`): undefined if none, null if unreadable. */
function maxWaitOf(req: IncomingMessage, settings: UpstreamSettings): number | undefined | null {
  const { maxWaitHeader } = settings.config.queue;
  const value = maxWaitHeader === false ? undefined : req.headers[maxWaitHeader];
  if (value === undefined) return undefined;
  return parseDurationMs(Array.isArray(value) ? value[0] : value.trim()) ?? null;
}

/** The request's priority within its key, when priorities are on. */
function priorityOf(req: IncomingMessage, settings: UpstreamSettings): Priority | undefined {
  const header = settings.config.priority === undefined ? undefined : req.headers[settings.config.priority.header];
  return typeof header === 'string' ? PRIORITIES[header.trim().toLowerCase()] : undefined;
}

/**
 * Node checks `headersTimeout` and `requestTimeout` only every `connectionsCheckingInterval`, 30 s
 * by default, so a slowloris client could hold a connection up to 30 s longer than they say. Check
 * a few times per timeout instead (at most every second, at least every 100 ms). Takes effect when
 * the server starts listening.
 */
function checkTimeoutsPromptly(server: Server): void {
  const shortestMs = Math.min(server.headersTimeout || Number.POSITIVE_INFINITY, server.requestTimeout || Number.POSITIVE_INFINITY);
  const intervalMs = Math.max(100, Math.min(1000, Math.floor(shortestMs / 4)));
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = intervalMs;
}
