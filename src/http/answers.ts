import type { ServerResponse } from 'node:http';
import { PROBLEMS, type ProblemCode } from '../core/errors.js';

/**
 * How sluice writes its own answers on a raw Node response: problem+json (RFC 9457) with a stable
 * `type` URN, Retry-After in whole seconds, and the RateLimit fields of its 429s. The codes, their
 * statuses and titles are src/core/errors.ts.
 */

export interface ProblemDocument {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ProblemCode;
  readonly [extension: string]: unknown;
}

/** The problem document for `code`: `type` is a stable URN naming the code. */
export function problem(code: ProblemCode, detail: string, extensions: Record<string, unknown> = {}): ProblemDocument {
  const { status, title } = PROBLEMS[code];
  return { type: `urn:sluice:problem:${code.slice('SLUICE_'.length).toLowerCase().replaceAll('_', '-')}`, title, status, detail, code, ...extensions };
}

export interface ProblemOptions {
  /** Seconds for `Retry-After` (rounded up, at least 1). */
  readonly retryAfterMs?: number | undefined;
  readonly headers?: Readonly<Record<string, string>>;
  readonly extensions?: Record<string, unknown>;
  /** Close the connection after answering (the request body was not read). */
  readonly close?: boolean;
}

/** Writes a problem+json answer on a raw response. */
export function sendProblem(res: ServerResponse, code: ProblemCode, detail: string, options: ProblemOptions = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(problem(code, detail, options.extensions));
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...options.headers,
  };
  if (options.retryAfterMs !== undefined) headers['retry-after'] = retryAfterSeconds(options.retryAfterMs);
  if (options.close) headers.connection = 'close';
  res.writeHead(PROBLEMS[code].status, headers);
  res.end(body);
}

/**
 * The IETF draft's RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for one of sluice's own
 * 429s, so a well-behaved client can slow itself down: `RateLimit-Policy` gives the key's rate as a
 * quota per window (a window of 1 s, 1 min, 1 h or 1 day, the first that holds at least 10, for
 * precision), `RateLimit` says nothing is left until `t` seconds.
 */
export function rateLimitFields(policyName: string, retryAfterMs: number, ratePerSec: number | undefined): Record<string, string> {
  const name = JSON.stringify(policyName);
  const fields: Record<string, string> = { ratelimit: `${name};r=0;t=${retryAfterSeconds(retryAfterMs)}` };
  if (ratePerSec !== undefined && ratePerSec > 0 && Number.isFinite(ratePerSec)) {
    const windowSec = [1, 60, 3600, 86_400].find((w) => ratePerSec * w >= 10) ?? 86_400;
    fields['ratelimit-policy'] = `${name};q=${Math.max(1, Math.floor(ratePerSec * windowSec))};w=${windowSec}`;
  }
  return fields;
}

/** `Retry-After` in whole seconds: rounded up, never 0 (a client reading 0 would retry at once). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
