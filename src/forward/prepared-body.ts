/**
 * A request body made ready to forward, as the exchange consumes it: nothing, a buffer (which can
 * be sent again on a retry), or a stream (sent once, never retried). Reading it from the client's
 * socket is the listener's (src/http/request-body.ts).
 *
 * Bodies up to `retry.maxBodySize` are read whole before the request is queued (as nginx does with
 * `proxy_request_buffering on`): they can be sent again on a retry, and a client that uploads
 * slowly holds no token and no concurrency slot while it does. Larger bodies are streamed once the
 * request is granted.
 */
import { SluiceError } from '../core/errors.js';

export type PreparedBody =
  | { readonly kind: 'none' }
  | { readonly kind: 'buffer'; readonly buffer: Buffer }
  /** Throws BodyTooLargeError into the upstream request when it passes the listener's limit. */
  | { readonly kind: 'stream'; readonly body: AsyncIterable<Buffer>; readonly contentLength: number | undefined };

/** Thrown into the upstream request when a streamed body passes the listener's limit. */
export class BodyTooLargeError extends SluiceError {
  declare readonly code: 'SLUICE_BODY_TOO_LARGE';
  constructor(limitBytes: number) {
    super('SLUICE_BODY_TOO_LARGE', `request body exceeds ${limitBytes} bytes`);
  }
}
