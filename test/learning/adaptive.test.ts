import { afterEach, expect, it } from 'vitest';
import { runAdaptive } from '../../load/lib/learning.js';
import { Standin } from '../../load/lib/standin.js';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';

/**
 * An API that really allows 20 requests in any 1000 ms (the strict stand-in), sluice told 40/s with
 * `adaptive` on, 300 calls at once: the acceptance of `npm run load:adaptive` (1000 calls, 429s under
 * 3%, settled within 10 s, >= 90% of the limit), asserted loosely on a shorter run.
 *
 * The controller measures the rate the API accepted when it throttles (about 20/s), settles just
 * under it (19.8/s) and probes above only after 30 quiet windows (not within this run): two 429s are
 * expected, one per first burst.
 */

let api: Standin | undefined;
let sluice: RunningSluice | undefined;

afterEach(async () => {
  await sluice?.close();
  await api?.close();
});

it('learns a 20/s limit it was told was 40/s: every call ok, few 429s, settled within 10 s, >= 85% of the limit', async () => {
  api = new Standin({ window: { requests: 20, windowMs: 1000 } });
  const apiUrl = await api.listen();
  sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /
    target: ${apiUrl}
    limits:
      - rate: 40/s
        adaptive: {}
    queue: { maxWait: 5m }
`);
  const run = await runAdaptive({ proxyUrl: sluice.url, adminUrl: sluice.adminUrl, standinUrl: apiUrl, upstream: 'api', calls: 300, limitPerSec: 20 });

  expect(run.failures).toEqual({});
  expect(run.ok).toBe(300);
  expect(run.upstream429s).toBeGreaterThan(0); // it did have to learn
  expect(run.upstream429Percent).toBeLessThan(5);
  // The first poll shows the configured rate (40/s less the margin): it came down from there.
  expect(run.ratePoints[0]?.[1]).toBeGreaterThan(39);
  expect(run.settledAtSec).toBeDefined();
  expect(run.settledAtSec).toBeLessThan(10);
  expect(run.finalRatePerSec).toBeGreaterThanOrEqual(18);
  expect(run.finalRatePerSec).toBeLessThanOrEqual(20);
  expect(run.achievedPercent).toBeGreaterThanOrEqual(85);
}, 40_000);
