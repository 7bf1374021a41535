import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP_HEADERS as HOP_BY_HOP } from '../core/http-rules.js';

/**
 * The headers of a forwarded request and of the response relayed back, made fit to forward:
 * hop-by-hop headers (src/core/http-rules.ts) are dropped in either direction, together with every
 * header the `Connection` header names. `expect` is answered by sluice itself (Node sends the 100
 * Continue), `host` is set to the target's. And the headers of an attempt as a log line shows them.
 */

const REQUEST_ONLY_DROPPED: ReadonlySet<string> = new Set(['host', 'expect']);

function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  const tokens = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const token = part.trim().toLowerCase();
    if (token && token !== 'close' && token !== 'keep-alive') tokens.add(token);
  }
  return tokens.size > 0 ? tokens : undefined;
}

export interface RequestHeaderOptions {
  /** Value of the Host header sent to the upstream. */
  readonly host: string;
  /** Lower-cased names and values set by configuration; they replace the client's. */
  readonly setHeaders: readonly (readonly [string, string])[];
  /** Drop the client's content-length (sluice sends a buffered body and undici frames it). */
  readonly dropContentLength: boolean;
}

/** The client's headers as a flat `[name, value, ...]` list for undici, made fit to forward. */
export function forwardRequestHeaders(rawHeaders: readonly string[], connection: string | string[] | undefined, options: RequestHeaderOptions): string[] {
  const named = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || REQUEST_ONLY_DROPPED.has(lower) || named?.has(lower)) continue;
    if (options.dropContentLength && lower === 'content-length') continue;
    if (options.setHeaders.length > 0 && options.setHeaders.some(([set]) => set === lower)) continue;
    out.push(name, rawHeaders[i + 1] as string);
  }
  out.push('host', options.host);
  for (const [name, value] of options.setHeaders) out.push(name, value);
  return out;
}

/** The upstream's response headers as a flat list for `writeHead`, hop-by-hop ones removed. */
export function forwardResponseHeaders(headers: IncomingHttpHeaders, extra: readonly string[]): string[] {
  const named = connectionTokens(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  for (const value of extra) out.push(value);
  return out;
}

/** A flat header list as an object for a log line, the values of `secret` names replaced. */
export function headersForLog(flat: readonly string[], secret: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = secret.has(name) ? '[redacted]' : (flat[i + 1] as string);
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
}
