/**
 * Which answers of an upstream mean "slow down" (issue 13, throttle signals), configurable per
 * upstream: a status, optionally with a response header (present, or equal to a value) and/or a
 * literal in the first bytes of the body. Defaults: 429, and 503 with Retry-After. Other APIs:
 *
 *     { status: 403, header: retry-after }                     GitHub's secondary limits
 *     { status: 403, header: x-ratelimit-remaining, equals: "0" } GitHub's primary limit
 *     { status: 503, body: RequestLimitExceeded }              EC2 (no Retry-After)
 *     { status: 420 }                                          Twitter's old "enhance your calm"
 *
 * A signal is retried like a 429 (the request was not processed), lowers the learned rate, and
 * pauses the key either always or only when it is the key's pattern (pause-rule.ts). The `pause`
 * default depends on the status: 503 is the one status that means both "slow down" and "I had a
 * hiccup", so a 503 rule without a body pattern pauses on the pattern; every other rule, and a 503
 * whose body names the limit, always pauses (the schema fills this in, config/throttle-schema.ts).
 *
 * Matching is compiled once per upstream and allocates nothing per answer unless a body is needed.
 * Rules are tried in order; the first that matches decides (its `pause`). A rule with a body pattern
 * needs the first THROTTLE_BODY_BYTES (8 KiB) of the body: `match` without a body returns
 * `needs-body` when such a rule could still match, and the caller calls again with the body (the
 * first 8 KiB, or all of it if shorter), before relaying anything. 8 KiB holds the error documents
 * these APIs send (EC2's XML error is about 300 bytes, GitHub's JSON about 200), keeps the bytes held
 * per in-flight request bounded, and only answers with a status some body rule names are held. The
 * pattern is a literal (no regular expression: nothing to backtrack over an upstream's bytes),
 * matched as UTF-8 bytes with KMP, linear in the body. A pattern that straddles the 8 KiB bound is
 * not seen. A body with a Content-Encoding other than identity is not inspected (compressed bytes
 * cannot hold the literal): its body rules do not match.
 *
 * Header names are matched in lower case (Node's `IncomingHttpHeaders` keys are); `equals` compares
 * the trimmed value exactly. A header rule is about presence, not validity: a 503 with an unusable
 * `Retry-After: soon` is still a throttle (retried with backoff instead of the header's delay).
 */

/** The body bytes a rule with a body pattern looks at. */
export const THROTTLE_BODY_BYTES = 8192;

/** Longest body pattern, in UTF-8 bytes. */
export const MAX_BODY_PATTERN_BYTES = 1024;

/** Pause the key on every such answer, or only when such answers are the key's pattern (pause-rule.ts). */
export type PauseMode = 'always' | 'pattern';

/** One signal as configured (after the schema: header in lower case, `pause` filled in). */
export interface ThrottleSignal {
  readonly status: number;
  readonly header?: string | undefined;
  readonly equals?: string | undefined;
  readonly body?: string | undefined;
  readonly pause: PauseMode;
}

export type HeaderLookup = (name: string) => string | undefined;

export type ThrottleMatch =
  | { readonly kind: 'none' }
  /** Throttled, by the signal at `index`. */
  | { readonly kind: 'throttle'; readonly pause: PauseMode; readonly index: number }
  /** A rule that looks at the body could decide: call again with its first THROTTLE_BODY_BYTES. */
  | { readonly kind: 'needs-body' };

export interface ThrottleMatcher {
  /** The statuses any signal names: every other answer is not a throttle, without a look at its headers. */
  readonly statuses: ReadonlySet<number>;
  /** Whether any rule needs a body (a caller that never buffers can check this once). */
  readonly inspectsBodies: boolean;
  match(status: number, header: HeaderLookup, body?: Uint8Array): ThrottleMatch;
}

/** The default signals: 429, and 503 with Retry-After (pausing only on the pattern). */
export const DEFAULT_THROTTLE_SIGNALS: readonly ThrottleSignal[] = [
  { status: 429, pause: 'always' },
  { status: 503, header: 'retry-after', pause: 'pattern' },
];

