import { afterEach, expect, it } from 'vitest';
import { runHeaders } from '../../load/lib/learning.js';
import { Standin } from '../../load/lib/standin.js';
import { startSluice, type RunningSluice } from '../helpers/sluice.js';

/**
 * sluice with no rate at all (`limits: []`, `pacing.headers: auto`) in front of an API that allows
 * 40 requests per 4 s and says so on every answer; 20 callers keep a backlog for 12 s (three windows):
 * the acceptance of `npm run load:headers` (100 per 10 s over 30 s: no 429, >= 90% of the quota),
 * asserted loosely on a shorter run. Both dialects, each on the window it usually describes:
 * GitHub's X-RateLimit-* on a fixed window (the quota comes back whole at the reset, in epoch
 * seconds), the draft's RateLimit / RateLimit-Policy on the strict sliding window (`t` is when the
 * next request leaves it, draft 10).
 */

let api: Standin | undefined;
let sluice: RunningSluice | undefined;

afterEach(async () => {
  await sluice?.close();
  await api?.close();
});

it.each([
  ['x-ratelimit', true],
  ['ietf', false],
] as const)(
  '%s headers (fixed window: %s): no 429 and at least 85 percent of the quota used, without a configured rate',
  async (dialect, fixed) => {
    api = new Standin({ window: { requests: 40, windowMs: 4000, fixed }, quotaHeaders: dialect });
    const apiUrl = await api.listen();
    sluice = await startSluice(`
upstreams:
  - name: api
    prefix: /
    target: ${apiUrl}
    limits: []
    pacing: { headers: auto }
`);
    const run = await runHeaders({
      proxyUrl: sluice.url,
      adminUrl: sluice.adminUrl,
      standinUrl: apiUrl,
      upstream: 'api',
      quota: 40,
      windowMs: 4000,
      durationSec: 12,
    });

    expect(run.upstream429s).toBe(0);
    expect(run.clientFailures).toEqual({});
    expect(run.accepted).toBeLessThanOrEqual(120);
    expect(run.usedPercent).toBeGreaterThanOrEqual(85);
    // What sluice paced at once it knew (sluice_effective_rate, every 500 ms): near the quota's 10/s,
    // neither unbounded (no rate is configured) nor crawling.
    const learned = run.ratePoints.slice(2).map(([, rate]) => rate);
    expect(learned.length).toBeGreaterThan(15);
    for (const rate of learned) {
      expect(rate).toBeGreaterThan(5);
      expect(rate).toBeLessThan(15);
    }
  },
  25_000,
);
