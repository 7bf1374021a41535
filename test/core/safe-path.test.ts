import { describe, expect, it } from 'vitest';
import { unsafePathReason } from '../../src/core/safe-path.js';

const DOT = 'dot segments ("." and "..") are not allowed in the path';
const BACKSLASH = 'backslashes are not allowed in the path';
const NUL = 'NUL bytes are not allowed in the path';
const ORIGIN_FORM = 'the request target must be a path (origin-form)';

describe('unsafePathReason', () => {
  it.each<[string, string]>([
    // Dot segments, raw.
    ['/..', DOT],
    ['/../etc/passwd', DOT],
    ['/a/../b', DOT],
    ['/a/..', DOT],
    ['/a/../', DOT],
    ['/.', DOT],
    ['/./a', DOT],
    ['/a/.', DOT],
    ['/a/./b', DOT],
    ['/../?q=1', DOT],
    // Dot segments, percent-encoded in any case and any mix.
    ['/%2e%2e/x', DOT],
    ['/%2E%2E/x', DOT],
    ['/%2E./x', DOT],
    ['/.%2e/x', DOT],
    ['/a/%2e%2E', DOT],
    ['/%2e/x', DOT],
    // Delimited by an encoded slash.
    ['/a/..%2fb', DOT],
    ['/a/..%2Fb', DOT],
    ['/a%2f..%2fb', DOT],
    ['/a%2F..', DOT],
    ['/%2e%2e%2fetc', DOT],
    ['/a%2f.%2fb', DOT],
    // Followed by a path parameter, which Tomcat and Spring strip before resolving the path.
    ['/..;/admin', DOT],
    ['/a/..;jsessionid=1/b', DOT],
    ['/%2e%2e;x/admin', DOT],
    ['/.;x/a', DOT],
    ['/..%3b/admin', DOT],
    ['/..%3B/admin', DOT],
    // Backslashes, which some servers treat as slashes.
    ['/a\\b', BACKSLASH],
    ['/..\\etc', BACKSLASH], // the backslash is reported first
    ['\\..\\', ORIGIN_FORM],
    ['/a%5cb', BACKSLASH],
    ['/a%5C..', BACKSLASH],
    ['/%5c%2e%2e', BACKSLASH],
    // NUL.
    ['/a%00b', NUL],
    ['/a%00', NUL],
    ['/a/%00/..', NUL],
    // Not a path.
    ['', ORIGIN_FORM],
    ['a/b', ORIGIN_FORM],
    ['../a', ORIGIN_FORM],
    ['*', ORIGIN_FORM],
    ['http://evil.example/x', ORIGIN_FORM],
    ['?q=1', ORIGIN_FORM],
  ])('%j is refused: %s', (path, reason) => {
    expect(unsafePathReason(path)).toBe(reason);
  });

  it.each<[string]>([
    ['/'],
    ['/a'],
    ['/a/b'],
    ['/a/b/'],
    ['/a//b'],
    ['//a'],
    ['/v1/users/42/orders?limit=10'],
    // '..' and friends in the query part are the upstream's business, not a path.
    ['/a?x=../..'],
    ['/a?path=..%2f..%2fetc'],
    ['/a?x=%2e%2e'],
    ['/a?x=\\'],
    ['/a?x=%5c'],
    ['/a?x=%00'],
    ['/a?x=1?y=/../'],
    // Segments that only look like dot segments.
    ['/...'],
    ['/a/.../b'],
    ['/%2e%2e%2e'],
    ['/..a'],
    ['/a..'],
    ['/.a'],
    ['/a.'],
    ['/.well-known/openid-configuration'],
    ['/file.tar.gz'],
    ['/..../x'],
    ['/..a;x/b'],
    // Other encodings, and double encoding, which one decoding leaves harmless.
    ['/a%2fb'],
    ['/a%20b'],
    ['/%252e%252e/x'],
    ['/a%25'],
    // Path parameters on ordinary segments.
    ['/a;b=1'],
    ['/a/b;v=1.2/c'],
    ['/;x'],
  ])('%j is allowed', (path) => {
    expect(unsafePathReason(path)).toBeUndefined();
  });
});
