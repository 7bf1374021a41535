/**
 * sluice's errors and answers in one place: every stable `SLUICE_*` code, the table from the codes
 * sluice answers with to their HTTP status and title (README, "Answers sluice gives of its own"),
 * and the base class every error of sluice extends. How an answer is written (problem+json,
 * Retry-After) is the listener's: src/http/answers.ts.
 */

/**
 * The answers sluice gives of its own, by code. Every one is `application/problem+json`
 * (RFC 9457) and never carries a stack trace.
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
  SLUICE_NOT_IMPLEMENTED: { status: 501, title: 'Not implemented' },
  SLUICE_STORE_UNAVAILABLE: { status: 503, title: 'Rate-limit store unavailable' },
  SLUICE_INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<`SLUICE_${string}`, { readonly status: number; readonly title: string }>;

/** A code sluice answers a client with. */
export type ProblemCode = keyof typeof PROBLEMS;

/**
 * Codes of errors sluice handles itself and never answers with as such; each says what becomes
 * of it.
 */
export const INTERNAL_CODES = {
  SLUICE_CONFIG_INVALID: 'a configuration with problems: start-up and --check exit 2 listing them, a reload keeps the running configuration',
  SLUICE_CLIENT_GONE: 'an attempt aborted because its client went away: nothing is answered',
  SLUICE_ATTEMPT_TIMEOUT: 'an attempt without response headers in time: retried, or answered as SLUICE_UPSTREAM_TIMEOUT',
} as const satisfies Record<`SLUICE_${string}`, string>;

/** Every stable code of sluice. */
export type SluiceCode = ProblemCode | keyof typeof INTERNAL_CODES;

/** The base of every error sluice raises: a message for people and a stable code for programs. */
export class SluiceError extends Error {
  readonly code: SluiceCode;

  constructor(code: SluiceCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Whether `err` is a SluiceError with `code`. */
export function hasCode(err: unknown, code: SluiceCode): err is SluiceError {
  return err instanceof SluiceError && err.code === code;
}
