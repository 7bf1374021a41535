import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';
import { rawRoundTrip } from './support.js';

/**
 * Credentials injected by `setHeaders` replace whatever the client sent under the same name, in
 * any case, repeated or not: the upstream receives exactly one value, the configured one. A client
 * cannot substitute its own credential, nor add a second one the upstream might read first.
 */

const TOKEN = 'Bearer sk-live-3f9a1c';
const KEY = 'key-7e21';

let upstream: ScriptedUpstream;
let sluice: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  sluice = await startSluice(
    `
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}
    setHeaders: { Authorization: "\${API_TOKEN}", x-api-key: "${KEY}", X-Tenant: configured }
`,
    { env: { API_TOKEN: TOKEN } },
  );
});

afterAll(async () => {
  await sluice?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

function values(seen: SeenRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) if ((seen.rawHeaders[i] as string).toLowerCase() === name) out.push(seen.rawHeaders[i + 1] as string);
  return out;
}

it.each([
  ['none', ''],
  ['lower case', 'authorization: Bearer client\r\nx-api-key: client\r\nx-tenant: other'],
  ['upper case', 'AUTHORIZATION: Bearer client\r\nX-API-KEY: client\r\nX-TENANT: other'],
  ['mixed case', 'AuThOrIzAtIoN: Bearer client\r\nX-Api-Key: client\r\nx-Tenant: other'],
  ['repeated', 'Authorization: Bearer one\r\nauthorization: Bearer two\r\nX-Api-Key: a\r\nx-api-key: b\r\nX-Tenant: a\r\nX-Tenant: b'],
  ['empty values', 'Authorization:\r\nx-api-key: \r\nX-Tenant:'],
  ['padded values', 'Authorization:    Bearer client   \r\nx-api-key:\tclient'],
  ['named in Connection', 'Connection: authorization\r\nAuthorization: Bearer client'],
])('the upstream gets the configured values once (client headers: %s)', async (_name, headers) => {
  const connection = await rawRoundTrip(sluice.url, `GET /api/x HTTP/1.1\r\nHost: sluice\r\n${headers}${headers ? '\r\n' : ''}Connection: close\r\n\r\n`);
  expect(connection.status, connection.text).toBe(200);
  expect(upstream.seen).toHaveLength(1);
  const seen = upstream.seen[0] as SeenRequest;
  expect(values(seen, 'authorization')).toEqual([TOKEN]);
  expect(values(seen, 'x-api-key')).toEqual([KEY]);
  expect(values(seen, 'x-tenant')).toEqual(['configured']);
  expect(JSON.stringify(seen.rawHeaders)).not.toContain('client');
});
