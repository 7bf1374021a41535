import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { parseQuotaHeaders, type QuotaInfo } from '../core/ratelimit-headers.js';
import { parseRetryAfterMs } from '../core/retry-after.js';
import { decideRetry, type AttemptOutcome, type RetryPlan } from '../core/retry-policy.js';
import { BodyTooLargeError, type PreparedBody } from '../http/request-body.js';
import { PROBLEMS, SluiceError, type ProblemCode } from '../core/errors.js';
import { RETRYABLE_STATUSES, SHUTDOWN_RETRY_AFTER_MS, isThrottle, pathWithoutQuery } from '../core/http-rules.js';
import { rateLimitFields, sendProblem } from '../http/problems.js';
import type { RequestOutcome } from '../core/outcomes.js';
import type { TimerHandle, Timers } from '../core/time.js';
import type { Priority } from '../core/aging-queue.js';
import { Ticket, type Refusal } from '../scheduler/model.js';
import { forwardRequestHeaders, forwardResponseHeaders, headersForLog } from './headers.js';
import type { Upstream, UpstreamSettings } from './upstream.js';

/** What the exchange reports when it ends (one log line, the drain bookkeeping). */
export interface ExchangeObserver {
  onStart(exchange: Exchange): void;
  onFinish(exchange: Exchange): void;
}

class ClientGoneError extends SluiceError {
  declare readonly code: 'SLUICE_CLIENT_GONE';
  constructor() {
    super('SLUICE_CLIENT_GONE', 'client went away');
  }
}

/** No response headers within the upstream's `timeout` (sluice's own timer, see Attempt#arm). */
class AttemptTimeoutError extends SluiceError {
  declare readonly code: 'SLUICE_ATTEMPT_TIMEOUT';
  /** False when the time ran out before the request was written (connecting): nothing was sent. */
  readonly sent: boolean;

  constructor(message: string, sent: boolean) {
    super('SLUICE_ATTEMPT_TIMEOUT', message);
    this.sent = sent;
  }
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'UND_ERR_CONNECT_TIMEOUT']);

/** How an attempt that produced no response failed. */
function classify(err: Error): 'timeout' | 'connect' | 'reset' {
  if (err instanceof AttemptTimeoutError) return err.sent ? 'timeout' : 'connect';
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (CONNECT_ERRORS.has(code)) return 'connect';
  return 'reset';
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Callbacks for the close of a connection that carries pipelined requests. Node gives a pipelined
 * request its response (and that response its `close` event) only once the requests before it are
 * answered, and the request's own `close` fires as soon as its body is read: the socket is the only
 * thing that says the client is gone. One listener per socket, however deep the pipeline.
 */
const pipelinedOn = new WeakMap<Socket, Set<() => void>>();

function onConnectionClose(socket: Socket, callback: () => void): () => void {
  let callbacks = pipelinedOn.get(socket);
  if (!callbacks) {
    const set = new Set<() => void>();
    callbacks = set;
    pipelinedOn.set(socket, set);
    socket.once('close', () => {
      pipelinedOn.delete(socket);
      for (const fn of set) fn();
    });
  }
  callbacks.add(callback);
  return () => callbacks.delete(callback);
}

/** The undici handler of one attempt; stale attempts (aborted, superseded) are ignored. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly exchange: Exchange;
  readonly sentAt: number;
  controller: Dispatcher.DispatchController | undefined;
  /** Set when the response is a throttle that will be retried: its body is read and dropped. */
  retry: RetryPlan | undefined;
  waitingForDrain = false;
  #timer: TimerHandle | undefined;
  #timedOut = false;

  constructor(exchange: Exchange, sentAt: number) {
    this.exchange = exchange;
    this.sentAt = sentAt;
  }

  /**
   * Aborts the attempt if no response headers arrived `timeoutMs` after it was dispatched. undici's
   * own headersTimeout (the pool's, kept as a backstop) runs on its coarse timers, which tick every
   * half second: a 300 ms timeout fired after up to a second, and the budget of a request
   * (attempts x timeout) did not hold.
   */
  arm(timers: Timers, timeoutMs: number): void {
    this.#timer = timers.setAt(this.sentAt + timeoutMs, () => {
      this.#timer = undefined;
      this.#timedOut = true;
      // Not written yet (still connecting): aborted when undici starts it, unless the connect
      // timeout (the same duration, on undici's coarse timers) ends it first.
      this.controller?.abort(new AttemptTimeoutError(`no response headers within ${timeoutMs} ms`, true));
    });
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.exchange.upstream.deps.timers.clear(this.#timer);
    this.#timer = undefined;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.exchange.clientGone) controller.abort(new ClientGoneError());
    else if (this.#timedOut) controller.abort(new AttemptTimeoutError(`not connected within the timeout`, false));
    else this.exchange.onRequestStart(this);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.controller = controller;
    if (statusCode < 200) return;
    this.#disarm();
    this.exchange.onResponseStart(this, statusCode, headers);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.retry === undefined) this.exchange.onResponseData(this, chunk);
  }

  onResponseEnd(): void {
    this.exchange.onResponseEnd(this);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#disarm();
    this.exchange.onResponseError(this, err);
  }
}

