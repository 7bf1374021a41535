/**
 * autocannon, run in this process, reduced to the numbers the reports use.
 */
import autocannon from 'autocannon';

export interface BenchResult {
  readonly url: string;
  readonly connections: number;
  readonly durationSec: number;
  /** Responses per second over the run (all statuses). */
  readonly requestsPerSec: number;
  readonly total: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p99_9: number; readonly max: number; readonly mean: number };
  readonly statusCodes: Record<string, number>;
}

export interface BenchOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationSec: number;
  readonly pipelining?: number;
  /** Requests per second from all connections together (autocannon's overallRate); unlimited when absent. */
  readonly overallRate?: number;
  readonly headers?: Record<string, string>;
  readonly timeoutSec?: number;
  /** Called about every second with the responses so far. */
  readonly onTick?: (responses: number) => void;
}

export async function bench(options: BenchOptions): Promise<BenchResult> {
  let responses = 0;
  let ticker: NodeJS.Timeout | undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationSec,
        pipelining: options.pipelining ?? 1,
        ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
        headers: options.headers,
        timeout: options.timeoutSec ?? 10,
      },
      (err: Error | null, res: autocannon.Result) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', () => void responses++);
    ticker = setInterval(() => options.onTick?.(responses), 1000);
  }).finally(() => clearInterval(ticker));
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
  return {
    url: options.url,
    connections: options.connections,
    durationSec: result.duration,
    requestsPerSec: result.requests.total / result.duration,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      p99_9: result.latency.p99_9,
      max: result.latency.max,
      mean: result.latency.average,
    },
    statusCodes,
  };
}
