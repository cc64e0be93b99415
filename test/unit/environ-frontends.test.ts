// Environ normalisation per front end, from params captured from real front servers: nginx 1.22.1
// (Debian fastcgi_params, scgi_params, uwsgi_params, `location /`) and Apache 2.4.71
// (`ProxyPass / fcgi:// | scgi:// | uwsgi://`), each asked by curl for
//   simple: /app/par/m/n?x=1
//   tricky: /app/p%C3%A9r//./x/../m%20n?k=%C3%A9   (curl --path-as-is: raw `//`, `.`, `..`)
// (DOCUMENT_ROOT, PATH, User-Agent and Apache's SERVER_ADMIN/SIGNATURE/CONTEXT_* left out.)
// Every front end must give the same SCRIPT_NAME/PATH_INFO/QUERY_STRING, before and after the mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buildEnviron } from '../../src/environ.ts';
import { Tree } from '../../src/app/tree.ts';
import { native } from '../../src/app/resolve.ts';
import type { Environ, Protocol } from '../../src/app/types.ts';
import { ROLE } from '../../protocols/common/events.ts';
import { MemoryResponder } from '../helpers/memory-responder.ts';

const CAPTURED: ReadonlyArray<{ front: string; protocol: Protocol; simple: string[]; tricky: string[] }> = [
  {
    front: 'nginx fastcgi_params',
    protocol: 'fastcgi',
    simple: [
      'QUERY_STRING', 'x=1',
      'REQUEST_METHOD', 'GET',
      'CONTENT_TYPE', '',
      'CONTENT_LENGTH', '',
      'SCRIPT_NAME', '/app/par/m/n',
      'REQUEST_URI', '/app/par/m/n?x=1',
      'DOCUMENT_URI', '/app/par/m/n',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_SCHEME', 'http',
      'GATEWAY_INTERFACE', 'CGI/1.1',
      'SERVER_SOFTWARE', 'nginx/1.22.1',
      'REMOTE_ADDR', '127.0.0.1',
      'REMOTE_PORT', '35830',
      'REMOTE_USER', '',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '41427',
      'SERVER_NAME', 'localhost',
      'REDIRECT_STATUS', '200',
      'HTTP_HOST', '127.0.0.1',
      'HTTP_ACCEPT', '*/*',
    ],
    tricky: [
      'QUERY_STRING', 'k=%C3%A9',
      'REQUEST_METHOD', 'GET',
      'CONTENT_TYPE', '',
      'CONTENT_LENGTH', '',
      'SCRIPT_NAME', '/app/p\u00c3\u00a9r/m n',
      'REQUEST_URI', '/app/p%C3%A9r//./x/../m%20n?k=%C3%A9',
      'DOCUMENT_URI', '/app/p\u00c3\u00a9r/m n',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_SCHEME', 'http',
      'GATEWAY_INTERFACE', 'CGI/1.1',
      'SERVER_SOFTWARE', 'nginx/1.22.1',
      'REMOTE_ADDR', '127.0.0.1',
      'REMOTE_PORT', '35846',
      'REMOTE_USER', '',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '41427',
      'SERVER_NAME', 'localhost',
      'REDIRECT_STATUS', '200',
      'HTTP_HOST', '127.0.0.1',
      'HTTP_ACCEPT', '*/*',
    ],
  },
  {
    front: 'nginx scgi_params',
    protocol: 'scgi',
    simple: [
      'CONTENT_LENGTH', '0',
      'REQUEST_METHOD', 'GET',
      'REQUEST_URI', '/app/par/m/n?x=1',
      'QUERY_STRING', 'x=1',
      'CONTENT_TYPE', '',
      'DOCUMENT_URI', '/app/par/m/n',
      'SCGI', '1',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_SCHEME', 'http',
      'REMOTE_ADDR', '127.0.0.1',
      'REMOTE_PORT', '51552',
      'SERVER_PORT', '60163',
      'SERVER_NAME', 'localhost',
      'HTTP_HOST', '127.0.0.1',
      'HTTP_ACCEPT', '*/*',
    ],
    tricky: [
      'CONTENT_LENGTH', '0',
      'REQUEST_METHOD', 'GET',
      'REQUEST_URI', '/app/p%C3%A9r//./x/../m%20n?k=%C3%A9',
      'QUERY_STRING', 'k=%C3%A9',
      'CONTENT_TYPE', '',
      'DOCUMENT_URI', '/app/p\u00c3\u00a9r/m n',
      'SCGI', '1',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_SCHEME', 'http',
      'REMOTE_ADDR', '127.0.0.1',
      'REMOTE_PORT', '51554',
      'SERVER_PORT', '60163',
      'SERVER_NAME', 'localhost',
      'HTTP_HOST', '127.0.0.1',
      'HTTP_ACCEPT', '*/*',
    ],
  },
  {
    front: 'nginx uwsgi_params',
    protocol: 'uwsgi',
    simple: [
      'QUERY_STRING', 'x=1',
      'REQUEST_METHOD', 'GET',
      'CONTENT_TYPE', '',
      'CONTENT_LENGTH', '',
      'REQUEST_URI', '/app/par/m/n?x=1',
      'PATH_INFO', '/app/par/m/n',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_SCHEME', 'http',
      'REMOTE_ADDR', '127.0.0.1',
      'REMOTE_PORT', '36000',
      'SERVER_PORT', '37659',
      'SERVER_NAME', 'localhost',
      'HTTP_HOST', '127.0.0.1',
      'HTTP_ACCEPT', '*/*',
    ],
    tricky: [
      'QUERY_STRING', 'k=%C3%A9',
      'REQUEST_METHOD', 'GET',
      'CONTENT_TYPE', '',
      'CONTENT_LENGTH', '',
      'REQUEST_URI', '/app/p%C3%A9r//./x/../m%20n?k=%C3%A9',
      'PATH_INFO', '/app/p\u00c3\u00a9r/m n',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_SCHEME', 'http',
      'REMOTE_ADDR', '127.0.0.1',
      'REMOTE_PORT', '36008',
      'SERVER_PORT', '37659',
      'SERVER_NAME', 'localhost',
      'HTTP_HOST', '127.0.0.1',
      'HTTP_ACCEPT', '*/*',
    ],
  },
  {
    front: 'Apache mod_proxy_fcgi',
    protocol: 'fastcgi',
    simple: [
      'HTTP_HOST', '127.0.0.1:43747',
      'HTTP_ACCEPT', '*/*',
      'SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)',
      'SERVER_NAME', '127.0.0.1',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '43747',
      'REMOTE_ADDR', '127.0.0.1',
      'REQUEST_SCHEME', 'http',
      'SCRIPT_FILENAME', 'proxy:fcgi://127.0.0.1:38353/app/par/m/n',
      'REMOTE_PORT', '39516',
      'GATEWAY_INTERFACE', 'CGI/1.1',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_METHOD', 'GET',
      'QUERY_STRING', 'x=1',
      'REQUEST_URI', '/app/par/m/n?x=1',
      'SCRIPT_NAME', '/app/par/m/n',
    ],
    tricky: [
      'HTTP_HOST', '127.0.0.1:43747',
      'HTTP_ACCEPT', '*/*',
      'SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)',
      'SERVER_NAME', '127.0.0.1',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '43747',
      'REMOTE_ADDR', '127.0.0.1',
      'REQUEST_SCHEME', 'http',
      'SCRIPT_FILENAME', 'proxy:fcgi://127.0.0.1:38353/app/p%C3%A9r/m%20n',
      'REMOTE_PORT', '39524',
      'GATEWAY_INTERFACE', 'CGI/1.1',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_METHOD', 'GET',
      'QUERY_STRING', 'k=%C3%A9',
      'REQUEST_URI', '/app/p%C3%A9r//./x/../m%20n?k=%C3%A9',
      'SCRIPT_NAME', '/app/p\u00c3\u00a9r/m n',
    ],
  },
  {
    front: 'Apache mod_proxy_scgi',
    protocol: 'scgi',
    simple: [
      'CONTENT_LENGTH', '0',
      'SCGI', '1',
      'HTTP_HOST', '127.0.0.1:33549',
      'HTTP_ACCEPT', '*/*',
      'SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)',
      'SERVER_NAME', '127.0.0.1',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '33549',
      'REMOTE_ADDR', '127.0.0.1',
      'REQUEST_SCHEME', 'http',
      'SCRIPT_FILENAME', 'proxy:scgi://127.0.0.1:34699/app/par/m/n',
      'REMOTE_PORT', '57870',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_METHOD', 'GET',
      'QUERY_STRING', 'x=1',
      'REQUEST_URI', '/app/par/m/n?x=1',
      'SCRIPT_NAME', '/app/par/m/n',
    ],
    tricky: [
      'CONTENT_LENGTH', '0',
      'SCGI', '1',
      'HTTP_HOST', '127.0.0.1:33549',
      'HTTP_ACCEPT', '*/*',
      'SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)',
      'SERVER_NAME', '127.0.0.1',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '33549',
      'REMOTE_ADDR', '127.0.0.1',
      'REQUEST_SCHEME', 'http',
      'SCRIPT_FILENAME', 'proxy:scgi://127.0.0.1:34699/app/p%C3%A9r/m%20n',
      'REMOTE_PORT', '57886',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_METHOD', 'GET',
      'QUERY_STRING', 'k=%C3%A9',
      'REQUEST_URI', '/app/p%C3%A9r//./x/../m%20n?k=%C3%A9',
      'SCRIPT_NAME', '/app/p\u00c3\u00a9r/m n',
    ],
  },
  {
    front: 'Apache mod_proxy_uwsgi',
    protocol: 'uwsgi',
    simple: [
      'PATH_INFO', '/app/par/m/n',
      'HTTP_HOST', '127.0.0.1:58737',
      'HTTP_ACCEPT', '*/*',
      'SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)',
      'SERVER_NAME', '127.0.0.1',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '58737',
      'REMOTE_ADDR', '127.0.0.1',
      'REQUEST_SCHEME', 'http',
      'SCRIPT_FILENAME', 'proxy:uwsgi://127.0.0.1:38975/app/par/m/n',
      'REMOTE_PORT', '58998',
      'GATEWAY_INTERFACE', 'CGI/1.1',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_METHOD', 'GET',
      'QUERY_STRING', 'x=1',
      'REQUEST_URI', '/app/par/m/n?x=1',
      'SCRIPT_NAME', '',
    ],
    tricky: [
      'PATH_INFO', '/app/p\u00c3\u00a9r/m n',
      'HTTP_HOST', '127.0.0.1:58737',
      'HTTP_ACCEPT', '*/*',
      'SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)',
      'SERVER_NAME', '127.0.0.1',
      'SERVER_ADDR', '127.0.0.1',
      'SERVER_PORT', '58737',
      'REMOTE_ADDR', '127.0.0.1',
      'REQUEST_SCHEME', 'http',
      'SCRIPT_FILENAME', 'proxy:uwsgi://127.0.0.1:38975/app/p\u00c3\u00a9r/m n',
      'REMOTE_PORT', '59002',
      'GATEWAY_INTERFACE', 'CGI/1.1',
      'SERVER_PROTOCOL', 'HTTP/1.1',
      'REQUEST_METHOD', 'GET',
      'QUERY_STRING', 'k=%C3%A9',
      'REQUEST_URI', '/app/p%C3%A9r//./x/../m%20n?k=%C3%A9',
      'SCRIPT_NAME', '',
    ],
  },
];

