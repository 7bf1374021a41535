/**
 * `npm run load:memory`: the inputs of the memory sizing formula (docs/deployment.md, the chart's
 * resources): resident memory of `node dist/cli.js` at rest, per idle key, per queued request and
 * per MB of queued request bodies. Each part runs in a fresh sluice process so that one part's
 * garbage does not count in the next:
 *
 *   rest    started, 200 requests on one key, 3 s of quiet;
 *   keys    requests with distinct keys ({header.x-key} at 1/h, burst 1: no bucket refills, so every
 *           key stays remembered), sampled after 10,000, 50,000 and 100,000 keys (the default
 *           keys.maxIdle), each after 3 s of quiet;
 *   queued  requests without a body held in the queue behind a concurrency of 1 whose one attempt
 *           the upstream never answers, one client connection each, as clients usually send them,
 *           sampled at 1,000, 5,000 and 10,000 (the default queue.maxSize);
 *   bodies  1,000 queued POSTs with a 64 KiB body each (62.5 MiB), on the same kind of queue.
 *
 * RSS is VmRSS of /proc/<pid>/status (what the kernel charges to the container's memory cgroup,
 * page cache aside); heap is nodejs_heap_size_used_bytes from /metrics. Prints a table and the
 * per-unit costs; `--json` prints them as JSON. Exit 0 when every part ran.
 *
 *   npm run load:memory -- [--json] [--body-kib 64] [--bodies 1000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    'body-kib': { type: 'string', default: '64' },
    bodies: { type: 'string', default: '1000' },
  },
});
const BODY_BYTES = Number(values['body-kib']) * 1024;
const BODY_COUNT = Number(values.bodies);
const KEY_MARKS = [10_000, 50_000, 100_000];
const QUEUE_MARKS = [1_000, 5_000, 10_000];
const SETTLE_MS = 3000;
const MIB = 1024 * 1024;
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
const mib = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;

interface Sample {
  readonly label: string;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

/** A plain upstream on 127.0.0.1 that answers every request at once. */
async function startUpstream(): Promise<{ server: Server; url: string }> {
  // Requests under /q/ are held until their connection closes: they keep sluice's one slot busy.
  const server = createServer((req, res) => {
    req.resume();
    if (req.url?.startsWith('/q/')) return;
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no upstream address');
  return { server, url: `http://127.0.0.1:${address.port}` };
}

class Sluice {
  readonly child: ChildProcess;
  proxyPort = 0;
  adminPort = 0;
  #out = '';

  constructor(configFile: string) {
    this.child = spawn(process.execPath, [CLI, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      if (this.#out.length < 1_000_000) this.#out += chunk.toString();
    });
    this.child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  }

  async started(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      for (const line of this.#out.split('\n')) {
        if (!line.includes('sluice is listening')) continue;
        const log = JSON.parse(line) as { proxy?: string; admin?: string; proxyPort?: number; adminPort?: number };
        const port = (value: unknown): number => Number(/:(\d+)\/?$/.exec(String(value))?.[1] ?? value);
        this.proxyPort = port(log.proxyPort ?? log.proxy);
        this.adminPort = port(log.adminPort ?? log.admin);
        if (this.proxyPort > 0 && this.adminPort > 0) return;
      }
      await sleep(50);
    }
    throw new Error(`sluice did not start:\n${this.#out.slice(0, 2000)}`);
  }

  async sample(label: string): Promise<Sample> {
    const rssKib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'))?.[1]);
    const metrics = await (await fetch(`http://127.0.0.1:${this.adminPort}/metrics`)).text();
    const heap = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics)?.[1]);
    return { label, rssBytes: rssKib * 1024, heapUsedBytes: heap };
  }

  async gauge(name: string): Promise<number> {
    const metrics = await (await fetch(`http://127.0.0.1:${this.adminPort}/metrics`)).text();
    return [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
  }

  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await new Promise((resolveExit) => this.child.once('exit', resolveExit));
  }
}

