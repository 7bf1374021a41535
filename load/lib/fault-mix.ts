/**
 * A mixed fault load for "nothing lost": an upstream that misbehaves in every way sluice knows of,
 * clients that give up at random, and the bookkeeping that checks every accepted request got
 * exactly one answer. Used by test/security/nothing-lost.test.ts (20 s, sluice in-process),
 * `npm run load:nothing-lost` (60 s) and `npm run load:soak` (10 min), sluice in its own process.
 *
 * Every request carries its own id in its path (`/mix/r/<id>`), so sluice's one log line per
 * request (`"msg":"request"`, with the path) says which requests it accepted and finished, and how
 * often: exactly once each is the claim.
 */
import diagnostics from 'node:diagnostics_channel';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';

/** What the faulty upstream does with one request. */
export type Behaviour = 'ok' | 'slow' | 'stream' | '429' | '503-retry-after' | '503' | '500' | 'reset-before' | 'reset-mid' | 'stall' | 'silent';

/** Relative weights of the behaviours (a weighted draw per request). */
export const DEFAULT_MIX: Readonly<Record<Behaviour, number>> = {
  ok: 40,
  slow: 12,
  stream: 6,
  '429': 10,
  '503-retry-after': 5,
  '503': 4,
  '500': 5,
  'reset-before': 5,
  'reset-mid': 5,
  stall: 4,
  silent: 4,
};

/** A small seeded PRNG (mulberry32), so a run can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function weighted<T extends string>(weights: Readonly<Record<T, number>>, random: () => number): T {
  const entries = Object.entries(weights) as [T, number][];
  let at = random() * entries.reduce((sum, [, w]) => sum + w, 0);
  for (const [name, weight] of entries) {
    at -= weight;
    if (at < 0) return name;
  }
  return (entries.at(-1) as [T, number])[0];
}

/** The upstream of the mix: plain node:http, a weighted random behaviour per request. */
export class FaultyUpstream {
  readonly server: http.Server;
  readonly counts = new Map<Behaviour, number>();
  readonly #random: () => number;
  readonly #mix: Readonly<Record<Behaviour, number>>;
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(seed: number, mix: Readonly<Record<Behaviour, number>>) {
    this.#random = seededRandom(seed);
    this.#mix = mix;
    this.server = http.createServer((req, res) => this.#handle(req, res));
    this.server.keepAliveTimeout = 10_000;
  }

  static async start(options: { seed?: number; mix?: Readonly<Record<Behaviour, number>>; port?: number } = {}): Promise<FaultyUpstream> {
    const upstream = new FaultyUpstream(options.seed ?? 1, options.mix ?? DEFAULT_MIX);
    await new Promise<void>((resolve) => upstream.server.listen(options.port ?? 0, '127.0.0.1', resolve));
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** An outage: stops listening (connections refused, open ones cut) for `ms`, then listens again on the same port. */
  async outage(ms: number): Promise<void> {
    const { port } = this.server.address() as AddressInfo;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise((resolve) => setTimeout(resolve, ms));
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }

  #later(ms: number, then: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      then();
    }, ms);
    this.#timers.add(timer);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const behaviour = weighted(this.#mix, this.#random);
    this.counts.set(behaviour, (this.counts.get(behaviour) ?? 0) + 1);
    const body = JSON.stringify({ ok: true, path: req.url });
    const answer = (status: number, headers: Record<string, string> = {}): void => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
      res.end(body);
    };
    switch (behaviour) {
      case 'ok':
        return answer(200);
      case 'slow':
        return this.#later(20 + Math.floor(this.#random() * 400), () => answer(200));
      case 'stream': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let left = 5;
        const tick = (): void => {
          if (res.destroyed) return;
          if (left-- === 0) return void res.end('end\n');
          res.write(`chunk ${left}\n`);
          this.#later(30, tick);
        };
        return tick();
      }
      case '429':
        return answer(429, { 'retry-after': '0' });
      case '503-retry-after':
        return answer(503, { 'retry-after': '0' });
      case '503':
        return answer(503);
      case '500':
        return answer(500);
      case 'reset-before':
        return void res.socket?.destroy();
      case 'reset-mid':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
        res.write('partial ');
        return this.#later(10, () => res.socket?.destroy());
      case 'stall':
        // Headers and a first chunk, then nothing: sluice's bodyTimeout ends it.
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
        return void res.write('stalls ');
      case 'silent':
        // No answer at all: sluice's timeout ends the attempt.
        return;
    }
  }
}