/**
 * One client request through sluice: admission, attempts, retries through the same limiter, and the
 * answer. Every attempt, first or retry, takes a ticket (a token and a slot of every rule); a retry
 * waits for its backoff holding nothing, then goes to the head of its key's queue.
 */
export class Exchange {
  readonly upstream: Upstream;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** The client URL after the upstream's prefix (query string included). */
  readonly rest: string;
  readonly keys: readonly string[];
  readonly startedAt: number;
  /** The longest the request may wait queued (queue.maxWait, or less when the client asked). */
  readonly maxWaitMs: number;
  readonly #dropContentLength: boolean;
  readonly #priority: Priority | undefined;
  /** The forwarded headers, and the settings they were built for (rebuilt after a reload). */
  #headers: string[] = [];
  #headersFor: UpstreamSettings | undefined;
  readonly #observer: ExchangeObserver;
  readonly #budgetEnd: number;
  readonly #idempotencyKey: boolean;
  #body: PreparedBody = { kind: 'none' };
  #ticket: Ticket | undefined;
  #current: Attempt | undefined;
  #backoff: TimerHandle | undefined;
  #finished = false;
  /** Stops watching the connection of a pipelined request (see onConnectionClose). */
  #unwatchConnection: (() => void) | undefined;
  clientGone = false;
  /** Attempts sent so far. */
  attempts = 0;
  /** Milliseconds spent queued, all attempts together. */
  queueMs = 0;
  /** Milliseconds from sending the last attempt to its response headers. */
  upstreamMs: number | undefined;
  /** Status answered to the client (0 until then). */
  status = 0;
  outcome: RequestOutcome | undefined;