async function withSluice<T>(config: string, body: (sluice: Sluice) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-memory-'));
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, config);
  const sluice = new Sluice(file);
  try {
    await sluice.started();
    return await body(sluice);
  } finally {
    await sluice.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `count` requests, `concurrency` at a time, each answered before the next on its connection. */
async function requests(port: number, count: number, concurrency: number, request: (i: number) => RequestInit & { path: string }): Promise<number> {
  let next = 0;
  let ok = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const { path, ...init } = request(i);
      const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
      await response.arrayBuffer();
      if (response.status === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ok;
}

/** Opens one connection per request and leaves the requests waiting in sluice's queue. */
async function queueRequests(port: number, from: number, to: number, bodyBytes: number, sockets: Socket[]): Promise<void> {
  const body = Buffer.alloc(bodyBytes, 'x');
  for (let i = from; i < to; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume();
    const head =
      bodyBytes > 0
        ? `POST /q/${i} HTTP/1.1\r\nhost: sluice\r\ncontent-type: application/octet-stream\r\ncontent-length: ${bodyBytes}\r\n\r\n`
        : `GET /q/${i} HTTP/1.1\r\nhost: sluice\r\n\r\n`;
    socket.write(head);
    if (bodyBytes > 0) socket.write(body);
    sockets.push(socket);
    if (i % 200 === 199) await sleep(5);
  }
}

async function waitForQueue(sluice: Sluice, depth: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if ((await sluice.gauge('sluice_queue_depth')) >= depth) return;
    await sleep(250);
  }
  throw new Error(`the queue did not reach ${depth} (at ${await sluice.gauge('sluice_queue_depth')})`);
}

const header = (upstream: string, rest: string): string => `# written by load/memory-sizing.ts
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
log: { level: info }
shutdown: { grace: 1s }
upstreams:
  - name: api
    prefix: /
    target: ${upstream}
${rest}`;

const upstream = await startUpstream();
const samples: Sample[] = [];
const progress = (text: string): void => void process.stderr.write(`memory-sizing: ${text}\n`);

// rest + idle keys
await withSluice(
  header(
    upstream.url,
    `    limits:
      - key: "{header.x-key}"
        rate: 1/h
        burst: 1
`,
  ),
  async (sluice) => {
    await requests(sluice.proxyPort, 200, 10, () => ({ path: '/warm', headers: { 'x-key': 'warm' } }));
    await sleep(SETTLE_MS);
    samples.push(await sluice.sample('at rest (after 200 requests)'));
    let done = 0;
    for (const mark of KEY_MARKS) {
      progress(`idle keys: ${done} -> ${mark}`);
      const first = done;
      const ok = await requests(sluice.proxyPort, mark - done, 50, (i) => ({ path: `/k/${first + i}`, headers: { 'x-key': `key-${first + i}` } }));
      if (ok !== mark - done) throw new Error(`${mark - done - ok} of the idle-key requests failed`);
      done = mark;
      await sleep(SETTLE_MS);
      samples.push({ ...(await sluice.sample(`${mark} idle keys`)), label: `${mark} idle keys (sluice_keys ${await sluice.gauge('sluice_keys')})` });
    }
  },
);

const queueConfig = header(
  upstream.url,
  `    timeout: 1h
    limits:
      - concurrency: 1
    queue: { maxSize: 20000, maxWait: 1d }
`,
);

// queued requests without a body
await withSluice(queueConfig, async (sluice) => {
  await requests(sluice.proxyPort, 1, 1, () => ({ path: '/first' }));
  await sleep(SETTLE_MS);
  samples.push(await sluice.sample('queue: at rest'));
  const sockets: Socket[] = [];
  let done = 0;
  for (const mark of QUEUE_MARKS) {
    progress(`queued: ${done} -> ${mark}`);
    await queueRequests(sluice.proxyPort, done, mark, 0, sockets);
    await waitForQueue(sluice, mark - 1);
    done = mark;
    await sleep(SETTLE_MS);
    samples.push(await sluice.sample(`${mark} queued, no body`));
  }
  for (const socket of sockets) socket.destroy();
});

// queued requests with bodies
await withSluice(queueConfig, async (sluice) => {
  await requests(sluice.proxyPort, 1, 1, () => ({ path: '/first' }));
  await sleep(SETTLE_MS);
  samples.push(await sluice.sample('bodies: at rest'));
  const sockets: Socket[] = [];
  progress(`bodies: ${BODY_COUNT} x ${BODY_BYTES / 1024} KiB`);
  await queueRequests(sluice.proxyPort, 0, BODY_COUNT, BODY_BYTES, sockets);
  await waitForQueue(sluice, BODY_COUNT - 1);
  await sleep(SETTLE_MS);
  samples.push(await sluice.sample(`${BODY_COUNT} queued, ${BODY_BYTES / 1024} KiB body each`));
  for (const socket of sockets) socket.destroy();
});
upstream.server.close();

const at = (prefix: string): Sample => {
  const found = samples.find((s) => s.label.startsWith(prefix));
  if (!found) throw new Error(`no sample ${prefix}`);
  return found;
};
const rest = at('at rest');
const keys = at(`${KEY_MARKS.at(-1)} idle keys`);
const queueRest = at('queue: at rest');
const queued = at(`${QUEUE_MARKS.at(-1)} queued`);
const bodiesRest = at('bodies: at rest');
const bodies = at(`${BODY_COUNT} queued, ${BODY_BYTES / 1024} KiB body`);
const perQueuedBytes = (queued.rssBytes - queueRest.rssBytes) / (QUEUE_MARKS.at(-1) as number);
const bodyMib = (BODY_COUNT * BODY_BYTES) / MIB;
const result = {
  node: process.version,
  samples: samples.map((s) => ({ ...s, rssMiB: mib(s.rssBytes), heapUsedMiB: mib(s.heapUsedBytes) })),
  restRssMiB: mib(rest.rssBytes),
  perIdleKeyBytes: Math.round((keys.rssBytes - rest.rssBytes) / (KEY_MARKS.at(-1) as number)),
  perQueuedRequestBytes: Math.round(perQueuedBytes),
  perBodyMiBOfRss: Math.round(((bodies.rssBytes - bodiesRest.rssBytes - BODY_COUNT * perQueuedBytes) / MIB / bodyMib) * 100) / 100,
};

if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  process.stdout.write(`sluice memory (${process.version}; RSS = VmRSS, heap = nodejs_heap_size_used_bytes)\n\n`);
  process.stdout.write(`| moment | RSS MiB | heap used MiB |\n| --- | --- | --- |\n`);
  for (const s of result.samples) process.stdout.write(`| ${s.label} | ${s.rssMiB} | ${s.heapUsedMiB} |\n`);
  process.stdout.write(
    `\nat rest ${result.restRssMiB} MiB; per idle key ${result.perIdleKeyBytes} B; per queued request ${result.perQueuedRequestBytes} B; ` +
      `per MiB of queued bodies ${result.perBodyMiBOfRss} MiB of RSS\n`,
  );
}
