/**
 * `npm run load:overhead`: what sluice costs when its limits never bind, against what a user would
 * otherwise run, in one run: the plain upstream directly, sluice, a bare fastify + @fastify/http-proxy
 * proxy, and nginx (proxy_pass with upstream keepalive) when installed. autocannon -c 50 for a few
 * seconds per target; rounds interleaved (the order rotates every round) after one warm-up round;
 * the reported numbers are the medians over the rounds.
 *
 *   npm run load:overhead -- [--rounds 5] [--duration 5] [--connections 50] [--nginx-workers 1] [common flags]
 *
 * With --proxy-url, that proxy is measured as one more target ("external"); point it at the
 * upstream with --upstream-port.
 */
import { bench, type BenchResult } from '../lib/bench.js';
import { findNginx, startNginx } from '../lib/nginx.js';
import { cpuTimeMs } from '../lib/observe.js';
import { spawnTsServer } from '../lib/processes.js';
import { createProgress } from '../lib/progress.js';
import { profileTables, startProxy } from '../lib/proxy.js';
import { median, round, type Table, type TargetResult } from '../lib/report.js';
import { log, parseScenarioArgs, runScenario } from '../lib/scenario.js';

const { common, values } = parseScenarioArgs(
  {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    'nginx-workers': { type: 'string', default: '1' },
    'warmup-duration': { type: 'string', default: '2' },
  },
  'npm run load:overhead -- [--rounds 5] [--duration 5] [--connections 50] [--nginx-workers 1] [--warmup-duration 2]',
);
const rounds = common.quick ? 1 : Number(values.rounds);
const durationSec = common.quick ? 2 : Number(values.duration);
const connections = Number(values.connections);
const nginxWorkers = Number(values['nginx-workers']);

interface Target {
  readonly name: string;
  readonly url: string;
  /** Process whose CPU time is charged to this target (with its children, for nginx). */
  readonly pid: number | undefined;
  readonly children: boolean;
}

interface Run {
  readonly round: number;
  readonly target: string;
  readonly result: BenchResult;
  /** CPU time of the proxy process per response, in microseconds. */
  readonly proxyCpuUsPerRequest: number | undefined;
}

