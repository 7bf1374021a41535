/**
 * The exchange's ClientReply over a Node ServerResponse: the head, the body with back-pressure, a
 * cut, sluice's own problems (answers.ts), and the close watch, including the connection of a
 * pipelined request. Node gives a pipelined request its response (and that response its `close`
 * event) only once the requests before it are answered, and the request's own `close` fires as
 * soon as its body is read: the socket is the only thing that says the client is gone. One
 * listener per socket, however deep the pipeline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ProblemCode } from '../core/errors.js';
import type { ClientReply, ProblemReply } from '../forward/client-reply.js';
import { rateLimitFields, sendProblem } from './answers.js';

/** Callbacks for the close of a connection that carries pipelined requests. */
const pipelinedOn = new WeakMap<Socket, Set<() => void>>();

function onConnectionClose(socket: Socket, callback: () => void): () => void {
  let callbacks = pipelinedOn.get(socket);
  if (!callbacks) {
    const set = new Set<() => void>();
    callbacks = set;
    pipelinedOn.set(socket, set);
    socket.once('close', () => {
      pipelinedOn.delete(socket);
      for (const fn of set) fn();
    });
  }
  callbacks.add(callback);
  return () => callbacks.delete(callback);
}

export class NodeReply implements ClientReply {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.#req = req;
    this.#res = res;
  }

  get headersSent(): boolean {
    return this.#res.headersSent;
  }

  get statusCode(): number {
    return this.#res.statusCode;
  }

  writeHead(status: number, headers: readonly string[]): void {
    this.#res.writeHead(status, headers as string[]);
  }

  write(chunk: Buffer): boolean {
    return this.#res.write(chunk);
  }

  onDrain(fn: () => void): void {
    this.#res.once('drain', fn);
  }

  end(): void {
    this.#res.end();
  }

  destroy(err: Error): void {
    this.#res.destroy(err);
  }

  sendProblem(code: ProblemCode, detail: string, options: ProblemReply = {}): void {
    const { retryAfterMs, close, rateLimit } = options;
    const headers = rateLimit === undefined ? undefined : rateLimitFields(rateLimit.policy, retryAfterMs ?? 0, rateLimit.ratePerSec);
    sendProblem(this.#res, code, detail, { retryAfterMs, close, headers });
  }

  onClose(fn: () => void): () => void {
    this.#res.once('close', fn);
    // Behind another request on its connection (pipelined): no response socket yet.
    const unwatchConnection = this.#res.socket === null && !this.#req.socket.destroyed ? onConnectionClose(this.#req.socket, fn) : undefined;
    return () => {
      this.#res.off('close', fn);
      unwatchConnection?.();
    };
  }
}
