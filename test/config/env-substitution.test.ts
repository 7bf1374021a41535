import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { parseConfig } from '../../src/config/load-config.js';

const base = 'upstreams:\n  - { name: a, prefix: /, target: "http://127.0.0.1:1", limits: [{ rate: 1/s }] }\n';

describe('${VAR} substitution', () => {
  it('gives an unquoted whole reference the type YAML would give the value: port: ${PORT} is a number', () => {
    const config = parseConfig(`listen:\n  port: \${PORT}\nadmin:\n  port: \${ADMIN_PORT:-9091}\n${base}`, { env: { PORT: '8081' } });
    expect(config.listen.port).toBe(8081);
    expect(config.admin.port).toBe(9091);
  });

  it('keeps a quoted reference a string, so the schema can say what it expected', () => {
    expect(() => parseConfig(`listen:\n  port: "\${PORT}"\n${base}`, { env: { PORT: '8081' } })).toThrow(/listen\.port: expected number, got "8081"/);
  });

  it('keeps a reference inside other text a string', () => {
    const config = parseConfig(`upstreams:\n  - name: a\n    prefix: /\n    target: http://127.0.0.1:\${PORT}/v1\n    limits: [{ rate: 1/s }]\n`, {
      env: { PORT: '8081' },
    });
    expect(config.upstreams[0]?.target).toBe('http://127.0.0.1:8081/v1');
  });

  it('reports at most three YAML syntax errors: the rest echo the first', () => {
    try {
      parseConfig(`listen: { port: \${PORT} }\nadmin: { port: 9091 }\n${base}`, { env: { PORT: '1' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.length).toBeLessThanOrEqual(3);
      expect((err as ConfigError).problems[0]?.line).toBe(1);
    }
  });
});
