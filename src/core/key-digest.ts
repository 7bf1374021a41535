/**
 * The one printed form of a key's digest, and when a key is replaced by it. A key does not appear
 * as written where it may be huge (a header value: a bounded key in memory, a Redis key) or
 * sensitive (`/state` with `admin.redactKeys`); there it is `sha256:` followed by the SHA-256 of the
 * key in base64url (43 characters), stable and not reversible.
 *
 * The hash itself is Node's (node:crypto), which the pure core does not import: the caller passes
 * it, as `(text) => createHash('sha256').update(text).digest('base64url')`.
 */

/** SHA-256 of `text` (UTF-8) in base64url without padding. */
export type Sha256Base64url = (text: string) => string;

/** `sha256:<43 base64url characters>`. */
export function keyDigest(key: string, sha256: Sha256Base64url): string {
  return `sha256:${sha256(key)}`;
}

/** `key` as written when it is at most `maxLength` characters long, else its digest. */
export function boundedKey(key: string, maxLength: number, sha256: Sha256Base64url): string {
  return key.length <= maxLength ? key : keyDigest(key, sha256);
}
