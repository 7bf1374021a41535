/**
 * Reads what an upstream says about its own quota, from any of the header dialects in use:
 *
 * | dialect        | fields                                                                      |
 * | -------------- | --------------------------------------------------------------------------- |
 * | `ietf`         | draft-ietf-httpapi-ratelimit-headers-08..10: `RateLimit: "p";r=50;t=30` and  |
 * |                | `RateLimit-Policy: "p";q=100;w=60` (structured-field lists, named policies)  |
 * | `ietf-dict`    | drafts 07: `RateLimit: limit=100, remaining=50, reset=30`                    |
 * | `ietf-legacy`  | drafts <= 06: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`    |
 * | `x-ratelimit`  | `X-RateLimit-Limit`, `-Remaining`, `-Used`, `-Reset`, `-Reset-After` (GitHub,  |
 * |                | Twitter, Discord, ...)                                                      |
 *
 * `X-RateLimit-Reset` comes in three units; the value decides which (documented in the README):
 * at least 1e12 is epoch milliseconds, at least 1e9 is epoch seconds, anything smaller is a delay
 * in seconds. Malformed fields are ignored, as the draft requires; a value that is negative,
 * non-numeric or not finite is malformed.
 */

export type QuotaDialect = 'ietf' | 'ietf-dict' | 'ietf-legacy' | 'x-ratelimit';

/** The quota state an upstream reported, normalised. Every field is optional. */
export interface QuotaInfo {
  readonly dialect: QuotaDialect;
  /** Requests the client may still send before `resetMs` elapses. */
  readonly remaining?: number;
  /** Milliseconds from now until the quota is replenished. */
  readonly resetMs?: number;
  /** Requests allowed per window. */
  readonly limit?: number;
  /** The window the limit applies to, in milliseconds. */
  readonly windowMs?: number;
}

/** Looks a response header up by lower-case name. */
export type HeaderLookup = (name: string) => string | undefined;

/** Parses every dialect present and returns the first that yields a remaining count or reset. */
export function parseQuotaHeaders(header: HeaderLookup, nowEpochMs: number, dialects?: ReadonlySet<QuotaDialect>): QuotaInfo | undefined {
  const wants = (d: QuotaDialect): boolean => dialects === undefined || dialects.has(d);
  const rateLimit = header('ratelimit');
  if (rateLimit !== undefined) {
    if (wants('ietf')) {
      const info = parseIetf(rateLimit, header('ratelimit-policy'));
      if (info) return info;
    }
    if (wants('ietf-dict')) {
      const info = parseIetfDictionary(rateLimit);
      if (info) return info;
    }
  }
  if (wants('ietf-legacy')) {
    const info = parseTriplet(
      'ietf-legacy',
      header('ratelimit-limit'),
      header('ratelimit-remaining'),
      undefined,
      header('ratelimit-reset'),
      undefined,
      nowEpochMs,
    );
    if (info) return info;
  }
  if (wants('x-ratelimit')) {
    return parseTriplet(
      'x-ratelimit',
      header('x-ratelimit-limit'),
      header('x-ratelimit-remaining'),
      header('x-ratelimit-used'),
      header('x-ratelimit-reset'),
      header('x-ratelimit-reset-after'),
      nowEpochMs,
    );
  }
  return undefined;
}

/** Converts an `X-RateLimit-Reset` style value to a delay in ms, detecting its unit. */
export function resetValueToDelayMs(value: number, nowEpochMs: number): number {
  if (value >= 1e12) return Math.max(0, value - nowEpochMs);
  if (value >= 1e9) return Math.max(0, value * 1000 - nowEpochMs);
  return value * 1000;
}

/** Seconds to ms; a value whose ms overflow to Infinity is malformed, like any value not finite. */
function secondsToMs(seconds: number | undefined): number | undefined {
  if (seconds === undefined) return undefined;
  const ms = seconds * 1000;
  return Number.isFinite(ms) ? ms : undefined;
}

function parseTriplet(
  dialect: QuotaDialect,
  limitText: string | undefined,
  remainingText: string | undefined,
  usedText: string | undefined,
  resetText: string | undefined,
  resetAfterText: string | undefined,
  nowEpochMs: number,
): QuotaInfo | undefined {
  const limit = nonNegative(limitText);
  let remaining = nonNegative(remainingText);
  const used = nonNegative(usedText);
  if (remaining === undefined && limit !== undefined && used !== undefined) remaining = Math.max(0, limit - used);
  const resetAfter = nonNegative(resetAfterText);
  const reset = nonNegative(resetText);
  const resetMs = resetAfter !== undefined ? secondsToMs(resetAfter) : reset !== undefined ? resetValueToDelayMs(reset, nowEpochMs) : undefined;
  if (remaining === undefined && resetMs === undefined) return undefined;
  return compact({ dialect, limit, remaining, resetMs });
}

