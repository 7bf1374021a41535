/**
 * A request's keys: what the key templates of an upstream's rules read (headers, query, path
 * segments, method, client address), parsed only when a template asks, and every key bounded in
 * length (a longer one is replaced by its digest, src/core/key-digest.ts).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { pathWithoutQuery } from '../core/http-rules.js';
import { boundedKey } from '../core/key-digest.js';
import type { KeySource, KeyTemplate } from '../core/key-template.js';

/** Keys longer than this are replaced by their digest, so a huge header cannot make a huge key. */
const MAX_KEY_LENGTH = 256;

/** Node's SHA-256 in base64url, for key digests. */
export function sha256Base64url(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** The request's key under each rule ('' for a rule without a template); [] when no rule has one. */
export function keysOf(templates: readonly (KeyTemplate | undefined)[], req: IncomingMessage, rest: string): string[] {
  if (templates.every((t) => t === undefined)) return [];
  const source = new RequestKeySource(req, rest);
  return templates.map((template) => (template ? boundedKey(template.render(source), MAX_KEY_LENGTH, sha256Base64url) : ''));
}

/** What key templates read, parsed only when a template asks for it. */
class RequestKeySource implements KeySource {
  readonly method: string;
  readonly #req: IncomingMessage;
  /** The URL after the upstream's prefix. */
  readonly #rest: string;
  #query: URLSearchParams | undefined;
  #segments: string[] | undefined;

  constructor(req: IncomingMessage, rest: string) {
    this.#req = req;
    this.#rest = rest;
    this.method = req.method ?? 'GET';
  }

  get clientIp(): string {
    return this.#req.socket.remoteAddress ?? '';
  }

  header(name: string): string | undefined {
    const value = this.#req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }

  query(name: string): string | undefined {
    if (!this.#query) {
      const at = this.#rest.indexOf('?');
      this.#query = new URLSearchParams(at === -1 ? '' : this.#rest.slice(at + 1));
    }
    return this.#query.get(name) ?? undefined;
  }

  pathSegment(n: number): string | undefined {
    if (!this.#segments) this.#segments = pathWithoutQuery(this.#rest).split('/').slice(1);
    return this.#segments[n - 1];
  }
}
