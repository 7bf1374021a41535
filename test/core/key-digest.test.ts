import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { boundedKey, keyDigest } from '../../src/core/key-digest.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64url');

describe('key digests', () => {
  it('are sha256: and the SHA-256 in base64url', () => {
    // FIPS 180-2's test vector for "abc" (ba7816bf...15ad), in base64url.
    expect(keyDigest('abc', sha256)).toBe('sha256:ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
    expect(keyDigest('x'.repeat(10_000), sha256)).toMatch(/^sha256:[A-Za-z0-9_-]{43}$/);
  });

  it('replace a key only when it is longer than the bound', () => {
    expect(boundedKey('x'.repeat(256), 256, sha256)).toBe('x'.repeat(256));
    expect(boundedKey('x'.repeat(257), 256, sha256)).toBe(keyDigest('x'.repeat(257), sha256));
    expect(boundedKey('', 0, sha256)).toBe('');
  });
});
