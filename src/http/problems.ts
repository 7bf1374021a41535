import type { ServerResponse } from 'node:http';

/**
 * The answers sluice gives of its own: one table from stable code to HTTP status and title
 * (README, "Answers"). Every one is `application/problem+json` (RFC 9457) and never carries a stack
 * trace.
 */
export const PROBLEMS = {
  SLUICE_QUEUE_FULL: { status: 429, title: 'Queue full' },
  SLUICE_QUEUE_TIMEOUT: { status: 429, title: 'Predicted wait too long' },
  SLUICE_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timed out' },
  SLUICE_UPSTREAM_UNREACHABLE: { status: 502, title: 'Upstream unreachable' },
  SLUICE_NO_ROUTE: { status: 404, title: 'No upstream for this path' },
  SLUICE_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  SLUICE_SHUTTING_DOWN: { status: 503, title: 'Shutting down' },
  SLUICE_BAD_REQUEST: { status: 400, title: 'Bad request' },
  SLUICE_STORE_UNAVAILABLE: { status: 503, title: 'Rate-limit store unavailable' },
  SLUICE_INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

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

/** `Retry-After` in whole seconds: rounded up, never 0 (a client reading 0 would retry at once). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
