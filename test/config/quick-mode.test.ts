import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { quickConfig, type QuickFlags } from '../../src/config/quick-mode.js';

function problemsOf(flags: QuickFlags): { path: string; message: string }[] {
  try {
    quickConfig(flags);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).file).toBe('command line');
    return (err as ConfigError).problems.map((p) => {
      expect(p.line).toBeUndefined();
      return { path: p.path, message: p.message };
    });
  }
  throw new Error('the flags were accepted');
}

describe('quick mode: one upstream at "/" from flags', () => {
  it('builds a normalized, frozen configuration', () => {
    const config = quickConfig({ target: 'https://api.example.com', rate: '20/s', burst: '5', concurrency: '10', port: '0', 'admin-port': '9191' });
    expect(config.listen.port).toBe(0);
    expect(config.admin.port).toBe(9191);
    expect(config.upstreams).toHaveLength(1);
    expect(config.upstreams[0]).toMatchObject({
      name: 'default',
      prefix: '/',
      target: 'https://api.example.com',
      limits: [{ rate: 20, burst: 5, concurrency: 10 }],
    });
    expect(Object.isFrozen(config.upstreams[0]?.limits[0])).toBe(true);
  });

  it('fills the same defaults as a file: ports 8080 and 9090, burst 1', () => {
    const config = quickConfig({ target: 'http://127.0.0.1:3000', rate: '30/5s' });
    expect(config.listen.port).toBe(8080);
    expect(config.admin.port).toBe(9090);
    expect(config.upstreams[0]?.limits).toStrictEqual([{ rate: 6, burst: 1 }]);
  });

  it('a concurrency alone is a valid limit', () => {
    expect(quickConfig({ target: 'http://127.0.0.1:3000', concurrency: '4' }).upstreams[0]?.limits).toStrictEqual([{ burst: 1, concurrency: 4 }]);
  });

  it('names the flags in every problem, all at once', () => {
    expect(problemsOf({ target: 'ftp://api.example.com', rate: 'fast', burst: 'lots', concurrency: '0', port: '70000' })).toEqual([
      { path: '--port', message: expect.stringContaining('must be at most 65535, got 70000') as string },
      { path: '--target', message: 'expected an http:// or https:// URL, got "ftp://api.example.com"' },
      { path: '--rate', message: 'expected a rate such as 20/s, 1000/m, 5000/h or 30/5s, got "fast"' },
      { path: '--burst', message: 'expected number, got "lots"' },
      { path: '--concurrency', message: expect.stringContaining('must be at least 1, got 0') as string },
    ]);
  });

  it('without --rate or --concurrency, says that one is needed', () => {
    expect(problemsOf({ target: 'http://127.0.0.1:3000' })).toEqual([
      { path: '--rate/--concurrency', message: 'a limit needs a rate, a concurrency, or both' },
    ]);
  });

  it('the same port for --port and --admin-port is refused, naming --admin-port', () => {
    expect(problemsOf({ target: 'http://127.0.0.1:3000', rate: '1/s', port: '8000', 'admin-port': '8000' })).toEqual([
      { path: '--admin-port', message: expect.stringContaining('must differ from listen.port (8000)') as string },
    ]);
  });
});
