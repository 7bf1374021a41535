/**
 * A stand-in third-party API that enforces its limit strictly, for the demo, the tests and the load
 * suite. Plain node:http, no framework. The decisions (the limit shapes, Retry-After, the throttle
 * signal) are the pure models of ./standin-models.ts; this file is their HTTP server and its record.
 *
 * Limits (per value of `keyHeader` when given, else global); a request must pass all of them:
 * - `window`: a sliding window: at most `requests` accepted in any `windowMs` (the interval
 *   (t - windowMs, t]). Nothing is forgiven. With `fixed: true`, a fixed window instead: at most
 *   `requests` in each `windowMs`, the whole quota back at each window's end; its windows follow
 *   each other from the first request (`align: 'first-request'`, GitHub's quota, the default) or
 *   start at multiples of `windowMs` on the wall clock (`align: 'wall-clock'`).
 * - `bucket`: a token bucket with burst, as many APIs document their limits (EC2: 20/s refill).
 * - `maxInFlight`: requests being served at once; more are refused.
 *
 * A refusal is signalled as `throttle` (429 by default; 403, 420, EC2's 503 with an XML or JSON
 * body) with Retry-After in the form `retryAfter` (whole seconds rounded up by default).
 *
 * Requests carrying `clientHeader` (default `x-standin-client`) are counted under its value, the
 * others under "sluice": an outside client calling the API directly beside sluice shares the same
 * limits and is counted apart (load/lib/outside-client.ts).
 *
 * `GET /__stats` returns what it saw (accepted, rejected, max in flight, the most accepted in any
 * 1000 ms, per-second series, per client); `POST /__reset` clears it. Every other request is the
 * API: it answers 200 with a JSON body echoing the method, path, key and the SHA-256 of the body.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  SlidingWindowLimit,
  createLimit,
  retryAfterValue,
  throttleAnswer,
  type LimitModel,
  type RetryAfterForm,
  type ThrottleSignal,
  type WindowAlign,
} from './standin-models.js';

export interface StandinOptions {
  readonly window?: { readonly requests: number; readonly windowMs: number; readonly fixed?: boolean; readonly align?: WindowAlign };
  readonly bucket?: { readonly ratePerSec: number; readonly burst: number };
  readonly keyHeader?: string;
  readonly maxInFlight?: number;
  /** Fixed latency, or uniform in [min, max], before answering. */
  readonly latencyMs?: number | { readonly min: number; readonly max: number };
  /** Retry-After on a refusal; default `seconds`: the true wait in whole seconds, rounded up. */
  readonly retryAfter?: RetryAfterForm;
  /** A fixed Retry-After in seconds (the same as `retryAfter: { fixedSec }`). */
  readonly retryAfterSec?: number;
  /** How a refusal is signalled; default 429. */
  readonly throttle?: ThrottleSignal;
  /** The request header naming a client other than sluice; default `x-standin-client`. */
  readonly clientHeader?: string;
  /**
   * Quota headers on every answer (with `window`): GitHub-style `X-RateLimit-Limit/-Remaining/-Reset`
   * (epoch seconds), or the IETF draft's `RateLimit: "default";r=..;t=..` with `RateLimit-Policy:
   * "default";q=..;w=..`. `remaining` is what the window accepts now; the reset is when more quota
   * comes (draft 10's `t`): for a sliding window, when its oldest request leaves it (one more); for a
   * fixed window, its end (all of it). Whole seconds rounded up, as the draft's integers and GitHub's
   * epoch seconds are (never earlier than the truth).
   */
  readonly quotaHeaders?: 'x-ratelimit' | 'ietf';
  readonly host?: string;
  readonly port?: number;
}

export interface ClientCounts {
  readonly accepted: number;
  readonly rejected: number;
}

export interface StandinStats {
  readonly accepted: number;
  readonly rejected: number;
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** The most requests accepted in any 1000 ms interval (sliding). */
  readonly maxAcceptedInAnySecond: number;
  /** Milliseconds from the first to the last accepted request. */
  readonly acceptedSpanMs: number;
  /** Accepted and rejected per second since the first request. */
  readonly perSecond: readonly ClientCounts[];
  readonly byKey: Readonly<Record<string, ClientCounts>>;
  /** Per client ("sluice" for requests without the client header). */
  readonly byClient: Readonly<Record<string, ClientCounts>>;
  /** Per client, accepted and rejected per second since the first request (same seconds as `perSecond`). */
  readonly perSecondByClient: Readonly<Record<string, readonly ClientCounts[]>>;
  /**
   * The tightest span, in ms, of (limit + 1) consecutive accepted requests: how close the traffic
   * came to the window. Over the window length means even one more would have fitted nowhere.
   */
  readonly tightestSpanMs: number | undefined;
  /** Accepted arrival instants, ms from the first request (at most the first 100,000). */
  readonly arrivalsMs?: readonly number[];
  /** Rejected arrival instants, ms from the first request (at most the first 10,000). */
  readonly rejectionsMs?: readonly number[];
}

