/**
 * A stand-in third-party API that enforces its limit strictly, for the demo, the tests and the load
 * suite. Plain node:http, no framework.
 *
 * Limits (per value of `keyHeader` when given, else global):
 * - `window`: a sliding window: at most `requests` accepted in any `windowMs` (the interval
 *   (t - windowMs, t]); anything more is answered 429 with Retry-After. Nothing is forgiven.
 *   With `fixed: true`, a fixed window instead (GitHub's quota): at most `requests` in each
 *   `windowMs` counted from the first request, the whole quota back at each window's end.
 * - `bucket`: a token bucket with burst, as many APIs document their limits.
 * - `maxInFlight`: requests being served at once; more get 429.
 *
 * `GET /__stats` returns what it saw (accepted, rejected, max in flight, the most accepted in any
 * 1000 ms, per-second series); `POST /__reset` clears it. Every other request is the API: it
 * answers 200 with a JSON body echoing the method, path, key and the SHA-256 of the request body.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandinOptions {
  readonly window?: { readonly requests: number; readonly windowMs: number; readonly fixed?: boolean };
  readonly bucket?: { readonly ratePerSec: number; readonly burst: number };
  readonly keyHeader?: string;
  readonly maxInFlight?: number;
  /** Fixed latency, or uniform in [min, max], before answering. */
  readonly latencyMs?: number | { readonly min: number; readonly max: number };
  /** Retry-After (seconds) on a 429; default: when the window next has room, rounded up. */
  readonly retryAfterSec?: number;
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
  readonly perSecond: readonly { readonly accepted: number; readonly rejected: number }[];
  readonly byKey: Readonly<Record<string, { accepted: number; rejected: number }>>;
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

/** Timestamps of accepted requests within a window, oldest first. */
class Window {
  #times: number[] = [];
  #head = 0;

  count(now: number, windowMs: number): number {
    while (this.#head < this.#times.length && (this.#times[this.#head] as number) <= now - windowMs) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
    return this.#times.length - this.#head;
  }

  oldest(): number | undefined {
    return this.#times[this.#head];
  }

  add(now: number): void {
    this.#times.push(now);
  }
}

interface KeyState {
  window: Window;
  /** Fixed windows: the start of the current one, and what it has accepted. */
  fixedStart: number | undefined;
  fixedCount: number;
  tokens: number;
  refilledAt: number;
  accepted: number;
  rejected: number;
}

export class Standin {
  readonly options: StandinOptions;
  readonly server: http.Server;
  #keys = new Map<string, KeyState>();
  #second = new Window();
  #startedAt: number | undefined;
  #firstAcceptedAt: number | undefined;
  #lastAcceptedAt: number | undefined;
  #accepted = 0;
  #rejected = 0;
  #inFlight = 0;
  #maxInFlight = 0;
  #maxInSecond = 0;
  #perSecond: { accepted: number; rejected: number }[] = [];
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
    this.#second = new Window();
    this.#startedAt = this.#firstAcceptedAt = this.#lastAcceptedAt = undefined;
    this.#accepted = this.#rejected = this.#maxInFlight = this.#maxInSecond = 0;
    this.#perSecond = [];
    this.#arrivals = [];
    this.#rejections = [];
  }

