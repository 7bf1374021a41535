import { describe, expect, it } from 'vitest';
import { classifyFailure, FAILURE_PROBLEMS, failureDetail, retrySafe, type AttemptFacts, type FailureClass } from '../../src/core/failure-kind.js';
import { PROBLEMS } from '../../src/core/errors.js';

type Row = [label: string, facts: AttemptFacts, expected: Pick<FailureClass, 'kind' | 'processed' | 'retryOn' | 'availability' | 'problem' | 'cause'>];

const before = { requestStarted: false, responseStarted: false } as const;
const after = { requestStarted: true, responseStarted: false } as const;

const UNREACHABLE = { kind: 'unreachable', processed: 'no', retryOn: 'connect', availability: 'down', problem: 'SLUICE_UPSTREAM_UNREACHABLE' } as const;
const RESET = { kind: 'reset', processed: 'maybe', retryOn: 'reset', availability: 'down', problem: 'SLUICE_UPSTREAM_RESET' } as const;
const TIMEOUT = { kind: 'timeout', processed: 'maybe', retryOn: 'timeout', availability: 'none', problem: 'SLUICE_UPSTREAM_TIMEOUT' } as const;
const BAD = { kind: 'bad-response', processed: 'maybe', retryOn: 'reset', availability: 'up', problem: 'SLUICE_UPSTREAM_BAD_RESPONSE' } as const;
const CONNECT_TIMEOUT = { kind: 'connect-timeout', processed: 'no', retryOn: 'connect', availability: 'down', problem: 'SLUICE_UPSTREAM_UNREACHABLE' } as const;
const CUT = { kind: 'cut', processed: 'yes', retryOn: undefined, availability: 'none', problem: undefined } as const;
const GONE = { kind: 'client-gone', retryOn: undefined, availability: 'none', problem: undefined } as const;

