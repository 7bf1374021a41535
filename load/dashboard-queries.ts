/**
 * `npm run load:dashboard`: every query of dashboards/sluice.json run once against a real
 * Prometheus scraping a real sluice. Starts an upstream on 127.0.0.1 that answers some requests
 * 429 with Retry-After, `node dist/cli.js` in front of it (a global and a keyed rule), and the
 * `prometheus` binary (Debian's package) scraping sluice's /metrics every second with the labels
 * job, namespace and pod a Kubernetes scrape would add; sends traffic for --seconds, then runs each
 * variable query and each panel query with the variables set to this sluice, and prints how many
 * series each returned. Exit 0 when every query ran without an error (a query may return no series:
 * with the memory store, sluice_store_errors_total has none), 1 otherwise.
 *
 *   npm run load:dashboard -- [--seconds 40] [--prometheus /usr/bin/prometheus]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '40' }, prometheus: { type: 'string', default: 'prometheus' } } });
const SECONDS = Number(values.seconds);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VARIABLES: Record<string, string> = { job: 'sluice', namespace: 'apps', pod: 'sluice-0', upstream: '.*', __rate_interval: '15s' };
const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolveClose) => server.close(resolveClose));
  return port;
}

/** Answers 200 after 5 ms, or 429 with Retry-After: 1 to every 15th request. */
async function startUpstream(): Promise<{ server: Server; url: string }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    if (++n % 15 === 0) {
      res.writeHead(429, { 'retry-after': '1' }).end();
      return;
    }
    setTimeout(() => res.end('ok'), 5);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

function start(command: string, args: string[], label: string): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => void (err = (err + chunk.toString()).slice(-4000)));
  child.on('exit', (code) => {
    if (code !== null && code !== 0) process.stderr.write(`${label} exited ${code}:\n${err}\n`);
  });
  return child;
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await sleep(200);
  }
  throw new Error(`${url} did not answer`);
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'dashboards', 'sluice.json'), 'utf8')) as {
  panels: { title: string; targets: { expr: string; legendFormat: string }[] }[];
  templating: { list: { name: string; type: string; definition?: string }[] };
};
const substitute = (text: string): string => text.replace(/\$(__rate_interval|[a-z]+)\b/g, (_m, name: string) => VARIABLES[name] ?? `$${name}`);

const dir = await mkdtemp(join(tmpdir(), 'sluice-dashboard-'));
const upstream = await startUpstream();
const [proxyPort, adminPort, promPort] = [await freePort(), await freePort(), await freePort()];
await writeFile(
  join(dir, 'sluice.yaml'),
  `listen: { host: 127.0.0.1, port: ${proxyPort} }
admin: { host: 127.0.0.1, port: ${adminPort} }
log: { level: warn }
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    limits:
      - rate: 50/s
        burst: 10
      - key: "{header.x-account}"
        rate: 10/s
        burst: 2
        concurrency: 4
  - name: other
    prefix: /other
    target: ${upstream.url}
    limits: [{ rate: 20/s, burst: 5 }]
`,
);
await writeFile(
  join(dir, 'prometheus.yml'),
  `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: sluice
    static_configs:
      - targets: ['127.0.0.1:${adminPort}']
        labels: { namespace: apps, pod: sluice-0 }
`,
);
const sluice = start(process.execPath, [join(ROOT, 'dist', 'cli.js'), '--config', join(dir, 'sluice.yaml')], 'sluice');
const prometheus = start(
  values.prometheus,
  [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
  'prometheus',
);
let failures = 0;
let withData = 0;
try {
  await waitFor(`http://127.0.0.1:${adminPort}/readyz`);
  await waitFor(`http://127.0.0.1:${promPort}/-/ready`);
  process.stderr.write(`dashboard-queries: ${SECONDS} s of traffic\n`);
  const until = Date.now() + SECONDS * 1000;
  const client = async (i: number): Promise<void> => {
    while (Date.now() < until) {
      const path = i % 3 === 0 ? '/other/x' : `/api/x/${i}`;
      await fetch(`http://127.0.0.1:${proxyPort}${path}`, { headers: { 'x-account': `acct-${i % 5}` } })
        .then((r) => r.arrayBuffer())
        .catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: 30 }, (_, i) => client(i)));
  await sleep(3000);

  const query = async (expr: string): Promise<number> => {
    const url = `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`;
    const body = (await (await fetch(url)).json()) as { status: string; error?: string; data?: { result: unknown[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? body.status}`);
    return body.data?.result.length ?? 0;
  };
  const rows: string[] = [];
  for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
    const m = /^label_values\((.*), ([a-z_]+)\)$/.exec(variable.definition ?? '');
    const selector = substitute(m?.[1] ?? '');
    const url = `http://127.0.0.1:${promPort}/api/v1/label/${m?.[2] ?? ''}/values?match[]=${encodeURIComponent(selector)}`;
    const found = ((await (await fetch(url)).json()) as { data: string[] }).data;
    if (found.length === 0) failures++;
    else withData++;
    rows.push(`| variable ${variable.name} | ${variable.definition} | ${found.join(', ')} |`);
  }
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      let result: string;
      try {
        const n = await query(substitute(target.expr));
        if (n > 0) withData++;
        result = `${n} series`;
      } catch (err) {
        failures++;
        result = `ERROR ${(err as Error).message}`;
      }
      rows.push(`| ${panel.title} | ${target.legendFormat} | ${result} |`);
    }
  }
  process.stdout.write(
    `Prometheus ${values.prometheus}, sluice dist/cli.js, ${SECONDS} s of traffic\n\n| panel | series | result |\n| --- | --- | --- |\n${rows.join('\n')}\n`,
  );
  process.stdout.write(`\n${rows.length} queries, ${failures} failed, ${withData} returned data\n`);
} finally {
  sluice.kill('SIGTERM');
  prometheus.kill('SIGTERM');
  upstream.server.close();
  await sleep(1500);
  await rm(dir, { recursive: true, force: true });
}
process.exit(failures === 0 ? 0 : 1);
