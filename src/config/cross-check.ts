/**
 * The rules that span several fields of a configuration: unique upstream names and prefixes,
 * `setHeaders` names (set once, none that sluice must set itself), `queue.maxPerKey` within
 * `queue.maxSize`, `retry.backoff.base` within `max`, the admin port apart from the client port.
 *
 * They run on the raw document, beside the schema, so that they are reported together with the
 * schema's problems. A field is read as the schema reads it (its default when it is left out, from
 * the schema); a field the schema refuses is skipped here, having been reported already.
 */
import type * as z from 'zod';
import { UNSETTABLE_HEADERS } from '../core/http-rules.js';
import { formatPath, type ConfigProblem, type Locator } from './config-error.js';
import { sectionSchemas } from './schema.js';

export function crossCheck(raw: unknown, locator: Locator): ConfigProblem[] {
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
    const maxSize = fieldOf(sectionSchemas.queue, upstream.queue, 'maxSize');
    const maxPerKey = fieldOf(sectionSchemas.queue, upstream.queue, 'maxPerKey');
    if (maxSize !== undefined && maxPerKey !== undefined && maxPerKey > maxSize) {
      at(['upstreams', i, 'queue', 'maxPerKey'], `is larger than queue.maxSize (${maxSize})`);
    }
    const backoff = asRecord(upstream.retry).backoff;
    const base = fieldOf(sectionSchemas.backoff, backoff, 'base');
    const max = fieldOf(sectionSchemas.backoff, backoff, 'max');
    if (base !== undefined && max !== undefined && base > max) at(['upstreams', i, 'retry', 'backoff', 'base'], 'is larger than backoff.max');
  });
  const listenPort = fieldOf(sectionSchemas.listen, root.listen, 'port');
  const adminPort = fieldOf(sectionSchemas.admin, root.admin, 'port');
  if (listenPort !== undefined && listenPort !== 0 && listenPort === adminPort) {
    at(['admin', 'port'], `must differ from listen.port (${listenPort}): the admin endpoints never share the client port`);
  }
  return problems;
}

/**
 * Field `key` of the raw mapping `section` as `schema` reads it: its default when it is left out,
 * undefined when the schema refuses it (or leaves it out).
 */
function fieldOf<S extends z.ZodObject, K extends keyof S['shape'] & string>(schema: S, section: unknown, key: K): z.output<S['shape'][K]> | undefined {
  const result = (schema.shape[key] as z.ZodType<z.output<S['shape'][K]>>).safeParse(asRecord(section)[key]);
  return result.success ? result.data : undefined;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