function environ(protocol: Protocol, params: string[]): Environ {
  return buildEnviron({ id: 1, params, role: ROLE.RESPONDER, keepConn: false, contentLength: -1 }, {
    protocol,
    input: Readable.from([]),
    signal: new AbortController().signal,
  });
}

/** Mounts an app at `/app/par` that answers with its SCRIPT_NAME and PATH_INFO. */
async function split(env: Environ): Promise<[string, string]> {
  const echo = native((e, start) => {
    start('200 OK', []);
    return JSON.stringify([e.SCRIPT_NAME, e.PATH_INFO]);
  });
  const tree = new Tree().mount(echo, '/app/par').mount(echo, '/');
  const r = new MemoryResponder();
  await tree.handle(env, r);
  return JSON.parse(r.text) as [string, string];
}

test('the captured vectors cover all six front ends', () => {
  assert.equal(CAPTURED.length, 6);
  assert.deepEqual(new Set(CAPTURED.map((c) => c.protocol)), new Set(['fastcgi', 'scgi', 'uwsgi']));
});

for (const c of CAPTURED) {
  test(`${c.front}: /app/par/m/n?x=1 → PATH_INFO /app/par/m/n, then /app/par + /m/n`, async () => {
    const env = environ(c.protocol, c.simple);
    assert.equal(env.SCRIPT_NAME, '');
    assert.equal(env.PATH_INFO, '/app/par/m/n');
    assert.equal(env.QUERY_STRING, 'x=1');
    assert.equal(env.REQUEST_METHOD, 'GET');
    assert.equal(env.SERVER_PROTOCOL, 'HTTP/1.1');
    assert.equal(env.REQUEST_URI, '/app/par/m/n?x=1');
    assert.equal(env.REMOTE_ADDR, '127.0.0.1');
    assert.equal(env['postern.url_scheme'], 'http');
    assert.equal(env['postern.protocol'], c.protocol);
    assert.equal(env['postern.role'], 'responder');
    // Without a body nginx sends CONTENT_TYPE/CONTENT_LENGTH empty, or (SCGI) CONTENT_LENGTH "0":
    // absent either way, like Apache's.
    assert.equal('CONTENT_TYPE' in env, false);
    assert.equal('CONTENT_LENGTH' in env, false);
    assert.match(env.SERVER_NAME, /^(localhost|127\.0\.0\.1)$/);
    assert.match(env.SERVER_PORT, /^\d+$/);
    assert.equal(env.HTTP_ACCEPT, '*/*');
    assert.deepEqual(await split(env), ['/app/par', '/m/n']);
  });

  test(`${c.front}: raw //, ., .., %C3%A9 and %20 → the path the front server routed on`, async () => {
    const env = environ(c.protocol, c.tricky);
    assert.equal(env.SCRIPT_NAME, '');
    assert.equal(env.PATH_INFO, '/app/p\u00c3\u00a9r/m n'); // UTF-8 bytes of é as latin1 chars (PEP 3333)
    assert.equal(env.QUERY_STRING, 'k=%C3%A9');
    assert.deepEqual(await split(env), ['', '/app/p\u00c3\u00a9r/m n']);
  });
}

