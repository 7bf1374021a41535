import { isIdempotent } from './http-rules.js';

/**
 * What an attempt that ended without a usable answer tells the client, the retry loop and the
 * breaker. The one question a client needs answered is "may my request have been processed?", so
 * the phase the attempt reached decides first and the error code only refines the wording:
 *
 *     phase reached                        kind              processed  answer
 *     no connection (refused, DNS, TLS)    unreachable       no         502 SLUICE_UPSTREAM_UNREACHABLE
 *     no connection within the timeout     connect-timeout   no         502 SLUICE_UPSTREAM_UNREACHABLE
 *     request started, connection broke    reset             maybe      502 SLUICE_UPSTREAM_RESET
 *     request started, no headers in time  timeout           maybe      504 SLUICE_UPSTREAM_TIMEOUT
 *     request started, answer not HTTP     bad-response      maybe      502 SLUICE_UPSTREAM_BAD_RESPONSE
 *     response headers had arrived         cut               yes        none (the answer is cut)
 *     sluice aborted it, the client left   client-gone       no/maybe   none (nobody to answer)
 *
 * "Request started" is undici's `onRequestStart`: a connected socket (TLS handshake done) took the
 * request and is about to write it. undici calls it before writing the first byte (client-h1.js
 * `writeH1`: `request.onConnect` precedes `socket.write`), so "not started" is a proof that nothing
 * was sent. The converse does not hold: a request started on a reused keep-alive connection that
 * the upstream had just closed was never read, but nothing distinguishes that from a reset after
 * the upstream read it, so it counts as "maybe". When the facts and the code disagree, the answer
 * leans to "maybe": the code is only a hint of what happened, the phase is a fact.
 *
 * The same code means different things in different phases: ECONNRESET before the request started
 * is a connection refused by a reset (never reached); after, it is a reset after writing (measured:
 * a server that resets on accept gives `connect ECONNRESET` with no onRequestStart; one that reads
 * the request and resets gives `read ECONNRESET` after it).
 *
 * Codes, confirmed in undici 7.30.2 (`lib/core/errors.js`, `lib/dispatcher/client-h1.js`,
 * `lib/dispatcher/client.js`, `lib/core/util.js`) and by provoking each against a loopback server
 * on Node 20.20 (a scratch script, not kept):
 * - `UND_ERR_CONNECT_TIMEOUT` (ConnectTimeoutError): no connection within `connectTimeout`; the
 *   timer runs until `secureConnect` for https, so a stalled TLS handshake ends this way too.
 * - `UND_ERR_SOCKET` (SocketError): "other side closed" (the upstream sent FIN), "closed".
 * - `UND_ERR_HEADERS_TIMEOUT`, `UND_ERR_BODY_TIMEOUT`: undici's own timers.
 * - `UND_ERR_RES_CONTENT_LENGTH_MISMATCH`, `UND_ERR_HEADERS_OVERFLOW`, and HTTPParserError (name
 *   `HTTPParserError`; its code `HPE_*` is often undefined: measured undefined for "NOT HTTP"):
 *   the upstream's answer is not valid HTTP.
 * - Node's socket errors pass through unwrapped (`onHttpSocketError` keeps `err`): ECONNRESET
 *   (measured both "connect" and "read"/"write" ECONNRESET), EPIPE, ETIMEDOUT, ECONNREFUSED,
 *   ENOTFOUND / EAI_AGAIN (getaddrinfo), EHOSTUNREACH, ENETUNREACH.
 * - TLS errors are Node's and OpenSSL's codes, before onRequestStart: measured
 *   DEPTH_ZERO_SELF_SIGNED_CERT, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID
 *   (undici's handleConnectError names it), ERR_SSL_WRONG_VERSION_NUMBER (TLS to a plain port).
 *
 * Nothing here reads an Error: the caller passes the code (and the error's name) with the facts,
 * so this file stays pure and every branch is a row of a table test.
 */

/** How an attempt failed, by the phase it reached (see the table above). */
export type FailureKind = 'unreachable' | 'connect-timeout' | 'reset' | 'timeout' | 'bad-response' | 'cut' | 'client-gone';

/** Whether the upstream may have acted on the request. */
export type Processed = 'no' | 'maybe' | 'yes';

/**
 * What the attempt says of the upstream's availability, for the breaker (breaker.ts): `down` it
 * could not be reached or dropped the connection before answering, `up` it answered (even with
 * garbage), `none` nothing either way (a timeout, the client leaving, or a cut: the headers that
 * came first already said `up`).
 */
export type Availability = 'down' | 'up' | 'none';

/** sluice's own answers for a failed attempt; RESET and BAD_RESPONSE are new (problems.ts). */
export type FailureProblemCode = 'SLUICE_UPSTREAM_UNREACHABLE' | 'SLUICE_UPSTREAM_RESET' | 'SLUICE_UPSTREAM_TIMEOUT' | 'SLUICE_UPSTREAM_BAD_RESPONSE';

