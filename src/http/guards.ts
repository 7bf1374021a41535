/**
 * Request guards: what the proxy refuses before it routes or queues a request, each as the problem
 * to answer. A transfer coding other than chunked (RFC 9112 §6.1: 501), a target that is not a
 * path (absolute form: sluice is not a forward proxy), more than one Host (RFC 9112 §3.2), and a
 * path that could leave the upstream's base path once decoded.
 */
import type { IncomingMessage } from 'node:http';
import { unsafePathReason } from '../core/safe-path.js';

/** A refused request: the problem to answer, the connection closed after it. */
export interface GuardRefusal {
  readonly code: 'SLUICE_NOT_IMPLEMENTED' | 'SLUICE_BAD_REQUEST';
  readonly detail: string;
}

/** What refuses `req` (whose target is `url`) before routing; undefined when nothing does. */
export function refusalBeforeRouting(req: IncomingMessage, url: string): GuardRefusal | undefined {
  if (!chunkedOnly(req)) {
    // Node's parser leaves only `X, chunked` here: sluice would forward the still-coded bytes as
    // the content.
    return { code: 'SLUICE_NOT_IMPLEMENTED', detail: 'the only transfer coding sluice accepts is chunked' };
  }
  // Checked before routing, so that `GET http://host/ HTTP/1.1` is refused as what it is.
  const notAPath = url.startsWith('/') ? undefined : unsafePathReason(url);
  if (notAPath !== undefined) return { code: 'SLUICE_BAD_REQUEST', detail: notAPath };
  // More than one Host is a 400, so no front proxy can route by another one.
  if (hostLines(req.rawHeaders) > 1) return { code: 'SLUICE_BAD_REQUEST', detail: 'more than one Host header' };
  return undefined;
}

/**
 * Why the part of the URL after the upstream's prefix is unsafe to forward, or undefined. `/api`
 * and `/api?x=1` under prefix `/api` mean the upstream's root: checked as `/` + rest.
 */
export function unsafeRestReason(rest: string): string | undefined {
  return unsafePathReason(rest === '' || rest.startsWith('?') ? `/${rest}` : rest);
}

/** Whether `req` announces a body (the connection is closed after a refusal that does not read it). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
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
