/**
 * The HTTP facts sluice relies on in several places, written once: which headers belong to one
 * connection, which carry secrets, which statuses say "the upstream did not get to your request",
 * which methods may be repeated, and how long a refused client should wait while sluice shuts down.
 */

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and are never forwarded, in either
 * direction (together with every header the `Connection` header names).
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Headers `setHeaders` may not set: the hop-by-hop ones (except the two `proxy-*` credentials
 * headers, which a configuration may set today), `host` (sluice sends the target's) and
 * `content-length` (undici frames the body).
 */
export const UNSETTABLE_HEADERS: ReadonlySet<string> = new Set([
  ...[...HOP_BY_HOP_HEADERS].filter((name) => name !== 'proxy-authenticate' && name !== 'proxy-authorization'),
  'host',
  'content-length',
]);

/** Headers whose values never reach a log line, whatever the configuration. */
export const SECRET_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

/** Statuses sluice treats as "the upstream did not get to your request" (retried when `retry.on` says so). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * A throttle: 429, or 503 with a Retry-After. The request was not processed, so any method may be
 * sent again, and the whole key pauses.
 */
export function isThrottle(status: number, hasRetryAfter: boolean): boolean {
  return status === 429 || (status === 503 && hasRetryAfter);
}

const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** True for the methods HTTP defines as idempotent. */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method);
}

/** The path of a request target without its query string (which may carry credentials: `?api_key=`). */
export function pathWithoutQuery(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Retry-After of the 503 a shutting-down sluice answers: try again (another replica) shortly. */
export const SHUTDOWN_RETRY_AFTER_MS = 1000;
