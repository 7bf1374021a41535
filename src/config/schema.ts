import * as z from 'zod';
import { compileKeyTemplate } from '../core/key-template.js';
import { parseDurationMs, parseFraction, parseRatePerSec, parseSizeBytes } from '../core/units.js';

/**
 * The one schema of sluice's configuration. The TypeScript type (`Config`), `--check`, and the JSON
 * Schema shipped for editors (`npm run schema`) all derive from it. Defaults live here and nowhere
 * else. Unknown keys are errors. Durations, sizes and rates are written the human way and come out
 * as numbers in base units (milliseconds, bytes, requests per second).
 */

const DURATION_PATTERN = '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)$';
const SIZE_PATTERN = '^\\d+(\\.\\d+)?\\s*([kKmMgG]?[bB])$';
const RATE_PATTERN = '^\\d+(\\.\\d+)?\\s*/\\s*(\\d+(\\.\\d+)?)?\\s*(ms|s|m|h|d)$';
const PERCENT_PATTERN = '^\\d+(\\.\\d+)?\\s*%$';

/** A duration: `250ms`, `10s`, `5m`, `1h`, `1d`, or a number of milliseconds. Output: ms. */
const duration = z
  .union([z.number().nonnegative(), z.string().regex(new RegExp(DURATION_PATTERN), 'expected a duration such as 250ms, 10s, 5m or 1h')])
  .transform((value) => parseDurationMs(value) as number)
  .meta({ description: 'A duration: 250ms, 10s, 5m, 1h, 1d, or a number of milliseconds.' });

/** A size: `512kb`, `1mb`, or a number of bytes. Output: bytes. */
const size = z
  .union([z.number().int().nonnegative(), z.string().regex(new RegExp(SIZE_PATTERN), 'expected a size such as 512kb or 1mb')])
  .transform((value) => parseSizeBytes(value) as number)
  .meta({ description: 'A size: 512kb, 1mb, 1gb (binary multiples), or a number of bytes.' });

/** A rate: `20/s`, `1000/m`, `5000/h`, `30/5s`, or a number per second. Output: per second. */
const rate = z
  .union([z.number().positive(), z.string().regex(new RegExp(RATE_PATTERN), 'expected a rate such as 20/s, 1000/m, 5000/h or 30/5s')])
  .transform((value, ctx) => {
    const perSec = parseRatePerSec(value);
    if (perSec === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a rate must allow more than zero requests per period' });
      return z.NEVER;
    }
    return perSec;
  })
  .meta({ description: 'Requests per period: 20/s, 1000/m, 5000/h, 10000/d, 30/5s, or a number per second.' });

/** A fraction: `1%` or a number in [0, 1). Output: the fraction. */
const fraction = z
  .union([z.number().min(0).lt(1), z.string().regex(new RegExp(PERCENT_PATTERN), 'expected a percentage such as 1%')])
  .transform((value, ctx) => {
    const f = parseFraction(value);
    if (f === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a percentage must be below 100%' });
      return z.NEVER;
    }
    return f;
  });

const port = z.number().int().min(0).max(65_535);
const host = z.string().min(1);

const keyTemplate = z
  .string()
  .superRefine((value, ctx) => {
    const compiled = compileKeyTemplate(value);
    if (!compiled.ok) ctx.addIssue({ code: 'custom', message: compiled.error });
  })
  .meta({ description: 'Which bucket and queue a request falls in: {header.NAME}, {query.NAME}, {path.N}, {method}, {client.ip} and literal text.' });

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name');

const listenSchema = z
  .strictObject({
    host: host.default('0.0.0.0'),
    port: port.default(8080),
    /** Largest request body accepted; larger ones get 413 SLUICE_BODY_TOO_LARGE. */
    bodyLimit: size.prefault('32mb'),
    /** Time a client has to send its request headers (slowloris protection). */
    headersTimeout: duration.prefault('10s'),
    /** Time a client has to send its whole request, body included, before sluice queues it. */
    requestTimeout: duration.prefault('60s'),
    /** How long an idle client connection is kept open. */
    keepAliveTimeout: duration.prefault('5s'),
    /** Largest request header section, in bytes; larger ones get 431. */
    maxHeaderSize: size.prefault('16kb'),
  })
  .meta({ description: 'Where clients connect.' });

