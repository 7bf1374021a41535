/**
 * A client that calls the stand-in API directly, beside sluice, on the same limit: the program
 * that shares a token or an account with the one sluice serves, and that sluice cannot see. It
 * sends at a fixed average rate, evenly or in bursts (`outsideSendAtMs`), whatever the API
 * answers: it does not retry and does not slow down, so what it takes from the limit is what is
 * left for sluice to find. Its requests carry the stand-in's client header, which counts them apart.
 *
 * One timer, armed for the next send instant of the schedule; bounded by `maxRequests` and by
 * `stop()`.
 */
import { Agent, request } from 'undici';
import { outsideSendAtMs } from './standin-models.js';

export interface OutsideClientOptions {
  readonly url: string;
  readonly ratePerSec: number;
  /** Requests sent at once (1: evenly). */
  readonly burstSize?: number;
  /** Never more than this many requests. */
  readonly maxRequests: number;
  /** The stand-in's client header and the value naming this client. */
  readonly header?: string;
  readonly name?: string;
}

export interface OutsideClientResult {
  readonly sent: number;
  /** Answered 200. */
  readonly accepted: number;
  /** Answered anything else (the API's refusals). */
  readonly refused: number;
  readonly errors: number;
  readonly durationMs: number;
}

export interface OutsideClient {
  /** Stops sending, waits for the answers in flight, and reports. */
  stop(): Promise<OutsideClientResult>;
}

export function startOutsideClient(options: OutsideClientOptions): OutsideClient {
  const burstSize = options.burstSize ?? 1;
  const agent = new Agent({ connections: Math.max(4, burstSize * 2), keepAliveTimeout: 30_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const headers = { [options.header ?? 'x-standin-client']: options.name ?? 'outside' };
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  let sent = 0;
  let accepted = 0;
  let refused = 0;
  let errors = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const send = (): void => {
    const index = sent++;
    const call = (async () => {
      try {
        const response = await request(`${options.url}/outside/${index}`, { dispatcher: agent, headers });
        await response.body.dump();
        if (response.statusCode === 200) accepted++;
        else refused++;
      } catch {
        errors++;
      }
    })();
    pending.add(call);
    void call.finally(() => pending.delete(call));
  };

  const tick = (): void => {
    timer = undefined;
    if (stopped) return;
    const elapsedMs = performance.now() - started;
    const schedule = { ratePerSec: options.ratePerSec, burstSize };
    while (sent < options.maxRequests && outsideSendAtMs(sent, schedule) <= elapsedMs) send();
    if (sent >= options.maxRequests) return;
    timer = setTimeout(tick, Math.max(0, outsideSendAtMs(sent, schedule) - (performance.now() - started)));
  };
  tick();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const durationMs = performance.now() - started;
      await Promise.all(pending);
      await agent.close();
      return { sent, accepted, refused, errors, durationMs };
    },
  };
}
