/**
 * One attempt at the upstream: the undici DispatchHandler of one request sent, its own timer for
 * the response headers, and how it failed. It reports to an AttemptListener it declares itself (the
 * forwarding side implements it), never to a client: the upstream side knows nothing of who asked.
 * Reports of an attempt its listener has given up on are the listener's to ignore.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { SluiceError } from '../core/errors.js';
import type { TimerHandle, Timers } from '../core/time.js';

/** What an attempt reports, in this order: written, headers, data..., end; or an error at any point. */
export interface AttemptListener {
  /** undici is writing the request on a connected socket. */
  onWrite(attempt: Attempt): void;
  /** The response headers of a final (non-1xx) status. */
  onHeaders(attempt: Attempt, status: number, headers: IncomingHttpHeaders): void;
  /** A chunk of the response body (none while the body is being discarded). */
  onData(attempt: Attempt, chunk: Buffer): void;
  onEnd(attempt: Attempt): void;
  /** The attempt failed (see `failureOf`), or was aborted with `err`. */
  onError(attempt: Attempt, err: Error): void;
}

/** The request of one attempt: the path with its query, the headers flat (`[name, value, ...]`). */
export interface AttemptRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  readonly body: Buffer | AsyncIterable<Buffer> | null;
}

/** No response headers within the upstream's `timeout` (sluice's own timer, see `startAttempt`). */
export class AttemptTimeoutError extends SluiceError {
  declare readonly code: 'SLUICE_ATTEMPT_TIMEOUT';
  /** False when the time ran out before the request was written (connecting): nothing was sent. */
  readonly sent: boolean;

  constructor(message: string, sent: boolean) {
    super('SLUICE_ATTEMPT_TIMEOUT', message);
    this.sent = sent;
  }
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * How an attempt that produced no response failed: `connect` nothing was sent (refused, DNS, the
 * connect timeout); `timeout` no response headers in time after it was sent; `reset` the
 * connection broke after the request may have been sent.
 */
export function failureOf(err: Error): 'timeout' | 'connect' | 'reset' {
  if (err instanceof AttemptTimeoutError) return err.sent ? 'timeout' : 'connect';
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (CONNECT_ERRORS.has(code)) return 'connect';
  return 'reset';
}

/** The undici handler of one attempt. */
export class Attempt implements Dispatcher.DispatchHandler {
  /** Clock instant the attempt was dispatched. */
  readonly sentAt: number;
  readonly #listener: AttemptListener;
  readonly #timers: Timers;
  #controller: Dispatcher.DispatchController | undefined;
  /** Why to abort the attempt as soon as undici starts it (it was aborted before it had started). */
  #abortWith: Error | undefined;
  #discarding = false;
  #timer: TimerHandle | undefined;

  constructor(listener: AttemptListener, sentAt: number, timers: Timers) {
    this.#listener = listener;
    this.sentAt = sentAt;
    this.#timers = timers;
  }

  /**
   * Sends `request` on `dispatcher` (the upstream's pool). With `headersTimeoutMs`, the attempt is
   * aborted if no response headers arrived that long after `sentAt`: undici's own headersTimeout (the
   * pool's, kept as a backstop) runs on its coarse timers, which tick every half second: a 300 ms
   * timeout fired after up to a second, and the budget of a request (attempts x timeout) did not hold.
   * (A streamed body may take longer to upload than the timeout: then undici's timer, which waits
   * while the body is being written, is the only one.) undici may report an error synchronously,
   * from inside `dispatch` (a header value it refuses): the listener must already know this attempt.
   */
  send(dispatcher: Dispatcher, request: AttemptRequest, headersTimeoutMs?: number): void {
    if (headersTimeoutMs !== undefined) this.#arm(headersTimeoutMs);
    dispatcher.dispatch(
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        // undici sends an async iterable as a streamed body; its types only name Readable.
        body: request.body as Buffer | Readable | null,
      },
      this,
    );
  }

  /** Aborts the attempt with `reason` (now, or when undici starts it); `onError` follows. */
  abort(reason: Error): void {
    if (this.#controller) this.#controller.abort(reason);
    else this.#abortWith ??= reason;
  }

  /** The rest of the response body is read and dropped (a throttle that will be retried). */
  discardBody(): void {
    this.#discarding = true;
  }

  /** Stops reading the response (the client's buffer is full) until `resume`. */
  pause(): void {
    this.#controller?.pause();
  }

  resume(): void {
    this.#controller?.resume();
  }

  #arm(timeoutMs: number): void {
    this.#timer = this.#timers.setAt(this.sentAt + timeoutMs, () => {
      this.#timer = undefined;
      // Not written yet (still connecting): aborted when undici starts it, unless the connect
      // timeout (the same duration, on undici's coarse timers) ends it first.
      if (this.#controller) this.#controller.abort(new AttemptTimeoutError(`no response headers within ${timeoutMs} ms`, true));
      else this.#abortWith ??= new AttemptTimeoutError(`not connected within the timeout`, false);
    });
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.#timers.clear(this.#timer);
    this.#timer = undefined;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortWith) controller.abort(this.#abortWith);
    else this.#listener.onWrite(this);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#controller = controller;
    if (statusCode < 200) return;
    this.#disarm();
    this.#listener.onHeaders(this, statusCode, headers);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#discarding) this.#listener.onData(this, chunk);
  }

  onResponseEnd(): void {
    this.#listener.onEnd(this);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#disarm();
    this.#listener.onError(this, err);
  }
}
