/**
 * One client request through sluice: admission, attempts, retries through the same limiter, and
 * the outcome. Every attempt, first or retry, takes a ticket (a token and a slot of every rule); a
 * retry waits for its backoff holding nothing, then goes to the head of its key's queue.
 *
 * The exchange sends attempts through the upstream (src/upstream/attempt.ts, whose listener it is)
 * and answers through the ClientReply port (client-reply.ts): it sees neither undici nor a socket,
 * so its retry, pause and disconnect behaviour can be driven by a fake reply on manual time.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Priority } from '../core/aging-queue.js';
import { PROBLEMS, SluiceError, type ProblemCode } from '../core/errors.js';
import { RETRYABLE_STATUSES, SHUTDOWN_RETRY_AFTER_MS, isThrottle, pathWithoutQuery } from '../core/http-rules.js';
import type { RequestOutcome } from '../core/outcomes.js';
import { parseQuotaHeaders, type QuotaInfo } from '../core/ratelimit-headers.js';
import { parseRetryAfterMs } from '../core/retry-after.js';
import { decideRetry, type RetryPlan } from '../core/retry-policy.js';
import type { TimerHandle } from '../core/time.js';
import { Ticket, type Refusal } from '../scheduler/model.js';
import { Attempt, failureOf, type AttemptListener } from '../upstream/attempt.js';
import { forwardRequestHeaders, forwardResponseHeaders, headersForLog } from '../upstream/headers.js';
import type { Upstream, UpstreamSettings } from '../upstream/upstream.js';
import type { ClientReply, ProblemReply } from './client-reply.js';
import { BodyTooLargeError, type PreparedBody } from './prepared-body.js';

/** What the exchange reports when it starts and ends (the drain bookkeeping, the request log line). */
export interface ExchangeObserver {
  onStart(exchange: Exchange): void;
  onFinish(exchange: Exchange): void;
}

/** What the exchange reads of the client's request. */
export interface ClientRequest {
  readonly method: string;
  /** The URL as the client sent it. */
  readonly url: string;
  /** The client's headers as received, flat: `[name, value, ...]`. */
  readonly rawHeaders: readonly string[];
  /** Its Connection header (the headers it names are not forwarded). */
  readonly connection: string | string[] | undefined;
  /** It carries an `Idempotency-Key` (a retry of a method that is not idempotent is then safe). */
  readonly idempotencyKey: boolean;
}

/** An attempt aborted because its client went away. */
class ClientGoneError extends SluiceError {
  declare readonly code: 'SLUICE_CLIENT_GONE';
  constructor() {
    super('SLUICE_CLIENT_GONE', 'client went away');
  }
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export class Exchange implements AttemptListener {
  readonly upstream: Upstream;
  readonly request: ClientRequest;
  readonly #reply: ClientReply;
  /** The client URL after the upstream's prefix (query string included). */
  readonly #rest: string;
  readonly #keys: readonly string[];
  readonly #startedAt: number;
  /** The longest the request may wait queued (queue.maxWait, or less when the client asked). */
  readonly #maxWaitMs: number;
  readonly #dropContentLength: boolean;
  readonly #priority: Priority | undefined;
  /** The forwarded headers, and the settings they were built for (rebuilt after a reload). */
  #headers: string[] = [];
  #headersFor: UpstreamSettings | undefined;
  readonly #observer: ExchangeObserver;
  /** The whole request's budget ends: its queue wait plus every attempt's timeout, from arrival. */
  readonly #budgetEndsAt: number;
  #body: PreparedBody = { kind: 'none' };
  #ticket: Ticket | undefined;
  #current: Attempt | undefined;
  /** The current attempt's answer is a throttle that will be retried: its body is dropped. */
  #retry: RetryPlan | undefined;
  #waitingForDrain = false;
  #backoff: TimerHandle | undefined;
  #finished = false;
  #clientGone = false;
  readonly #unwatchClient: () => void;
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
    request: ClientRequest;
    reply: ClientReply;
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
    this.request = options.request;
    this.#reply = options.reply;
    this.#rest = options.rest;
    this.#keys = options.keys;
    this.#dropContentLength = options.dropContentLength;
    this.#priority = options.priority;
    this.#observer = options.observer;
    this.#startedAt = this.upstream.deps.clock.now();
    const { queue, timeout, retry } = this.upstream.config;
    this.#maxWaitMs = Math.min(queue.maxWait, options.clientMaxWaitMs ?? Number.POSITIVE_INFINITY);
    this.#budgetEndsAt = this.#startedAt + this.#maxWaitMs + retry.attempts * timeout;
    this.#unwatchClient = this.#reply.onClose(this.#onClientClose);
    this.#observer.onStart(this);
  }

