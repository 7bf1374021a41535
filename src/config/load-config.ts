/**
 * Loading a configuration: read the file, parse the YAML (with `${VAR}` substitution), validate it
 * against the schema and the cross-field rules, and return it frozen, or throw one ConfigError that
 * lists every problem with its path and line. The steps live beside this file.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, type ConfigProblem, type Locator } from './config-error.js';
import { crossCheck } from './cross-check.js';
import type { Env } from './env.js';
import { configSchema, type Config } from './schema.js';
import { describeIssue } from './schema-issues.js';
import { readYaml } from './yaml-source.js';

/** Reads, substitutes `${VAR}`, validates; throws ConfigError listing every problem. */
export async function loadConfigFile(path: string, env: Env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [{ path: '', message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(text, { file: path, env });
}

/**
 * Parses and validates a YAML configuration. Never mutates its input; returns a frozen Config.
 * `${VAR}` references are replaced from `env` (see env.ts).
 */
export function parseConfig(text: string, options: { file?: string; env: Env }): Config {
  const file = options.file ?? 'config';
  const source = readYaml(text, file, options.env);
  return validateConfig(source.raw, { file, locator: source.locator, problems: source.problems });
}

/**
 * Validates a configuration object against the schema and the cross-field rules; throws
 * ConfigError with every problem, located by `locator`. Returns the frozen Config.
 */
export function validateConfig(raw: unknown, options: { file: string; locator: Locator; problems?: readonly ConfigProblem[] }): Config {
  const problems: ConfigProblem[] = [...(options.problems ?? [])];
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(...describeIssue(issue, options.locator));
  }
  problems.push(...crossCheck(raw, options.locator));
  if (problems.length > 0) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(options.file, problems);
  }
  return deepFreeze(result.data as Config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
