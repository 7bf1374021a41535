import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream } from '../helpers/upstream.js';
import { Decoy, rawRoundTrip } from './support.js';

/**
 * A path that starts with `//` (`//evil.com/x`, a network-path reference when read as a URL)
 * names no host to sluice: it goes, as a path, to the configured upstream, after its base path.
 * Checked for an upstream mounted at `/` without a base path (where the forwarded path itself
 * starts with `//`) and with one.
 */

let upstream: ScriptedUpstream;
let decoy: Decoy;
let rooted: RunningSluice;
let based: RunningSluice;

beforeAll(async () => {
  upstream = await ScriptedUpstream.start();
  decoy = await Decoy.start();
  rooted = await startSluice(`
upstreams:
  - name: root
    prefix: /
    target: ${upstream.url}
`);
  based = await startSluice(`
upstreams:
  - name: api
    prefix: /api
    target: ${upstream.url}/base
`);
});

afterAll(async () => {
  await rooted?.close();
  await based?.close();
  await upstream?.close();
  await decoy?.close();
});

beforeEach(() => {
  upstream.seen.length = 0;
});

it('forwards //host paths to the configured upstream as paths (no base path)', async () => {
  for (const path of [`//${decoy.host}/x`, '//evil.com/x', `///${decoy.host}/x`, `//${decoy.host}`, `//${decoy.host}?q=1`]) {
    upstream.seen.length = 0;
    const connection = await rawRoundTrip(rooted.url, `GET ${path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n`);
    expect(connection.status, `${path}: ${connection.text}`).toBe(200);
    expect(upstream.seen.map((r) => r.url)).toEqual([path]);
  }
  expect(decoy.connections).toBe(0);
});

it('keeps //host paths under the base path', async () => {
  for (const [path, expected] of [
    [`/api//${decoy.host}/x`, `/base//${decoy.host}/x`],
    ['/api//evil.com', '/base//evil.com'],
  ] as const) {
    upstream.seen.length = 0;
    const connection = await rawRoundTrip(based.url, `GET ${path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n`);
    expect(connection.status, `${path}: ${connection.text}`).toBe(200);
    expect(upstream.seen.map((r) => r.url)).toEqual([expected]);
  }
  expect(decoy.connections).toBe(0);
});
