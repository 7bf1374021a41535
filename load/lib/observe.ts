/**
 * What the scenarios watch while they run: sluice's admin /metrics (queue depth, keys, event-loop
 * lag, heap), and the resident memory of a child process from /proc/<pid>/status.
 */
import { readFileSync } from 'node:fs';

/** Prometheus text format, reduced to `name{labels} value` lines. */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** Sum of every series of `name` (any labels), or undefined when absent. */
export function metricValue(metrics: Map<string, number>, name: string, labels?: string): number | undefined {
  let sum: number | undefined;
  for (const [key, value] of metrics) {
    const brace = key.indexOf('{');
    const metric = brace === -1 ? key : key.slice(0, brace);
    if (metric !== name) continue;
    if (labels !== undefined && !key.includes(labels)) continue;
    sum = (sum ?? 0) + value;
  }
  return sum;
}

/** Resident set size of `pid` in bytes (VmRSS), or undefined when it cannot be read. */
export function rssBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface Sample {
  /** Seconds since the sampler started. */
  readonly t: number;
  readonly queueDepth?: number;
  readonly inFlight?: number;
  readonly keys?: number;
  readonly rssBytes?: number;
  readonly heapUsedBytes?: number;
  /** Event-loop delay over the last scrape interval (prom-client resets its histogram per scrape). */
  readonly eventLoopP99Ms?: number;
  readonly eventLoopMaxMs?: number;
  /** How long the /metrics scrape took to answer. */
  readonly scrapeMs?: number;
}

export interface Sampler {
  readonly samples: Sample[];
  /** Takes one sample now (besides the timer's). */
  sampleNow(): Promise<Sample>;
  stop(): Promise<Sample[]>;
}

/**
 * Samples every `everyMs`: the admin /metrics when `adminUrl` is given, and the RSS of `pid` when
 * given. A scrape that fails (the proxy is not sluice, or is busy) leaves its fields out.
 */
export function startSampler(options: { adminUrl?: string; pid?: number; everyMs?: number; upstream?: string }): Sampler {
  const started = performance.now();
  const samples: Sample[] = [];
  let busy: Promise<Sample> | undefined;
  const take = async (): Promise<Sample> => {
    const t = (performance.now() - started) / 1000;
    let sample: Sample = { t, rssBytes: options.pid === undefined ? undefined : rssBytes(options.pid) };
    if (options.adminUrl !== undefined) {
      const scrapeStart = performance.now();
      try {
        const response = await fetch(`${options.adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
        const metrics = parsePrometheus(await response.text());
        const label = options.upstream === undefined ? undefined : `upstream="${options.upstream}"`;
        const lagP99 = metricValue(metrics, 'nodejs_eventloop_lag_p99_seconds');
        const lagMax = metricValue(metrics, 'nodejs_eventloop_lag_max_seconds');
        sample = {
          ...sample,
          queueDepth: metricValue(metrics, 'sluice_queue_depth', label),
          inFlight: metricValue(metrics, 'sluice_inflight', label),
          keys: metricValue(metrics, 'sluice_keys', label),
          heapUsedBytes: metricValue(metrics, 'nodejs_heap_size_used_bytes'),
          eventLoopP99Ms: lagP99 === undefined ? undefined : lagP99 * 1000,
          eventLoopMaxMs: lagMax === undefined ? undefined : lagMax * 1000,
          scrapeMs: performance.now() - scrapeStart,
        };
      } catch {
        // not sluice, or not answering in time: no metrics in this sample
      }
    }
    samples.push(sample);
    return sample;
  };
  const timer = setInterval(() => {
    busy ??= take().finally(() => (busy = undefined));
  }, options.everyMs ?? 250);
  return {
    samples,
    sampleNow: take,
    async stop() {
      clearInterval(timer);
      await busy;
      return samples;
    },
  };
}

/**
 * CPU time (user + system, ms) used so far by `pid` and, with `children`, by its child processes
 * (nginx's workers), from /proc. Undefined when it cannot be read.
 */
export function cpuTimeMs(pid: number, children = false): number | undefined {
  try {
    const ticksPerMs = 100 / 1000; // USER_HZ is 100 on Linux
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    let ticks = Number(fields[11]) + Number(fields[12]);
    if (children) {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      for (const kid of kids === '' ? [] : kids.split(' ')) ticks += (cpuTimeMs(Number(kid)) ?? 0) * ticksPerMs;
    }
    return ticks / ticksPerMs;
  } catch {
    return undefined;
  }
}

/**
 * Responsiveness seen from outside: the round trip of a tiny request (the admin /healthz) every
 * `everyMs`. A process whose event loop is blocked answers late, whatever its own metrics say
 * (prom-client's event-loop histogram cannot record a stall that happens inside its own scrape).
 */
export function startProbe(url: string, everyMs = 250): { readonly points: [number, number][]; stop(): Promise<[number, number][]> } {
  const started = performance.now();
  const points: [number, number][] = [];
  let busy: Promise<void> | undefined;
  const timer = setInterval(() => {
    busy ??= (async () => {
      const t0 = performance.now();
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        await response.arrayBuffer();
        points.push([(t0 - started) / 1000, performance.now() - t0]);
      } catch {
        points.push([(t0 - started) / 1000, Number.NaN]);
      }
    })().finally(() => (busy = undefined));
  }, everyMs);
  return {
    points,
    async stop() {
      clearInterval(timer);
      await busy;
      return points;
    },
  };
}
