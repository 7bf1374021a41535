import { createHash } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { boundedKey } from '../core/key-digest.js';
import type { KeySource } from '../core/key-template.js';
import { SHUTDOWN_RETRY_AFTER_MS, pathWithoutQuery } from '../core/http-rules.js';
import { unsafePathReason } from '../core/safe-path.js';
import { parseDurationMs } from '../core/units.js';
import { Exchange, type ExchangeObserver } from '../upstream/exchange.js';
import type { Priority } from '../core/aging-queue.js';
import type { UpstreamSettings } from '../upstream/upstream.js';
import { sendProblem } from './problems.js';
import { prepareBody, type BodyResult } from './request-body.js';
import type { Router } from './router.js';

export interface ProxyPluginOptions {
  readonly router: Router;
  readonly observer: ExchangeObserver;
  /** Largest request body accepted (`listen.bodyLimit`). */
  readonly bodyLimitBytes: number;
  /** False once draining: new requests get 503 SLUICE_SHUTTING_DOWN. */
  readonly accepting: () => boolean;
}

/** Values of the priority header; anything else is normal. */
const PRIORITIES: Readonly<Record<string, Priority>> = { high: 0, normal: 1, low: 2 };

/** Keys longer than this are replaced by their digest, so a huge header cannot make a huge key. */
const MAX_KEY_LENGTH = 256;

/**
 * The client listener's one route: every method, every path. It matches the upstream by prefix,
 * computes the request's keys, prepares its body and hands it to an Exchange. Fastify's body
 * parsing is switched off: sluice reads (or streams) the raw body itself.
 */
export function proxyPlugin(app: FastifyInstance, options: ProxyPluginOptions): void {
  checkTimeoutsPromptly(app.server);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request: FastifyRequest, _payload: IncomingMessage, done: (err: null) => void) => done(null));

  const handler = (request: FastifyRequest, reply: FastifyReply): void => {
    reply.hijack();
    const req = request.raw;
    const res = reply.raw;
    const url = req.url ?? '/';
    if (!chunkedOnly(req)) {
      // Node's parser leaves only `X, chunked` here: sluice would forward the still-coded bytes as
      // the content (RFC 9112 §6.1: a coding the server does not understand gets 501).
      return sendProblem(res, 'SLUICE_NOT_IMPLEMENTED', 'the only transfer coding sluice accepts is chunked', { close: true });
    }
    // Checked before routing, so that `GET http://host/ HTTP/1.1` is refused as what it is.
    const notAPath = url.startsWith('/') ? undefined : unsafePathReason(url);
    if (notAPath !== undefined) return sendProblem(res, 'SLUICE_BAD_REQUEST', notAPath, { close: true });
    if (hostLines(req.rawHeaders) > 1) {
      // RFC 9112 §3.2: more than one Host is a 400, so no front proxy can route by another one.
      return sendProblem(res, 'SLUICE_BAD_REQUEST', 'more than one Host header', { close: true });
    }
    const upstream = options.router.match(url);
    if (!upstream) {
      return sendProblem(res, 'SLUICE_NO_ROUTE', `no upstream is mounted at ${pathWithoutQuery(url)}`, { close: hasBody(req) });
    }
    const settings = upstream.settings;
    // `/api` and `/api?x=1` under prefix `/api` mean the upstream's root: check it as `/` + rest.
    const rest = url.slice(settings.prefix.length);
    const unsafe = unsafePathReason(rest === '' || rest.startsWith('?') ? `/${rest}` : rest);
    if (unsafe !== undefined) {
      return sendProblem(res, 'SLUICE_BAD_REQUEST', unsafe, { close: hasBody(req) });
    }
    const { queue, retry } = settings.config;
    let clientMaxWaitMs: number | undefined;
    const maxWaitHeader = queue.maxWaitHeader === false ? undefined : req.headers[queue.maxWaitHeader];
    if (maxWaitHeader !== undefined) {
      clientMaxWaitMs = parseDurationMs(Array.isArray(maxWaitHeader) ? maxWaitHeader[0] : maxWaitHeader.trim());
      if (clientMaxWaitMs === undefined) {
        return sendProblem(res, 'SLUICE_BAD_REQUEST', `${queue.maxWaitHeader as string} must be a duration such as 2s or 500ms`, { close: hasBody(req) });
      }
    }
    const priorityHeader = settings.config.priority === undefined ? undefined : req.headers[settings.config.priority.header];
    const priority = typeof priorityHeader === 'string' ? PRIORITIES[priorityHeader.trim().toLowerCase()] : undefined;
    const body = prepareBody(req, { limitBytes: options.bodyLimitBytes, bufferBytes: retry.maxBodySize });
    const exchange = new Exchange({
      upstream,
      req,
      res,
      rest,
      keys: keysOf(settings, req, rest),
      dropContentLength: body instanceof Promise || body.kind !== 'stream',
      clientMaxWaitMs,
      priority,
      observer: options.observer,
    });
    if (!options.accepting()) {
      return exchange.refuse('SLUICE_SHUTTING_DOWN', 'sluice is shutting down', 'rejected', SHUTDOWN_RETRY_AFTER_MS, hasBody(req));
    }
    if (body instanceof Promise) void body.then((result) => begin(exchange, result));
    else begin(exchange, body);
  };

  // Every method fastify routes (CONNECT never reaches a route: sluice is not a forward proxy).
  app.all('/*', handler);
  app.all('/', handler);
}

function begin(exchange: Exchange, body: BodyResult): void {
  switch (body.kind) {
    case 'too-large':
      return exchange.refuse('SLUICE_BODY_TOO_LARGE', 'the request body is larger than listen.bodyLimit', 'rejected', undefined, true);
    case 'aborted':
      return; // the client went away while sending: the close handler already ended the exchange
    default:
      return exchange.start(body);
  }
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

function hostLines(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).length === 4 && (rawHeaders[i] as string).toLowerCase() === 'host') count++;
  return count;
}

/** No Transfer-Encoding, or exactly `chunked`. */
function chunkedOnly(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  return te === undefined || te.trim().toLowerCase() === 'chunked';
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

function keysOf(settings: UpstreamSettings, req: IncomingMessage, rest: string): string[] {
  if (settings.keyTemplates.every((t) => t === undefined)) return [];
  const source = new RequestKeySource(req, rest);
  return settings.keyTemplates.map((template) => (template ? boundedKey(template.render(source), MAX_KEY_LENGTH, sha256Base64url) : ''));
}

/** Node's SHA-256 in base64url, for key digests (src/core/key-digest.ts). */
export function sha256Base64url(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** What key templates read, parsed only when a template asks for it. */
class RequestKeySource implements KeySource {
  readonly method: string;
  readonly #req: IncomingMessage;
  /** The URL after the upstream's prefix. */
  readonly #rest: string;
  #query: URLSearchParams | undefined;
  #segments: string[] | undefined;

  constructor(req: IncomingMessage, rest: string) {
    this.#req = req;
    this.#rest = rest;
    this.method = req.method ?? 'GET';
  }

  get clientIp(): string {
    return this.#req.socket.remoteAddress ?? '';
  }

  header(name: string): string | undefined {
    const value = this.#req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }

  query(name: string): string | undefined {
    if (!this.#query) {
      const at = this.#rest.indexOf('?');
      this.#query = new URLSearchParams(at === -1 ? '' : this.#rest.slice(at + 1));
    }
    return this.#query.get(name) ?? undefined;
  }

  pathSegment(n: number): string | undefined {
    if (!this.#segments) this.#segments = pathWithoutQuery(this.#rest).split('/').slice(1);
    return this.#segments[n - 1];
  }
}
