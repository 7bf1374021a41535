/**
 * The schema's issues (zod) as located problems: a path named as the source names it, the line
 * where it was written, and a message that says what was expected and what was written.
 */
import type * as z from 'zod';
import { formatPath, type ConfigProblem, type Locator } from './config-error.js';

/** The problems one schema issue stands for (an unknown-keys issue is one problem per key). */
export function describeIssue(issue: z.core.$ZodIssue, locator: Locator): ConfigProblem[] {
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