interface CompiledRule {
  readonly index: number;
  readonly signal: ThrottleSignal;
  readonly header: string | undefined;
  readonly equals: string | undefined;
  readonly pattern: Uint8Array | undefined;
  /** KMP failure table of `pattern`. */
  readonly failure: Int32Array | undefined;
}

const NONE: ThrottleMatch = { kind: 'none' };
const NEEDS_BODY: ThrottleMatch = { kind: 'needs-body' };

/**
 * Compiles a signal list. Malformed signals are the schema's business; here an empty body pattern
 * matches every body and a header name is lower-cased.
 *
 * @example
 * const m = compileThrottleSignals([{ status: 503, body: 'RequestLimitExceeded', pause: 'always' }]);
 * m.match(503, () => undefined);                       // { kind: 'needs-body' }
 * m.match(503, () => undefined, utf8('<Code>RequestLimitExceeded</Code>')); // { kind: 'throttle', pause: 'always', index: 0 }
 */
export function compileThrottleSignals(signals: readonly ThrottleSignal[]): ThrottleMatcher {
  const byStatus = new Map<number, CompiledRule[]>();
  let inspectsBodies = false;
  signals.forEach((signal, index) => {
    const pattern = signal.body === undefined ? undefined : utf8(signal.body);
    if (pattern !== undefined) inspectsBodies = true;
    const rule: CompiledRule = {
      index,
      signal,
      header: signal.header?.toLowerCase(),
      equals: signal.equals?.trim(),
      pattern,
      failure: pattern === undefined ? undefined : failureTable(pattern),
    };
    const list = byStatus.get(signal.status);
    if (list) list.push(rule);
    else byStatus.set(signal.status, [rule]);
  });
  return {
    statuses: new Set(byStatus.keys()),
    inspectsBodies,
    match(status, header, body) {
      const rules = byStatus.get(status);
      if (rules === undefined) return NONE;
      let encoded: boolean | undefined;
      for (const rule of rules) {
        if (rule.header !== undefined) {
          const value = header(rule.header);
          if (value === undefined || value.trim() === '') continue;
          if (rule.equals !== undefined && value.trim() !== rule.equals) continue;
        }
        if (rule.pattern !== undefined) {
          encoded ??= isEncoded(header('content-encoding'));
          if (encoded) continue;
          if (body === undefined) return NEEDS_BODY;
          if (!contains(body, rule.pattern, rule.failure as Int32Array)) continue;
        }
        return { kind: 'throttle', pause: rule.signal.pause, index: rule.index };
      }
      return NONE;
    },
  };
}

function isEncoded(contentEncoding: string | undefined): boolean {
  if (contentEncoding === undefined) return false;
  const value = contentEncoding.trim().toLowerCase();
  return value !== '' && value !== 'identity';
}

/** `text` as UTF-8 bytes (lone surrogates as U+FFFD, as TextEncoder does). */
export function utf8(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const char of text) {
    let cp = char.codePointAt(0) as number;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) bytes.push(cp);
    else if (cp < 0x800) bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else bytes.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Uint8Array.from(bytes);
}

/** KMP: failure[i] is the length of the longest proper prefix of pattern[0..i] that is also its suffix. */
function failureTable(pattern: Uint8Array): Int32Array {
  const failure = new Int32Array(pattern.length);
  for (let i = 1, k = 0; i < pattern.length; i++) {
    while (k > 0 && pattern[i] !== pattern[k]) k = failure[k - 1] as number;
    if (pattern[i] === pattern[k]) k++;
    failure[i] = k;
  }
  return failure;
}

/** Whether `pattern` occurs in the first THROTTLE_BODY_BYTES of `body`. */
function contains(body: Uint8Array, pattern: Uint8Array, failure: Int32Array): boolean {
  if (pattern.length === 0) return true;
  const end = Math.min(body.length, THROTTLE_BODY_BYTES);
  for (let i = 0, k = 0; i < end; i++) {
    while (k > 0 && body[i] !== pattern[k]) k = failure[k - 1] as number;
    if (body[i] === pattern[k]) k++;
    if (k === pattern.length) return true;
  }
  return false;
}
