/**
 * Key templates decide which queue and which bucket a request belongs to under a limit rule:
 * `"{header.x-account}"`, `"{query.region}:{path.1}"`, `"{method} {client.ip}"`. Literal text
 * between placeholders is kept; a missing value renders as the empty string.
 */

/** What a template can read from a request. Implemented by the HTTP layer, lazily. */
export interface KeySource {
  readonly method: string;
  readonly clientIp: string;
  /** Header value by lower-case name; repeated headers joined with ", ". */
  header(name: string): string | undefined;
  /** First value of a query parameter. */
  query(name: string): string | undefined;
  /** The n-th path segment after the upstream's prefix, counting from 1. */
  pathSegment(n: number): string | undefined;
}

type Part =
  { kind: 'literal'; text: string } | { kind: 'header' | 'query'; name: string } | { kind: 'path'; index: number } | { kind: 'method' } | { kind: 'client.ip' };

export interface KeyTemplate {
  readonly source: string;
  render(request: KeySource): string;
}

export type CompileResult = { ok: true; template: KeyTemplate } | { ok: false; error: string };

const PLACEHOLDER = /\{([^{}]*)\}/g;
const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/i;

/**
 * Compiles a key template, or explains what is wrong with it.
 * @example compileKeyTemplate('{header.x-account}:{path.1}')
 */
export function compileKeyTemplate(source: string): CompileResult {
  const parts: Part[] = [];
  let last = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    const literal = source.slice(last, match.index);
    if (/[{}]/.test(literal)) return { ok: false, error: `unbalanced "{" or "}" in key template "${source}"` };
    if (literal) parts.push({ kind: 'literal', text: literal });
    const part = parsePlaceholder(match[1] as string);
    if (typeof part === 'string') return { ok: false, error: `${part} in key template "${source}"` };
    parts.push(part);
    last = match.index + match[0].length;
  }
  const tail = source.slice(last);
  if (/[{}]/.test(tail)) return { ok: false, error: `unbalanced "{" or "}" in key template "${source}"` };
  if (tail) parts.push({ kind: 'literal', text: tail });
  return { ok: true, template: { source, render: renderer(parts) } };
}

function parsePlaceholder(body: string): Part | string {
  const text = body.trim();
  if (text === 'method') return { kind: 'method' };
  if (text === 'client.ip') return { kind: 'client.ip' };
  const dot = text.indexOf('.');
  const scope = dot === -1 ? text : text.slice(0, dot);
  const arg = dot === -1 ? '' : text.slice(dot + 1);
  switch (scope) {
    case 'header':
      if (!TOKEN.test(arg)) return `"{${body}}" needs a header name, as in {header.x-account}`;
      return { kind: 'header', name: arg.toLowerCase() };
    case 'query':
      if (!arg) return `"{${body}}" needs a parameter name, as in {query.region}`;
      return { kind: 'query', name: arg };
    case 'path': {
      const index = Number(arg);
      if (!/^\d+$/.test(arg) || index < 1) return `"{${body}}" needs a segment number from 1, as in {path.1}`;
      return { kind: 'path', index };
    }
    default:
      return `unknown placeholder "{${body}}" (expected {header.NAME}, {query.NAME}, {path.N}, {method} or {client.ip})`;
  }
}

function renderPart(part: Part, request: KeySource): string {
  switch (part.kind) {
    case 'literal':
      return part.text;
    case 'header':
      return request.header(part.name) ?? '';
    case 'query':
      return request.query(part.name) ?? '';
    case 'path':
      return request.pathSegment(part.index) ?? '';
    case 'method':
      return request.method;
    case 'client.ip':
      return request.clientIp;
  }
}

function renderer(parts: readonly Part[]): (request: KeySource) => string {
  if (parts.length === 1) {
    const only = parts[0] as Part;
    return (request) => renderPart(only, request);
  }
  return (request) => {
    let key = '';
    for (const part of parts) key += renderPart(part, request);
    return key;
  };
}
