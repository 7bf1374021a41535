import * as z from 'zod';
import { MAX_BODY_PATTERN_BYTES, utf8, type ThrottleSignal } from '../core/throttle-signal.js';

/**
 * The configuration of an upstream's throttle signals (core/throttle-signal.ts), for schema.ts:
 *
 *     upstreams:
 *       - name: github
 *         throttleSignals:
 *           - { status: 429 }
 *           - { status: 403, header: retry-after }
 *           - { status: 403, header: x-ratelimit-remaining, equals: "0" }
 *           - { status: 503, body: RequestLimitExceeded }
 *
 * Plugged in as `throttleSignals: throttleSignalsSchema` in `upstreamSchema`. Written list
 * replaces the defaults (429, and 503 with Retry-After) rather than adding to them, so a list can
 * also drop one. Every error names its field (`upstreams[0].throttleSignals[2].equals`).
 *
 * `pause` (optional): `always` pauses the key on each such answer, `pattern` only when most of the
 * key's recent answers are throttles (core/pause-rule.ts). Default: `pattern` for a 503 without a
 * body pattern, `always` otherwise.
 */

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name');

const signalSchema = z
  .strictObject({
    /** The answer's status: an error status, 400-599. */
    status: z
      .number()
      .int('a status is a whole number')
      .min(400, 'a throttle signal is an error status (400-599)')
      .max(599, 'a throttle signal is an error status (400-599)'),
    /** A response header that must be present (with a non-empty value). */
    header: headerName.optional(),
    /** ...and equal to this, once trimmed. */
    equals: z.string().optional(),
    /** A literal the first 8 KiB of the body must contain (matched as UTF-8 bytes, case-sensitive). */
    body: z
      .string()
      .min(1, 'a body pattern must not be empty')
      .refine((value) => utf8(value).length <= MAX_BODY_PATTERN_BYTES, `a body pattern is at most ${MAX_BODY_PATTERN_BYTES} bytes`)
      .optional(),
    pause: z.enum(['always', 'pattern']).optional(),
  })
  .refine((signal) => signal.equals === undefined || signal.header !== undefined, { message: 'equals needs a header to compare', path: ['equals'] })
  .transform((signal): ThrottleSignal => ({
    status: signal.status,
    header: signal.header?.toLowerCase(),
    equals: signal.equals,
    body: signal.body,
    pause: signal.pause ?? (signal.status === 503 && signal.body === undefined ? 'pattern' : 'always'),
  }))
  .meta({ description: 'An answer that means "slow down": a status, optionally with a header (present, or equal to a value) and a literal in the body.' });

/** The list, with its default. */
export const throttleSignalsSchema = z
  .array(signalSchema)
  .min(1, 'needs at least one signal; list { status: 429 } to keep the default')
  .prefault([{ status: 429 }, { status: 503, header: 'retry-after' }])
  .meta({ description: 'Answers that mean "slow down": retried like a 429, lower the learned rate, pause the key. Default: 429, and 503 with Retry-After.' });

export type ThrottleSignalsInput = z.input<typeof throttleSignalsSchema>;
