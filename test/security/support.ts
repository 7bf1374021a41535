import { readdirSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';

/**
 * Helpers of the security tests: a decoy server that must never be contacted, a raw TCP client
 * for requests a client library would refuse or normalize, a log capture, and the process's file
 * descriptors and active resources for leak checks.
 */

/**
 * A TCP server on 127.0.0.1:0 that must never be contacted: it records every connection and every
 * byte it receives, and answers nothing.
 */
export class Decoy {
  readonly server: net.Server;
  connections = 0;
  received = '';
  readonly #sockets = new Set<net.Socket>();

  private constructor() {
    this.server = net.createServer((socket) => {
      this.connections++;
      this.#sockets.add(socket);
      socket.on('data', (chunk: Buffer) => (this.received += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(): Promise<Decoy> {
    const decoy = new Decoy();
    await new Promise<void>((resolve) => decoy.server.listen(0, '127.0.0.1', resolve));
    return decoy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `127.0.0.1:<port>` */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * One raw TCP connection: write bytes exactly as given, read what comes back, see when the server
 * closes it.
 */
export class RawConnection {
  readonly socket: net.Socket;
  readonly openedAt = performance.now();
  /** performance.now() when the server's first byte and the close arrived. */
  firstByteAt: number | undefined;
  closedAt: number | undefined;
  readonly #chunks: Buffer[] = [];
  readonly #closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.firstByteAt ??= performance.now();
      this.#chunks.push(chunk);
    });
    // EPIPE / ECONNRESET when the server closes while we write: what the tests look at is the answer.
    socket.on('error', () => undefined);
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedAt = performance.now();
        resolve();
      }),
    );
  }

  static async open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    const socket = net.connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  /** Everything received so far, as latin1 text. */
  get text(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }

  /** The status code of the first response received, or undefined before one has arrived. */
  get status(): number | undefined {
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(this.text);
    return match ? Number(match[1]) : undefined;
  }

  /** Writes unless the socket is gone; returns whether it was written. */
  write(data: string | Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(data);
    return true;
  }

  /** Resolves true once the server closed the connection, false after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([this.#closed.then(() => true), timedOut]);
    clearTimeout(timer);
    return result;
  }

  /** Resolves true once the received text matches `pattern`, false after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (!pattern.test(this.text)) {
      if (this.closed || performance.now() > until) return pattern.test(this.text);
      await sleep(5);
    }
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Sends `data` on a fresh connection and returns it once the server closed it (or after `timeoutMs`). */
export async function rawRoundTrip(url: string, data: string | Buffer, timeoutMs = 5_000): Promise<RawConnection> {
  const connection = await RawConnection.open(url);
  connection.write(data);
  await connection.waitClosed(timeoutMs);
  connection.destroy();
  return connection;
}

/** The JSON body of the first response in `text` (after the blank line), or undefined. */
export function bodyOf(text: string): string {
  const end = text.indexOf('\r\n\r\n');
  return end === -1 ? '' : text.slice(end + 4);
}

/** A pino logger at `level` whose lines are kept in memory. */
export function captureLogs(level: pino.LevelWithSilent = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(line);
      callback();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** Open file descriptors of this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** This process's active resources (handles keeping the loop alive), counted by type. */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** Active timers (`Timeout` resources) of this process. */
export function activeTimers(): number {
  return activeResources().Timeout ?? 0;
}

/** Waits until `read()` is at most `limit`, checking every 50 ms; returns the last value read. */
export async function settleTo(read: () => number, limit: number, timeoutMs: number): Promise<number> {
  const until = performance.now() + timeoutMs;
  let value = read();
  while (value > limit && performance.now() < until) {
    await sleep(50);
    value = read();
  }
  return value;
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound and released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface ResourceCounts {
  /** Open file descriptors. */
  readonly fds: number;
  /** Active timers. */
  readonly timers: number;
  /** Every active resource (sockets, servers, timers, ...). */
  readonly resources: number;
}

export function resourceCounts(): ResourceCounts {
  return { fds: openFds(), timers: activeTimers(), resources: process.getActiveResourcesInfo().length };
}

/**
 * Leak check around `round` (which must clean up its own clients): runs it `warmups` times, takes
 * the baseline, runs it `rounds` times, then waits up to `settleMs` for the counts to come back
 * within `slack` of the baseline. A leak of one descriptor or timer per round shows as `rounds`.
 */
export async function leakCheck(
  round: (index: number) => Promise<void>,
  options: { warmups?: number; rounds?: number; slack?: number; settleMs?: number } = {},
): Promise<{ before: ResourceCounts; after: ResourceCounts; rounds: number }> {
  const { warmups = 2, rounds = 20, slack = 4, settleMs = 8_000 } = options;
  for (let i = 0; i < warmups; i++) await round(i);
  await sleep(100);
  const before = resourceCounts();
  for (let i = 0; i < rounds; i++) await round(warmups + i);
  const within = (counts: ResourceCounts): boolean =>
    counts.fds <= before.fds + slack && counts.timers <= before.timers + slack && counts.resources <= before.resources + slack;
  const until = performance.now() + settleMs;
  let after = resourceCounts();
  while (!within(after) && performance.now() < until) {
    await sleep(100);
    after = resourceCounts();
  }
  return { before, after, rounds };
}

/** Asserts that a leak check came back within `slack` of its baseline, showing both on failure. */
export function expectNoLeak(result: { before: ResourceCounts; after: ResourceCounts }, slack = 4): void {
  const { before, after } = result;
  const message = `before ${JSON.stringify(before)}, after ${JSON.stringify(after)}, active now: ${JSON.stringify(activeResources())}`;
  expect(after.fds, message).toBeLessThanOrEqual(before.fds + slack);
  expect(after.timers, message).toBeLessThanOrEqual(before.timers + slack);
  expect(after.resources, message).toBeLessThanOrEqual(before.resources + slack);
}