describe('classifyFailure', () => {
  // Each code with the phase it was measured in against a loopback server (undici 7.30.2, Node 20),
  // then the same codes in the other phase: the phase decides, the code only names the cause.
  it.each<Row>([
    ['refused', { code: 'ECONNREFUSED', ...before }, { ...UNREACHABLE, cause: 'connection refused' }],
    ['DNS: no such host', { code: 'ENOTFOUND', ...before }, { ...UNREACHABLE, cause: 'DNS lookup failed' }],
    ['DNS: try again', { code: 'EAI_AGAIN', ...before }, { ...UNREACHABLE, cause: 'DNS lookup failed (temporary)' }],
    ['no route', { code: 'EHOSTUNREACH', ...before }, { ...UNREACHABLE, cause: 'no route to the host' }],
    ['network down', { code: 'ENETUNREACH', ...before }, { ...UNREACHABLE, cause: 'no route to the host' }],
    ['TLS: self-signed', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT', ...before }, { ...UNREACHABLE, cause: 'TLS handshake failed: certificate rejected' }],
    ['TLS: unknown CA', { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', ...before }, { ...UNREACHABLE, cause: 'TLS handshake failed: certificate rejected' }],
    ['TLS: wrong name', { code: 'ERR_TLS_CERT_ALTNAME_INVALID', ...before }, { ...UNREACHABLE, cause: 'TLS handshake failed: certificate rejected' }],
    ['TLS: expired', { code: 'CERT_HAS_EXPIRED', ...before }, { ...UNREACHABLE, cause: 'TLS handshake failed: certificate rejected' }],
    ['TLS to a plain port', { code: 'ERR_SSL_WRONG_VERSION_NUMBER', ...before }, { ...UNREACHABLE, cause: 'TLS handshake failed' }],
    ['reset on accept', { code: 'ECONNRESET', ...before }, { ...UNREACHABLE, cause: 'the connection was reset while connecting' }],
    ['closed while connecting', { code: 'UND_ERR_SOCKET', ...before }, { ...UNREACHABLE, cause: 'the connection was reset while connecting' }],
    ['unknown code, not started', { code: 'EWHATEVER', ...before }, { ...UNREACHABLE, cause: 'the connection failed' }],
    ['no code, not started', { code: undefined, ...before }, { ...UNREACHABLE, cause: 'the connection failed' }],
    ['empty code, not started', { code: '', ...before }, { ...UNREACHABLE, cause: 'the connection failed' }],
    ['undici connect timeout (TCP or TLS)', { code: 'UND_ERR_CONNECT_TIMEOUT', ...before }, { ...CONNECT_TIMEOUT, cause: 'no connection within the timeout' }],
    ["sluice's timer, still connecting", { code: 'SLUICE_ATTEMPT_TIMEOUT', ...before }, { ...CONNECT_TIMEOUT, cause: 'no connection within the timeout' }],
    ['kernel connect timeout', { code: 'ETIMEDOUT', ...before }, { ...CONNECT_TIMEOUT, cause: 'no connection within the timeout' }],

    ['RST after reading the request', { code: 'ECONNRESET', ...after }, { ...RESET, cause: 'the connection was closed before an answer' }],
    ['FIN after reading the request', { code: 'UND_ERR_SOCKET', ...after }, { ...RESET, cause: 'the connection was closed before an answer' }],
    ['EPIPE', { code: 'EPIPE', ...after }, { ...RESET, cause: 'the connection was closed before an answer' }],
    [
      'RST while the body was written',
      { code: 'ECONNRESET', ...after, requestSent: false },
      { ...RESET, cause: 'the connection was closed while the request was being sent' },
    ],
    ['RST after the whole request', { code: 'ECONNRESET', ...after, requestSent: true }, { ...RESET, cause: 'the connection was closed before an answer' }],
    ['unknown code after the start', { code: 'EWHATEVER', ...after }, { ...RESET, cause: 'the connection was closed before an answer' }],
    ['no code after the start', { code: undefined, ...after }, { ...RESET, cause: 'the connection was closed before an answer' }],
    // A connect-only code cannot follow a start; if it does, the facts win and it "may" be processed.
    ['connect code after the start', { code: 'ECONNREFUSED', ...after }, { ...RESET, cause: 'the connection was closed before an answer' }],

    ['undici headers timeout', { code: 'UND_ERR_HEADERS_TIMEOUT', ...after }, { ...TIMEOUT, cause: 'no response headers within the timeout' }],
    ["sluice's timer after the start", { code: 'SLUICE_ATTEMPT_TIMEOUT', ...after }, { ...TIMEOUT, cause: 'no response headers within the timeout' }],
    ['kernel timeout after the start', { code: 'ETIMEDOUT', ...after }, { ...TIMEOUT, cause: 'no response headers within the timeout' }],
    ['connect timeout code after the start', { code: 'UND_ERR_CONNECT_TIMEOUT', ...after }, { ...TIMEOUT, cause: 'no response headers within the timeout' }],

    ['not HTTP (HTTPParserError, no code)', { code: undefined, name: 'HTTPParserError', ...after }, { ...BAD, cause: 'the answer is not valid HTTP' }],
    ['parser code', { code: 'HPE_INVALID_CONSTANT', ...after }, { ...BAD, cause: 'the answer is not valid HTTP' }],
    ['two content-lengths', { code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', ...after }, { ...BAD, cause: 'the answer is not valid HTTP' }],
    ['headers too large', { code: 'UND_ERR_HEADERS_OVERFLOW', ...after }, { ...BAD, cause: 'the answer is not valid HTTP' }],

    ['body timeout after headers', { code: 'UND_ERR_BODY_TIMEOUT', requestStarted: true, responseStarted: true }, { ...CUT, cause: 'the response broke off' }],
    ['reset after headers', { code: 'ECONNRESET', requestStarted: true, responseStarted: true }, { ...CUT, cause: 'the response broke off' }],

    ['client gone before the start', { code: 'SLUICE_CLIENT_GONE', ...before }, { ...GONE, processed: 'no', cause: 'the client went away' }],
    ['client gone after the start', { code: 'SLUICE_CLIENT_GONE', ...after }, { ...GONE, processed: 'maybe', cause: 'the client went away' }],
    ['undici abort after the start', { code: 'UND_ERR_ABORTED', ...after }, { ...GONE, processed: 'maybe', cause: 'the client went away' }],
    [
      'client gone after headers',
      { code: 'SLUICE_CLIENT_GONE', requestStarted: true, responseStarted: true },
      { ...GONE, processed: 'maybe', cause: 'the client went away' },
    ],
  ])('%s', (_label, facts, expected) => {
    expect(classifyFailure(facts)).toMatchObject(expected);
  });

  it('keeps the code for the detail, and nothing but it', () => {
    expect(classifyFailure({ code: 'ECONNREFUSED', ...before }).code).toBe('ECONNREFUSED');
    expect(classifyFailure({ code: '', ...before }).code).toBeUndefined();
  });
});

describe('retrySafe', () => {
  const refused = classifyFailure({ code: 'ECONNREFUSED', ...before });
  const reset = classifyFailure({ code: 'ECONNRESET', ...after });
  const timeout = classifyFailure({ code: 'UND_ERR_HEADERS_TIMEOUT', ...after });
  const cut = classifyFailure({ code: 'ECONNRESET', requestStarted: true, responseStarted: true });

  it.each<[label: string, method: string, idempotencyKey: boolean, safe: boolean, failure: FailureClass]>([
    ['refused POST', 'POST', false, true, refused],
    ['refused PATCH', 'PATCH', false, true, refused],
    ['reset POST', 'POST', false, false, reset],
    ['reset POST with Idempotency-Key', 'POST', true, true, reset],
    ['reset GET', 'GET', false, true, reset],
    ['reset PUT', 'PUT', false, true, reset],
    ['reset DELETE', 'DELETE', false, true, reset],
    ['timeout PATCH', 'PATCH', false, false, timeout],
    ['timeout HEAD', 'HEAD', false, true, timeout],
    ['cut GET', 'GET', false, false, cut],
    ['cut POST with Idempotency-Key', 'POST', true, false, cut],
  ])('%s: %s, Idempotency-Key %s -> safe %s', (_label, method, idempotencyKey, safe, failure) => {
    expect(retrySafe(failure, { method, idempotencyKey })).toBe(safe);
  });
});

describe('failureDetail', () => {
  const context = { upstream: 'api', attempts: 3, timeoutMs: 10_000 };
  it.each<[facts: AttemptFacts, detail: string]>([
    [
      { code: 'ECONNREFUSED', ...before },
      'upstream "api" could not be reached: connection refused (ECONNREFUSED), 3 attempts; nothing was sent, the request was not processed',
    ],
    [
      { code: 'DEPTH_ZERO_SELF_SIGNED_CERT', ...before },
      'upstream "api" could not be reached: TLS handshake failed: certificate rejected (DEPTH_ZERO_SELF_SIGNED_CERT), 3 attempts; nothing was sent, the request was not processed',
    ],
    [
      { code: 'UND_ERR_CONNECT_TIMEOUT', ...before },
      'upstream "api" could not be reached: no connection within 10000 ms (UND_ERR_CONNECT_TIMEOUT), 3 attempts; nothing was sent, the request was not processed',
    ],
    [
      { code: 'UND_ERR_SOCKET', ...after },
      'upstream "api" closed the connection after the request was sent, before answering (UND_ERR_SOCKET), 3 attempts; it may have been processed',
    ],
    [
      { code: 'ECONNRESET', ...after, requestSent: true },
      'upstream "api" closed the connection after receiving the request, before answering (ECONNRESET), 3 attempts; it may have been processed',
    ],
    [
      { code: 'ECONNRESET', ...after, requestSent: false },
      'upstream "api" closed the connection while sluice was sending the request (ECONNRESET), 3 attempts; it may have been processed',
    ],
    [
      { code: 'SLUICE_ATTEMPT_TIMEOUT', ...after },
      'upstream "api" sent no response headers within 10000 ms (SLUICE_ATTEMPT_TIMEOUT), 3 attempts; the request was sent and may have been processed',
    ],
    [
      { code: undefined, name: 'HTTPParserError', ...after },
      'upstream "api" answered with an invalid HTTP response, 3 attempts; the request may have been processed',
    ],
    [
      { code: 'ECONNRESET', requestStarted: true, responseStarted: true },
      'upstream "api": the response broke off after it had started (ECONNRESET); the request was processed',
    ],
    [{ code: 'SLUICE_CLIENT_GONE', ...after }, 'upstream "api": the client went away'],
  ])('%j', (facts, detail) => {
    expect(failureDetail(classifyFailure(facts), context)).toBe(detail);
  });

  it('one attempt is singular', () => {
    expect(failureDetail(classifyFailure({ code: 'ECONNREFUSED', ...before }), { ...context, attempts: 1 })).toContain('(ECONNREFUSED), 1 attempt;');
  });

  it('a detail never says "not processed" for a request that may have been', () => {
    const codes = ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'SLUICE_ATTEMPT_TIMEOUT', 'HPE_X', undefined];
    for (const code of codes) {
      const failure = classifyFailure({ code, ...after });
      expect(failure.processed).toBe('maybe');
      expect(failureDetail(failure, context)).toMatch(/may have been processed$/);
    }
  });
});

describe('FAILURE_PROBLEMS', () => {
  it('agrees with the problem table for every code it already holds', () => {
    const shared = Object.keys(FAILURE_PROBLEMS).filter((code) => code in PROBLEMS);
    expect(shared).toEqual(expect.arrayContaining(['SLUICE_UPSTREAM_UNREACHABLE', 'SLUICE_UPSTREAM_TIMEOUT']));
    for (const code of shared) {
      expect(FAILURE_PROBLEMS[code as keyof typeof FAILURE_PROBLEMS]).toEqual(PROBLEMS[code as keyof typeof PROBLEMS]);
    }
  });

  it('answers 502 for what never got an answer and 504 for a timeout', () => {
    expect(FAILURE_PROBLEMS.SLUICE_UPSTREAM_RESET.status).toBe(502);
    expect(FAILURE_PROBLEMS.SLUICE_UPSTREAM_BAD_RESPONSE.status).toBe(502);
    expect(FAILURE_PROBLEMS.SLUICE_UPSTREAM_TIMEOUT.status).toBe(504);
  });
});