function parseIetf(rateLimit: string, policyField: string | undefined): QuotaInfo | undefined {
  const limits = parseList(rateLimit);
  if (!limits) return undefined;
  const policies = policyField === undefined ? undefined : parseList(policyField);
  let best: QuotaInfo | undefined;
  let bestRate = Number.POSITIVE_INFINITY;
  for (const member of limits) {
    if (typeof member.item !== 'string') continue;
    const remaining = numberParam(member.params.r);
    if (remaining === undefined) continue; // r is required
    const resetSeconds = numberParam(member.params.t);
    const policy = policies?.find((p) => p.item === member.item);
    const limit = policy ? numberParam(policy.params.q) : undefined;
    const windowSeconds = policy ? numberParam(policy.params.w) : undefined;
    const info = compact({
      dialect: 'ietf' as const,
      remaining,
      resetMs: secondsToMs(resetSeconds),
      limit,
      windowMs: secondsToMs(windowSeconds),
    });
    // Several policies may apply at once: the binding one allows the fewest requests per second.
    const rate = remaining / Math.max(1, resetSeconds ?? windowSeconds ?? 1);
    if (rate < bestRate) {
      bestRate = rate;
      best = info;
    }
  }
  return best;
}

function parseIetfDictionary(rateLimit: string): QuotaInfo | undefined {
  const members = parseList(rateLimit);
  if (!members) return undefined;
  const fields: Record<string, number | undefined> = {};
  for (const member of members) {
    if (member.key !== undefined) fields[member.key] = typeof member.item === 'number' && member.item >= 0 ? member.item : undefined;
  }
  const remaining = fields.remaining;
  const resetSeconds = fields.reset;
  if (remaining === undefined && resetSeconds === undefined) return undefined;
  return compact({ dialect: 'ietf-dict' as const, limit: fields.limit, remaining, resetMs: secondsToMs(resetSeconds) });
}

function nonNegative(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!/^\d+(?:\.\d+)?$/.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : undefined;
}

function numberParam(value: string | number | boolean | undefined): number | undefined {
  return typeof value === 'number' && value >= 0 && Number.isFinite(value) ? value : undefined;
}

function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}

interface SfMember {
  /** The bare item: a string or token name, or a number. For dictionary members, the value. */
  item: string | number | boolean;
  /** Dictionary member name (`limit=100`), when the member has one. */
  key?: string;
  params: Record<string, string | number | boolean>;
}

/**
 * A tolerant parser for the subset of RFC 9651 structured-field lists and dictionaries these
 * headers use: members separated by commas, each an item with `;key=value` parameters. Returns
 * undefined for anything malformed, so the whole field is ignored.
 */
function parseList(text: string): SfMember[] | undefined {
  const members: SfMember[] = [];
  for (const raw of splitOutsideQuotes(text, ',')) {
    const parts = splitOutsideQuotes(raw, ';').map((p) => p.trim());
    const head = parts[0];
    if (head === undefined || head === '') return undefined;
    const member: SfMember = { item: true, params: {} };
    const eq = head.startsWith('"') ? -1 : head.indexOf('=');
    if (eq > 0) {
      member.key = head.slice(0, eq).trim().toLowerCase();
      const value = bareItem(head.slice(eq + 1).trim());
      if (value === undefined) return undefined;
      member.item = value;
    } else {
      const value = bareItem(head);
      if (value === undefined) return undefined;
      member.item = value;
    }
    for (const param of parts.slice(1)) {
      const at = param.indexOf('=');
      const key = (at === -1 ? param : param.slice(0, at)).trim().toLowerCase();
      if (!/^[a-z*][a-z0-9_.*-]*$/.test(key)) return undefined;
      const value = at === -1 ? true : bareItem(param.slice(at + 1).trim());
      if (value === undefined) return undefined;
      member.params[key] = value;
    }
    members.push(member);
  }
  return members.length > 0 ? members : undefined;
}

function bareItem(text: string): string | number | boolean | undefined {
  if (/^"(?:[^"\\]|\\["\\])*"$/.test(text)) return text.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (/^-?\d{1,15}(?:\.\d{1,3})?$/.test(text)) return Number(text);
  // Byte sequence (the draft's `pk` partition key): kept as its base64 text, colons included.
  if (/^:[A-Za-z0-9+/]*={0,2}:$/.test(text)) return text;
  if (text === '?1') return true;
  if (text === '?0') return false;
  if (/^[a-z*][a-z0-9_.:%*/!#$&'+^`|~-]*$/i.test(text)) return text;
  return undefined;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted && c === '\\' && i + 1 < text.length) {
      current += c + (text[i + 1] as string);
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === separator && !quoted) {
      out.push(current);
      current = '';
    } else current += c;
  }
  out.push(current);
  return out.map((s) => s.trim()).filter((s, i, all) => s !== '' || all.length === 1);
}
