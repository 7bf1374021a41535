import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, type Locator } from '../../src/config/config-error.js';
import { parseConfig, validateConfig } from '../../src/config/load-config.js';
import { quickConfig } from '../../src/config/quick-mode.js';

/**
 * Fuzzing the configuration loader (fast-check, bounded runs): arbitrary text, YAML-ish text built
 * from YAML's own punctuation, structured random configurations (valid and invalid values in every
 * field), arbitrary values straight into the validator, and quick mode's flags. Each either
 * returns a configuration or throws a ConfigError listing problems, never anything else.
 */

/** Runs `parse`, and says how it ended: a config, a ConfigError, or something else (a bug). */
function outcome(parse: () => unknown): 'config' | 'config-error' {
  try {
    const config = parse();
    expect(config).toBeTypeOf('object');
    return 'config';
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`threw ${(err as Error)?.constructor?.name}: ${String(err)}`, { cause: err });
    expect(err.problems.length).toBeGreaterThan(0);
    for (const problem of err.problems) expect(problem.message).toBeTypeOf('string');
    return 'config-error';
  }
}

const parse =
  (text: string, env: Record<string, string> = {}) =>
  () =>
    parseConfig(text, { file: 'fuzz.yaml', env });

const yamlToken = fc.constantFrom(
  ...[
    'upstreams',
    'listen',
    'admin',
    'limits',
    'rate',
    'key',
    'prefix',
    'target',
    'name',
    'setHeaders',
    'queue',
    'retry',
    'on',
    'store',
    'redis',
    'port',
    'host',
  ],
  ...[
    ':',
    ': ',
    '- ',
    '\n',
    '\n  ',
    '\n    ',
    '{',
    '}',
    '[',
    ']',
    ',',
    '"',
    "'",
    '&a ',
    '*a',
    '!!str ',
    '!!int ',
    '? ',
    '|',
    '>',
    '#',
    '---',
    '...',
    '%YAML 1.2',
    '~',
    'null',
    'true',
    '0x1F',
    '.inf',
    '-.nan',
    '1e309',
  ],
  ...[
    '20/s',
    '0/s',
    '-1/s',
    '1.5/5s',
    '10s',
    '250ms',
    '1mb',
    '1e3kb',
    'http://127.0.0.1:1',
    'https://x',
    'ftp://x',
    '/api',
    '/',
    '${VAR}',
    '${VAR:-x}',
    '$${VAR}',
    '{header.x}',
    '{path.0}',
    '{query.}',
    '{nope}',
    '\u0000',
    '\u202e',
    '😀',
  ],
);

