import { parseHttpDate } from './http-date.js';

/**
 * Reads `Retry-After` (RFC 9110 §10.2.3) as a delay in milliseconds from `nowEpochMs`.
 *
 * Both forms are accepted: delay-seconds (`120`, and leniently `1.5`) and an HTTP-date. A date in
 * the past means "now" (0). Negative numbers, garbage and empty values are ignored (undefined), so
 * the caller falls back to its own backoff. Note the unit: `Retry-After: 2` is two *seconds*
 * (@fastify/reply-from reads it as 2 ms).
 */
export function parseRetryAfterMs(value: string | undefined, nowEpochMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) {
    const ms = Math.round(Number(text) * 1000);
    return Number.isFinite(ms) ? ms : undefined;
  }
  const at = parseHttpDate(text);
  return at === undefined ? undefined : Math.max(0, at - nowEpochMs);
}
