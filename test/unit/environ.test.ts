// buildEnviron and environFromHttp rules, one table per rule: defaults, duplicates, dropped names,
// URL scheme, SERVER_NAME/SERVER_PORT, roles, and the node:http listener's params.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { execFileSync } from 'node:child_process';
import { buildEnviron, cgiHeaderName, environFromHttp, type EnvironContext } from '../../src/environ.ts';
import type { Environ } from '../../src/app/types.ts';
import { ROLE, type Role } from '../../protocols/common/events.ts';

const input = Readable.from([]);
const signal = new AbortController().signal;

function env(params: string[], extra: Partial<EnvironContext> = {}, role: Role = ROLE.RESPONDER): Environ {
  return buildEnviron({ id: 1, params, role, keepConn: false, contentLength: -1 }, { protocol: 'fastcgi', input, signal, ...extra });
}

test('an empty params list still yields every required WSGI key', () => {
  const e = env([]);
  assert.equal(e.REQUEST_METHOD, 'GET');
  assert.equal(e.SCRIPT_NAME, '');
  assert.equal(e.PATH_INFO, '');
  assert.equal(e.QUERY_STRING, '');
  assert.equal(e.SERVER_NAME, 'localhost');
  assert.equal(e.SERVER_PORT, '80');
  assert.equal(e.SERVER_PROTOCOL, 'HTTP/1.1');
  assert.equal(e['postern.url_scheme'], 'http');
  assert.equal(e['postern.input'], input);
  assert.equal(e['postern.signal'], signal);
  assert.equal('postern.data' in e, false);
});

test('duplicate names: the last one wins', () => {
  const e = env(['HTTP_HOST', 'a.example', 'REQUEST_URI', '/one', 'HTTP_HOST', 'b.example:81', 'REQUEST_URI', '/two', 'X', '1', 'X', '2']);
  assert.equal(e.HTTP_HOST, 'b.example:81');
  assert.equal(e.PATH_INFO, '/two');
  assert.equal(e.X, '2');
  assert.equal(e.SERVER_NAME, 'b.example');
  assert.equal(e.SERVER_PORT, '81');
});

test('a request header sent twice is joined, not lost (nginx passes each Cookie line as its own param)', () => {
  const e = env(['HTTP_COOKIE', 'a=1', 'HTTP_ACCEPT', 'text/html', 'HTTP_COOKIE', 'b=2', 'HTTP_ACCEPT', 'text/plain', 'HTTP_COOKIE', 'c=3']);
  assert.equal(e.HTTP_COOKIE, 'a=1; b=2; c=3');
  assert.equal(e.HTTP_ACCEPT, 'text/html, text/plain');
});

test('CONTENT_LENGTH/CONTENT_TYPE: empty is absent, and so is length "0" (SCGI always sends it); HTTP_ duplicates are ignored', () => {
  const cases: ReadonlyArray<{ params: string[]; type: string | undefined; length: string | undefined }> = [
    { params: ['CONTENT_TYPE', '', 'CONTENT_LENGTH', ''], type: undefined, length: undefined },
    { params: ['CONTENT_LENGTH', '0'], type: undefined, length: undefined },
    { params: ['REQUEST_METHOD', 'POST', 'CONTENT_TYPE', 'application/json', 'CONTENT_LENGTH', '0'], type: 'application/json', length: undefined },
    { params: ['CONTENT_LENGTH', '00'], type: undefined, length: '00' },
    { params: ['CONTENT_TYPE', 'text/plain', 'CONTENT_LENGTH', '3', 'HTTP_CONTENT_LENGTH', '99', 'HTTP_CONTENT_TYPE', 'evil/x'], type: 'text/plain', length: '3' },
    { params: ['HTTP_CONTENT_LENGTH', '99', 'HTTP_CONTENT_TYPE', 'evil/x'], type: undefined, length: undefined },
    { params: ['CONTENT_LENGTH', '3', 'CONTENT_LENGTH', ''], type: undefined, length: undefined },
  ];
  for (const c of cases) {
    const e = env(c.params);
    assert.equal(e.CONTENT_TYPE, c.type, JSON.stringify(c.params));
    assert.equal(e.CONTENT_LENGTH, c.length, JSON.stringify(c.params));
    assert.equal('HTTP_CONTENT_LENGTH' in e, false);
    assert.equal('HTTP_CONTENT_TYPE' in e, false);
  }
});