test('every front end yields the same path keys for the same request', () => {
  const keys = (e: Environ): string => JSON.stringify([e.SCRIPT_NAME, e.PATH_INFO, e.QUERY_STRING, e.REQUEST_METHOD]);
  for (const kind of ['simple', 'tricky'] as const) {
    const seen = new Set(CAPTURED.map((c) => keys(environ(c.protocol, c[kind]))));
    assert.equal(seen.size, 1, `${kind}: ${[...seen].join(' | ')}`);
  }
});

// Profiles not captured above, written from PROTOCOLS.md B.2–B.5 and the params files.
const SYNTHETIC: ReadonlyArray<{ name: string; params: string[]; path: string; query: string }> = [
  {
    name: 'nginx fastcgi_split_path_info: SCRIPT_NAME + PATH_INFO, REQUEST_URI wins',
    params: ['SCRIPT_NAME', '/app', 'PATH_INFO', '/par/m/n', 'REQUEST_URI', '/app/par/m/n?x=1', 'QUERY_STRING', 'x=1'],
    path: '/app/par/m/n',
    query: 'x=1',
  },
  {
    name: 'cgi-fcgi / bare CGI: no REQUEST_URI, SCRIPT_NAME + PATH_INFO joined',
    params: ['SCRIPT_NAME', '/app', 'PATH_INFO', '/par/m/n', 'QUERY_STRING', 'x=1'],
    path: '/app/par/m/n',
    query: 'x=1',
  },
  {
    name: 'nginx uwsgi without REQUEST_URI: PATH_INFO only',
    params: ['PATH_INFO', '/app/par/m/n', 'QUERY_STRING', 'x=1'],
    path: '/app/par/m/n',
    query: 'x=1',
  },
  {
    name: 'DOCUMENT_URI only (a trimmed scgi_params)',
    params: ['DOCUMENT_URI', '/app/par/m/n'],
    path: '/app/par/m/n',
    query: '',
  },
  {
    name: 'REQUEST_URI only: QUERY_STRING taken from it',
    params: ['REQUEST_URI', '/app/par/m/n?x=1&y'],
    path: '/app/par/m/n',
    query: 'x=1&y',
  },
  {
    name: 'absolute-form REQUEST_URI',
    params: ['REQUEST_URI', 'http://example.com:8080/app/par/m/n?x=1'],
    path: '/app/par/m/n',
    query: 'x=1',
  },
  {
    name: 'encoded slash decodes to a segment boundary (as nginx $uri does)',
    params: ['REQUEST_URI', '/app%2Fpar/m/n'],
    path: '/app/par/m/n',
    query: '',
  },
  {
    name: 'a bad escape stays as sent',
    params: ['REQUEST_URI', '/app/par/%zz/%4'],
    path: '/app/par/%zz/%4',
    query: '',
  },
  {
    name: 'no path at all',
    params: ['REQUEST_METHOD', 'GET'],
    path: '',
    query: '',
  },
];

for (const v of SYNTHETIC) {
  test(`synthetic profile: ${v.name}`, () => {
    const env = environ('fastcgi', v.params);
    assert.equal(env.SCRIPT_NAME, '');
    assert.equal(env.PATH_INFO, v.path);
    assert.equal(env.QUERY_STRING, v.query);
  });
}
