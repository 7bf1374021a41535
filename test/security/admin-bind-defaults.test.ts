import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { startSluice } from '../helpers/sluice.js';

/**
 * The listeners' bind defaults are what README and SECURITY.md say they are (all interfaces,
 * 8080 and 9090, keys shown in /state), so an operator who reads the docs knows what is exposed;
 * and each listener binds exactly where it is configured, the admin listener apart from the
 * client one.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const security = readFileSync(join(ROOT, 'SECURITY.md'), 'utf8');

describe('bind defaults', () => {
  const config = parseConfig('upstreams: [{ name: api, prefix: /api, target: "http://127.0.0.1:1" }]', { env: {} });

  it('are all interfaces, 8080 and 9090, keys not redacted', () => {
    expect({ host: config.listen.host, port: config.listen.port }).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.admin).toEqual({ host: '0.0.0.0', port: 9090, redactKeys: false });
  });

  it("are the ones README's configuration reference lists", () => {
    expect(readme).toMatch(new RegExp(`\\nlisten:[^\\n]*\\n  host: ${config.listen.host.replaceAll('.', '\\.')}\\n  port: ${config.listen.port}\\n`));
    expect(readme).toMatch(
      new RegExp(
        `\\nadmin:[^\\n]*\\n  host: ${config.admin.host.replaceAll('.', '\\.')}\\n  port: ${config.admin.port}\\n  redactKeys: ${config.admin.redactKeys}`,
      ),
    );
  });

  it('are the ones SECURITY.md warns about', () => {
    expect(security).toContain(`\`listen: { host: ${config.listen.host}, port: ${config.listen.port} }\``);
    expect(security).toContain(`\`admin: { host: ${config.admin.host}, port: ${config.admin.port} }\``);
    expect(security).toMatch(/redactKeys: true/);
  });
});

it('binds each listener where it is configured, on its own port', async () => {
  const sluice = await startSluice(`
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: [{ name: api, prefix: /api, target: "http://127.0.0.1:1" }]
`);
  try {
    const proxy = sluice.app.proxy.server.address();
    const admin = sluice.app.admin.server.address();
    expect(proxy).toMatchObject({ address: '127.0.0.1' });
    expect(admin).toMatchObject({ address: '127.0.0.1' });
    expect(typeof proxy === 'object' && typeof admin === 'object' && proxy?.port !== admin?.port).toBe(true);
  } finally {
    await sluice.close();
  }
});
