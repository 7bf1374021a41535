import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigProblem } from '../../src/config/config-error.js';
import type { Env } from '../../src/config/env.js';
import { loadConfigFile, parseConfig, validateConfig } from '../../src/config/load-config.js';
import { EXPECTED_PROBLEMS, FIXTURES_DIR, fixturePath } from './expected-problems.js';

async function problemsOf(fixture: string, env: Env = {}): Promise<ConfigError> {
  const outcome = await loadConfigFile(fixturePath(fixture), env).then(
    (config) => ({ config }),
    (err: unknown) => ({ err }),
  );
  if (!('err' in outcome)) throw new Error(`${fixture} was accepted, expected a ConfigError`);
  expect(outcome.err).toBeInstanceOf(ConfigError);
  return outcome.err as ConfigError;
}

const located = (problems: readonly { path: string; line?: number | undefined }[]) => problems.map((p) => ({ path: p.path, line: p.line }));

describe('configuration errors: one fixture per kind', () => {
  it('has a table entry for every error fixture, and a fixture for every entry', async () => {
    const files = (await readdir(FIXTURES_DIR)).filter((f) => f.endsWith('.yaml') && !f.startsWith('valid-'));
    expect(files.sort()).toEqual(Object.keys(EXPECTED_PROBLEMS).sort());
  });

  it.each(Object.entries(EXPECTED_PROBLEMS))('%s: reports exactly the expected problems, each with its path and line', async (fixture, expected) => {
    const error = await problemsOf(fixture);
    expect(error.code).toBe('SLUICE_CONFIG_INVALID');
    expect(error.file).toBe(fixturePath(fixture));
    expect(located(error.problems)).toEqual(located(expected));
    error.problems.forEach((problem: ConfigProblem, i) => {
      expect(problem.message).toContain(expected[i]?.message);
      // No stack traces or multi-line parser dumps in what the user reads.
      expect(problem.message).not.toContain('\n');
    });
    // The message lists every problem as "file:line: path: message".
    for (const problem of error.problems) {
      const where = problem.line === undefined ? error.file : `${error.file}:${problem.line}`;
      expect(error.message).toContain(`${where}: ${problem.path === '' ? '' : `${problem.path}: `}${problem.message}`);
    }
  });

  it('many-errors.yaml: reports all of its problems at once (schema and cross-field ones), in line order', async () => {
    const error = await problemsOf('many-errors.yaml');
    expect(error.problems).toHaveLength(14);
    expect(error.message.split('\n')[0]).toBe(`${fixturePath('many-errors.yaml')}: 14 configuration problems`);
    const lines = error.problems.map((p) => p.line ?? 0);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it('parseConfig names the source it was given, and "config" by default', () => {
    const text = 'upstreams:\n  - name: a\n    prefix: /a\n    target: http://127.0.0.1:1\n    limits: [{ rate: 1/s, burst: 0 }]\n';
    expect(() => parseConfig(text, { file: 'inline.yaml', env: {} })).toThrow(
      /^inline\.yaml: 1 configuration problem\n {2}inline\.yaml:5: upstreams\[0\]\.limits\[0\]\.burst: /,
    );
    expect(() => parseConfig(text, { env: {} })).toThrow(/^config: 1 configuration problem\n/);
  });

  it('a file that cannot be read is a ConfigError naming the file', async () => {
    const missing = join(tmpdir(), 'sluice-no-such-dir', 'sluice.yaml');
    const error = await loadConfigFile(missing, {}).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([{ path: '', message: 'cannot read the file: ENOENT' }]);
    expect((error as ConfigError).message).toContain(missing);
  });

  it('a variable set to the empty string is not "missing"', async () => {
    await expect(loadConfigFile(fixturePath('missing-env-var.yaml'), { SLUICE_TEST_UNSET_TOKEN: '' })).resolves.toMatchObject({
      upstreams: [{ setHeaders: { authorization: 'Bearer ' } }],
    });
  });
});

const UPSTREAM_DEFAULTS = {
  timeout: 10_000,
  bodyTimeout: 30_000,
  setHeaders: {},
  queue: { maxSize: 10_000, maxPerKey: 10_000, maxWait: 60_000, maxWaitHeader: 'sluice-max-wait' },
  retry: { attempts: 5, on: [429, 503, 'timeout', 'connect'], backoff: { base: 100, max: 10_000 }, respectRetryAfter: true, maxBodySize: 1_048_576 },
  pacing: { margin: 0.0075, headers: 'auto', maxPause: 600_000 },
  keys: { maxIdle: 100_000 },
};

describe('valid configurations: normalized values', () => {
  it('valid-minimal.yaml: every default filled in, in base units', async () => {
    const config = await loadConfigFile(fixturePath('valid-minimal.yaml'), {});
    expect(config).toStrictEqual({
      listen: {
        host: '0.0.0.0',
        port: 8080,
        bodyLimit: 33_554_432,
        headersTimeout: 10_000,
        requestTimeout: 60_000,
        keepAliveTimeout: 5_000,
        maxHeaderSize: 16_384,
      },
      admin: { host: '0.0.0.0', port: 9090, redactKeys: false },
      store: { type: 'memory' },
      shutdown: { grace: 25_000 },
      log: { level: 'info' },
      upstreams: [
        {
          name: 'api',
          prefix: '/',
          target: 'http://127.0.0.1:3000',
          timeout: 10_000,
          bodyTimeout: 30_000,
          setHeaders: {},
          limits: [{ rate: 20, burst: 1 }],
          queue: { maxSize: 10_000, maxPerKey: 10_000, maxWait: 60_000, maxWaitHeader: 'sluice-max-wait' },
          retry: { attempts: 5, on: [429, 503, 'timeout', 'connect'], backoff: { base: 100, max: 10_000 }, respectRetryAfter: true, maxBodySize: 1_048_576 },
          pacing: { margin: 0.0075, headers: 'auto', maxPause: 600_000 },
          keys: { maxIdle: 100_000 },
        },
      ],
    });
  });

  it("valid-full.yaml: DESIGN.md's annotated example, comments and all", async () => {
    const config = await loadConfigFile(fixturePath('valid-full.yaml'), { GITHUB_TOKEN: 'ghp_example' });
    expect(config).toStrictEqual({
      listen: {
        host: '0.0.0.0',
        port: 8080,
        bodyLimit: 33_554_432,
        headersTimeout: 10_000,
        requestTimeout: 60_000,
        keepAliveTimeout: 5_000,
        maxHeaderSize: 16_384,
      },
      admin: { host: '0.0.0.0', port: 9090, redactKeys: false },
      store: { type: 'redis', url: 'redis://redis:6379', onError: 'local', replicasHint: 1, timeout: 250, keyPrefix: 'sluice:' },
      shutdown: { grace: 25_000 },
      log: { level: 'warn' },
      upstreams: [
        {
          ...UPSTREAM_DEFAULTS,
          name: 'github',
          prefix: '/github',
          target: 'https://api.github.com',
          setHeaders: { authorization: 'Bearer ghp_example' },
          limits: [
            { rate: expect.closeTo(5000 / 3600, 12) as number, burst: 100 },
            { key: '{header.x-account}', rate: 20, burst: 1, concurrency: 10 },
          ],
          queue: { maxSize: 10_000, maxPerKey: 1_000, maxWait: 30_000, maxWaitHeader: 'sluice-max-wait' },
        },
        {
          ...UPSTREAM_DEFAULTS,
          name: 'slack',
          prefix: '/slack',
          target: 'https://slack.com/api',
          limits: [
            { key: '{query.channel}:{method}', rate: 6, burst: 1 },
            { burst: 1, concurrency: 4 },
          ],
          pacing: { margin: 0.025, headers: 'auto', maxPause: 600_000 },
          keys: { maxIdle: 5_000 },
        },
      ],
    });
  });

  it('valid-env.yaml: ${VAR}, ${VAR:-default} (unset or empty) and $${LITERAL}, from the env given only', async () => {
    const env: Env = {
      SLUICE_TEST_BILLING_URL: 'https://billing.example.com/v2',
      // Substituted once: a value that itself looks like a reference stays as it is.
      SLUICE_TEST_TOKEN: 's3cr3t-${SLUICE_TEST_REGION}',
      SLUICE_TEST_EMPTY: '',
    };
    const config = await loadConfigFile(fixturePath('valid-env.yaml'), env);
    expect(config.listen.host).toBe('127.0.0.1');
    expect(config.upstreams).toHaveLength(1);
    expect(config.upstreams[0]).toMatchObject({
      target: 'https://billing.example.com/v2',
      setHeaders: {
        authorization: 'Bearer s3cr3t-${SLUICE_TEST_REGION}',
        'x-region': 'eu-west-1',
        'x-tenant': 'acme',
        'x-template': '${NOT_SUBSTITUTED}',
        'x-mixed': 'eu/${HOME}/s3cr3t-${SLUICE_TEST_REGION}',
      },
      limits: [{ rate: expect.closeTo(100 / 60, 12) as number, burst: 1 }],
    });

    const overridden = await loadConfigFile(fixturePath('valid-env.yaml'), {
      ...env,
      SLUICE_TEST_HOST: '::1',
      SLUICE_TEST_REGION: 'us-east-2',
      SLUICE_TEST_EMPTY: 'globex',
    });
    expect(overridden.listen.host).toBe('::1');
    expect(overridden.upstreams[0]?.setHeaders).toMatchObject({
      'x-region': 'us-east-2',
      'x-tenant': 'globex',
      'x-mixed': 'us-east-2/${HOME}/s3cr3t-${SLUICE_TEST_REGION}',
    });
  });

  it('valid-env.yaml: every unset variable without a default is reported, with its line', async () => {
    const error = await problemsOf('valid-env.yaml', { SLUICE_TEST_EMPTY: '' });
    expect(error.problems).toEqual([
      { path: 'upstreams[0].target', line: 7, message: 'environment variable SLUICE_TEST_BILLING_URL is not set' },
      // The emptied target is then also not a URL; reported on the same line.
      { path: 'upstreams[0].target', line: 7, message: 'expected an http:// or https:// URL, got ""' },
      { path: 'upstreams[0].setHeaders.authorization', line: 9, message: 'environment variable SLUICE_TEST_TOKEN is not set' },
      { path: 'upstreams[0].setHeaders.x-mixed', line: 13, message: 'environment variable SLUICE_TEST_TOKEN is not set' },
    ]);
  });
});

describe('the returned configuration', () => {
  function expectPlainData(value: unknown, path = 'config'): void {
    if (value === null || typeof value !== 'object') {
      expect(['string', 'number', 'boolean'], `${path} is ${typeof value}`).toContain(typeof value);
      return;
    }
    expect(Object.isFrozen(value), `${path} is frozen`).toBe(true);
    expect([Object.prototype, Array.prototype], `${path} is a plain object or array`).toContain(Object.getPrototypeOf(value));
    for (const [key, child] of Object.entries(value)) expectPlainData(child, `${path}.${key}`);
  }

  it('is deeply frozen plain data: assignments throw', async () => {
    const config = await loadConfigFile(fixturePath('valid-full.yaml'), { GITHUB_TOKEN: 't' });
    expectPlainData(config);
    expect(() => {
      (config.listen as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.upstreams as unknown[]).push({});
    }).toThrow(TypeError);
    expect(() => {
      (config.upstreams[0]?.setHeaders as Record<string, string>).authorization = 'Bearer other';
    }).toThrow(TypeError);
    expect(config.listen.port).toBe(8080);
  });

  it('does not need the input afterwards: the file can go, the config stays whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'sluice.yaml');
    await copyFile(fixturePath('valid-full.yaml'), file);
    const text = await readFile(file, 'utf8');
    const config = await loadConfigFile(file, { GITHUB_TOKEN: 't' });
    await rm(dir, { recursive: true });
    expect(JSON.parse(JSON.stringify(config))).toStrictEqual(parseConfig(text, { env: { GITHUB_TOKEN: 't' } }));
    expect(config.upstreams.map((u) => u.name)).toEqual(['github', 'slack']);
  });

  it('validateConfig does not mutate its input (a deeply frozen object goes through)', () => {
    const raw = {
      listen: { port: 0 },
      upstreams: [{ name: 'a', prefix: '/', target: 'http://127.0.0.1:1', limits: [{ rate: '30/5s' }], retry: { backoff: { max: '1s' } } }],
    };
    const before = structuredClone(raw);
    const freeze = (value: unknown): void => {
      if (value && typeof value === 'object') {
        Object.freeze(value);
        Object.values(value).forEach(freeze);
      }
    };
    freeze(raw);
    const locator = { lineOf: () => undefined, keyLineOf: () => undefined, valueAt: () => ({ found: false }) };
    const config = validateConfig(raw, { file: 'inline', locator });
    expect(raw).toStrictEqual(before);
    expect(config.upstreams[0]?.limits[0]).toStrictEqual({ rate: 6, burst: 1 });
    expect(config.upstreams[0]?.retry.backoff).toStrictEqual({ base: 100, max: 1_000 });
    expect(config.listen.port).toBe(0);
  });
});

describe('cross-field rules read a field left out with its schema default', () => {
  const upstream = 'upstreams:\n  - name: a\n    prefix: /a\n    target: http://127.0.0.1:1\n    limits: [{ rate: 1/s }]\n';
  const problemsOf = (text: string): ConfigProblem[] => {
    try {
      parseConfig(text, { env: {} });
    } catch (err) {
      if (err instanceof ConfigError) return [...err.problems];
      throw err;
    }
    return [];
  };

  it.each([
    [
      'admin.port against the default listen.port',
      `admin: { port: 8080 }\n${upstream}`,
      'admin.port',
      'must differ from listen.port (8080): the admin endpoints never share the client port',
    ],
    [
      'queue.maxPerKey against the default maxSize',
      `${upstream}    queue: { maxPerKey: 10001 }\n`,
      'upstreams[0].queue.maxPerKey',
      'is larger than queue.maxSize (10000)',
    ],
    [
      'backoff.base against the default max',
      `${upstream}    retry: { backoff: { base: 11s } }\n`,
      'upstreams[0].retry.backoff.base',
      'is larger than backoff.max',
    ],
    [
      'backoff.max against the default base',
      `${upstream}    retry: { backoff: { max: 50ms } }\n`,
      'upstreams[0].retry.backoff.base',
      'is larger than backoff.max',
    ],
  ])('%s', (_name, text, path, message) => {
    expect(problemsOf(text)).toMatchObject([{ path, message }]);
  });

  it('reports nothing at the defaults themselves', () => {
    expect(problemsOf(`admin: { port: 9091 }\n${upstream}    queue: { maxPerKey: 10000 }\n    retry: { backoff: { base: 10s } }\n`)).toEqual([]);
  });
});
