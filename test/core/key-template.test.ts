import { describe, expect, it } from 'vitest';
import { compileKeyTemplate, type KeySource, type KeyTemplate } from '../../src/core/key-template.js';

/** A request as the HTTP layer would present it. Header names are stored lower-case. */
function request(): KeySource & { headerLookups: string[] } {
  const headers: Record<string, string> = { 'x-account': 'acme', 'x-forwarded-for': '1.1.1.1, 2.2.2.2', 'x-empty': '' };
  const query: Record<string, string> = { region: 'eu', 'page size': '10' };
  const segments = ['users', '42'];
  const headerLookups: string[] = [];
  return {
    method: 'POST',
    clientIp: '10.0.0.7',
    headerLookups,
    header(name) {
      headerLookups.push(name);
      return headers[name];
    },
    query: (name) => query[name],
    pathSegment: (n) => segments[n - 1],
  };
}

function compile(source: string): KeyTemplate {
  const result = compileKeyTemplate(source);
  if (!result.ok) throw new Error(`expected "${source}" to compile: ${result.error}`);
  return result.template;
}

describe('compileKeyTemplate: rendering', () => {
  it.each<[string, string]>([
    ['{header.x-account}', 'acme'],
    ['{header.X-Account}', 'acme'], // header names are case-insensitive
    ['{header.x-forwarded-for}', '1.1.1.1, 2.2.2.2'],
    ['{query.region}', 'eu'],
    ['{query.page size}', '10'],
    ['{path.1}', 'users'],
    ['{path.2}', '42'],
    ['{path.01}', 'users'],
    ['{method}', 'POST'],
    ['{client.ip}', '10.0.0.7'],
    ['{ method }', 'POST'],
    ['{query.region}:{path.1}', 'eu:users'],
    ['{method} {client.ip}', 'POST 10.0.0.7'],
    ['tenant-{header.x-account}-v1', 'tenant-acme-v1'],
    ['{header.x-account}{path.2}', 'acme42'],
    ['{method}{method}', 'POSTPOST'],
    ['static', 'static'],
    ['a:b', 'a:b'],
    ['', ''],
  ])('%j renders %j', (source, key) => {
    const template = compile(source);
    expect(template.source).toBe(source);
    expect(template.render(request())).toBe(key);
  });

  it.each<[string, string]>([
    ['{header.x-missing}', ''],
    ['{header.x-empty}', ''],
    ['{query.Region}', ''], // query names are case-sensitive
    ['{query.missing}', ''],
    ['{path.3}', ''],
    ['a:{header.x-missing}:b', 'a::b'],
    ['{query.missing}{path.9}', ''],
  ])('a missing value renders as the empty string: %j -> %j', (source, key) => {
    expect(compile(source).render(request())).toBe(key);
  });

  it('looks headers up by their lower-case name', () => {
    const req = request();
    compile('{header.X-Account}/{header.Accept}').render(req);
    expect(req.headerLookups).toEqual(['x-account', 'accept']);
  });

  it('reads the request again on every render', () => {
    const template = compile('{method}:{path.1}');
    expect(template.render(request())).toBe('POST:users');
    expect(template.render({ ...request(), method: 'GET', pathSegment: () => 'orders' })).toBe('GET:orders');
  });
});

describe('compileKeyTemplate: errors', () => {
  const unbalanced = (source: string): string => `unbalanced "{" or "}" in key template "${source}"`;
  const unknown = (body: string, source: string): string =>
    `unknown placeholder "{${body}}" (expected {header.NAME}, {query.NAME}, {path.N}, {method} or {client.ip}) in key template "${source}"`;
  const headerName = (body: string, source: string): string => `"{${body}}" needs a header name, as in {header.x-account} in key template "${source}"`;
  const queryName = (body: string, source: string): string => `"{${body}}" needs a parameter name, as in {query.region} in key template "${source}"`;
  const pathIndex = (body: string, source: string): string => `"{${body}}" needs a segment number from 1, as in {path.1} in key template "${source}"`;

  it.each<[string, string]>([
    ['{header.x', unbalanced('{header.x')],
    ['x}', unbalanced('x}')],
    ['{', unbalanced('{')],
    ['}', unbalanced('}')],
    ['{{method}}', unbalanced('{{method}}')],
    ['{method}}', unbalanced('{method}}')],
    ['{method}:{path.1', unbalanced('{method}:{path.1')],
    ['{}', unknown('', '{}')],
    ['{ }', unknown(' ', '{ }')],
    ['{host}', unknown('host', '{host}')],
    ['{METHOD}', unknown('METHOD', '{METHOD}')],
    ['{client.port}', unknown('client.port', '{client.port}')],
    ['{headers.x-account}', unknown('headers.x-account', '{headers.x-account}')],
    ['{header}', headerName('header', '{header}')],
    ['{header.}', headerName('header.', '{header.}')],
    ['{header.x account}', headerName('header.x account', '{header.x account}')],
    ['{header.x:y}', headerName('header.x:y', '{header.x:y}')],
    ['{query}', queryName('query', '{query}')],
    ['{query.}', queryName('query.', '{query.}')],
    ['{path}', pathIndex('path', '{path}')],
    ['{path.0}', pathIndex('path.0', '{path.0}')],
    ['{path.x}', pathIndex('path.x', '{path.x}')],
    ['{path.-1}', pathIndex('path.-1', '{path.-1}')],
    ['{path.1.5}', pathIndex('path.1.5', '{path.1.5}')],
    ['{method}:{path.0}', pathIndex('path.0', '{method}:{path.0}')], // a later placeholder, the whole template quoted
  ])('%j: %s', (source, error) => {
    expect(compileKeyTemplate(source)).toEqual({ ok: false, error });
  });
});
