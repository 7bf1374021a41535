import type { ConfigInput } from './schema.js';
import { formatPath, type Locator } from './config-error.js';
import { validateConfig } from './load-config.js';
import type { Config } from './schema.js';

/** The flags of quick mode: one upstream mounted at `/`, for the common sidecar case. */
export interface QuickFlags {
  readonly target?: string | undefined;
  readonly rate?: string | undefined;
  readonly burst?: string | undefined;
  readonly concurrency?: string | undefined;
  readonly port?: string | undefined;
  readonly 'admin-port'?: string | undefined;
}

const FLAG_OF_PATH: Readonly<Record<string, string>> = {
  'upstreams[0].target': '--target',
  'upstreams[0].limits[0].rate': '--rate',
  'upstreams[0].limits[0].burst': '--burst',
  'upstreams[0].limits[0].concurrency': '--concurrency',
  'upstreams[0].limits[0]': '--rate/--concurrency',
  'listen.port': '--port',
  'admin.port': '--admin-port',
};

/**
 * Builds and validates the configuration of `sluice --target URL --rate 20/s [...]`. Problems name
 * the flag (`--rate: expected a rate such as 20/s ...`) and are thrown as one ConfigError.
 */
export function quickConfig(flags: QuickFlags): Config {
  const limit: Record<string, unknown> = {};
  if (flags.rate !== undefined) limit.rate = flags.rate;
  if (flags.burst !== undefined) limit.burst = integer(flags.burst);
  if (flags.concurrency !== undefined) limit.concurrency = integer(flags.concurrency);
  const raw: ConfigInput = {
    listen: flags.port === undefined ? {} : ({ port: integer(flags.port) } as ConfigInput['listen']),
    admin: flags['admin-port'] === undefined ? {} : ({ port: integer(flags['admin-port']) } as ConfigInput['admin']),
    upstreams: [
      {
        name: 'default',
        prefix: '/',
        target: flags.target as string,
        limits: [limit],
      },
    ],
  };
  const locator: Locator = {
    lineOf: () => undefined,
    keyLineOf: () => undefined,
    valueAt(path) {
      let value: unknown = raw;
      for (const segment of path) {
        if (value === null || typeof value !== 'object') return { found: false };
        value = (value as Record<PropertyKey, unknown>)[segment];
      }
      return value === undefined ? { found: false } : typeof value === 'object' ? { found: true } : { found: true, value };
    },
    name: (path) => FLAG_OF_PATH[formatPath(path)] ?? formatPath(path),
  };
  return validateConfig(raw, { file: 'command line', locator });
}

/** Digits become a number; anything else stays text so the schema names what is wrong with it. */
function integer(text: string): number | string {
  return /^\d+$/.test(text) ? Number(text) : text;
}