describe('the configuration loader', () => {
  it('returns a config or throws ConfigError for arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        outcome(parse(text));
      }),
      { numRuns: 400 },
    );
  });

  it('returns a config or throws ConfigError for YAML-ish text', () => {
    fc.assert(
      fc.property(fc.array(yamlToken, { maxLength: 60 }), fc.dictionary(fc.constantFrom('VAR', 'OTHER'), fc.string({ maxLength: 20 })), (tokens, env) => {
        outcome(parse(tokens.join(''), env));
      }),
      { numRuns: 600 },
    );
  });

  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });
  const wild = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }));
  /** Mostly a valid value, now and then an invalid or wild one: whole configurations are valid often enough. */
  const mostly = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
    fc.oneof({ arbitrary: valid, weight: 30 }, { arbitrary: invalid, weight: 1 }, { arbitrary: wild, weight: 1 });
  const duration = mostly(
    fc.oneof(fc.constantFrom('250ms', '10s', '5m', '1h', '1d', '0ms', '1.5s'), fc.nat(100_000)),
    fc.constantFrom('10 seconds', '-1s', 's', ''),
  );
  const rate = mostly(
    fc.oneof(fc.constantFrom('20/s', '1000/m', '5000/h', '30/5s', '5/ms'), fc.double({ min: 0.001, max: 1e6, noNaN: true })),
    fc.constantFrom('0/s', '1/0s', '1e400/s', 'fast', -1),
  );
  const count = (min: number, max: number) => mostly(fc.integer({ min, max }), fc.constantFrom(min - 1, 1.5, '3'));
  const limit = fc.record(
    {
      key: maybe(
        mostly(
          fc.constantFrom('{header.x-account}', '{query.region}:{path.1}', '{method} {client.ip}', 'literal'),
          fc.constantFrom('{path.0}', '{cookie.x}', '{', '}{'),
        ),
      ),
      rate,
      burst: maybe(count(1, 1000)),
      concurrency: maybe(count(1, 1000)),
      adaptive: maybe(
        fc.record(
          {
            min: maybe(rate),
            decrease: maybe(mostly(fc.double({ min: 0.01, max: 0.99, noNaN: true }), fc.constantFrom(0, 1, 2))),
            window: maybe(duration),
            probeAbove: maybe(fc.boolean()),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: ['rate'] },
  );
  const upstream = fc.record(
    {
      name: mostly(fc.constantFrom('api', 'github', 'a_b-c'), fc.constantFrom('Bad Name', '')),
      prefix: mostly(fc.constantFrom('/', '/api', '/a/b', '/v1'), fc.constantFrom('api', '/api/', '/a b')),
      target: mostly(fc.constantFrom('http://127.0.0.1:9', 'https://api.example.com/base'), fc.constantFrom('ftp://x', 'http://', 'not a url')),
      timeout: maybe(duration),
      bodyTimeout: maybe(duration),
      setHeaders: maybe(
        fc.dictionary(
          fc.oneof(
            { arbitrary: fc.constantFrom('authorization', 'X-Key'), weight: 30 },
            { arbitrary: fc.constantFrom('bad header', 'connection', 'host', '__proto__'), weight: 1 },
          ),
          fc.string({ maxLength: 10 }),
          { maxKeys: 2 },
        ),
      ),
      limits: maybe(fc.array(limit, { maxLength: 2 })),
      queue: maybe(
        fc.record(
          {
            maxSize: maybe(count(100, 1000)),
            maxPerKey: maybe(count(0, 100)),
            maxWait: maybe(duration),
            maxWaitHeader: maybe(mostly(fc.constantFrom(false, 'x-wait'), fc.constant('bad header'))),
          },
          { requiredKeys: [] },
        ),
      ),
      retry: maybe(
        fc.record(
          {
            attempts: maybe(count(1, 100)),
            on: maybe(fc.array(mostly(fc.constantFrom(429, 503, 'timeout', 'connect', 'reset'), fc.constantFrom(500, 'never')), { maxLength: 3 })),
            maxBodySize: maybe(mostly(fc.constantFrom('1mb', '512kb'), fc.constantFrom('1tb', '-1kb'))),
          },
          { requiredKeys: [] },
        ),
      ),
      keys: maybe(fc.record({ maxIdle: maybe(count(1, 10)) }, { requiredKeys: [] })),
    },
    { requiredKeys: ['name', 'prefix', 'target'] },
  );
  const config = fc.record(
    {
      listen: maybe(
        fc.record(
          {
            host: maybe(mostly(fc.constantFrom('127.0.0.1', '::'), fc.constant(''))),
            port: maybe(count(0, 65_535)),
            bodyLimit: maybe(mostly(fc.constantFrom('1mb', 1024), fc.constant('big'))),
            headersTimeout: maybe(duration),
          },
          { requiredKeys: [] },
        ),
      ),
      admin: maybe(fc.record({ port: maybe(count(0, 65_535)), redactKeys: maybe(fc.boolean()) }, { requiredKeys: [] })),
      store: maybe(
        mostly(
          fc.constant({ type: 'memory' }),
          fc.record(
            {
              type: fc.constantFrom('redis', 'other'),
              url: maybe(fc.constantFrom('redis://h:6379', 'http://x')),
              onError: maybe(fc.constantFrom('local', 'deny', 'panic')),
            },
            { requiredKeys: ['type'] },
          ),
        ),
      ),
      log: maybe(fc.record({ level: mostly(fc.constantFrom('info', 'debug'), fc.constant('loud')) })),
      upstreams: fc.oneof(
        { arbitrary: fc.uniqueArray(upstream, { minLength: 1, maxLength: 2, selector: (u) => `${String(u.name)} ${String(u.prefix)}` }), weight: 20 },
        { arbitrary: wild, weight: 1 },
      ),
      unknownField: fc.option(wild, { nil: undefined, freq: 20 }),
    },
    { requiredKeys: [] },
  );

  it('returns a config or throws ConfigError for structured random configurations', () => {
    const seen = { config: 0, 'config-error': 0 };
    fc.assert(
      fc.property(config, (raw) => {
        seen[outcome(parse(stringify(raw)))]++;
      }),
      { numRuns: 500 },
    );
    // Both ends were reached: some valid configurations, some invalid.
    expect(seen.config).toBeGreaterThan(0);
    expect(seen['config-error']).toBeGreaterThan(0);
  });

  it('validates arbitrary values without throwing anything but ConfigError', () => {
    const locator: Locator = { lineOf: () => undefined, keyLineOf: () => undefined, valueAt: () => ({ found: false }) };
    fc.assert(
      fc.property(fc.oneof(fc.anything({ maxDepth: 4 }), config), (raw) => {
        outcome(() => validateConfig(raw, { file: 'fuzz', locator }));
      }),
      { numRuns: 400 },
    );
  });

  it("builds quick mode's configuration or throws ConfigError for any flags", () => {
    const flag = fc.option(fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom('20/s', 'http://127.0.0.1:1', '5', '0', '-1', '99999999999999999999')), {
      nil: undefined,
    });
    fc.assert(
      fc.property(fc.record({ target: flag, rate: flag, burst: flag, concurrency: flag, port: flag, 'admin-port': flag }), (flags) => {
        outcome(() => quickConfig(flags));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses deeply nested YAML with a ConfigError, quickly', () => {
    expect(outcome(parse('['.repeat(5_000)))).toBe('config-error');
  });

  // The yaml library throws a ReferenceError for both; parseConfig turns them into ConfigErrors.
  it('refuses an alias without its anchor with a ConfigError at its line', () => {
    expect(outcome(parse('upstreams: *a\n'))).toBe('config-error');
    const error = (() => {
      try {
        parse('listen: ":8080"\nupstreams: *a\n')();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems[0]?.line).toBe(2);
  });

  it('refuses a YAML alias bomb with a ConfigError', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [name, prev] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
      ['e', 'd'],
      ['f', 'e'],
      ['g', 'f'],
    ] as const)
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    expect(outcome(parse(`${levels.join('\n')}\nupstreams: []\n`))).toBe('config-error');
  });
});
