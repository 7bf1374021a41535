import * as z from 'zod';
import type { BreakerPolicy } from '../core/breaker.js';
import { parseDurationMs, parseFraction } from '../core/units.js';

/**
 * The configuration of an upstream's availability breaker (core/breaker.ts), for schema.ts:
 *
 *     upstreams:
 *       - name: api
 *         breaker:
 *           consecutiveFailures: 5     # downs in a row that open it; 0: this rule off
 *           failureRatio: 85%          # optional: open when this share of the window's verdicts are downs
 *           minAttempts: 50            # ...over at least this many verdicts
 *           window: 10s                # ...within this window
 *           probe: { base: 250ms, max: 2s }
 *
 * Plugged in as `breaker: breakerSchema` in `upstreamSchema`; the output is a BreakerPolicy. The
 * breaker is off with `consecutiveFailures: 0` and no `failureRatio` (no `false` shorthand: a zod
 * union would report a mistake inside the object at `breaker`, not at the field). The defaults and
 * why are in core/breaker.ts. The duration and percentage parsers repeat schema.ts's private ones
 * (same patterns, same messages); once merged, use those.
 */

const DURATION_PATTERN = /^\d+(\.\d+)?\s*(ms|s|m|h|d)$/;
const PERCENT_PATTERN = /^\d+(\.\d+)?\s*%$/;

const duration = z
  .union([z.number().nonnegative(), z.string().regex(DURATION_PATTERN, 'expected a duration such as 250ms, 10s, 5m or 1h')])
  .transform((value) => parseDurationMs(value) as number);

/** A share in (0, 1): `85%` or 0.85. */
const share = z.union([z.number().gt(0).lt(1), z.string().regex(PERCENT_PATTERN, 'expected a percentage such as 85%')]).transform((value, ctx) => {
  const fraction = parseFraction(value);
  if (fraction === undefined || fraction === 0) {
    ctx.addIssue({ code: 'custom', message: 'a failure ratio is above 0% and below 100%' });
    return z.NEVER;
  }
  return fraction;
});

export const breakerSchema = z
  .strictObject({
    consecutiveFailures: z.number().int().min(0).max(1000).default(5),
    failureRatio: share.optional(),
    minAttempts: z.number().int().min(1).default(50),
    window: duration.prefault('10s'),
    probe: z
      .strictObject({
        base: duration.prefault('250ms'),
        max: duration.prefault('2s'),
      })
      .prefault({}),
  })
  .refine((breaker) => breaker.probe.max >= breaker.probe.base, { message: 'probe.max must be at least probe.base', path: ['probe', 'max'] })
  .refine((breaker) => breaker.window > 0 || breaker.failureRatio === undefined, { message: 'a failure ratio needs a window above 0', path: ['window'] })
  .transform((breaker): BreakerPolicy => ({
    consecutiveFailures: breaker.consecutiveFailures,
    failureRatio: breaker.failureRatio === undefined ? undefined : { ratio: breaker.failureRatio, minAttempts: breaker.minAttempts, windowMs: breaker.window },
    probeBackoff: { baseMs: breaker.probe.base, maxMs: breaker.probe.max },
  }))
  .prefault({})
  .meta({
    description:
      'Hold the queue while the upstream cannot be reached: opens after consecutive connection failures (or a failure ratio), then lets one request through at a time to probe.',
  });