interface KeyState {
  /** Every limit of the API for this key. */
  readonly limits: readonly LimitModel[];
  /** The window the quota headers describe. */
  readonly window: LimitModel | undefined;
  accepted: number;
  rejected: number;
}

interface Counts {
  accepted: number;
  rejected: number;
}

/** Requests without the client header are sluice's (or whichever proxy is measured). */
export const DEFAULT_CLIENT = 'sluice';

/** The stand-in's clock: epoch milliseconds with sub-millisecond steps, monotonic within the process. */
const epochNowMs = (): number => performance.timeOrigin + performance.now();

export class Standin {
  readonly options: StandinOptions;
  readonly server: http.Server;
  #keys = new Map<string, KeyState>();
  #second = new SlidingWindowLimit(Number.POSITIVE_INFINITY, 1000);
  #startedAt: number | undefined;
  #firstAcceptedAt: number | undefined;
  #lastAcceptedAt: number | undefined;
  #accepted = 0;
  #rejected = 0;
  #inFlight = 0;
  #maxInFlight = 0;
  #maxInSecond = 0;
  #perSecond: Counts[] = [];
  #byClient = new Map<string, { total: Counts; perSecond: Counts[] }>();
  #arrivals: number[] = [];
  #rejections: number[] = [];

  constructor(options: StandinOptions = {}) {
    this.options = options;
    this.server = http.createServer((req, res) => this.#handle(req, res));
    this.server.keepAliveTimeout = 60_000;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://${this.options.host ?? '127.0.0.1'}:${port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.#keys.clear();
    this.#second = new SlidingWindowLimit(Number.POSITIVE_INFINITY, 1000);
    this.#startedAt = this.#firstAcceptedAt = this.#lastAcceptedAt = undefined;
    this.#accepted = this.#rejected = this.#maxInFlight = this.#maxInSecond = 0;
    this.#perSecond = [];
    this.#byClient.clear();
    this.#arrivals = [];
    this.#rejections = [];
  }

  stats(options: { arrivals?: boolean } = {}): StandinStats {
    const byKey: Record<string, ClientCounts> = {};
    for (const [key, state] of this.#keys) byKey[key] = { accepted: state.accepted, rejected: state.rejected };
    const byClient: Record<string, ClientCounts> = {};
    const perSecondByClient: Record<string, ClientCounts[]> = {};
    for (const [client, counts] of this.#byClient) {
      byClient[client] = { ...counts.total };
      perSecondByClient[client] = this.#perSecond.map((_, s) => ({ ...(counts.perSecond[s] ?? { accepted: 0, rejected: 0 }) }));
    }
    return {
      accepted: this.#accepted,
      rejected: this.#rejected,
      inFlight: this.#inFlight,
      maxInFlight: this.#maxInFlight,
      maxAcceptedInAnySecond: this.#maxInSecond,
      acceptedSpanMs: this.#firstAcceptedAt === undefined ? 0 : (this.#lastAcceptedAt as number) - this.#firstAcceptedAt,
      perSecond: this.#perSecond.map((s) => ({ ...s })),
      byKey,
      byClient,
      perSecondByClient,
      tightestSpanMs: this.#tightestSpan(),
      ...(options.arrivals
        ? { arrivalsMs: this.#arrivals.map((t) => t - (this.#startedAt ?? 0)), rejectionsMs: this.#rejections.map((t) => t - (this.#startedAt ?? 0)) }
        : {}),
    };
  }

  #tightestSpan(): number | undefined {
    const limit = this.options.window?.requests;
    if (limit === undefined || this.options.keyHeader !== undefined || this.#arrivals.length <= limit) return undefined;
    let tightest = Number.POSITIVE_INFINITY;
    for (let i = limit; i < this.#arrivals.length; i++) tightest = Math.min(tightest, (this.#arrivals[i] as number) - (this.#arrivals[i - limit] as number));
    return tightest;
  }

  #newKeyState(): KeyState {
    const { window, bucket } = this.options;
    const windowLimit =
      window === undefined
        ? undefined
        : createLimit(
            window.fixed
              ? { kind: 'fixed-window', requests: window.requests, windowMs: window.windowMs, align: window.align ?? 'first-request' }
              : { kind: 'sliding-window', requests: window.requests, windowMs: window.windowMs },
          );
    const limits: LimitModel[] = [];
    if (windowLimit) limits.push(windowLimit);
    if (bucket) limits.push(createLimit({ kind: 'token-bucket', ratePerSec: bucket.ratePerSec, burst: bucket.burst }));
    return { limits, window: windowLimit, accepted: 0, rejected: 0 };
  }

  #client(name: string): { total: Counts; perSecond: Counts[] } {
    let counts = this.#byClient.get(name);
    if (!counts) {
      counts = { total: { accepted: 0, rejected: 0 }, perSecond: [] };
      this.#byClient.set(name, counts);
    }
    return counts;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.url?.startsWith('/__stats')) return json(res, 200, this.stats({ arrivals: req.url.includes('arrivals=1') }));
    if (req.url === '/__reset' && req.method === 'POST') {
      this.reset();
      return json(res, 200, { reset: true });
    }
    const now = epochNowMs();
    this.#startedAt ??= now;
    const second = Math.floor((now - this.#startedAt) / 1000);
    while (this.#perSecond.length <= second) this.#perSecond.push({ accepted: 0, rejected: 0 });
    const clientHeader = req.headers[this.options.clientHeader ?? 'x-standin-client'];
    const client = this.#client(clientHeader === undefined || clientHeader === '' ? DEFAULT_CLIENT : String(clientHeader));
    while (client.perSecond.length <= second) client.perSecond.push({ accepted: 0, rejected: 0 });
    const key = this.options.keyHeader ? String(req.headers[this.options.keyHeader] ?? '') : '';
    let state = this.#keys.get(key);
    if (!state) {
      state = this.#newKeyState();
      this.#keys.set(key, state);
    }

    const waitMs = this.#admit(state, now);
    if (waitMs > 0) {
      this.#rejected++;
      state.rejected++;
      client.total.rejected++;
      (client.perSecond[second] as Counts).rejected++;
      if (this.#rejections.length < 10_000) this.#rejections.push(now);
      (this.#perSecond[second] as Counts).rejected++;
      req.resume();
      const form: RetryAfterForm = this.options.retryAfter ?? (this.options.retryAfterSec === undefined ? 'seconds' : { fixedSec: this.options.retryAfterSec });
      const answer = throttleAnswer(this.options.throttle ?? '429', retryAfterValue(form, waitMs, Date.now()));
      const headers = { ...answer.headers, ...this.#quotaHeaders(state, now, 0) };
      res.writeHead(answer.status, answer.statusText, { ...headers, 'content-length': Buffer.byteLength(answer.body) });
      res.end(answer.body);
      return;
    }

    this.#accepted++;
    state.accepted++;
    client.total.accepted++;
    (client.perSecond[second] as Counts).accepted++;
    (this.#perSecond[second] as Counts).accepted++;
    this.#firstAcceptedAt ??= now;
    this.#lastAcceptedAt = now;
    this.#second.take(now);
    if (this.#arrivals.length < 100_000) this.#arrivals.push(now);
    this.#maxInSecond = Math.max(this.#maxInSecond, this.#second.count(now));
    this.#inFlight++;
    this.#maxInFlight = Math.max(this.#maxInFlight, this.#inFlight);

    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('end', () => {
      const answer = (): void => {
        this.#inFlight--;
        const at = epochNowMs();
        const remaining = state.window?.remaining(at) ?? 0;
        json(
          res,
          200,
          { ok: true, method: req.method, path: req.url, key, bytes, sha256: hash.digest('hex') },
          { 'x-request-id': String(req.headers['x-request-id'] ?? ''), ...this.#quotaHeaders(state, at, remaining) },
        );
      };
      const delay = this.#latency();
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  }

  /** 0 to accept (counted by every limit), or the milliseconds until the request would have been accepted. */
  #admit(state: KeyState, now: number): number {
    if (this.options.maxInFlight !== undefined && this.#inFlight >= this.options.maxInFlight) return 1000;
    let waitMs = 0;
    for (const limit of state.limits) waitMs = Math.max(waitMs, limit.waitMs(now));
    if (waitMs > 0) return waitMs;
    for (const limit of state.limits) limit.take(now);
    return 0;
  }

  #quotaHeaders(state: KeyState, now: number, remaining: number): Record<string, string> {
    const { window, quotaHeaders } = this.options;
    if (!quotaHeaders || !window || !state.window) return {};
    const resetMs = state.window.resetInMs(now);
    if (quotaHeaders === 'x-ratelimit') {
      return {
        'x-ratelimit-limit': String(window.requests),
        'x-ratelimit-remaining': String(remaining),
        'x-ratelimit-reset': String(Math.ceil((Date.now() + resetMs) / 1000)),
      };
    }
    return {
      'ratelimit-policy': `"default";q=${window.requests};w=${Math.ceil(window.windowMs / 1000)}`,
      ratelimit: `"default";r=${remaining};t=${Math.max(0, Math.ceil(resetMs / 1000))}`,
    };
  }

  #latency(): number {
    const latency = this.options.latencyMs;
    if (latency === undefined) return 0;
    if (typeof latency === 'number') return latency;
    return latency.min + Math.random() * (latency.max - latency.min);
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
