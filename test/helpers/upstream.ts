import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  /** performance.now() when the request arrived. */
  readonly at: number;
}

/** What the scripted upstream does with a request: answer it, or do nothing (never answer). */
export type Script = (req: SeenRequest, res: ServerResponse, index: number) => void | Promise<void>;

/**
 * A real upstream on 127.0.0.1:0 that records every request (with its body), counts requests in
 * flight and their maximum, and answers by `script` (default: 200 with a JSON echo of method, url,
 * body length and SHA-256).
 */
export class ScriptedUpstream {
  readonly server: http.Server;
  readonly seen: SeenRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  script: Script;

  constructor(script: Script = echo) {
    this.script = script;
    this.server = http.createServer((req, res) => this.#handle(req, res));
    this.server.keepAliveTimeout = 30_000;
  }

  static async start(script?: Script): Promise<ScriptedUpstream> {
    const upstream = new ScriptedUpstream(script);
    await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const at = performance.now();
    const chunks: Buffer[] = [];
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.inFlight--;
    };
    res.once('finish', finish);
    res.once('close', finish);
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const seen: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        at,
      };
      this.seen.push(seen);
      void this.script(seen, res, this.seen.length - 1);
    });
  }
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The default script: 200 with {method, url, bytes, sha256} as JSON. */
export const echo: Script = (req, res) => {
  const body = JSON.stringify({ method: req.method, url: req.url, bytes: req.body.length, sha256: sha256(req.body) });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

/** Answers after `ms` milliseconds with `then`. */
export function delayed(ms: number, then: Script = echo): Script {
  return (req, res, index) => {
    setTimeout(() => void then(req, res, index), ms);
  };
}
