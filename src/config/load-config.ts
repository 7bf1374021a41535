import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, LineCounter, parse, parseDocument, visit, type Document, type Node } from 'yaml';
import type * as z from 'zod';
import { SluiceError } from '../core/errors.js';
import { UNSETTABLE_HEADERS } from '../core/http-rules.js';
import { parseDurationMs } from '../core/units.js';
import { configSchema, type Config } from './schema.js';

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

export type Env = Readonly<Record<string, string | undefined>>;

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
 *
 * `${VAR}` in any string value is replaced from `env`; `${VAR:-fallback}` gives a fallback when VAR
 * is unset or empty, and `$${VAR}` keeps the text as is. A variable that is not set (and has no
 * fallback) is a problem like any other.
 */
export function parseConfig(text: string, options: { file?: string; env: Env }): Config {
  const file = options.file ?? 'config';
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): number | undefined => (offset === undefined ? undefined : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      // Without prettyErrors the parser leaves linePos unset; the offset in `pos` is always there.
      // After the first syntax error the parser's further complaints mostly echo it.
      doc.errors.slice(0, MAX_SYNTAX_ERRORS).map((e) => ({ path: '', line: lineOf(e.pos[0]), message: e.message.split('\n')[0] ?? e.message })),
    );
  }
  const envProblems = substituteEnv(doc, options.env, lineOf);
  const raw = toPlain(doc, file, lineOf);
  if (raw === null || raw === undefined) {
    throw new ConfigError(file, [{ path: '', message: 'the configuration is empty; at least one upstream is required' }]);
  }
  return validateConfig(raw, { file, locator: yamlLocator(doc, lineOf), problems: envProblems });
}

/**
 * `doc.toJS()`, with the yaml library's refusals (an alias without its anchor, an alias count that
 * means a resource exhaustion attack) turned into a ConfigError at the alias that caused them.
 */
function toPlain(doc: Document, file: string, lineOf: (offset: number | undefined) => number | undefined): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    let line: number | undefined;
    visit(doc, {
      Alias(_key, alias) {
        if (line === undefined || alias.resolve(doc) === undefined) line = lineOf(alias.range?.[0]);
        return alias.resolve(doc) === undefined ? visit.BREAK : undefined;
      },
    });
    const message = error.message.startsWith('Unresolved alias')
      ? `${error.message.split('\n')[0]}: the anchor is not defined before it`
      : 'too many YAML aliases are expanded (more than 100): write the values out';
    throw new ConfigError(file, [{ path: '', line, message }]);
  }
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

function yamlLocator(doc: Document, lineOf: (offset: number | undefined) => number | undefined): Locator {
  return {
    lineOf: (path) => lineOf(nodeAt(doc, path).node?.range?.[0]),
    keyLineOf(path, key) {
      const { node } = nodeAt(doc, path);
      const pair = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === key) : undefined;
      return lineOf((pair?.key as Node | undefined)?.range?.[0]) ?? lineOf(node?.range?.[0]);
    },
    valueAt(path) {
      const { node, exact } = nodeAt(doc, path);
      return exact && isScalar(node) ? { found: true, value: node.value } : { found: exact };
    },
  };
}

const MAX_SYNTAX_ERRORS = 3;

const ENV_REFERENCE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function substituteEnv(doc: Document, env: Env, lineOf: (offset: number | undefined) => number | undefined): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const whole = WHOLE_REFERENCE.test(node.value.trim());
      const text = node.value.replace(ENV_REFERENCE, (match, escaped: string, name: string, fallback: string | undefined) => {
        if (escaped) return match.slice(1);
        const value = env[name];
        // Unset or empty takes the fallback, as in the shell and docker compose.
        if (value !== undefined && (value !== '' || fallback === undefined)) return value;
        if (fallback !== undefined) return fallback;
        problems.push({ path: pathOfVisit(path, node), line: lineOf(node.range?.[0]), message: `environment variable ${name} is not set` });
        return '';
      });
      // `port: ${PORT}` written unquoted means a number, as if the value had been written there.
      node.value = whole && node.type === 'PLAIN' ? plainScalar(text) : text;
    },
  });
  return problems;
}

const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** What YAML would make of `text` written as a plain scalar, kept as text unless a number or boolean. */
function plainScalar(text: string): string | number | boolean {
  try {
    const value: unknown = parse(text);
    return typeof value === 'number' || typeof value === 'boolean' ? value : text;
  } catch {
    return text;
  }
}

/** Builds the dotted path of a scalar found by `visit`, from its ancestors. */
function pathOfVisit(ancestors: readonly unknown[], node: unknown): string {
  const segments: (string | number)[] = [];
  let child: unknown = node;
  for (let i = ancestors.length - 1; i >= 0; i--) {
    const parent = ancestors[i];
    if (isPair(parent)) {
      if (parent.value === child && isScalar(parent.key)) segments.unshift(String(parent.key.value));
    } else if (parent && typeof parent === 'object' && 'items' in parent && Array.isArray(parent.items) && !isMap(parent)) {
      const index = parent.items.indexOf(child);
      if (index >= 0) segments.unshift(index);
    }
    child = parent;
  }
  return formatPath(segments);
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

/** The node at `path`, or its deepest existing ancestor. */
function nodeAt(doc: Document, path: readonly PropertyKey[]): { node: Node | undefined; exact: boolean } {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as (string | number)[], true);
    if (node && typeof node === 'object' && 'range' in node) return { node: node as Node, exact: depth === path.length };
  }
  return { node: undefined, exact: false };
}

