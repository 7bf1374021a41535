import { pathWithoutQuery } from './http-rules.js';

/**
 * A path that could leave the upstream's base path once the upstream decodes it is refused rather
 * than forwarded: dot segments (`..`, `.`), raw or percent-encoded (`%2e%2e`), also where they are
 * delimited by an encoded slash (`%2f`) or a backslash (`\`, `%5c`), which some servers treat as a
 * slash, or followed by a path parameter (`..;x`). Returns the reason, or undefined when the path
 * is safe.
 */
export function unsafePathReason(path: string): string | undefined {
  const pathOnly = pathWithoutQuery(path);
  if (!pathOnly.startsWith('/')) return 'the request target must be a path (origin-form)';
  if (pathOnly.includes('\\') || /%5c/i.test(pathOnly)) return 'backslashes are not allowed in the path';
  if (/%00/.test(pathOnly)) return 'NUL bytes are not allowed in the path';
  for (const segment of pathOnly.split(/\/|%2f/i)) {
    // A path parameter does not hide a dot segment: Tomcat and Spring read `/..;x/` as `/../`.
    const decoded = (segment.split(/;|%3b/i)[0] as string).replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') return 'dot segments ("." and "..") are not allowed in the path';
  }
  return undefined;
}
