/**
 * `${VAR}` substitution in a YAML document, before validation: `${VAR}` in any string value is
 * replaced from the environment, `${VAR:-fallback}` gives a fallback when VAR is unset or empty,
 * `$${VAR}` keeps the text as is. A variable that is not set (and has no fallback) is a problem
 * like any other, located at its value.
 */
import { isMap, isPair, isScalar, parse, visit, type Document } from 'yaml';
import { formatPath, type ConfigProblem } from './config-error.js';

export type Env = Readonly<Record<string, string | undefined>>;

const ENV_REFERENCE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces the references in `doc` in place; returns a problem for each variable that is not set. */
export function substituteEnv(doc: Document, env: Env, lineOf: (offset: number | undefined) => number | undefined): ConfigProblem[] {
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