  get method(): string {
    return this.request.method;
  }

  /** Queues the request once its body is ready. */
  start(body: PreparedBody): void {
    this.#body = body;
    if (this.#clientGone) return;
    this.#admit();
  }

  /** Answers with one of sluice's own problems and ends the exchange. */
  refuse(code: ProblemCode, detail: string, outcome: RequestOutcome, options: ProblemReply = {}): void {
    this.#reply.sendProblem(code, detail, options);
    this.status = this.#reply.statusCode;
    this.#finish(outcome);
  }

  /** The drain's grace is over: a request waiting out a backoff is refused like a queued one. */
  shutdown(): void {
    if (this.#backoff === undefined) return;
    this.upstream.deps.timers.clear(this.#backoff);
    this.#backoff = undefined;
    this.refuse('SLUICE_SHUTTING_DOWN', 'sluice is shutting down', 'rejected', { retryAfterMs: SHUTDOWN_RETRY_AFTER_MS });
  }

  // ---- admission ----------------------------------------------------------------------------

  #admit(): void {
    const retry = this.attempts > 0;
    const deadlineAt = retry ? this.#budgetEndsAt - this.upstream.config.timeout : this.#startedAt + this.#maxWaitMs;
    const result = this.upstream.scheduler.acquire({
      keys: this.#keys,
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
    if (this.#clientGone) return ticket.release('dropped');
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
      SLUICE_QUEUE_TIMEOUT: `upstream "${name}": the predicted wait is longer than the request may wait (${this.#maxWaitMs} ms)`,
      SLUICE_SHUTTING_DOWN: 'sluice is shutting down',
      SLUICE_STORE_UNAVAILABLE: 'the shared rate-limit store cannot be reached and store.onError is deny',
    };
    const retryAfterMs = refusal.code === 'SLUICE_SHUTTING_DOWN' ? SHUTDOWN_RETRY_AFTER_MS : refusal.retryAfterMs;
    const rateLimit = PROBLEMS[refusal.code].status === 429 ? { policy: name, ratePerSec: refusal.keyRatePerSec } : undefined;
    this.refuse(refusal.code, details[refusal.code], 'rejected', { retryAfterMs, rateLimit });
  };

  // ---- attempts -----------------------------------------------------------------------------

  /** Sends an attempt with the settings current now (a reload applies from the next attempt). */
  #send(): void {
    const body = this.#body;
    const settings = this.upstream.settings;
    if (this.#headersFor !== settings) {
      this.#headers = forwardRequestHeaders(this.request.rawHeaders, this.request.connection, {
        host: settings.hostHeader,
        setHeaders: settings.setHeaders,
        dropContentLength: this.#dropContentLength,
      });
      this.#headersFor = settings;
    }
    const { logger, clock, timers } = this.upstream.deps;
    const path = settings.upstreamPath(this.#rest);
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        { attempt: this.attempts, method: this.method, path: pathWithoutQuery(path), headers: headersForLog(this.#headers, settings.secretHeaders) },
        'attempt',
      );
    }
    this.#retry = undefined;
    // The exchange knows its attempt before undici can report on it.
    const attempt = new Attempt(this, clock.now(), timers);
    this.#current = attempt;
    attempt.send(
      settings.pool,
      { method: this.method, path, headers: this.#headers, body: body.kind === 'buffer' ? body.buffer : body.kind === 'stream' ? body.body : null },
      // A streamed body may take longer to upload than the timeout: undici's timer is the only one for it.
      body.kind === 'stream' ? undefined : settings.config.timeout,
    );
  }

  /** undici is writing the attempt on a connected socket. */
  onWrite(attempt: Attempt): void {
    if (attempt === this.#current) this.#ticket?.sent();
  }

  onHeaders(attempt: Attempt, status: number, headers: IncomingHttpHeaders): void {
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
      if (isThrottle(status, retryAfterMs !== undefined)) {
        // The key is exhausted for everyone queued behind this request, retried or not: for as
        // long as the upstream said (unless told not to listen), else for the backoff.
        const backoffMs = decision.retry ? decision.delayMs : retryPolicy.backoff.baseMs;
        const pauseMs = retryPolicy.respectRetryAfter ? (retryAfterMs ?? backoffMs) : backoffMs;
        ticket.pauseKey(now + pauseMs);
        deps.metrics.keyPauses.inc();
      }
      if (decision.retry) {
        this.#retry = decision;
        attempt.discardBody();
        return;
      }
    }

    const extra = ['sluice-attempts', String(this.attempts), 'sluice-queue-ms', String(Math.round(this.queueMs))];
    try {
      this.#reply.writeHead(status, forwardResponseHeaders(headers, extra));
    } catch {
      // Headers Node refuses to write (invalid characters): the upstream's answer is unusable.
      attempt.abort(new Error('invalid response headers from upstream'));
      return;
    }
    this.status = status;
  }

  onData(attempt: Attempt, chunk: Buffer): void {
    if (attempt !== this.#current) return;
    if (!this.#reply.write(chunk) && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      attempt.pause();
      this.#reply.onDrain(() => {
        this.#waitingForDrain = false;
        attempt.resume();
      });
    }
  }

  onEnd(attempt: Attempt): void {
    if (attempt !== this.#current) return;
    this.#current = undefined;
    const ticket = this.#ticket as Ticket;
    if (this.#retry !== undefined) {
      ticket.release('throttled');
      return this.#scheduleRetry(this.#retry);
    }
    this.#reply.end();
    ticket.release(this.status === 429 || this.status === 503 ? 'throttled' : 'ok');
    this.#finish(this.status >= 500 || this.status === 429 ? 'upstream_error' : 'ok');
  }

  onError(attempt: Attempt, err: Error): void {
    if (attempt !== this.#current) return;
    this.#current = undefined;
    const ticket = this.#ticket as Ticket;
    const { deps } = this.upstream;
    const { retryPolicy } = this.upstream.settings;

    if (this.#clientGone) {
      ticket.release('failed');
      return this.#finish('cancelled');
    }
    if (err instanceof BodyTooLargeError) {
      ticket.release('failed');
      return this.refuse('SLUICE_BODY_TOO_LARGE', err.message, 'rejected', { close: true });
    }
    if (this.#retry !== undefined) {
      // The throttled response broke while sluice was discarding it: the retry stands.
      ticket.release('throttled');
      return this.#scheduleRetry(this.#retry);
    }
    if (this.#reply.headersSent) {
      // The answer had started: all that can be done is to cut it, so the client sees it broke.
      ticket.release('failed');
      deps.metrics.attempts('error').inc();
      this.#reply.destroy(err);
      return this.#finish('failed');
    }

    const kind = failureOf(err);
    deps.metrics.attempts(kind === 'timeout' ? 'timeout' : 'error').inc();
    // A connection that was never made sent nothing: its tokens go back to the bucket.
    ticket.release(kind === 'connect' ? 'dropped' : 'failed');
    const decision = decideRetry({ kind }, retryPolicy, this.#retryContext(deps.clock.now()));
    if (decision.retry) return this.#scheduleRetry(decision);
    const attempts = `${this.attempts} attempt${this.attempts === 1 ? '' : 's'}`;
    if (kind === 'timeout') {
      this.refuse(
        'SLUICE_UPSTREAM_TIMEOUT',
        `upstream "${this.upstream.name}" sent no response headers within ${this.upstream.config.timeout} ms (${attempts})`,
        'failed',
      );
    } else {
      const cause = (err as { code?: string }).code ?? err.message;
      this.refuse('SLUICE_UPSTREAM_UNREACHABLE', `upstream "${this.upstream.name}" could not be reached: ${cause} (${attempts})`, 'failed');
    }
  }

  #retryContext(now: number) {
    return {
      attempt: this.attempts,
      method: this.method,
      replayable: this.#body.kind !== 'stream',
      idempotencyKey: this.request.idempotencyKey,
      remainingMs: this.#budgetEndsAt - this.upstream.config.timeout - now,
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
    // just after the pause ended, behind requests the key's own timer had already granted.
    if (decision.pauseKey) return this.#admit();
    this.#backoff = deps.timers.setAt(deps.clock.now() + decision.delayMs, () => {
      this.#backoff = undefined;
      this.#admit();
    });
  }

  // ---- the end ------------------------------------------------------------------------------

  readonly #onClientClose = (): void => {
    if (this.#finished) return;
    this.#clientGone = true;
    if (this.#ticket?.state === 'queued') this.#ticket.cancel();
    if (this.#backoff !== undefined) {
      this.upstream.deps.timers.clear(this.#backoff);
      this.#backoff = undefined;
    }
    if (this.#current) {
      // onError follows (now, or once undici starts the request) and finishes the exchange.
      this.#current.abort(new ClientGoneError());
      return;
    }
    this.#finish('cancelled');
  };

  #finish(outcome: RequestOutcome): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#unwatchClient();
    this.outcome = outcome;
    this.upstream.deps.metrics.requests[outcome].inc();
    this.#observer.onFinish(this);
  }
}