/** sluice's configuration for the mix (the listen/admin lines are for spawnSluice). */
export function faultMixConfig(upstreamUrl: string, options: { logLevel?: string } = {}): string {
  return `# written by load/lib/fault-mix.ts
listen: { host: 127.0.0.1, port: 0, bodyLimit: 64kb, headersTimeout: 5s, requestTimeout: 10s }
admin: { host: 127.0.0.1, port: 0 }
shutdown: { grace: 2s }
log: { level: ${options.logLevel ?? 'info'} }
upstreams:
  - name: mix
    prefix: /mix
    target: ${upstreamUrl}
    timeout: 500ms
    bodyTimeout: 500ms
    limits:
      - rate: 400/s
        burst: 20
        concurrency: 48
      - key: "{header.x-key}"
        rate: 40/s
        burst: 4
        concurrency: 6
    queue: { maxSize: 300, maxPerKey: 40, maxWait: 2s }
    retry:
      attempts: 3
      on: [429, 503, timeout, connect, reset]
      backoff: { base: 10ms, max: 200ms }
    keys: { maxIdle: 1000 }
`;
}

/** How one client request ended, as the client saw it. */
export type ClientOutcome =
  /** The upstream's answer, relayed whole (any status; it carries Sluice-Attempts). */
  | 'ok'
  /** One of sluice's own answers (problem+json: 429, 502, 503, 504, 413). */
  | 'refused'
  /** The connection broke or the answer was cut (sluice cuts a response that broke mid-way). */
  | 'error'
  /** The client gave up (aborted) before the answer was complete. */
  | 'aborted';

export interface ClientTally {
  readonly sent: number;
  readonly outcomes: Record<ClientOutcome, number>;
  /** Relayed or refused answers by status. */
  readonly byStatus: Record<string, number>;
  /** The outcome of every request by id. */
  readonly byId: Map<string, ClientOutcome>;
  /** Ids of the requests whose head the client wrote to its connection (undici's sendHeaders). */
  readonly headersSent: Set<string>;
  /** Requests still without an outcome when the run's grace ran out (must be 0). */
  readonly hung: number;
}

export interface ClientLoadOptions {
  readonly proxyUrl: string;
  readonly durationMs: number;
  readonly concurrency: number;
  readonly seed?: number;
  /** Keys used (x-key), drawn at random; default 40. */
  readonly keys?: number;
  /** Fraction of requests the client aborts after 50-1000 ms; default 0.05. */
  readonly abortFraction?: number;
  /** Fraction of requests that are POSTs with a body over bodyLimit (64kb); default 0.01. */
  readonly oversizeFraction?: number;
  /** Called every 1000 requests and at the end. */
  readonly onProgress?: (tally: ClientTally) => void;
  /** How long to wait for the last answers after the run (default 15 s). */
  readonly graceMs?: number;
}

/**
 * Runs `concurrency` clients for `durationMs`, each sending one request after another (GET, or a
 * small POST, now and then an oversized one), and aborting a few at random. Returns what each
 * request came to.
 */
export async function runClients(options: ClientLoadOptions): Promise<ClientTally> {
  const random = seededRandom(options.seed ?? 2);
  const agent = new Agent({ connections: options.concurrency, keepAliveTimeout: 10_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const outcomes: Record<ClientOutcome, number> = { ok: 0, refused: 0, error: 0, aborted: 0 };
  const byStatus: Record<string, number> = {};
  const byId = new Map<string, ClientOutcome>();
  const headersSent = new Set<string>();
  let sent = 0;
  let pending = 0;
  const tally = (): ClientTally => ({ sent, outcomes, byStatus, byId, headersSent, hung: pending });
  // A request whose head was written reached sluice: if the client then aborts it, sluice must
  // still count it (as cancelled, or as whatever it came to).
  const onSendHeaders = (message: unknown): void => {
    const id = /^\/mix\/r\/(.+)$/.exec((message as { request: { path: string } }).request.path)?.[1];
    if (id !== undefined) headersSent.add(id);
  };
  diagnostics.subscribe('undici:client:sendHeaders', onSendHeaders);
  const keys = options.keys ?? 40;
  const abortFraction = options.abortFraction ?? 0.05;
  const oversizeFraction = options.oversizeFraction ?? 0.01;
  const end = performance.now() + options.durationMs;
  const smallBody = Buffer.alloc(512, 'b');
  const bigBody = Buffer.alloc(80 * 1024, 'B');

  const one = async (id: string): Promise<void> => {
    const roll = random();
    const method = roll < oversizeFraction ? 'POST' : roll < 0.2 ? 'POST' : 'GET';
    const body = roll < oversizeFraction ? bigBody : method === 'POST' ? smallBody : undefined;
    const controller = new AbortController();
    const abortAfterMs = random() < abortFraction ? 50 + Math.floor(random() * 950) : undefined;
    const timer = abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), abortAfterMs);
    let outcome: ClientOutcome;
    let status: number | undefined;
    try {
      const response = await request(`${options.proxyUrl}/mix/r/${id}`, {
        dispatcher: agent,
        method: method as 'GET',
        headers: { 'x-key': `k${Math.floor(random() * keys)}` },
        body,
        signal: controller.signal,
      });
      status = response.statusCode;
      await response.body.arrayBuffer();
      outcome = String(response.headers['content-type']).startsWith('application/problem+json') ? 'refused' : 'ok';
    } catch {
      outcome = controller.signal.aborted ? 'aborted' : 'error';
    }
    clearTimeout(timer);
    outcomes[outcome]++;
    if (status !== undefined && outcome !== 'aborted') byStatus[`${status} ${outcome}`] = (byStatus[`${status} ${outcome}`] ?? 0) + 1;
    byId.set(id, outcome);
  };

  const worker = async (w: number): Promise<void> => {
    for (let i = 0; performance.now() < end; i++) {
      sent++;
      pending++;
      await one(`${w}-${i}`);
      pending--;
      if (sent % 1000 === 0) options.onProgress?.(tally());
    }
  };
  const workers = Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  // Every request ends by itself (sluice never leaves a client hanging); the grace only bounds the run.
  let graceTimer: NodeJS.Timeout | undefined;
  await Promise.race([workers, new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, options.durationMs + (options.graceMs ?? 15_000))))]);
  clearTimeout(graceTimer);
  diagnostics.unsubscribe('undici:client:sendHeaders', onSendHeaders);
  await agent.destroy();
  options.onProgress?.(tally());
  return tally();
}

