import type { ServerResponse } from 'node:http';
import type { Agent } from 'undici';
import type { RunningSluice } from '../helpers/sluice.js';
import type { ScriptedUpstream, SeenRequest } from '../helpers/upstream.js';

/**
 * Helpers of the retry tests (test/io/support.ts has the client, the metrics reader and the window
 * count). Arrival instants are the scripted upstream's `performance.now()` stamps.
 */

export interface Answered {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

/** Writes a complete answer with a Content-Length. */
export function answer(res: ServerResponse, { status, headers = {}, body = '' }: Answered): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** The requests the upstream received for one value of the `x-account` header, in arrival order. */
export function seenFor(upstream: ScriptedUpstream, account: string): SeenRequest[] {
  return upstream.seen.filter((s) => s.headers['x-account'] === account);
}

/** Gaps between consecutive instants, in ms. */
export function gaps(instants: readonly number[]): number[] {
  return instants.slice(1).map((t, i) => t - (instants[i] as number));
}

/** A small seeded PRNG (mulberry32), so a "random" upstream answers the same way on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Closes what a test started, in the order that lets each close promptly. */
export async function closeAll(parts: {
  agents?: (Agent | undefined)[];
  sluice?: RunningSluice | undefined;
  upstreams?: (ScriptedUpstream | undefined)[];
}): Promise<void> {
  for (const agent of parts.agents ?? []) await agent?.destroy();
  await parts.sluice?.close();
  for (const upstream of parts.upstreams ?? []) await upstream?.close();
}
