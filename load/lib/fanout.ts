/**
 * Fires `count` calls at once (or `concurrency` at a time) and records how each one ended. This is
 * the program sluice exists for: one that fans out many calls to a rate-limited API.
 */
import { Agent, request } from 'undici';

export interface CallResult {
  readonly index: number;
  readonly status: number;
  /** Milliseconds from the start of the run to the call's start and end. */
  readonly startMs: number;
  readonly endMs: number;
  /** What sluice reported (Sluice-Queue-Ms, Sluice-Attempts); undefined for its own answers. */
  readonly queueMs: number | undefined;
  readonly attempts: number | undefined;
  readonly error?: string;
  readonly code?: string;
}

export interface FanoutOptions {
  readonly url: (index: number) => string;
  readonly count: number;
  readonly concurrency?: number;
  readonly method?: string;
  readonly headers?: (index: number) => Record<string, string>;
  readonly body?: (index: number) => string | Buffer | undefined;
  /** Called after every completed call. */
  readonly onResult?: (result: CallResult, done: number) => void;
  /** Give up on a call after this long (it counts as an error). */
  readonly timeoutMs?: number;
  /** Stops the run: calls in flight end as errors ("aborted"), calls not started are not made. */
  readonly signal?: AbortSignal;
}

export async function fanout(options: FanoutOptions): Promise<{ results: CallResult[]; wallMs: number }> {
  const concurrency = Math.min(options.count, options.concurrency ?? options.count);
  const agent = new Agent({
    connections: concurrency,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs ?? 600_000,
    bodyTimeout: options.timeoutMs ?? 600_000,
  });
  const results: CallResult[] = [];
  const started = performance.now();
  let next = 0;
  const aborted = (): boolean => options.signal?.aborted === true;
  const worker = async (): Promise<void> => {
    while (next < options.count && !aborted()) {
      const index = next++;
      const startMs = performance.now() - started;
      let result: CallResult;
      try {
        const response = await request(options.url(index), {
          method: (options.method ?? 'GET') as 'GET',
          headers: options.headers?.(index),
          body: options.body?.(index),
          dispatcher: agent,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        const text = await response.body.text();
        const queueMs = response.headers['sluice-queue-ms'];
        const attempts = response.headers['sluice-attempts'];
        let code: string | undefined;
        if (String(response.headers['content-type']).startsWith('application/problem+json')) code = (JSON.parse(text) as { code?: string }).code;
        result = {
          index,
          status: response.statusCode,
          startMs,
          endMs: performance.now() - started,
          queueMs: queueMs === undefined ? undefined : Number(queueMs),
          attempts: attempts === undefined ? undefined : Number(attempts),
          ...(code === undefined ? {} : { code }),
        };
      } catch (err) {
        const error = aborted() ? 'aborted' : (err as Error).message;
        result = { index, status: 0, startMs, endMs: performance.now() - started, queueMs: undefined, attempts: undefined, error };
      }
      results.push(result);
      options.onResult?.(result, results.length);
    }
  };
  // Start the callers a few at a time, yielding in between, so the first calls go out while the
  // rest are still being created (creating 1000 requests in one go blocks the loop for ~130 ms).
  const workers: Promise<void>[] = [];
  for (let i = 0; i < concurrency && !aborted(); i++) {
    workers.push(worker());
    if (i % 20 === 19) await new Promise<void>((resolveTurn) => setImmediate(resolveTurn));
  }
  await Promise.all(workers);
  const wallMs = performance.now() - started;
  await agent.close();
  return { results, wallMs };
}

/** The p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}
