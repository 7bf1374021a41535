/**
 * What a result was measured on, and whether the machine was quiet enough to measure at all: the
 * client, the proxy and the upstream share two cores, so another process's load moves every number.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { ROOT } from './processes.js';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  readonly commit: string;
  /** Uncommitted changes under src/ when measured (the numbers then describe a modified sluice). */
  readonly srcDirty: boolean;
}

export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.split(':')[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  return {
    cpuModel,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    // SLUICE_COMMIT names the build measured when it is not this checkout's (see SLUICE_CLI).
    commit: process.env.SLUICE_COMMIT ?? git(['rev-parse', '--short', 'HEAD']) ?? 'unknown',
    srcDirty: process.env.SLUICE_COMMIT === undefined && (git(['status', '--porcelain', '--', 'src']) ?? '') !== '',
  };
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = loadavg();
  return [round2(one ?? 0), round2(five ?? 0), round2(fifteen ?? 0)];
}

/**
 * Waits until the 1-minute load average is at most `maxLoad` (checking every 5 s, at most
 * `maxWaitMs`). Returns the load average it started with and whether the machine became quiet.
 */
export async function waitForQuiet(options: {
  maxLoad: number;
  maxWaitMs: number;
  log: (line: string) => void;
}): Promise<{ quiet: boolean; waitedMs: number; loadAtStart: [number, number, number] }> {
  const started = performance.now();
  let warned = false;
  while (true) {
    const load = loadAverage();
    if (load[0] <= options.maxLoad) return { quiet: true, waitedMs: Math.round(performance.now() - started), loadAtStart: load };
    if (performance.now() - started >= options.maxWaitMs) {
      options.log(
        `  the machine is still busy (1-minute load ${load[0]} > ${options.maxLoad}) after ${Math.round(options.maxWaitMs / 1000)} s: measuring anyway, the results say so`,
      );
      return { quiet: false, waitedMs: Math.round(performance.now() - started), loadAtStart: load };
    }
    if (!warned) {
      options.log(`  waiting for a quiet machine: 1-minute load ${load[0]} > ${options.maxLoad} (other processes would skew the timing)`);
      warned = true;
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 5000));
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
