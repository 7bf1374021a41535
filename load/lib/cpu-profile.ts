/**
 * Reads a V8 .cpuprofile (written by `node --cpu-prof`) and sums self time per function and per
 * area (sluice's own files, each npm package, node's internals, GC, idle), for the findings in
 * load/README.md when a target is missed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Time not idle: what the process spent working. */
  readonly busyMs: number;
  readonly areas: readonly { readonly area: string; readonly selfMs: number; readonly percentOfBusy: number }[];
  /**
   * The same time, with native functions (socket and file writes, string encoding) charged to the
   * nearest JavaScript caller's area, and node internals charged to the nearest caller outside them:
   * who asked for the work.
   */
  readonly byCaller: readonly { readonly area: string; readonly selfMs: number; readonly percentOfBusy: number }[];
  /** Native functions (writev, writeString...) by the nearest caller outside node's internals. */
  readonly nativeByCaller: readonly { readonly native: string; readonly caller: string; readonly selfMs: number; readonly percentOfBusy: number }[];
  readonly functions: readonly { readonly fn: string; readonly where: string; readonly selfMs: number; readonly percentOfBusy: number }[];
}

export function areaOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, outside JS)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm: ${pkg[1]}`;
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/(dist|src)\/(.+)$/.exec(url);
  if (own) return `sluice: ${own[2]}`;
  return url;
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** The area of the nearest ancestor that is neither native nor node's internals. */
  const callerArea = (id: number): string => {
    for (let at = parent.get(id); at !== undefined; at = parent.get(at)) {
      const frame = (byId.get(at) as ProfileNode).callFrame;
      const area = areaOf(frame.url, frame.functionName);
      if (frame.url !== '' && area !== 'node internals') return area;
    }
    return 'node internals (no caller outside)';
  };
  const byCaller = new Map<string, number>();
  const nativeByCaller = new Map<string, { native: string; caller: string; us: number }>();
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const areas = new Map<string, number>();
  const functions = new Map<string, { fn: string; where: string; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    totalUs += us;
    const area = areaOf(url, functionName);
    if (area === 'idle') {
      idleUs += us;
      continue;
    }
    areas.set(area, (areas.get(area) ?? 0) + us);
    const charged = area.startsWith('native: ') || area === 'node internals' ? callerArea(id) : area;
    byCaller.set(charged, (byCaller.get(charged) ?? 0) + us);
    if (area.startsWith('native: ')) {
      const k = `${area}@${charged}`;
      const e = nativeByCaller.get(k) ?? { native: area.slice(8), caller: charged, us: 0 };
      e.us += us;
      nativeByCaller.set(k, e);
    }
    const where = url === '' ? '' : `${url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}`;
    const key = `${functionName}@${where}`;
    const entry = functions.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number): number => Math.round((us / busyUs) * 1000) / 10;
  return {
    file,
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([area, us]) => ({ area, selfMs: Math.round(us / 1000), percentOfBusy: pct(us) })),
    byCaller: [...byCaller.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([area, us]) => ({ area, selfMs: Math.round(us / 1000), percentOfBusy: pct(us) })),
    nativeByCaller: [...nativeByCaller.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ native: e.native, caller: e.caller, selfMs: Math.round(e.us / 1000), percentOfBusy: pct(e.us) })),
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ fn: f.fn, where: f.where, selfMs: Math.round(f.us / 1000), percentOfBusy: pct(f.us) })),
  };
}

/** The newest .cpuprofile in `dir`. */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const last = files[files.length - 1];
  return last === undefined ? undefined : join(dir, last);
}