  constructor(options: {
    upstream: Upstream;
    req: IncomingMessage;
    res: ServerResponse;
    rest: string;
    keys: readonly string[];
    /** The body is sent buffered (or not at all): undici frames it, the client's length is dropped. */
    dropContentLength: boolean;
    /** The client's own limit on its queue wait (Sluice-Max-Wait), if it sent one. */
    clientMaxWaitMs?: number | undefined;
    /** The request's priority within its key (when priorities are on). */
    priority?: Priority | undefined;
    observer: ExchangeObserver;
  }) {
    this.upstream = options.upstream;
    this.req = options.req;
    this.res = options.res;
    this.method = options.req.method ?? 'GET';
    this.rest = options.rest;
    this.keys = options.keys;
    this.#dropContentLength = options.dropContentLength;
    this.#priority = options.priority;
    this.#observer = options.observer;
    this.startedAt = this.upstream.deps.clock.now();
    const { queue, timeout, retry } = this.upstream.config;
    this.maxWaitMs = Math.min(queue.maxWait, options.clientMaxWaitMs ?? Number.POSITIVE_INFINITY);
    // The whole request's budget, fixed on arrival: its queue wait plus every attempt's timeout.
    this.#budgetEnd = this.startedAt + this.maxWaitMs + retry.attempts * timeout;
    this.#idempotencyKey = options.req.headers['idempotency-key'] !== undefined;
    this.res.once('close', this.#onClientClose);
    // Behind another request on its connection (pipelined): no response socket yet.
    if (this.res.socket === null && !options.req.socket.destroyed) this.#unwatchConnection = onConnectionClose(options.req.socket, this.#onClientClose);
    this.#observer.onStart(this);
  }

  /** Queues the request once its body is ready. */
  start(body: PreparedBody): void {
    this.#body = body;
    if (this.clientGone) return;
    this.#admit();
  }

  /** Answers with one of sluice's own problems and ends the exchange. */
  refuse(code: ProblemCode, detail: string, outcome: RequestOutcome, retryAfterMs?: number, close = false, headers?: Record<string, string>): void {
    sendProblem(this.res, code, detail, { retryAfterMs, close, headers });
    this.status = this.res.statusCode;
    this.#finish(outcome);
  }

  /** The drain's grace is over: a request waiting out a backoff is refused like a queued one. */
  shutdown(): void {
    if (this.#backoff === undefined) return;
    this.upstream.deps.timers.clear(this.#backoff);
    this.#backoff = undefined;
    this.refuse('SLUICE_SHUTTING_DOWN', 'sluice is shutting down', 'rejected', SHUTDOWN_RETRY_AFTER_MS);
  }

  // ---- admission ----------------------------------------------------------------------------

  #admit(): void {
    const retry = this.attempts > 0;
    const deadlineAt = retry ? this.#budgetEnd - this.upstream.config.timeout : this.startedAt + this.maxWaitMs;
    const result = this.upstream.scheduler.acquire({
      keys: this.keys,
      deadlineAt,
      retry,
      priority: this.#priority,
      onGrant: this.#onGrant,
      onRefuse: this.#onRefuse,
    });
    if (result instanceof Ticket) {
      if (result.state === 'queued') this.#ticket = result;
    } else this.#onRefuse(result);
  }

  readonly #onGrant = (ticket: Ticket): void => {
    this.#ticket = ticket;
    if (this.clientGone) return ticket.release('dropped');
    if (this.attempts === 0) this.upstream.deps.metrics.queueWait.observe(ticket.queuedMs / 1000);
    this.queueMs += ticket.queuedMs;
    this.attempts++;
    this.#send();
  };

  readonly #onRefuse = (refusal: Refusal): void => {
    this.#ticket = undefined;
    const { name, config } = this.upstream;
    const details: Record<Refusal['code'], string> = {
      SLUICE_QUEUE_FULL: `the queue of upstream "${name}" is full (queue.maxSize ${config.queue.maxSize}, maxPerKey ${config.queue.maxPerKey})`,
      SLUICE_QUEUE_TIMEOUT: `upstream "${name}": the predicted wait is longer than the request may wait (${this.maxWaitMs} ms)`,
      SLUICE_SHUTTING_DOWN: 'sluice is shutting down',
      SLUICE_STORE_UNAVAILABLE: 'the shared rate-limit store cannot be reached and store.onError is deny',
    };
    const detail = details[refusal.code];
    const retryAfterMs = refusal.code === 'SLUICE_SHUTTING_DOWN' ? SHUTDOWN_RETRY_AFTER_MS : refusal.retryAfterMs;
    const headers = PROBLEMS[refusal.code].status === 429 ? rateLimitFields(name, retryAfterMs, refusal.keyRatePerSec) : undefined;
    this.refuse(refusal.code, detail, 'rejected', retryAfterMs, false, headers);
  };

  // ---- attempts -----------------------------------------------------------------------------