/** The status of each code, for problems.ts (one table from code to status). */
export const FAILURE_PROBLEMS = {
  SLUICE_UPSTREAM_UNREACHABLE: { status: 502, title: 'Upstream unreachable' },
  SLUICE_UPSTREAM_RESET: { status: 502, title: 'Upstream closed the connection' },
  SLUICE_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timed out' },
  SLUICE_UPSTREAM_BAD_RESPONSE: { status: 502, title: 'Upstream sent an invalid response' },
} as const satisfies Record<FailureProblemCode, { status: number; title: string }>;

/** What is known of an attempt when it failed. */
export interface AttemptFacts {
  /** `err.code` (undici's, Node's, OpenSSL's, or sluice's own SLUICE_ATTEMPT_TIMEOUT / SLUICE_CLIENT_GONE). */
  readonly code: string | undefined;
  /** `err.name`, for errors without a code (undici's HTTPParserError). */
  readonly name?: string | undefined;
  /** undici called onRequestStart: a connected socket took the request (bytes may have been written). */
  readonly requestStarted: boolean;
  /**
   * The whole request (headers and body) was handed to the socket; undefined when not observed.
   * undici 7 does not pass onRequestSent to handlers of the new API (UnwrapHandler drops it); the
   * diagnostics channel `undici:request:bodySent` reports it. Only the detail's wording uses it.
   */
  readonly requestSent?: boolean | undefined;
  /** Response headers (status >= 200) arrived before the failure. */
  readonly responseStarted: boolean;
}

export interface FailureClass {
  readonly kind: FailureKind;
  readonly processed: Processed;
  /** Words for the cause, for the problem detail and the log: "connection refused", "TLS certificate rejected". */
  readonly cause: string;
  /** The `retry.on` entry that governs a retry; undefined when the attempt is never retried. */
  readonly retryOn: 'connect' | 'reset' | 'timeout' | undefined;
  readonly availability: Availability;
  /** sluice's answer when this was the last attempt; undefined when there is none to give (cut, client gone). */
  readonly problem: FailureProblemCode | undefined;
  /** The code the facts carried, for the detail ("ECONNREFUSED"); undefined when there was none. */
  readonly code: string | undefined;
  /** For a reset: the request was being written (false), had been written (true), or unknown. */
  readonly requestSent: boolean | undefined;
}

const DNS_CODES: ReadonlySet<string> = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const NETWORK_CODES: ReadonlySet<string> = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const CONNECT_TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'SLUICE_ATTEMPT_TIMEOUT']);
const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'SLUICE_ATTEMPT_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const BAD_RESPONSE_CODES: ReadonlySet<string> = new Set(['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_HEADERS_OVERFLOW']);
const CLIENT_GONE_CODES: ReadonlySet<string> = new Set(['SLUICE_CLIENT_GONE', 'UND_ERR_ABORTED', 'UND_ERR_ABORT']);

/** Node's TLS errors (ERR_TLS_*, ERR_SSL_*) and OpenSSL's certificate verification codes. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_)|CERT|SELF_SIGNED|_SIGNATURE$|^EPROTO$/;

function isTls(code: string): boolean {
  return TLS_CODE.test(code);
}

/** Why a connection was never made, in words. */
function connectCause(code: string | undefined): string {
  if (code === undefined) return 'the connection failed';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (DNS_CODES.has(code)) return code === 'EAI_AGAIN' ? 'DNS lookup failed (temporary)' : 'DNS lookup failed';
  if (NETWORK_CODES.has(code)) return 'no route to the host';
  if (isTls(code)) return /CERT|SELF_SIGNED|_SIGNATURE$/.test(code) ? 'TLS handshake failed: certificate rejected' : 'TLS handshake failed';
  if (RESET_CODES.has(code)) return 'the connection was reset while connecting';
  return 'the connection failed';
}

/** What each kind implies, whatever its cause (the table at the top of the file). */
const TRAITS = {
  unreachable: { processed: 'no', retryOn: 'connect', availability: 'down', problem: 'SLUICE_UPSTREAM_UNREACHABLE' },
  'connect-timeout': { processed: 'no', retryOn: 'connect', availability: 'down', problem: 'SLUICE_UPSTREAM_UNREACHABLE' },
  reset: { processed: 'maybe', retryOn: 'reset', availability: 'down', problem: 'SLUICE_UPSTREAM_RESET' },
  timeout: { processed: 'maybe', retryOn: 'timeout', availability: 'none', problem: 'SLUICE_UPSTREAM_TIMEOUT' },
  'bad-response': { processed: 'maybe', retryOn: 'reset', availability: 'up', problem: 'SLUICE_UPSTREAM_BAD_RESPONSE' },
  cut: { processed: 'yes', retryOn: undefined, availability: 'none', problem: undefined },
  'client-gone': { processed: 'maybe', retryOn: undefined, availability: 'none', problem: undefined },
} as const satisfies Record<FailureKind, Pick<FailureClass, 'processed' | 'retryOn' | 'availability' | 'problem'>>;

