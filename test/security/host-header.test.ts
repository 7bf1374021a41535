import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';
import { ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';
import { Decoy, rawRoundTrip } from './support.js';

/**
 * No open proxy: the Host header (and X-Forwarded-Host, and a missing Host) never changes where a
 * request goes nor the Host the upstream sees. sluice routes by path and sends the target's host.
 */

let first: ScriptedUpstream;
let second: ScriptedUpstream;
let decoy: Decoy;
let sluice: RunningSluice;

beforeAll(async () => {
  first = await ScriptedUpstream.start();
  second = await ScriptedUpstream.start();
  decoy = await Decoy.start();
  sluice = await startSluice(`
upstreams:
  - name: first
    prefix: /first
    target: ${first.url}/one
  - name: second
    prefix: /second
    target: ${second.url}/two
`);
});

afterAll(async () => {
  await sluice?.close();
  await first?.close();
  await second?.close();
  await decoy?.close();
});

beforeEach(() => {
  first.seen.length = 0;
  second.seen.length = 0;
});

function hostsOf(seen: SeenRequest): string[] {
  const hosts: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) if ((seen.rawHeaders[i] as string).toLowerCase() === 'host') hosts.push(seen.rawHeaders[i + 1] as string);
  return hosts;
}

it('sends every request to the upstream its path names, with that upstream’s Host, whatever Host the client sent', async () => {
  const heads = [
    `Host: ${decoy.host}`,
    `Host: ${new URL(second.url).host}`, // the other upstream
    'Host: localhost',
    'Host: 169.254.169.254',
    'Host: evil.example:443',
    `Host: ${decoy.host}\r\nX-Forwarded-Host: ${decoy.host}\r\nForwarded: host=${decoy.host}`,
    `Host: ${decoy.host}@evil.example`,
  ];
  for (const head of heads) {
    const connection = await rawRoundTrip(sluice.url, `GET /first/x HTTP/1.1\r\n${head}\r\nConnection: close\r\n\r\n`);
    expect(connection.status, `${head}: ${connection.text}`).toBe(200);
  }
  // HTTP/1.0 allows no Host at all.
  const bare = await rawRoundTrip(sluice.url, 'GET /first/x HTTP/1.0\r\n\r\n');
  expect(bare.status).toBe(200);

  expect(first.seen).toHaveLength(heads.length + 1);
  for (const seen of first.seen) {
    expect(seen.url).toBe('/one/x');
    expect(hostsOf(seen)).toEqual([new URL(first.url).host]);
  }
  expect(second.seen).toHaveLength(0);
  expect(decoy.connections).toBe(0);
});

it('refuses a request with two Host headers before it reaches anyone', async () => {
  const connection = await rawRoundTrip(
    sluice.url,
    `GET /first/x HTTP/1.1\r\nHost: ${new URL(first.url).host}\r\nHost: ${decoy.host}\r\nConnection: close\r\n\r\n`,
  );
  expect(connection.status).toBe(400);
  expect(first.seen).toHaveLength(0);
  expect(decoy.connections).toBe(0);
});
