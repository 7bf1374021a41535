/**
 * Reading the stand-in API's judgement: its /__stats, and series derived from the accepted arrival
 * instants (requests accepted per second, against the limit).
 */
import type { StandinStats } from './standin.js';

export async function standinStats(url: string, arrivals = true): Promise<StandinStats> {
  const response = await fetch(`${url}/__stats${arrivals ? '?arrivals=1' : ''}`);
  return (await response.json()) as StandinStats;
}

export async function resetStandin(url: string): Promise<void> {
  const response = await fetch(`${url}/__reset`, { method: 'POST' });
  await response.arrayBuffer();
}

/** Accepted requests per whole second since the first arrival: [second, count] pairs. */
export function perSecond(arrivalsMs: readonly number[]): [number, number][] {
  if (arrivalsMs.length === 0) return [];
  const first = arrivalsMs[0] as number;
  const counts: number[] = [];
  for (const t of arrivalsMs) {
    const s = Math.floor((t - first) / 1000);
    counts[s] = (counts[s] ?? 0) + 1;
  }
  return Array.from(counts, (c, s) => [s, c ?? 0]);
}

/**
 * The achieved rate over the span of accepted arrivals: (n - 1) intervals over the time from the
 * first to the last. Independent of how long the client took to start or finish.
 */
export function spanRate(arrivalsMs: readonly number[]): number {
  if (arrivalsMs.length < 2) return Number.NaN;
  return ((arrivalsMs.length - 1) / ((arrivalsMs[arrivalsMs.length - 1] as number) - (arrivalsMs[0] as number))) * 1000;
}

/** The most arrivals in any window of `windowMs` (sliding), from the sorted instants. */
export function maxInWindow(arrivalsMs: readonly number[], windowMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < arrivalsMs.length; hi++) {
    while ((arrivalsMs[hi] as number) - (arrivalsMs[lo] as number) >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}