function describeIssue(issue: z.core.$ZodIssue, locator: Locator): ConfigProblem[] {
  const name = (path: readonly PropertyKey[]): string => locator.name?.(path) ?? formatPath(path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: name([...issue.path, key]), line: locator.keyLineOf(issue.path, key), message: `unknown key "${key}"` }));
  }
  const written = locator.valueAt(issue.path);
  let message = messageOf(issue);
  if (!written.found && issue.code === 'invalid_type') message = 'is required';
  else if ('value' in written && issue.code !== 'custom') message += `, got ${JSON.stringify(written.value)}`;
  return [{ path: name(issue.path), line: locator.lineOf(issue.path), message }];
}

function messageOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_union': {
      const { note, discriminator } = issue as { note?: string; discriminator?: string };
      if (note === 'No matching discriminator') return `unknown ${discriminator ?? 'type'}`;
      const branches = issue.errors.flat();
      // A union of literals ([429, 503, "timeout"]): list every accepted value.
      const values = branches.flatMap((i) => (i.code === 'invalid_value' ? i.values : []));
      if (values.length > 1 && branches.every((i) => i.code === 'invalid_value' || i.code === 'invalid_type')) {
        return `expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
      }
      // Prefer a branch that had the right type but the wrong shape ("expected a duration ...").
      const specific = branches.find((i) => i.code !== 'invalid_type');
      if (specific) return messageOf(specific);
      const expected = [...new Set(branches.map((i) => (i.code === 'invalid_type' ? i.expected : undefined)).filter(Boolean))];
      return `expected ${expected.join(' or ')}`;
    }
    case 'invalid_key':
      return `invalid key: ${issue.issues.map(messageOf).join('; ')}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `needs at least ${String(issue.minimum)} item${issue.minimum === 1 ? '' : 's'}`
        : `must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

/**
 * Rules that span several fields. They read the raw document defensively (a field that is itself
 * invalid is skipped, having been reported already), so they are reported together with the rest.
 */
function crossCheck(raw: unknown, locator: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (path: (string | number)[], message: string): void => {
    problems.push({ path: locator.name?.(path) ?? formatPath(path), line: locator.lineOf(path), message });
  };
  const root = asRecord(raw);
  const names = new Map<string, number>();
  const prefixes = new Map<string, number>();
  const upstreams = Array.isArray(root.upstreams) ? (root.upstreams as unknown[]) : [];
  upstreams.forEach((item, i) => {
    const upstream = asRecord(item);
    if (typeof upstream.name === 'string') {
      const same = names.get(upstream.name);
      if (same !== undefined) at(['upstreams', i, 'name'], `"${upstream.name}" is already the name of upstreams[${same}]`);
      else names.set(upstream.name, i);
    }
    if (typeof upstream.prefix === 'string') {
      const same = prefixes.get(upstream.prefix);
      if (same !== undefined) at(['upstreams', i, 'prefix'], `"${upstream.prefix}" is already the prefix of upstreams[${same}]`);
      else prefixes.set(upstream.prefix, i);
    }
    const headers = new Set<string>();
    for (const name of Object.keys(asRecord(upstream.setHeaders))) {
      const lower = name.toLowerCase();
      if (headers.has(lower)) at(['upstreams', i, 'setHeaders', name], `header "${name}" is set twice (names are case-insensitive)`);
      headers.add(lower);
      if (UNSETTABLE_HEADERS.has(lower)) at(['upstreams', i, 'setHeaders', name], `"${name}" is a hop-by-hop header and cannot be set`);
    }
    const queue = asRecord(upstream.queue);
    const maxSize = typeof queue.maxSize === 'number' ? queue.maxSize : 10_000;
    if (typeof queue.maxPerKey === 'number' && queue.maxPerKey > maxSize) {
      at(['upstreams', i, 'queue', 'maxPerKey'], `is larger than queue.maxSize (${maxSize})`);
    }
    const backoff = asRecord(asRecord(upstream.retry).backoff);
    const base = parseDurationMs(backoff.base ?? '100ms');
    const max = parseDurationMs(backoff.max ?? '10s');
    if (base !== undefined && max !== undefined && base > max) at(['upstreams', i, 'retry', 'backoff', 'base'], 'is larger than backoff.max');
  });
  const listenPort = asRecord(root.listen).port ?? 8080;
  const adminPort = asRecord(root.admin).port ?? 9090;
  if (typeof listenPort === 'number' && listenPort !== 0 && listenPort === adminPort) {
    at(['admin', 'port'], `must differ from listen.port (${listenPort}): the admin endpoints never share the client port`);
  }
  return problems;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
