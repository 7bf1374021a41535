import { fileURLToPath } from 'node:url';

/** The directory of the configuration fixtures: one file per error kind, and the valid-*.yaml ones. */
export const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url));

export function fixturePath(name: string): string {
  return `${FIXTURES_DIR}${name}`;
}

/** One problem sluice must report: where (path, YAML line) and a part of what it says. */
export interface ExpectedProblem {
  readonly path: string;
  /** 1-based YAML line; undefined only where no line applies (an empty file). */
  readonly line: number | undefined;
  readonly message: string;
}

/**
 * Every error fixture and the exact list of problems it must produce, in the order sluice reports
 * them (by line). Read with the fixture open: the line numbers are the lines of the offending value.
 */
export const EXPECTED_PROBLEMS: Readonly<Record<string, readonly ExpectedProblem[]>> = {
  'unknown-key.yaml': [
    { path: 'upstreams[0].limit', line: 7, message: 'unknown key "limit"' },
    { path: 'upstreams[0].retires', line: 9, message: 'unknown key "retires"' },
  ],
  'bad-duration.yaml': [{ path: 'upstreams[0].timeout', line: 5, message: 'expected a duration such as 250ms, 10s, 5m or 1h, got "10 seconds"' }],
  'bad-size.yaml': [{ path: 'upstreams[0].retry.maxBodySize', line: 8, message: 'expected a size such as 512kb or 1mb, got "1 megabyte"' }],
  'bad-rate.yaml': [{ path: 'upstreams[0].limits[0].rate', line: 6, message: 'expected a rate such as 20/s, 1000/m, 5000/h or 30/5s, got "20 per second"' }],
  'zero-rate.yaml': [{ path: 'upstreams[0].limits[0].rate', line: 6, message: 'a rate must allow more than zero requests per period' }],
  'bad-percentage.yaml': [{ path: 'upstreams[0].pacing.margin', line: 8, message: 'a percentage must be below 100%' }],
  'bad-key-template.yaml': [{ path: 'upstreams[0].limits[0].key', line: 6, message: 'unbalanced "{" or "}" in key template "{header.x-account"' }],
  'unknown-placeholder.yaml': [{ path: 'upstreams[0].limits[0].key', line: 6, message: 'unknown placeholder "{cookie.session}"' }],
  'limit-without-rate-or-concurrency.yaml': [{ path: 'upstreams[0].limits[0]', line: 6, message: 'a limit needs a rate, a concurrency, or both' }],
  'burst-zero.yaml': [{ path: 'upstreams[0].limits[0].burst', line: 7, message: 'must be at least 1, got 0' }],
  'duplicate-upstream-name.yaml': [{ path: 'upstreams[1].name', line: 7, message: '"github" is already the name of upstreams[0]' }],
  'duplicate-prefix.yaml': [{ path: 'upstreams[1].prefix', line: 8, message: '"/api" is already the prefix of upstreams[0]' }],
  'bad-prefix.yaml': [{ path: 'upstreams[0].prefix', line: 3, message: 'expected a path such as /github (no trailing slash), or /, got "/github/"' }],
  'bad-target-scheme.yaml': [{ path: 'upstreams[0].target', line: 4, message: 'expected an http:// or https:// URL, got "ftp://files.example.com"' }],
  'bad-name.yaml': [{ path: 'upstreams[0].name', line: 2, message: 'expected lower-case letters, digits, "_" or "-", got "GitHub API"' }],
  // The line of the mapping the key is missing from.
  'missing-upstreams.yaml': [{ path: 'upstreams', line: 1, message: 'is required' }],
  'empty-file.yaml': [{ path: '', line: undefined, message: 'the configuration is empty' }],
  'yaml-syntax-error.yaml': [{ path: '', line: 7, message: 'Sequence item without - indicator' }],
  'duplicate-yaml-key.yaml': [{ path: '', line: 8, message: 'Map keys must be unique' }],
  'missing-env-var.yaml': [{ path: 'upstreams[0].setHeaders.authorization', line: 6, message: 'environment variable SLUICE_TEST_UNSET_TOKEN is not set' }],
  'admin-port-equals-listen-port.yaml': [{ path: 'admin.port', line: 2, message: 'must differ from listen.port (8080)' }],
  'hop-by-hop-set-header.yaml': [{ path: 'upstreams[0].setHeaders.connection', line: 7, message: '"connection" is a hop-by-hop header and cannot be set' }],
  'duplicate-set-header.yaml': [
    { path: 'upstreams[0].setHeaders.Authorization', line: 7, message: 'header "Authorization" is set twice (names are case-insensitive)' },
  ],
  'maxperkey-over-maxsize.yaml': [{ path: 'upstreams[0].queue.maxPerKey', line: 10, message: 'is larger than queue.maxSize (100)' }],
  'backoff-base-over-max.yaml': [{ path: 'upstreams[0].retry.backoff.base', line: 9, message: 'is larger than backoff.max' }],
  'bad-retry-on.yaml': [{ path: 'upstreams[0].retry.on[1]', line: 8, message: 'expected one of 429, 502, 503, 504, "timeout", "connect", "reset", got 500' }],
  'bad-store-type.yaml': [{ path: 'store.type', line: 2, message: 'unknown type, got "memcached"' }],
  'bad-redis-url.yaml': [{ path: 'store.url', line: 3, message: 'expected a redis:// or rediss:// URL, got "localhost:6379"' }],
  'bad-log-level.yaml': [
    { path: 'log.level', line: 2, message: 'expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"' },
  ],
  'wrong-type.yaml': [{ path: 'listen.port', line: 2, message: 'expected number, got "eighty"' }],
  'many-errors.yaml': [
    { path: 'admin.port', line: 5, message: 'must differ from listen.port (8080)' },
    { path: 'store.url', line: 8, message: 'expected a redis:// or rediss:// URL, got "localhost:6379"' },
    { path: 'upstreams[0].name', line: 10, message: 'got "GitHub"' },
    { path: 'upstreams[0].target', line: 12, message: 'expected an http:// or https:// URL, got "ftp://api.github.com"' },
    { path: 'upstreams[0].timeout', line: 13, message: 'expected a duration such as 250ms, 10s, 5m or 1h, got "soon"' },
    { path: 'upstreams[0].limits[0].key', line: 15, message: 'unknown placeholder "{cookie.session}"' },
    { path: 'upstreams[0].limits[0].rate', line: 16, message: 'a rate must allow more than zero requests per period' },
    { path: 'upstreams[0].limits[1]', line: 17, message: 'a limit needs a rate, a concurrency, or both' },
    { path: 'upstreams[0].retry.on[1]', line: 19, message: 'got 500' },
    { path: 'upstreams[0].retry.backoff.base', line: 20, message: 'is larger than backoff.max' },
    { path: 'upstreams[0].queue.maxPerKey', line: 21, message: 'is larger than queue.maxSize (10)' },
    { path: 'upstreams[0].colour', line: 22, message: 'unknown key "colour"' },
    { path: 'upstreams[1].prefix', line: 24, message: '"/github" is already the prefix of upstreams[0]' },
    { path: 'upstreams[1].setHeaders.Transfer-Encoding', line: 27, message: '"Transfer-Encoding" is a hop-by-hop header and cannot be set' },
  ],
};
