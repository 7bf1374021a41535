/**
 * A configuration's YAML source: parsed with line numbers, duplicate keys and syntax errors
 * reported as problems, aliases expanded within bounds, and a Locator that finds the line of any
 * path of the document.
 */
import { isMap, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { ConfigError, type ConfigProblem, type Locator } from './config-error.js';
import { substituteEnv, type Env } from './env.js';

const MAX_SYNTAX_ERRORS = 3;

/** A parsed document: the plain value, where its paths were written, and the problems of its `${VAR}`s. */
export interface YamlSource {
  readonly raw: unknown;
  readonly locator: Locator;
  readonly problems: readonly ConfigProblem[];
}

/** Parses `text`, substituting `${VAR}` from `env`; throws ConfigError for what cannot be read at all. */
export function readYaml(text: string, file: string, env: Env): YamlSource {
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
  const problems = substituteEnv(doc, env, lineOf);
  const raw = toPlain(doc, file, lineOf);
  if (raw === null || raw === undefined) {
    throw new ConfigError(file, [{ path: '', message: 'the configuration is empty; at least one upstream is required' }]);
  }
  return { raw, locator: yamlLocator(doc, lineOf), problems };
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

/** The node at `path`, or its deepest existing ancestor. */
function nodeAt(doc: Document, path: readonly PropertyKey[]): { node: Node | undefined; exact: boolean } {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as (string | number)[], true);
    if (node && typeof node === 'object' && 'range' in node) return { node: node as Node, exact: depth === path.length };
  }
  return { node: undefined, exact: false };
}
