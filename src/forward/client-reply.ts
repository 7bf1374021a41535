/**
 * How an exchange answers its client, as a port it declares: the listener implements it over a
 * Node ServerResponse (src/http/node-reply.ts); a test can implement it over a recorder, on a
 * manual clock. Back-pressure, the end, a cut, one of sluice's own problems, and the news that the
 * client went away all pass through it; the exchange never sees a socket.
 */
import type { ProblemCode } from '../core/errors.js';

/** How one of sluice's own problems is answered. */
export interface ProblemReply {
  /** For `Retry-After` (whole seconds, rounded up, at least 1). */
  readonly retryAfterMs?: number | undefined;
  /** Close the connection after answering (the request body was not read). */
  readonly close?: boolean | undefined;
  /** For the RateLimit fields of a 429: the policy's name, and the key's rate when one binds. */
  readonly rateLimit?: { readonly policy: string; readonly ratePerSec: number | undefined } | undefined;
}

export interface ClientReply {
  /** Whether the response head has been written. */
  readonly headersSent: boolean;
  /** The response's status: as written, or Node's default (200) before. */
  readonly statusCode: number;
  /** Writes the head: the status and a flat header list. Throws when Node refuses a header (invalid characters). */
  writeHead(status: number, headers: readonly string[]): void;
  /** Writes a body chunk; false when the client's buffer is full (`onDrain` says when it has room). */
  write(chunk: Buffer): boolean;
  /** Calls `fn` once, when the client's buffer has room again. */
  onDrain(fn: () => void): void;
  end(): void;
  /** Cuts the response: it had started and cannot be finished, so the client sees it broke. */
  destroy(err: Error): void;
  /** Answers with one of sluice's own problems; nothing once the head has been written or the response destroyed. */
  sendProblem(code: ProblemCode, detail: string, options?: ProblemReply): void;
  /**
   * Calls `fn` once, when the response closes or (a pipelined request still waiting for its turn)
   * its connection does: before the exchange has finished, the client went away. Returns the
   * function that stops watching.
   */
  onClose(fn: () => void): () => void;
}