  stats(options: { arrivals?: boolean } = {}): StandinStats {
    const byKey: Record<string, { accepted: number; rejected: number }> = {};
    for (const [key, state] of this.#keys) byKey[key] = { accepted: state.accepted, rejected: state.rejected };
    return {
      accepted: this.#accepted,
      rejected: this.#rejected,
      inFlight: this.#inFlight,
      maxInFlight: this.#maxInFlight,
      maxAcceptedInAnySecond: this.#maxInSecond,
      acceptedSpanMs: this.#firstAcceptedAt === undefined ? 0 : (this.#lastAcceptedAt as number) - this.#firstAcceptedAt,
      perSecond: this.#perSecond.map((s) => ({ ...s })),
      byKey,
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

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.url?.startsWith('/__stats')) return json(res, 200, this.stats({ arrivals: req.url.includes('arrivals=1') }));
    if (req.url === '/__reset' && req.method === 'POST') {
      this.reset();
      return json(res, 200, { reset: true });
    }
    const now = performance.now();
    this.#startedAt ??= now;
    const second = Math.floor((now - this.#startedAt) / 1000);
    while (this.#perSecond.length <= second) this.#perSecond.push({ accepted: 0, rejected: 0 });
    const key = this.options.keyHeader ? String(req.headers[this.options.keyHeader] ?? '') : '';
    let state = this.#keys.get(key);
    if (!state) {
      state = {
        window: new Window(),
        fixedStart: undefined,
        fixedCount: 0,
        tokens: this.options.bucket?.burst ?? 0,
        refilledAt: now,
        accepted: 0,
        rejected: 0,
      };
      this.#keys.set(key, state);
    }

    const refusal = this.#admit(state, now);
    if (refusal !== undefined) {
      this.#rejected++;
      state.rejected++;
      if (this.#rejections.length < 10_000) this.#rejections.push(now);
      (this.#perSecond[second] as { rejected: number }).rejected++;
      req.resume();
      const headers: Record<string, string | number> = { 'retry-after': this.options.retryAfterSec ?? Math.max(1, Math.ceil(refusal / 1000)) };
      Object.assign(headers, this.#quotaHeaders(state, now, 0));
      return json(res, 429, { error: 'rate limit exceeded' }, headers);
    }

    this.#accepted++;
    state.accepted++;
    (this.#perSecond[second] as { accepted: number }).accepted++;
    this.#firstAcceptedAt ??= now;
    this.#lastAcceptedAt = now;
    this.#second.add(now);
    if (this.#arrivals.length < 100_000) this.#arrivals.push(now);
    this.#maxInSecond = Math.max(this.#maxInSecond, this.#second.count(now, 1000));
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
        const remaining = this.#remaining(state, performance.now());
        json(
          res,
          200,
          { ok: true, method: req.method, path: req.url, key, bytes, sha256: hash.digest('hex') },
          { 'x-request-id': String(req.headers['x-request-id'] ?? ''), ...this.#quotaHeaders(state, performance.now(), remaining) },
        );
      };
      const delay = this.#latency();
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  }

  /** Undefined to accept, or the milliseconds until the request would have been accepted. */
  #admit(state: KeyState, now: number): number | undefined {
    const { window, bucket, maxInFlight } = this.options;
    if (maxInFlight !== undefined && this.#inFlight >= maxInFlight) return 1000;
    if (window?.fixed) {
      const start = this.#fixedWindowStart(state, now, window.windowMs);
      if (state.fixedCount >= window.requests) return start + window.windowMs - now;
    } else if (window) {
      if (state.window.count(now, window.windowMs) >= window.requests) return (state.window.oldest() as number) + window.windowMs - now;
    }
    if (bucket) {
      state.tokens = Math.min(bucket.burst, state.tokens + ((now - state.refilledAt) * bucket.ratePerSec) / 1000);
      state.refilledAt = now;
      if (state.tokens < 1) return ((1 - state.tokens) * 1000) / bucket.ratePerSec;
      state.tokens -= 1;
    }
    if (window?.fixed) state.fixedCount++;
    else if (window) state.window.add(now);
    return undefined;
  }

  /** The start of the fixed window holding `now` (windows follow each other from the first request). */
  #fixedWindowStart(state: KeyState, now: number, windowMs: number): number {
    if (state.fixedStart === undefined) state.fixedStart = now;
    if (now >= state.fixedStart + windowMs) {
      state.fixedStart += Math.floor((now - state.fixedStart) / windowMs) * windowMs;
      state.fixedCount = 0;
    }
    return state.fixedStart;
  }

  #remaining(state: KeyState, now: number): number {
    const { window, bucket } = this.options;
    if (window?.fixed) {
      this.#fixedWindowStart(state, now, window.windowMs);
      return Math.max(0, window.requests - state.fixedCount);
    }
    if (window) return Math.max(0, window.requests - state.window.count(now, window.windowMs));
    if (bucket) return Math.floor(state.tokens);
    return 0;
  }

  #quotaHeaders(state: KeyState, now: number, remaining: number): Record<string, string> {
    const { window, quotaHeaders } = this.options;
    if (!quotaHeaders || !window) return {};
    const resetMs = window.fixed
      ? this.#fixedWindowStart(state, now, window.windowMs) + window.windowMs - now
      : (state.window.oldest() ?? now) + window.windowMs - now;
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
