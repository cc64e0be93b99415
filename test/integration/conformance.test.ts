// The cross-protocol conformance suite (STYLE.md 27): the same logical requests, sent as nginx
// would send them over FastCGI, SCGI and uwsgi and as a client over HTTP, reach the same tree
// and must give the same environ, status, app headers and body on every listener.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/app/resolve.ts';
import { Tree } from '../../src/app/tree.ts';
import type { NativeApp, Protocol } from '../../src/app/types.ts';
import { fcgiRequest, httpFetch, nginxParams, scgiRequest, uwsgiRequest, type LogicalRequest, type ParsedResponse } from '../helpers/clients.ts';
import { echoApp, startTestServer, type TestServer } from '../helpers/servers.ts';

const PROTOCOLS: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi', 'http'];

const misc: NativeApp = (environ, start) => {
  switch (environ.PATH_INFO) {
    case '/text':
      start('200 OK', [['Content-Type', 'text/plain']]);
      return 'hello world';
    case '/empty':
      start('204 No Content', []);
      return null;
    case '/cookies':
      start('200 OK', [['Content-Type', 'text/plain'], ['Set-Cookie', 'a=1; Path=/'], ['Set-Cookie', 'b=2; HttpOnly']]);
      return 'two cookies';
    case '/boom':
      throw new Error('the app failed on purpose');
    default:
      start('404 Not Found', [['Content-Type', 'text/plain']]);
      return 'misc: no such page';
  }
};

function tree(): Tree {
  return new Tree({ onError: () => undefined }).mount(native(echoApp), '/app').mount(native(misc), '/misc');
}

interface Case {
  readonly name: string;
  readonly request: LogicalRequest;
  readonly status: number;
  /** App-set headers that must come through unchanged (lower-case name → every value). */
  readonly headers?: Readonly<Record<string, readonly string[]>>;
  /** The body exactly, or (for the echo app) the environ JSON. */
  readonly body?: string;
  readonly environ?: Readonly<Record<string, unknown>>;
}

const ENVIRON_DEFAULTS = {
  REQUEST_METHOD: 'GET',
  SCRIPT_NAME: '/app',
  PATH_INFO: '/',
  QUERY_STRING: '',
  CONTENT_TYPE: null,
  CONTENT_LENGTH: null,
  SERVER_PROTOCOL: 'HTTP/1.1',
  HTTP_X_TEST: null,
  HTTP_COOKIE: null,
  'postern.url_scheme': 'http',
  'postern.role': 'responder',
  body: '',
};

const CASES: readonly Case[] = [
  {
    name: 'GET with a query string and a header',
    request: { method: 'GET', uri: '/app/items/42?a=1&b=x%20y&a=2', headers: { 'X-Test': 'yes', Cookie: 'k=v' } },
    status: 200,
    headers: { 'content-type': ['application/json'] },
    environ: { ...ENVIRON_DEFAULTS, PATH_INFO: '/items/42', QUERY_STRING: 'a=1&b=x%20y&a=2', HTTP_X_TEST: 'yes', HTTP_COOKIE: 'k=v' },
  },
  {
    name: 'POST with an urlencoded body',
    request: {
      method: 'POST',
      uri: '/app/form',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'name=postern&word=%C3%A9t%C3',
    },
    status: 200,
    environ: {
      ...ENVIRON_DEFAULTS,
      REQUEST_METHOD: 'POST',
      PATH_INFO: '/form',
      CONTENT_TYPE: 'application/x-www-form-urlencoded',
      CONTENT_LENGTH: '28',
      body: 'name=postern&word=%C3%A9t%C3',
    },
  },
  {
    name: 'mount point split: SCRIPT_NAME is the mount, PATH_INFO the decoded rest',
    request: { method: 'GET', uri: '/app/a%20b/c/' },
    status: 200,
    environ: { ...ENVIRON_DEFAULTS, PATH_INFO: '/a b/c/' },
  },
  {
    name: 'the mount itself: PATH_INFO is empty',
    request: { method: 'GET', uri: '/app' },
    status: 200,
    environ: { ...ENVIRON_DEFAULTS, PATH_INFO: '' },
  },
  {
    name: 'HEAD gets the head and no body',
    request: { method: 'HEAD', uri: '/misc/text' },
    status: 200,
    headers: { 'content-type': ['text/plain'], 'content-length': ['11'] },
    body: '',
  },
  {
    name: 'GET of the same page has the body',
    request: { method: 'GET', uri: '/misc/text' },
    status: 200,
    headers: { 'content-type': ['text/plain'], 'content-length': ['11'] },
    body: 'hello world',
  },
  {
    // SCGI sends CONTENT_LENGTH "0", FastCGI and uwsgi send it empty, HTTP has none: all absent.
    name: 'DELETE without a body: no CONTENT_LENGTH on any protocol',
    request: { method: 'DELETE', uri: '/app/thing' },
    status: 200,
    environ: { ...ENVIRON_DEFAULTS, REQUEST_METHOD: 'DELETE', PATH_INFO: '/thing' },
  },
  {
    // Content-Length: 0 reaches postern as "0" on every protocol; it counts as absent, like "".
    name: 'POST with Content-Length: 0: no CONTENT_LENGTH on any protocol',
    request: { method: 'POST', uri: '/app/empty', headers: { 'Content-Type': 'application/json', 'Content-Length': '0' }, body: '' },
    status: 200,
    environ: { ...ENVIRON_DEFAULTS, REQUEST_METHOD: 'POST', PATH_INFO: '/empty', CONTENT_TYPE: 'application/json' },
  },
  { name: '204 has no body', request: { method: 'GET', uri: '/misc/empty' }, status: 204, body: '' },
  { name: 'no mount matches: 404', request: { method: 'GET', uri: '/nowhere/at/all' }, status: 404 },
  { name: 'the app answers 404 itself', request: { method: 'GET', uri: '/misc/missing' }, status: 404, body: 'misc: no such page' },
  { name: 'an app error becomes a 500', request: { method: 'GET', uri: '/misc/boom' }, status: 500, headers: { 'content-type': ['text/plain; charset=utf-8'] } },
  {
    name: 'several Set-Cookie headers stay separate and in order',
    request: { method: 'GET', uri: '/misc/cookies' },
    status: 200,
    headers: { 'set-cookie': ['a=1; Path=/', 'b=2; HttpOnly'] },
    body: 'two cookies',
  },
];

