import net from 'node:net';
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import type { RunningSluice } from '../helpers/sluice.js';

/**
 * Small helpers shared by the I/O tests: a client, a metrics reader, and the window count the rate
 * tests assert with. Timings are `performance.now()` milliseconds, the clock the scripted upstream
 * stamps arrivals with.
 */

/** A client with its own connection pool (one connection per concurrent request). */
export function newAgent(): Agent {
  return new Agent({ keepAliveTimeout: 2_000, connect: { timeout: 5_000 } });
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** performance.now() when the request was started and when its body had been read. */
  readonly sentAt: number;
  readonly doneAt: number;
}

export interface SendOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** A Readable is sent chunked (no Content-Length). */
  readonly body?: Buffer | string | Readable;
  readonly signal?: AbortSignal;
}

/** Sends one request through `agent` and reads the whole answer. */
export async function send(agent: Agent, url: string, options: SendOptions = {}): Promise<Answer> {
  const sentAt = performance.now();
  const response = await request(url, {
    dispatcher: agent,
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers,
    body: options.body,
    signal: options.signal,
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, sentAt, doneAt: performance.now() };
}

/** The one value of a header (first of a list). */
export function header(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The Prometheus text of the admin listener. */
export async function scrape(adminUrl: string): Promise<string> {
  const response = await request(`${adminUrl}/metrics`);
  return response.body.text();
}

/**
 * The value of one sample in Prometheus text, matched by name and every given label; undefined
 * when there is no such sample.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(match[3]);
  }
  return undefined;
}

/** The largest number of instants in any half-open window `[t, t + windowMs)` that starts at one of them. */
export function maxInWindow(instants: readonly number[], windowMs: number): number {
  const sorted = [...instants].sort((a, b) => a - b);
  let best = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && (sorted[end] as number) < (sorted[start] as number) + windowMs) end++;
    best = Math.max(best, end - start);
  }
  return best;
}

/** Resolves once `condition` holds, checking every 5 ms; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A problem+json document as sluice writes it. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly [extension: string]: unknown;
}

/** Parses a problem+json answer, checking its media type. */
export function problemOf(answer: Answer): Problem {
  if (header(answer, 'content-type') !== 'application/problem+json') {
    throw new Error(`expected application/problem+json, got ${header(answer, 'content-type')} (${answer.status}: ${answer.text})`);
  }
  return JSON.parse(answer.text) as Problem;
}

export interface RawAnswer {
  readonly status: number;
  /** Header lines in the order received, names as sent. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/**
 * Writes `head` (request line and headers, CRLF-separated, without the blank line) and `body` on a
 * fresh TCP connection and reads the answer until the server closes it. For requests a client
 * library would refuse to send or would normalize: send `Connection: close`.
 */
export async function rawRequest(url: string, head: string, body = ''): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => resolve());
    socket.write(`${head}\r\n\r\n${body}`);
  });
  const text = Buffer.concat(chunks).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  return {
    status: Number(statusLine.split(' ')[1]),
    headers: lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon), line.slice(colon + 1).trim()] as const;
    }),
    body: text.slice(end + 4),
  };
}

/** The scheduler of one of a running sluice's upstreams (to wait for a queue to fill). */
export function schedulerOf(sluice: RunningSluice, index = 0): Scheduler {
  const upstream = sluice.app.upstreams[index];
  if (!upstream) throw new Error(`sluice has no upstream #${index}`);
  return upstream.scheduler;
}