  /** Sends an attempt with the settings current now (a reload applies from the next attempt). */
  #send(): void {
    const body = this.#body;
    const settings = this.upstream.settings;
    if (this.#headersFor !== settings) {
      this.#headers = forwardRequestHeaders(this.req.rawHeaders, this.req.headers.connection, {
        host: settings.hostHeader,
        setHeaders: settings.setHeaders,
        dropContentLength: this.#dropContentLength,
      });
      this.#headersFor = settings;
    }
    const attempt = new Attempt(this, this.upstream.deps.clock.now());
    this.#current = attempt;
    // A streamed body may take longer to upload than the timeout: undici's timer, which waits
    // while the body is being written, is the only one for it.
    if (body.kind !== 'stream') attempt.arm(this.upstream.deps.timers, settings.config.timeout);
    const { logger } = this.upstream.deps;
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        {
          attempt: this.attempts,
          method: this.method,
          path: pathWithoutQuery(settings.upstreamPath(this.rest)),
          headers: headersForLog(this.#headers, settings.secretHeaders),
        },
        'attempt',
      );
    }
    settings.pool.dispatch(
      {
        method: this.method,
        path: settings.upstreamPath(this.rest),
        headers: this.#headers,
        // undici sends an async iterable as a streamed body; its types only name Readable.
        body: body.kind === 'buffer' ? body.buffer : body.kind === 'stream' ? (body.body as unknown as Readable) : null,
      },
      attempt,
    );
  }

  /** undici is writing the attempt on a connected socket. */
  onRequestStart(attempt: Attempt): void {
    if (attempt === this.#current) this.#ticket?.sent();
  }

  onResponseStart(attempt: Attempt, status: number, headers: IncomingHttpHeaders): void {
    if (attempt !== this.#current) return;
    const { deps, settings } = this.upstream;
    const { retryPolicy } = settings;
    const ticket = this.#ticket as Ticket;
    const now = deps.clock.now();
    this.upstreamMs = now - attempt.sentAt;
    deps.metrics.upstreamDuration.observe(this.upstreamMs / 1000);
    deps.metrics.attempts(String(status)).inc();

    // Every answer paces the key by what it says of the quota (or ends the wait for a first answer).
    const epochNow = deps.epochNow();
    const quota = settings.quotaDialects === undefined ? undefined : parseQuotaHeaders((name) => headerValue(headers, name), epochNow, settings.quotaDialects);
    if (settings.quotaDialects !== undefined) ticket.learn(quota);

    if (RETRYABLE_STATUSES.has(status)) {
      const maxPauseMs = settings.config.pacing.maxPause;
      const retryAfter = this.#retryAfterMs(status, headers, quota, epochNow);
      const retryAfterMs = retryAfter === undefined ? undefined : Math.min(retryAfter, maxPauseMs);
      const decision = decideRetry({ kind: 'status', status, retryAfterMs }, retryPolicy, this.#retryContext(now));
      const throttled = isThrottle(status, retryAfterMs !== undefined);
      if (throttled) {
        // The key is exhausted for everyone queued behind this request, retried or not: for as
        // long as the upstream said (unless told not to listen), else for the backoff.
        const backoffMs = decision.retry ? decision.delayMs : retryPolicy.backoff.baseMs;
        const pauseMs = retryPolicy.respectRetryAfter ? (retryAfterMs ?? backoffMs) : backoffMs;
        ticket.pauseKey(now + pauseMs);
        deps.metrics.keyPauses.inc();
      }
      if (decision.retry) {
        attempt.retry = decision;
        return;
      }
    }

    const extra = ['sluice-attempts', String(this.attempts), 'sluice-queue-ms', String(Math.round(this.queueMs))];
    try {
      this.res.writeHead(status, forwardResponseHeaders(headers, extra));
    } catch {
      // Headers Node refuses to write (invalid characters): the upstream's answer is unusable.
      attempt.controller?.abort(new Error('invalid response headers from upstream'));
      return;
    }
    this.status = status;
  }

  onResponseData(attempt: Attempt, chunk: Buffer): void {
    if (attempt !== this.#current) return;
    if (!this.res.write(chunk) && !attempt.waitingForDrain) {
      attempt.waitingForDrain = true;
      attempt.controller?.pause();
      this.res.once('drain', () => {
        attempt.waitingForDrain = false;
        attempt.controller?.resume();
      });
    }
  }

  onResponseEnd(attempt: Attempt): void {
    if (attempt !== this.#current) return;
    this.#current = undefined;
    const ticket = this.#ticket as Ticket;
    if (attempt.retry !== undefined) {
      ticket.release('throttled');
      return this.#scheduleRetry(attempt.retry);
    }
    this.res.end();
    ticket.release(this.status === 429 || this.status === 503 ? 'throttled' : 'ok');
    this.#finish(this.status >= 500 || this.status === 429 ? 'upstream_error' : 'ok');
  }

  onResponseError(attempt: Attempt, err: Error): void {
    if (attempt !== this.#current) return;
    this.#current = undefined;
    const ticket = this.#ticket as Ticket;
    const { deps } = this.upstream;
    const { retryPolicy } = this.upstream.settings;

    if (this.clientGone) {
      ticket.release('failed');
      return this.#finish('cancelled');
    }
    if (err instanceof BodyTooLargeError) {
      ticket.release('failed');
      return this.refuse('SLUICE_BODY_TOO_LARGE', err.message, 'rejected', undefined, true);
    }
    if (attempt.retry !== undefined) {
      // The throttled response broke while sluice was discarding it: the retry stands.
      ticket.release('throttled');
      return this.#scheduleRetry(attempt.retry);
    }
    if (this.res.headersSent) {
      // The answer had started: all that can be done is to cut it, so the client sees it broke.
      ticket.release('failed');
      deps.metrics.attempts('error').inc();
      this.res.destroy(err);
      return this.#finish('failed');
    }

    const kind = classify(err);
    deps.metrics.attempts(kind === 'timeout' ? 'timeout' : 'error').inc();
    // A connection that was never made sent nothing: its tokens go back to the bucket.
    ticket.release(kind === 'connect' ? 'dropped' : 'failed');
    const outcome: AttemptOutcome = { kind };
    const decision = decideRetry(outcome, retryPolicy, this.#retryContext(deps.clock.now()));
    if (decision.retry) return this.#scheduleRetry(decision);
    if (kind === 'timeout') {
      this.refuse(
        'SLUICE_UPSTREAM_TIMEOUT',
        `upstream "${this.upstream.name}" sent no response headers within ${this.upstream.config.timeout} ms (${this.attempts} attempt${this.attempts === 1 ? '' : 's'})`,
        'failed',
      );
    } else {
      this.refuse(
        'SLUICE_UPSTREAM_UNREACHABLE',
        `upstream "${this.upstream.name}" could not be reached: ${(err as { code?: string }).code ?? err.message} (${this.attempts} attempt${this.attempts === 1 ? '' : 's'})`,
        'failed',
      );
    }
  }

  #retryContext(now: number) {
    return {
      attempt: this.attempts,
      method: this.method,
      replayable: this.#body.kind !== 'stream',
      idempotencyKey: this.#idempotencyKey,
      remainingMs: this.#budgetEnd - this.upstream.config.timeout - now,
      random: this.upstream.deps.random(),
    };
  }

  /** Retry-After in either form; failing that, a quota reset when the upstream says none is left. */
  #retryAfterMs(status: number, headers: IncomingHttpHeaders, quota: QuotaInfo | undefined, epochNow: number): number | undefined {
    const retryAfter = parseRetryAfterMs(headerValue(headers, 'retry-after'), epochNow);
    if (retryAfter !== undefined || (status !== 429 && status !== 503)) return retryAfter;
    const reset = quota ?? parseQuotaHeaders((name) => headerValue(headers, name), epochNow);
    return reset?.remaining === 0 ? reset.resetMs : undefined;
  }

  #scheduleRetry(decision: RetryPlan): void {
    const { deps } = this.upstream;
    deps.metrics.retries(decision.reason).inc();
    // A throttle paused the key for exactly this delay: the retry waits out the pause at the head
    // of the key's queue, holding no token and no slot. On a timer of its own it would re-enter
    // just after the pause ended, behind requests the key's own timer had already released.
    if (decision.pauseKey) return this.#admit();
    this.#backoff = deps.timers.setAt(deps.clock.now() + decision.delayMs, () => {
      this.#backoff = undefined;
      this.#admit();
    });
  }

  // ---- the end ------------------------------------------------------------------------------

  readonly #onClientClose = (): void => {
    if (this.#finished) return;
    this.clientGone = true;
    if (this.#ticket?.state === 'queued') this.#ticket.cancel();
    if (this.#backoff !== undefined) {
      this.upstream.deps.timers.clear(this.#backoff);
      this.#backoff = undefined;
    }
    if (this.#current) {
      // onResponseError follows (now, or once undici starts the request) and finishes the exchange.
      this.#current.controller?.abort(new ClientGoneError());
      return;
    }
    this.#finish('cancelled');
  };

  #finish(outcome: RequestOutcome): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#unwatchConnection?.();
    this.outcome = outcome;
    this.upstream.deps.metrics.requests[outcome].inc();
    this.#observer.onFinish(this);
  }
}