let srv: TestServer;

async function send(protocol: Protocol, req: LogicalRequest): Promise<ParsedResponse> {
  const target = srv.target(protocol);
  switch (protocol) {
    case 'fastcgi': {
      const r = await fcgiRequest(target, { params: nginxParams('fastcgi', req, srv.port('fastcgi')), ...(req.body === undefined ? {} : { body: req.body }) });
      assert.equal(r.fcgi.protocolStatus, 0, 'REQUEST_COMPLETE');
      return r;
    }
    case 'scgi':
      return scgiRequest(target, nginxParams('scgi', req, srv.port('scgi')), req.body);
    case 'uwsgi':
      return uwsgiRequest(target, nginxParams('uwsgi', req, srv.port('uwsgi')), req.body);
    case 'http': {
      const headers: Record<string, string> = { Host: 'example.test', ...req.headers };
      return httpFetch(target, { method: req.method, path: req.uri, headers, ...(req.body === undefined ? {} : { body: req.body }) });
    }
  }
}

/** What a response must look like on every protocol, so results can be compared across them. */
function summary(c: Case, r: ParsedResponse): Record<string, unknown> {
  const headers: Record<string, string[]> = {};
  for (const name of Object.keys(c.headers ?? {})) headers[name] = r.headerAll(name);
  const out: Record<string, unknown> = { status: r.status, headers };
  if (c.environ !== undefined) {
    const env = JSON.parse(r.text) as Record<string, unknown>;
    delete env['protocol'];
    out['environ'] = env;
  } else {
    out['body'] = r.text;
  }
  return out;
}

const results = new Map<string, Map<Protocol, Record<string, unknown>>>();

describe('conformance', () => {
before(async () => {
  srv = await startTestServer({ tree: tree() });
});

after(async () => {
  await srv.close();
});

for (const protocol of PROTOCOLS) {
  describe(`over ${protocol}`, () => {
    for (const c of CASES) {
      test(c.name, async () => {
        const r = await send(protocol, c.request);
        assert.equal(r.status, c.status);
        for (const [name, values] of Object.entries(c.headers ?? {})) assert.deepEqual(r.headerAll(name), values, name);
        if (c.body !== undefined) assert.equal(r.text, c.body);
        if (c.environ !== undefined) {
          const env = JSON.parse(r.text) as Record<string, unknown>;
          assert.equal(env['protocol'], protocol, 'postern.protocol names the listener');
          delete env['protocol'];
          assert.deepEqual(env, c.environ);
        }
        const byProtocol = results.get(c.name) ?? new Map<Protocol, Record<string, unknown>>();
        byProtocol.set(protocol, summary(c, r));
        results.set(c.name, byProtocol);
      });
    }
  });
}

describe('across protocols', () => {
  test('every case gave the same status, headers and body on all four listeners', () => {
    assert.equal(results.size, CASES.length, 'every case ran');
    for (const [name, byProtocol] of results) {
      assert.deepEqual([...byProtocol.keys()].sort(), [...PROTOCOLS].sort(), `${name}: ran on every protocol`);
      const reference = byProtocol.get('http');
      for (const [protocol, summaryOf] of byProtocol) assert.deepEqual(summaryOf, reference, `${name}: ${protocol} vs http`);
    }
  });
});
});
