/**
 * The GitHub cell of the learning matrix (issue 13): the README's sidecar example,
 * examples/sidecar-github.yaml, in front of a stand-in API with a token-wide quota that it announces
 * in GitHub's quota headers (`X-RateLimit-Limit/-Remaining/-Reset`, a fixed window counted from the
 * first request). The example's shape is kept whole: a token-wide rule plus a per-account rule
 * (`{header.x-account}`: 10/s, burst 5, concurrency 5), its queue, retry and timeout settings. Only
 * what must change for a machine without the real API changes: the target, the listeners, and the
 * token-wide rule's rate (`5000/h` becomes the stand-in's quota per its window, so an hour does
 * not have to pass; its burst stays the file's 100, the whole quota here, so only the headers keep
 * sluice inside it). Calls go out at once, round robin over the accounts.
 *
 * `perAccountRule: false` drops the per-account rule: the issue's comparison ("the global rule
 * alone gets 0").
 */
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { fanout } from './fanout.js';
import { ROOT, spawnSluice, spawnStandin } from './processes.js';
import type { Progress } from './progress.js';
import { standinStats } from './upstream-stats.js';

export interface GithubCellOptions {
  readonly calls: number;
  readonly accounts: number;
  /** The token's quota per window. */
  readonly quota: number;
  readonly windowMs: number;
  readonly perAccountRule: boolean;
  readonly progress: Progress;
}

export interface GithubCellResult {
  readonly perAccountRule: boolean;
  readonly calls: number;
  readonly accounts: number;
  readonly quota: number;
  readonly windowMs: number;
  readonly ok: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly notFinished: number;
  readonly stopped: boolean;
  readonly limitSec: number;
  readonly wallSec: number;
  readonly apiAccepted: number;
  readonly api429s: number;
  /**
   * The soonest any client could finish: the calls need ceil(calls / quota) windows, the last of
   * which opens (windows - 1) x windowMs after the first request.
   */
  readonly soonestSec: number;
  readonly perSecondAccepted: readonly number[];
  readonly perSecondRefused: readonly number[];
  readonly rejectionsSec: readonly number[];
}

/** The example file with the changes above, as YAML. */
export function githubConfig(options: { apiUrl: string; quota: number; windowMs: number; perAccountRule: boolean }): string {
  const file = parse(readFileSync(join(ROOT, 'examples', 'sidecar-github.yaml'), 'utf8')) as {
    listen: unknown;
    admin: unknown;
    shutdown: unknown;
    log?: unknown;
    upstreams: { target: string; limits: Record<string, unknown>[] }[];
  };
  file.listen = { host: '127.0.0.1', port: 0 };
  file.admin = { host: '127.0.0.1', port: 0 };
  file.shutdown = { grace: '1s' };
  file.log = { level: 'warn' };
  const upstream = file.upstreams[0];
  if (!upstream || upstream.limits.length !== 2) throw new Error('examples/sidecar-github.yaml: expected one upstream with two limits');
  upstream.target = options.apiUrl;
  const [tokenWide, perAccount] = upstream.limits as [Record<string, unknown>, Record<string, unknown>];
  tokenWide.rate = `${options.quota}/${options.windowMs / 1000}s`;
  upstream.limits = options.perAccountRule ? [tokenWide, perAccount] : [tokenWide];
  return `# written by load/learning.ts from examples/sidecar-github.yaml\n${stringify(file)}`;
}

export async function runGithubCell(options: GithubCellOptions): Promise<GithubCellResult> {
  const { calls, quota, windowMs } = options;
  const idealSec = calls / ((quota * 1000) / windowMs);
  const limitSec = idealSec * 3;
  const api = await spawnStandin(['--rate', String(quota), '--window-ms', String(windowMs), '--fixed-window', '--quota-headers', 'x-ratelimit']);
  const sluice = await spawnSluice(githubConfig({ apiUrl: api.url, quota, windowMs, perAccountRule: options.perAccountRule }), {
    env: { GITHUB_TOKEN: 'load-test-token' },
  });
  const stop = new AbortController();
  setMaxListeners(calls + 10, stop.signal);
  let stopped = false;
  const timer = setTimeout(() => {
    stopped = true;
    stop.abort();
  }, limitSec * 1000);
  try {
    let ok = 0;
    const { results, wallMs } = await fanout({
      url: (i) => `${sluice.proxyUrl}/github/repos/acme/widgets/issues/${i}`,
      headers: (i) => ({ 'x-account': `account-${i % options.accounts}` }),
      count: calls,
      signal: stop.signal,
      onResult: (result, done) => {
        if (result.status === 200) ok++;
        options.progress.set(`${ok} ok of ${calls}, ${done} done; stopped after ${Math.round(limitSec)} s`);
      },
    });
    clearTimeout(timer);
    const stats = await standinStats(api.url);
    const finished = results.filter((r) => r.error !== 'aborted');
    const failures: Record<string, number> = {};
    for (const r of finished) {
      if (r.status === 200) continue;
      const key = r.error ?? `${r.status}${r.code ? ` ${r.code}` : ''}`;
      failures[key] = (failures[key] ?? 0) + 1;
    }
    const wallSec = wallMs / 1000;
    return {
      perAccountRule: options.perAccountRule,
      calls,
      accounts: options.accounts,
      quota,
      windowMs,
      ok: finished.filter((r) => r.status === 200).length,
      failures,
      notFinished: calls - finished.length,
      stopped,
      limitSec,
      wallSec,
      apiAccepted: stats.accepted,
      api429s: stats.rejected,
      soonestSec: ((Math.ceil(calls / quota) - 1) * windowMs) / 1000,
      perSecondAccepted: stats.perSecond.map((s) => s.accepted),
      perSecondRefused: stats.perSecond.map((s) => s.rejected),
      rejectionsSec: (stats.rejectionsMs ?? []).map((ms) => ms / 1000),
    };
  } finally {
    clearTimeout(timer);
    await sluice.stop();
    await api.stop();
  }
}