/** Request ids of sluice's per-request log lines (`/mix/r/<id>`), with how many lines each had. */
export function loggedRequests(lines: Iterable<string>): { ids: Map<string, number>; byOutcome: Record<string, number> } {
  const ids = new Map<string, number>();
  const byOutcome: Record<string, number> = {};
  for (const line of lines) {
    if (!line.includes('"msg":"request"')) continue;
    const entry = JSON.parse(line) as { path?: string; outcome?: string };
    const id = /^\/mix\/r\/(.+)$/.exec(entry.path ?? '')?.[1];
    if (id === undefined) continue;
    ids.set(id, (ids.get(id) ?? 0) + 1);
    byOutcome[entry.outcome ?? '?'] = (byOutcome[entry.outcome ?? '?'] ?? 0) + 1;
  }
  return { ids, byOutcome };
}

export interface Reconciliation {
  /** Client-side: ok + refused + errors + aborted (after sluice accepted them). */
  readonly clientAccounted: number;
  /** sluice_requests_total summed over outcomes. */
  readonly sluiceTotal: number;
  /** Requests logged by sluice more than once (must be 0). */
  readonly loggedTwice: number;
  /**
   * Requests sluice had (the client got an answer or an error, or wrote the request before aborting
   * it) that it never logged (must be 0).
   */
  readonly answeredNotLogged: number;
  /** Requests sluice logged that the client has no outcome for (must be 0). */
  readonly loggedUnknown: number;
  /** Aborted by the client before it had written them (never reached sluice; reported, not counted). */
  readonly abortedBeforeAccepted: number;
  readonly hung: number;
  /** Everything matches. */
  readonly ok: boolean;
}

/** Compares the client's tally with sluice's log lines and its sluice_requests_total. */
export function reconcile(tally: ClientTally, logged: ReturnType<typeof loggedRequests>, sluiceTotal: number): Reconciliation {
  let loggedTwice = 0;
  let answeredNotLogged = 0;
  let loggedUnknown = 0;
  let abortedBeforeAccepted = 0;
  for (const [id, count] of logged.ids) {
    if (count > 1) loggedTwice++;
    if (!tally.byId.has(id)) loggedUnknown++;
  }
  for (const [id, outcome] of tally.byId) {
    if (logged.ids.has(id)) continue;
    if (outcome === 'aborted' && !tally.headersSent.has(id)) abortedBeforeAccepted++;
    else answeredNotLogged++;
  }
  const { ok, refused, error, aborted } = tally.outcomes;
  const clientAccounted = ok + refused + error + aborted - abortedBeforeAccepted;
  return {
    clientAccounted,
    sluiceTotal,
    loggedTwice,
    answeredNotLogged,
    loggedUnknown,
    abortedBeforeAccepted,
    hung: tally.hung,
    ok: clientAccounted === sluiceTotal && loggedTwice === 0 && answeredNotLogged === 0 && loggedUnknown === 0 && tally.hung === 0,
  };
}