await runScenario(
  { scenario: 'overhead', title: `overhead: autocannon -c ${connections}, ${rounds} interleaved rounds of ${durationSec} s`, common },
  async () => {
    const upstream = await spawnTsServer('upstream-server.ts', ['--port', String(common.upstreamPort)]);
    const targets: Target[] = [{ name: 'upstream', url: upstream.url, pid: upstream.pid, children: true }];
    const sluice =
      common.proxyUrl === undefined
        ? await startProxy(
            common,
            `# written by load/scenarios/overhead.ts: a limit that never binds, default logging (info)
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  - name: api
    prefix: /
    target: ${upstream.url}
    limits:
      - rate: 1000000/s
        burst: 10000
`,
            { label: 'overhead', stdout: 'null' },
          )
        : undefined;
    if (sluice) targets.push({ name: 'sluice', url: sluice.proxyUrl, pid: sluice.pid, children: false });
    if (common.proxyUrl !== undefined) targets.push({ name: 'external', url: common.proxyUrl, pid: undefined, children: false });
    const bare = await spawnTsServer('bare-proxy-server.ts', ['--upstream', upstream.url]);
    targets.push({ name: 'fastify+http-proxy', url: bare.url, pid: bare.pid, children: true });
    const nginxFound = findNginx();
    const nginx = nginxFound ? await startNginx(upstream.url, { workers: nginxWorkers }) : undefined;
    if (nginx) targets.push({ name: 'nginx', url: nginx.url, pid: nginx.pid, children: true });
    else log('  nginx is not installed: measured without it (apt-get install -y nginx to include it)');

    const progress = createProgress('overhead');
    const runs: Run[] = [];
    const measure = async (target: Target, round: number, seconds: number): Promise<Run> => {
      const cpuBefore = target.pid === undefined ? undefined : cpuTimeMs(target.pid, target.children);
      const result = await bench({
        url: `${target.url}/items`,
        connections,
        durationSec: seconds,
        onTick: (responses) => progress.set(`${round === 0 ? 'warm-up' : `round ${round}/${rounds}`}: ${target.name}, ${responses} responses`),
      });
      const cpuAfter = target.pid === undefined ? undefined : cpuTimeMs(target.pid, target.children);
      const cpuUs = cpuBefore === undefined || cpuAfter === undefined ? undefined : round1(((cpuAfter - cpuBefore) * 1000) / Math.max(1, result.total));
      return { round, target: target.name, result, proxyCpuUsPerRequest: cpuUs };
    };
    try {
      for (const target of targets) await measure(target, 0, Number(values['warmup-duration']));
      for (let round = 1; round <= rounds; round++) {
        const order = targets.map((_, i) => targets[(i + round - 1) % targets.length] as Target);
        for (const target of order) runs.push(await measure(target, round, durationSec));
      }
    } finally {
      progress.stop();
    }
    const profile = await sluice?.stop();
    await bare.stop();
    await nginx?.stop();
    await upstream.stop();

    const summary = targets.map((t) => {
      const mine = runs.filter((r) => r.target === t.name);
      const cpu = mine.map((r) => r.proxyCpuUsPerRequest).filter((v): v is number => v !== undefined);
      return {
        target: t.name,
        requestsPerSec: Math.round(median(mine.map((r) => r.result.requestsPerSec))),
        p50: median(mine.map((r) => r.result.latencyMs.p50)),
        p99: median(mine.map((r) => r.result.latencyMs.p99)),
        p99_9: median(mine.map((r) => r.result.latencyMs.p99_9)),
        cpuUsPerRequest: cpu.length > 0 ? round1(median(cpu)) : undefined,
        non2xx: mine.reduce((n, r) => n + r.result.non2xx + r.result.errors, 0),
        perRound: mine.map((r) => Math.round(r.result.requestsPerSec)),
      };
    });
    const get = (name: string) => summary.find((s) => s.target === name);
    const s = get('sluice') ?? get('external');
    const bareS = get('fastify+http-proxy');
    const nginxS = get('nginx');
    const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : round(a / b, 2));
    const vsBare = ratio(s?.requestsPerSec, bareS?.requestsPerSec);
    const vsNginx = ratio(s?.requestsPerSec, nginxS?.requestsPerSec);
    const p99Gap = s && nginxS ? round(s.p99 - nginxS.p99, 2) : undefined;
    const targetsMet: TargetResult[] = [
      {
        name: 'overhead: req/s vs bare fastify+http-proxy',
        target: '>= 1.5x',
        measured: vsBare === undefined ? 'n/a' : `${vsBare}x`,
        met: vsBare === undefined ? undefined : vsBare >= 1.5,
      },
      {
        name: 'overhead: req/s vs nginx',
        target: '>= 0.5x',
        measured: vsNginx === undefined ? 'nginx not installed' : `${vsNginx}x`,
        met: vsNginx === undefined ? undefined : vsNginx >= 0.5,
      },
      {
        name: 'overhead: p99 vs nginx p99',
        target: '<= nginx + 2 ms',
        measured: p99Gap === undefined ? 'nginx not installed' : `${s?.p99} ms vs ${nginxS?.p99} ms (${p99Gap >= 0 ? '+' : ''}${p99Gap} ms)`,
        met: p99Gap === undefined ? undefined : p99Gap <= 2,
      },
    ];
    const tables: Table[] = [
      {
        title: `medians over ${rounds} rounds (autocannon -c ${connections}, ${durationSec} s each)`,
        columns: ['target', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'proxy CPU us/req', 'non-2xx+errors', 'req/s per round'],
        rows: summary.map((r) => [r.target, r.requestsPerSec, r.p50, r.p99, r.p99_9, r.cpuUsPerRequest, r.non2xx, r.perRound.join(' ')]),
      },
      {
        title: 'ratios',
        columns: ['ratio', 'value'],
        rows: [
          ['sluice / fastify+http-proxy (req/s)', vsBare],
          ['sluice / nginx (req/s)', vsNginx],
          ['sluice p99 - nginx p99 (ms)', p99Gap],
          ['sluice / upstream alone (req/s)', ratio(s?.requestsPerSec, get('upstream')?.requestsPerSec)],
        ],
      },
      ...profileTables('overhead', profile),
    ];
    return {
      tables,
      targets: targetsMet,
      charts: [
        {
          kind: 'bar',
          title: 'requests per second (median over rounds)',
          yLabel: 'req/s',
          groups: summary.map((r) => ({ label: r.target, values: [{ name: 'req/s', value: r.requestsPerSec }] })),
        },
        {
          kind: 'bar',
          title: 'latency percentiles (ms, median over rounds)',
          yLabel: 'ms',
          logScale: true,
          groups: summary.map((r) => ({
            label: r.target,
            values: [
              { name: 'p50', value: r.p50 },
              { name: 'p99', value: r.p99 },
              { name: 'p99.9', value: r.p99_9 },
            ],
          })),
        },
        {
          kind: 'line',
          title: 'req/s per round (interleaved: every round runs every target)',
          xLabel: 'round',
          yLabel: 'req/s',
          series: summary.map((r) => ({ name: r.target, points: r.perRound.map((v, i) => [i + 1, v] as [number, number]) })),
        },
      ],
      notes: [
        'client, proxy and upstream share the 2 cores: every target is measured in the same run, rounds interleaved with a rotating order, and the medians compared; absolute numbers move with the machine, ratios much less.',
        sluice
          ? 'sluice runs the built dist/cli.js with its default logging (info: one JSON line per request) written to stdout, which is redirected to /dev/null; its limit (1,000,000/s, burst 10,000) never binds, so every request takes the full admission path without waiting.'
          : `external proxy ${common.proxyUrl} measured as given.`,
        `nginx ${nginx ? `${nginx.version}, ${nginx.workers} worker process(es) (sluice and the fastify proxy are single-threaded), access log on (to a file in its temporary directory), upstream keepalive 64, HTTP/1.1 to the upstream` : 'not installed'}.`,
        'the fastify + @fastify/http-proxy baseline runs on its defaults (undici via @fastify/reply-from), no logger.',
        'the upstream is plain node:http in its own process answering 200 with a 58-byte JSON body at once.',
        'proxy CPU us/req = CPU time (user+system, /proc/<pid>/stat) the proxy process used during a round, divided by the responses of that round; for nginx the master and its workers.',
      ],
      data: { summary, runs, connections, durationSec, rounds, nginx: nginx ? { version: nginx.version, workers: nginx.workers } : undefined },
    };
  },
);

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