test('HTTP_PROXY (httpoxy) is dropped; other headers pass as latin1 strings, untouched', () => {
  const e = env(['HTTP_PROXY', 'http://evil:1', 'HTTP_X_BYTES', '\u00ff\u00e9 \t', 'HTTP_PROXY_AUTHORIZATION', 'k']);
  assert.equal('HTTP_PROXY' in e, false);
  assert.equal(e.HTTP_X_BYTES, '\u00ff\u00e9 \t');
  assert.equal(e.HTTP_PROXY_AUTHORIZATION, 'k');
});

test('params named postern.* cannot override postern keys', () => {
  const e = env(['postern.role', 'authorizer', 'postern.url_scheme', 'https', 'postern.protocol', 'http']);
  assert.equal(e['postern.role'], 'responder');
  assert.equal(e['postern.url_scheme'], 'http');
  assert.equal(e['postern.protocol'], 'fastcgi');
});

test('URL scheme: HTTPS on/1, REQUEST_SCHEME, and X-Forwarded-Proto only when trusted', () => {
  const cases: ReadonlyArray<{ params: string[]; trust?: boolean; scheme: 'http' | 'https' }> = [
    { params: [], scheme: 'http' },
    { params: ['HTTPS', 'on'], scheme: 'https' },
    { params: ['HTTPS', 'ON'], scheme: 'https' },
    { params: ['HTTPS', '1'], scheme: 'https' },
    { params: ['HTTPS', 'off'], scheme: 'http' },
    { params: ['HTTPS', ''], scheme: 'http' },
    { params: ['REQUEST_SCHEME', 'https'], scheme: 'https' },
    { params: ['REQUEST_SCHEME', 'http'], scheme: 'http' },
    { params: ['HTTP_X_FORWARDED_PROTO', 'https'], scheme: 'http' },
    { params: ['HTTP_X_FORWARDED_PROTO', 'https'], trust: true, scheme: 'https' },
    { params: ['HTTP_X_FORWARDED_PROTO', 'HTTPS, http'], trust: true, scheme: 'https' },
    { params: ['HTTPS', 'on', 'HTTP_X_FORWARDED_PROTO', 'http'], trust: true, scheme: 'http' },
    { params: ['REQUEST_SCHEME', 'https', 'HTTP_X_FORWARDED_PROTO', 'gopher'], trust: true, scheme: 'https' },
  ];
  for (const c of cases) {
    const e = env(c.params, c.trust === true ? { trustForwardedProto: true } : {});
    assert.equal(e['postern.url_scheme'], c.scheme, JSON.stringify(c));
  }
});

test('SERVER_NAME/SERVER_PORT: as sent, else from HTTP_HOST, else local address / scheme port', () => {
  const cases: ReadonlyArray<{ params: string[]; ctx?: Partial<EnvironContext>; name: string; port: string }> = [
    { params: ['SERVER_NAME', 's', 'SERVER_PORT', '8', 'HTTP_HOST', 'h:9'], name: 's', port: '8' },
    { params: ['HTTP_HOST', 'h.example:9'], name: 'h.example', port: '9' },
    { params: ['HTTP_HOST', 'h.example'], name: 'h.example', port: '80' },
    { params: ['HTTP_HOST', 'h.example', 'HTTPS', 'on'], name: 'h.example', port: '443' },
    { params: ['HTTP_HOST', '[::1]:8443'], name: '[::1]', port: '8443' },
    { params: ['HTTP_HOST', '[::1]'], name: '[::1]', port: '80' },
    { params: [], ctx: { localAddress: '10.0.0.1' }, name: '10.0.0.1', port: '80' },
    { params: ['SERVER_NAME', 's'], name: 's', port: '80' },
  ];
  for (const c of cases) {
    const e = env(c.params, c.ctx ?? {});
    assert.equal(e.SERVER_NAME, c.name, JSON.stringify(c));
    assert.equal(e.SERVER_PORT, c.port, JSON.stringify(c));
  }
});

test('REMOTE_ADDR/REMOTE_PORT come from the socket only when the front server sent none', () => {
  assert.equal(env([], { remoteAddress: '10.1.1.1', remotePort: 5 }).REMOTE_ADDR, '10.1.1.1');
  assert.equal(env([], { remoteAddress: '10.1.1.1', remotePort: 5 }).REMOTE_PORT, '5');
  const sent = env(['REMOTE_ADDR', '192.0.2.7', 'REMOTE_PORT', '6'], { remoteAddress: '10.1.1.1', remotePort: 5 });
  assert.equal(sent.REMOTE_ADDR, '192.0.2.7');
  assert.equal(sent.REMOTE_PORT, '6');
  assert.equal('REMOTE_ADDR' in env([]), false);
});

