/**
 * What is wrong with a configuration, and where: one ConfigProblem per thing wrong (a dotted path,
 * the YAML line when known, a message), ConfigError carrying every problem at once, the Locator a
 * source gives to place them (a YAML document, or the command line), and how a path is written.
 */
import { SluiceError } from '../core/errors.js';

/** One thing wrong with a configuration, located. */
export interface ConfigProblem {
  /** Dotted path into the configuration: `upstreams[0].limits[1].rate`; empty for the whole file. */
  readonly path: string;
  /** 1-based line in the YAML source, when known. */
  readonly line?: number;
  readonly message: string;
}

/**
 * Everything wrong with a configuration at once, each problem with its path and YAML line.
 * `sluice --check` prints `format()` and exits 2.
 */
export class ConfigError extends SluiceError {
  declare readonly code: 'SLUICE_CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];
  readonly file: string;

  constructor(file: string, problems: readonly ConfigProblem[]) {
    super('SLUICE_CONFIG_INVALID', `${file}: ${problems.length} configuration problem${problems.length === 1 ? '' : 's'}\n${formatProblems(file, problems)}`);
    this.file = file;
    this.problems = problems;
  }
}

function formatProblems(file: string, problems: readonly ConfigProblem[]): string {
  return problems
    .map((p) => {
      const where = p.line === undefined ? file : `${file}:${p.line}`;
      return `  ${where}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
    })
    .join('\n');
}

/** Where a path of the configuration was written: a YAML line, or a command-line flag. */
export interface Locator {
  /** The line of the value at `path` (or of its closest existing ancestor). */
  lineOf(path: readonly PropertyKey[]): number | undefined;
  /** The line of the key `key` of the mapping at `path`. */
  keyLineOf(path: readonly PropertyKey[], key: string): number | undefined;
  /** The written value at `path`, when it exists and is a scalar. */
  valueAt(path: readonly PropertyKey[]): { found: boolean; value?: unknown };
  /** How to name `path` in a message (default: the dotted path). */
  name?(path: readonly PropertyKey[]): string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}