/**
 * Classifies a failed attempt from its facts.
 *
 * @example classifyFailure({ code: 'ECONNRESET', requestStarted: true, responseStarted: false }).kind // 'reset'
 * @example classifyFailure({ code: 'ECONNRESET', requestStarted: false, responseStarted: false }).kind // 'unreachable'
 */
export function classifyFailure(facts: AttemptFacts): FailureClass {
  const code = facts.code === undefined || facts.code === '' ? undefined : facts.code;
  const of = (kind: FailureKind, cause: string, requestSent?: boolean): FailureClass => ({ kind, ...TRAITS[kind], cause, code, requestSent });
  if (code !== undefined && CLIENT_GONE_CODES.has(code)) {
    // sluice aborted the attempt itself; it was sent if it had started.
    return { ...of('client-gone', 'the client went away'), processed: facts.requestStarted ? 'maybe' : 'no' };
  }
  // The upstream answered: it processed the request, and the client may already have part of it.
  if (facts.responseStarted) return of('cut', 'the response broke off');
  if (!facts.requestStarted) {
    if (code !== undefined && CONNECT_TIMEOUT_CODES.has(code)) return of('connect-timeout', 'no connection within the timeout');
    return of('unreachable', connectCause(code));
  }
  // The request started: from here on it may have been processed, whatever the code says.
  if (code !== undefined && TIMEOUT_CODES.has(code)) return of('timeout', 'no response headers within the timeout');
  if (facts.name === 'HTTPParserError' || (code !== undefined && (code.startsWith('HPE_') || BAD_RESPONSE_CODES.has(code)))) {
    return of('bad-response', 'the answer is not valid HTTP');
  }
  // ECONNRESET, EPIPE, UND_ERR_SOCKET ("other side closed"), and anything unknown after the start.
  const cause = facts.requestSent === false ? 'the connection was closed while the request was being sent' : 'the connection was closed before an answer';
  return of('reset', cause, facts.requestSent);
}

/**
 * Whether sending the request again cannot make the upstream act on it twice: always when nothing
 * was sent; after a send only for idempotent methods or a request with an `Idempotency-Key`
 * (retry-policy.ts applies the same rule); never once the answer has started (a cut).
 */
export function retrySafe(failure: FailureClass, request: { readonly method: string; readonly idempotencyKey: boolean }): boolean {
  if (failure.processed === 'no') return true;
  if (failure.processed === 'yes') return false;
  return request.idempotencyKey || isIdempotent(request.method);
}

/**
 * The problem `detail` for the last failed attempt: what happened, and whether the request may
 * have been processed, in words a client can act on.
 *
 * @example
 * failureDetail(classifyFailure({ code: 'ECONNREFUSED', requestStarted: false, responseStarted: false }),
 *   { upstream: 'api', attempts: 3, timeoutMs: 10_000 })
 * // 'upstream "api" could not be reached: connection refused (ECONNREFUSED), 3 attempts; nothing was sent, the request was not processed'
 */
export function failureDetail(failure: FailureClass, context: { readonly upstream: string; readonly attempts: number; readonly timeoutMs: number }): string {
  const name = JSON.stringify(context.upstream);
  const attempts = `${context.attempts} attempt${context.attempts === 1 ? '' : 's'}`;
  const code = failure.code === undefined ? '' : ` (${failure.code})`;
  switch (failure.kind) {
    case 'unreachable':
      return `upstream ${name} could not be reached: ${failure.cause}${code}, ${attempts}; nothing was sent, the request was not processed`;
    case 'connect-timeout':
      return `upstream ${name} could not be reached: no connection within ${context.timeoutMs} ms${code}, ${attempts}; nothing was sent, the request was not processed`;
    case 'reset': {
      const when =
        failure.requestSent === false
          ? 'while sluice was sending the request'
          : failure.requestSent === true
            ? 'after receiving the request, before answering'
            : 'after the request was sent, before answering';
      return `upstream ${name} closed the connection ${when}${code}, ${attempts}; it may have been processed`;
    }
    case 'timeout':
      return `upstream ${name} sent no response headers within ${context.timeoutMs} ms${code}, ${attempts}; the request was sent and may have been processed`;
    case 'bad-response':
      return `upstream ${name} answered with an invalid HTTP response${code}, ${attempts}; the request may have been processed`;
    case 'cut':
      return `upstream ${name}: the response broke off after it had started${code}; the request was processed`;
    case 'client-gone':
      return `upstream ${name}: the client went away`;
  }
}