test('FastCGI roles map to names; the FILTER data stream is passed through', () => {
  const data = Readable.from(['file']);
  assert.equal(env([], {}, ROLE.RESPONDER)['postern.role'], 'responder');
  assert.equal(env([], {}, ROLE.AUTHORIZER)['postern.role'], 'authorizer');
  const filter = env(['FCGI_DATA_LENGTH', '4'], { data }, ROLE.FILTER);
  assert.equal(filter['postern.role'], 'filter');
  assert.equal(filter['postern.data'], data);
  assert.equal(filter.FCGI_DATA_LENGTH, '4');
});

test('other CGI variables pass through as sent', () => {
  const e = env(['DOCUMENT_ROOT', '/srv', 'REMOTE_USER', 'jane', 'SCRIPT_FILENAME', 'proxy:fcgi://127.0.0.1:9000/x', 'GATEWAY_INTERFACE', 'CGI/1.1']);
  assert.equal(e.DOCUMENT_ROOT, '/srv');
  assert.equal(e.REMOTE_USER, 'jane');
  assert.equal(e.SCRIPT_FILENAME, 'proxy:fcgi://127.0.0.1:9000/x');
  assert.equal(e.GATEWAY_INTERFACE, 'CGI/1.1');
});

// V8's own answer (natives syntax, enabled for this process only): whether an object has fast
// (hidden-class) properties or was turned into a dictionary.
setFlagsFromString('--allow-natives-syntax');
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- natives syntax parses only in code compiled after the flag is set.
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;

test('an environ of a browser-sized request keeps fast properties (no dictionary mode)', () => {
  // nginx's stock params and a browser's headers: 32 params, past the 12 keyed additions after
  // which V8 turned the environ into a hash table (see storeParam in src/environ.ts).
  const params = ['QUERY_STRING', '', 'REQUEST_METHOD', 'GET', 'CONTENT_TYPE', '', 'CONTENT_LENGTH', '', 'SCRIPT_NAME', '/',
    'REQUEST_URI', '/', 'DOCUMENT_URI', '/', 'DOCUMENT_ROOT', '/srv', 'SERVER_PROTOCOL', 'HTTP/1.1', 'REQUEST_SCHEME', 'http',
    'GATEWAY_INTERFACE', 'CGI/1.1', 'SERVER_SOFTWARE', 'nginx/1.22.1', 'REMOTE_ADDR', '127.0.0.1', 'REMOTE_PORT', '5555',
    'REMOTE_USER', '', 'SERVER_ADDR', '127.0.0.1', 'SERVER_PORT', '8080', 'SERVER_NAME', '', 'REDIRECT_STATUS', '200'];
  for (let i = 0; i < 24; i++) params.push(`HTTP_X_HEADER_${i}`, `value ${i}`);
  for (let round = 0; round < 3; round++) {
    const e = env(params.slice());
    assert.equal(hasFastProperties(e), true, `round ${round}: ${Object.keys(e).length} keys`);
    assert.equal(e.HTTP_X_HEADER_23, 'value 23');
  }
});

test('params of any name are stored as plain own properties, in arrival order', () => {
  const odd = ['HTTP_X"Q', "it's", 'HTTP_A\\B', 'back\\slash', 'X-${1}', 'tpl', 'HTTP_\u2028', 'ls', '__proto__', 'ignored', 'constructor', 'c',
    '0', 'index', 'HTTP_' + 'L'.repeat(300), 'long', 'toString', 'ts'];
  const e = env(odd.slice());
  assert.equal(e['HTTP_X"Q'], "it's");
  assert.equal(e['HTTP_A\\B'], 'back\\slash');
  assert.equal(e['X-${1}'], 'tpl');
  assert.equal(e['HTTP_\u2028'], 'ls');
  assert.equal(e.constructor, 'c');
  assert.equal(e['0'], 'index');
  assert.equal(e['HTTP_' + 'L'.repeat(300)], 'long');
  assert.equal(e['toString' as string], 'ts');
  // `__proto__` is the accessor on a plain object too: a string does not change the prototype.
  assert.equal(Object.hasOwn(e, '__proto__'), false);
  assert.equal(typeof Object.getPrototypeOf(e), 'object');
  const keys = Object.keys(e);
  const sent = ['0', 'HTTP_X"Q', 'HTTP_A\\B', 'X-${1}', 'HTTP_\u2028', 'constructor', 'HTTP_' + 'L'.repeat(300), 'toString'];
  assert.deepEqual(keys.filter((k) => sent.includes(k)), sent);
});

