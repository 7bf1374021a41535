/**
 * The one log line of a client request (at info: upstream, method, the path without its query,
 * status, outcome, attempts, queue and upstream milliseconds), and the header paths every log line
 * redacts: the secret headers and every `setHeaders` name of the configuration.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { SECRET_HEADERS, pathWithoutQuery } from '../core/http-rules.js';
import type { Exchange } from '../forward/exchange.js';

/** Writes the request line of a finished exchange. */
export function logRequest(logger: Logger, exchange: Exchange): void {
  if (!logger.isLevelEnabled('info')) return;
  logger.info(
    {
      upstream: exchange.upstream.name,
      method: exchange.method,
      path: pathWithoutQuery(exchange.request.url),
      status: exchange.status,
      outcome: exchange.outcome,
      attempts: exchange.attempts,
      queueMs: Math.round(exchange.queueMs),
      upstreamMs: exchange.upstreamMs === undefined ? undefined : Math.round(exchange.upstreamMs),
    },
    'request',
  );
}

/** The redacted header paths of every log line (README, Operations). */
export function redactPaths(config: Config): string[] {
  const names = new Set(SECRET_HEADERS);
  for (const upstream of config.upstreams) for (const name of Object.keys(upstream.setHeaders)) names.add(name.toLowerCase());
  return [...names].flatMap((name) => [`headers["${name}"]`, `req.headers["${name}"]`, `res.headers["${name}"]`]);
}
