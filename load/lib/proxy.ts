/**
 * The proxy under test: sluice started by the scenario (optionally under `node --cpu-prof`), or
 * another proxy given with --proxy-url, which the scenario then only sends traffic to.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { newestProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { spawnSluice } from './processes.js';
import type { Table } from './report.js';
import type { CommonOptions } from './scenario.js';

export interface ProxyUnderTest {
  readonly proxyUrl: string;
  readonly adminUrl: string | undefined;
  /** The sluice child's pid (for its RSS); undefined for an external proxy. */
  readonly pid: number | undefined;
  readonly external: boolean;
  /** Stops sluice; with --cpu-prof, returns the summary of the profile it wrote. */
  stop(): Promise<ProfileSummary | undefined>;
}

export async function startProxy(
  common: CommonOptions,
  configYaml: string,
  options: { label: string; stdout?: 'pipe' | 'null'; env?: Record<string, string> },
): Promise<ProxyUnderTest> {
  if (common.proxyUrl !== undefined) {
    return { proxyUrl: common.proxyUrl.replace(/\/$/, ''), adminUrl: common.adminUrl, pid: undefined, external: true, stop: () => Promise.resolve(undefined) };
  }
  const profileDir = join(common.outDir, 'profiles', `${options.label}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  if (common.cpuProf) mkdirSync(profileDir, { recursive: true });
  const sluice = await spawnSluice(configYaml, {
    stdout: options.stdout ?? 'pipe',
    env: options.env ?? {},
    nodeArgs: common.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  });
  return {
    proxyUrl: sluice.proxyUrl,
    adminUrl: sluice.adminUrl,
    pid: sluice.pid,
    external: false,
    async stop() {
      await sluice.stop();
      if (!common.cpuProf) return undefined;
      const file = newestProfile(profileDir);
      return file === undefined ? undefined : summarizeProfile(file);
    },
  };
}

/** The profile's top areas and functions as report tables. */
export function profileTables(label: string, summary: ProfileSummary | undefined): Table[] {
  if (!summary) return [];
  return [
    {
      title: `cpu profile of sluice (${label}): self time by area, ${summary.busyMs} ms busy of ${summary.totalMs} ms (${summary.file})`,
      columns: ['area', 'self ms', '% of busy'],
      rows: summary.areas.slice(0, 15).map((a) => [a.area, a.selfMs, a.percentOfBusy]),
    },
    {
      title: `cpu profile of sluice (${label}): time by who asked for it (native work and node internals charged to the nearest caller outside them)`,
      columns: ['caller area', 'ms', '% of busy'],
      rows: summary.byCaller.slice(0, 15).map((a) => [a.area, a.selfMs, a.percentOfBusy]),
    },
    {
      title: `cpu profile of sluice (${label}): native functions by caller`,
      columns: ['native', 'caller area', 'ms', '% of busy'],
      rows: summary.nativeByCaller.slice(0, 12).map((a) => [a.native, a.caller, a.selfMs, a.percentOfBusy]),
    },
    {
      title: `cpu profile of sluice (${label}): top functions by self time`,
      columns: ['function', 'where', 'self ms', '% of busy'],
      rows: summary.functions.slice(0, 20).map((f) => [f.fn, f.where, f.selfMs, f.percentOfBusy]),
    },
  ];
}
