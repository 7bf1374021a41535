import type { IncomingMessage } from 'node:http';
import { BodyTooLargeError, type PreparedBody } from '../forward/prepared-body.js';

/**
 * Reading a request body from the client's socket, made ready to forward (forward/prepared-body.ts):
 * bodies up to `retry.maxBodySize` are read whole before the request is queued, larger ones are
 * streamed once it is granted, and a body over `listen.bodyLimit` is refused.
 */

export type BodyResult = PreparedBody | { readonly kind: 'too-large' } | { readonly kind: 'aborted' };

export interface BodyLimits {
  /** Largest body accepted at all (`listen.bodyLimit`). */
  readonly limitBytes: number;
  /** Largest body buffered for replay (`retry.maxBodySize`); 0 streams everything. */
  readonly bufferBytes: number;
}

/** Reads or prepares the body of `req`. Requests without a body resolve synchronously-fast. */
export function prepareBody(req: IncomingMessage, limits: BodyLimits): BodyResult | Promise<BodyResult> {
  const lengthHeader = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
  if (!chunked && (contentLength === undefined || contentLength === 0)) {
    if (contentLength === 0) req.resume();
    return { kind: 'none' };
  }
  if (contentLength !== undefined && contentLength > limits.limitBytes) return { kind: 'too-large' };
  if (contentLength !== undefined && contentLength > limits.bufferBytes) {
    return { kind: 'stream', body: limitedStream([], 0, req, limits.limitBytes), contentLength };
  }
  return bufferBody(req, limits, contentLength);
}

function bufferBody(req: IncomingMessage, limits: BodyLimits, contentLength: number | undefined): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limits.limitBytes) {
        // Checked first: the replay buffer may be larger than the listener's limit.
        cleanup();
        req.pause();
        chunks.length = 0;
        return resolve({ kind: 'too-large' });
      }
      chunks.push(chunk);
      if (size > limits.bufferBytes) {
        // A chunked body bigger than the replay buffer: stream what we have, then the rest.
        cleanup();
        req.pause();
        resolve({ kind: 'stream', body: limitedStream(chunks, size, req, limits.limitBytes), contentLength });
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ kind: 'buffer', buffer: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
    };
    const onAbort = (): void => {
      cleanup();
      resolve({ kind: 'aborted' });
    };
    const onClose = (): void => {
      if (!req.complete) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

/** The already-read chunks, then the rest of `req`; throws BodyTooLargeError past `limitBytes`. */
async function* limitedStream(head: readonly Buffer[], headBytes: number, req: IncomingMessage, limitBytes: number): AsyncGenerator<Buffer> {
  yield* head;
  let size = headBytes;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw new BodyTooLargeError(limitBytes);
    yield chunk;
  }
}