const adminSchema = z
  .strictObject({
    host: host.default('0.0.0.0'),
    port: port.default(9090),
    /** Show the keys in /state as their SHA-256 digest instead of as written (they may be account ids). */
    redactKeys: z.boolean().default(false),
  })
  .meta({ description: 'The admin listener: /metrics, /healthz, /readyz, /state. Never on the client port.' });

const memoryStoreSchema = z.strictObject({ type: z.literal('memory') });

const redisUrl = z.string().regex(/^(rediss?|redis\+sentinel):\/\//, 'expected a redis:// or rediss:// URL');

const redisStoreSchema = z
  .strictObject({
    type: z.literal('redis'),
    /** One Redis (`redis://`, `rediss://`), or Sentinel: `redis+sentinel://host:26379,host2:26379/mymaster`. */
    url: redisUrl.optional(),
    /** Redis Cluster: seed nodes (`redis://host:6379`), instead of `url`. */
    cluster: z.array(redisUrl).min(1).optional(),
    /** What to do while Redis is unreachable: `local` keeps serving with a local bucket, `deny` refuses with 503. */
    onError: z.enum(['local', 'deny']).default('local'),
    /** Replicas sharing the limits; with `onError: local` each uses rate / replicasHint. */
    replicasHint: z.number().int().min(1).default(1),
    /** Longest a Redis call may take before it counts as a failure. */
    timeout: duration.prefault('250ms'),
    /** Prefix of every Redis key sluice writes. */
    keyPrefix: z.string().default('sluice:'),
  })
  .refine((store) => (store.url === undefined) !== (store.cluster === undefined), {
    message: 'a redis store needs either url or cluster (not both)',
    path: ['url'],
  });

const adaptiveSchema = z
  .strictObject({
    /** Never below this rate. */
    min: rate.prefault('1/m'),
    /** Added after each window without a 429; default: 5% of the limit's rate. */
    increase: rate.optional(),
    /** Multiplies the rate on a 429 when the accepted rate says nothing better, in (0, 1). */
    decrease: z.number().gt(0).lt(1).default(0.7),
    /** The upstream's window: a 429 is read against what it accepted over the last one. */
    window: duration.prefault('1s'),
    /** May go above the configured rate when the upstream's headers or its silence allow it. */
    probeAbove: z.boolean().default(false),
  })
  .meta({
    description:
      'Learn the rate from 429s (AIMD that measures what the upstream accepted); the configured rate is the start and, without probeAbove, the ceiling.',
  });

const limitSchema = z
  .strictObject({
    /** Key template; without one, the rule is one bucket for the whole upstream. */
    key: keyTemplate.optional(),
    rate: rate.optional(),
    /** Tokens the bucket holds when full: requests that may go at once after a quiet spell. */
    burst: z.number().int().min(1).default(1),
    /** Requests in flight per key, across attempts. */
    concurrency: z.number().int().min(1).optional(),
    adaptive: adaptiveSchema.optional(),
  })
  .refine((limit) => limit.rate !== undefined || limit.concurrency !== undefined, {
    message: 'a limit needs a rate, a concurrency, or both',
  })
  .refine((limit) => limit.adaptive === undefined || limit.rate !== undefined, {
    message: 'an adaptive limit needs a rate to start from',
    path: ['adaptive'],
  })
  .transform(({ adaptive, ...limit }) => {
    const out: typeof limit & { adaptive?: Omit<NonNullable<typeof adaptive>, 'increase'> & { increase: number } } = limit;
    if (adaptive !== undefined) out.adaptive = { ...adaptive, increase: adaptive.increase ?? (limit.rate as number) * 0.05 };
    return out;
  });

const queueFields = z.strictObject({
  /** Requests queued across all keys of the upstream. */
  maxSize: z.number().int().min(0).default(10_000),
  /** Requests queued per key; defaults to maxSize. */
  maxPerKey: z.number().int().min(0).optional(),
  /** Longest a request may wait in the queue; refused at once when the predicted wait is longer. */
  maxWait: duration.prefault('60s'),
  /** A request header by which a client shortens its own maxWait (`Sluice-Max-Wait: 2s`); false: none. */
  maxWaitHeader: z.union([headerName, z.literal(false)]).default('sluice-max-wait'),
});

const queueSchema = queueFields.transform((queue) => ({ ...queue, maxPerKey: queue.maxPerKey ?? queue.maxSize }));

const backoffSchema = z.strictObject({
  base: duration.prefault('100ms'),
  max: duration.prefault('10s'),
});

const retryOn = z.union([z.literal(429), z.literal(502), z.literal(503), z.literal(504), z.enum(['timeout', 'connect', 'reset'])]);

const retrySchema = z.strictObject({
  /** Total attempts, the first included; 1 disables retries. */
  attempts: z.number().int().min(1).max(100).default(5),
  on: z.array(retryOn).default([429, 503, 'timeout', 'connect']),
  backoff: backoffSchema.prefault({}),
  /** Wait what the upstream's Retry-After says (both forms), and pause the whole key meanwhile. */
  respectRetryAfter: z.boolean().default(true),
  /** Request bodies up to this size are buffered so they can be sent again; larger ones stream and are not retried. */
  maxBodySize: size.prefault('1mb'),
});

const quotaDialect = z.enum(['ietf', 'ietf-dict', 'ietf-legacy', 'x-ratelimit']);

const pacingSchema = z.strictObject({
  /** Fraction of every configured rate held back to absorb timer and network jitter. */
  margin: fraction.prefault('0.75%'),
  /**
   * Pace by the upstream's quota headers (RateLimit / RateLimit-Policy of the IETF draft, the
   * legacy RateLimit-*, X-RateLimit-*): `auto` reads every dialect, `off` none, or a list.
   */
  headers: z.union([z.enum(['auto', 'off']), z.array(quotaDialect).min(1)]).default('auto'),
  /** The longest pause believed from Retry-After or quota headers (a reset days away is capped). */
  maxPause: duration.prefault('10m'),
});

const prioritySchema = z.strictObject({
  /** The request header naming the priority: high, normal or low. */
  header: headerName.default('sluice-priority'),
  /** A request waiting this long is served before newer ones of a higher priority (no starvation). */
  aging: duration.prefault('10s'),
});

const keysSchema = z.strictObject({
  /** Idle keys remembered per upstream (LRU); keys with queued or in-flight work are never evicted. */
  maxIdle: z.number().int().min(1).default(100_000),
});

const upstreamSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]+$/, 'expected lower-case letters, digits, "_" or "-"'),
  /** Path prefix the upstream is mounted at, stripped before forwarding. */
  prefix: z
    .string()
    .regex(/^\/([A-Za-z0-9._~!$&'()*+,;=:@%-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*)?$/, 'expected a path such as /github (no trailing slash), or /'),
  /** Scheme, host and optional base path. */
  target: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  /** Per attempt, until the response headers arrive (also the connect timeout). */
  timeout: duration.prefault('10s'),
  /** Longest pause between two chunks of a response body before the attempt fails. */
  bodyTimeout: duration.prefault('30s'),
  /** Headers set on every forwarded request, replacing any the client sent. Values may use ${VAR}. */
  setHeaders: z.record(headerName, z.string()).default({}),
  limits: z.array(limitSchema).default([]),
  queue: queueSchema.prefault({}),
  retry: retrySchema.prefault({}),
  pacing: pacingSchema.prefault({}),
  keys: keysSchema.prefault({}),
  /** Order waiters within a key by a request header (off unless set). */
  priority: prioritySchema.optional(),
});

export const configSchema = z
  .strictObject({
    listen: listenSchema.prefault({}),
    admin: adminSchema.prefault({}),
    store: z.discriminatedUnion('type', [memoryStoreSchema, redisStoreSchema]).prefault({ type: 'memory' }),
    shutdown: z
      .strictObject({
        /** How long queued requests keep being released after SIGTERM before they get 503. */
        grace: duration.prefault('25s'),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
    upstreams: z.array(upstreamSchema).min(1, 'at least one upstream is required'),
  })
  .meta({ title: 'sluice configuration', description: 'https://github.com/sluice-proxy/sluice#configuration' });

/**
 * The sections the cross-field rules read fields of (config/cross-check.ts), so that a field left
 * out is read with its default from here, not from a second copy.
 */
export const sectionSchemas = { listen: listenSchema, admin: adminSchema, queue: queueFields, backoff: backoffSchema };

/** The validated configuration: every default filled in, durations in ms, sizes in bytes, rates per second. */
export type Config = z.output<typeof configSchema>;
/** The configuration as written in YAML. */
export type ConfigInput = z.input<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][number];
export type LimitConfig = UpstreamConfig['limits'][number];
export type StoreConfig = Config['store'];

/** The JSON Schema editors use to complete and check sluice.yaml. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