test('without code generation from strings, params are stored all the same', () => {
  // A process started with --disallow-code-generation-from-strings: the per-name setters cannot be
  // made, and buildEnviron falls back to the keyed store.
  const compiled = import.meta.url.endsWith('.js');
  const module = new URL(`../../src/environ.${compiled ? 'js' : 'ts'}`, import.meta.url).href;
  const script = `
    const { buildEnviron } = await import(${JSON.stringify(module)});
    const params = ['REQUEST_METHOD', 'POST', 'HTTP_X_ONE', '1', 'HTTP_X_TWO', '2', 'SERVER_NAME', 'a.test'];
    const e = buildEnviron({ id: 1, params, role: 1, keepConn: false, contentLength: -1 }, { protocol: 'scgi', input: null, signal: null });
    let blocked = false;
    try { new Function('return 1'); } catch { blocked = true; }
    console.log(JSON.stringify({ blocked, keys: Object.keys(e).slice(0, 4), one: e.HTTP_X_ONE, method: e.REQUEST_METHOD }));`;
  const out = execFileSync(process.execPath, [...(compiled ? [] : ['--import', 'tsx']), '--disallow-code-generation-from-strings', '--input-type=module', '-e', script],
    { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { blocked: true, keys: ['REQUEST_METHOD', 'HTTP_X_ONE', 'HTTP_X_TWO', 'SERVER_NAME'], one: '1', method: 'POST' });
});

test('cgiHeaderName: upper case, - to _, names with _ refused', () => {
  const cases: ReadonlyArray<[string, string | undefined]> = [
    ['Host', 'HTTP_HOST'],
    ['x-forwarded-for', 'HTTP_X_FORWARDED_FOR'],
    ['X-Forwarded-Proto', 'HTTP_X_FORWARDED_PROTO'],
    ['ACCEPT', 'HTTP_ACCEPT'],
    ['X_Forwarded_Proto', undefined],
    ['x-a_b', undefined],
    ['X-9', 'HTTP_X_9'],
  ];
  for (const [name, cgi] of cases) assert.equal(cgiHeaderName(name), cgi, name);
});

test('environFromHttp builds the same environ a front server would, from a real node:http request', async () => {
  let seen: Environ | undefined;
  const server = createServer((req: IncomingMessage, res) => {
    seen = environFromHttp(req, { input: req, signal: new AbortController().signal });
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/app/p%C3%A9r//x/../m?x=1',
        headers: [
          ['Host', `localhost:${port}`],
          ['Content-Type', 'application/x-www-form-urlencoded'],
          ['Content-Length', '3'],
          ['X-Multi', 'a'],
          ['X-Multi', 'b'],
          ['Cookie', 'a=1'],
          ['Cookie', 'b=2'],
          ['X_Smuggled', 'no'],
          ['Proxy', 'http://evil'],
        ].flat(),
      }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end('a=b');
    });
    assert.ok(seen !== undefined);
    const e = seen;
    assert.equal(e['postern.protocol'], 'http');
    assert.equal(e.REQUEST_METHOD, 'POST');
    assert.equal(e.REQUEST_URI, '/app/p%C3%A9r//x/../m?x=1');
    assert.equal(e.SCRIPT_NAME, '');
    assert.equal(e.PATH_INFO, '/app/p\u00c3\u00a9r/m');
    assert.equal(e.QUERY_STRING, 'x=1');
    assert.equal(e.SERVER_PROTOCOL, 'HTTP/1.1');
    assert.equal(e.SERVER_NAME, 'localhost');
    assert.equal(e.SERVER_PORT, String(port));
    assert.equal(e.REMOTE_ADDR, '127.0.0.1');
    assert.match(String(e.REMOTE_PORT), /^\d+$/);
    assert.equal(e.CONTENT_TYPE, 'application/x-www-form-urlencoded');
    assert.equal(e.CONTENT_LENGTH, '3');
    assert.equal(e.HTTP_X_MULTI, 'a, b');
    assert.equal(e.HTTP_COOKIE, 'a=1; b=2');
    assert.equal('HTTP_X_SMUGGLED' in e, false);
    assert.equal('HTTP_PROXY' in e, false);
    assert.equal('HTTP_CONTENT_TYPE' in e, false);
    assert.equal(e['postern.url_scheme'], 'http');
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
