// inject(): a tree driven without a socket. The environ must be what nginx's fastcgi_params would
// give (same buildEnviron), and the response must be collected whole and validated like a socket's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tree } from '../../src/app/tree.ts';
import { inject, injectParams } from '../../src/app/inject.ts';
import { native } from '../../src/app/resolve.ts';
import type { Environ } from '../../src/app/types.ts';

function capture(): { tree: Tree; seen: () => Environ; body: () => string } {
  let env: Environ | undefined;
  let body = '';
  const tree = new Tree({ onError: () => undefined }).mount(native(async (e, start) => {
    env = e;
    body = '';
    for await (const chunk of e['postern.input']) body += String(chunk);
    start('200 OK', [['Content-Type', 'text/plain'], ['X-Twice', 'a'], ['x-twice', 'b']]);
    return 'ok';
  }), '/');
  return {
    tree,
    seen: () => {
      assert.ok(env !== undefined);
      return env;
    },
    body: () => body,
  };
}

test('the response is collected whole: status, reason, headers in order, body, appStatus', async () => {
  const { tree } = capture();
  const r = await inject(tree, { url: '/' });
  assert.equal(r.status, 200);
  assert.equal(r.reason, 'OK');
  assert.deepEqual(r.headers, [['Content-Type', 'text/plain'], ['X-Twice', 'a'], ['x-twice', 'b'], ['Content-Length', '2']]);
  assert.equal(r.header('x-TWICE'), 'a');
  assert.equal(r.header('missing'), undefined);
  assert.ok(Buffer.isBuffer(r.body));
  assert.equal(r.text, 'ok');
  assert.equal(r.appStatus, 0);
});

test('method, path, query, headers and body reach the environ as a front server would send them', async () => {
  const { tree, seen, body } = capture();
  await inject(tree, {
    method: 'POST',
    url: '/app/p%C3%A9r/x?k=%C3%A9&y',
    headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'abc', Host: 'h.example:8080', 'X_Sneaky': '1' },
    body: '{"a":1}',
    protocol: 'uwsgi',
    remoteAddress: '192.0.2.9',
  });
  const e = seen();
  assert.equal(e.REQUEST_METHOD, 'POST');
  assert.equal(e.SCRIPT_NAME, '');
  assert.equal(e.PATH_INFO, '/app/p\u00c3\u00a9r/x');
  assert.equal(e.QUERY_STRING, 'k=%C3%A9&y');
  assert.equal(e.REQUEST_URI, '/app/p%C3%A9r/x?k=%C3%A9&y');
  assert.equal(e.CONTENT_TYPE, 'application/json');
  assert.equal(e.CONTENT_LENGTH, '7');
  assert.equal(e.HTTP_X_REQUEST_ID, 'abc');
  assert.equal('HTTP_X_SNEAKY' in e, false);
  assert.equal(e.HTTP_HOST, 'h.example:8080');
  assert.equal(e.REMOTE_ADDR, '192.0.2.9');
  assert.equal(e['postern.protocol'], 'uwsgi');
  assert.equal(e['postern.role'], 'responder');
  assert.equal(body(), '{"a":1}');
});

test('defaults: GET, Host localhost, http, an empty body without CONTENT_LENGTH', async () => {
  const { tree, seen, body } = capture();
  await inject(tree, { url: '/x' });
  const e = seen();
  assert.equal(e.REQUEST_METHOD, 'GET');
  assert.equal(e.HTTP_HOST, 'localhost');
  assert.equal(e.SERVER_NAME, 'localhost');
  assert.equal(e['postern.url_scheme'], 'http');
  assert.equal(e['postern.protocol'], 'http');
  assert.equal('CONTENT_LENGTH' in e, false);
  assert.equal('CONTENT_TYPE' in e, false);
  assert.equal(body(), '');
});

test('an absolute URL sets Host and the scheme', async () => {
  const { tree, seen } = capture();
  await inject(tree, { url: 'https://api.example:8443/v1?q' });
  const e = seen();
  assert.equal(e.PATH_INFO, '/v1');
  assert.equal(e.QUERY_STRING, 'q');
  assert.equal(e.HTTP_HOST, 'api.example:8443');
  assert.equal(e['postern.url_scheme'], 'https');
  assert.equal(e.HTTPS, 'on');
});

test('params play a particular front end (last wins); scriptName/pathInfo set the split input', async () => {
  const { tree, seen } = capture();
  await inject(tree, { url: '/a', params: [['HTTPS', 'on'], ['REMOTE_USER', 'jane']] });
  assert.equal(seen()['postern.url_scheme'], 'https');
  assert.equal(seen().REMOTE_USER, 'jane');
  const t = new Tree().mount(native((e, start) => {
    start('200 OK', []);
    return `${e.SCRIPT_NAME}|${e.PATH_INFO}`;
  }), '/par');
  assert.equal((await inject(t, { url: '/ignored', scriptName: '/base', pathInfo: '/par/x' })).text, '/base/par|/x');
});

test('injectParams has the names and order of nginx fastcgi_params', () => {
  const names = injectParams({ url: '/a?b', body: 'x' }).filter((_, i) => i % 2 === 0);
  assert.deepEqual(names, [
    'QUERY_STRING', 'REQUEST_METHOD', 'CONTENT_TYPE', 'CONTENT_LENGTH', 'SCRIPT_NAME', 'REQUEST_URI', 'DOCUMENT_URI',
    'SERVER_PROTOCOL', 'REQUEST_SCHEME', 'GATEWAY_INTERFACE', 'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_ADDR', 'SERVER_PORT',
    'SERVER_NAME', 'HTTP_HOST',
  ]);
});

test('a header with CR/LF fails as it would on a socket: a 500', async () => {
  const tree = new Tree({ onError: () => undefined }).mount(native((_e, start) => {
    start('200 OK', [['Location', '/x\r\nSet-Cookie: evil=1']]);
    return '';
  }), '/');
  const r = await inject(tree, { url: '/' });
  assert.equal(r.status, 500);
  assert.equal(r.appStatus, 1);
  assert.equal(r.header('set-cookie'), undefined);
});

test('an aborted request: the app sees the signal, nothing is sent, appStatus 2', async () => {
  const ac = new AbortController();
  let sawAbort = false;
  const tree = new Tree().mount(native(async (e) => {
    await new Promise<void>((resolve) => e['postern.signal'].addEventListener('abort', () => resolve(), { once: true }));
    sawAbort = true;
    return null;
  }), '/');
  const pending = inject(tree, { url: '/', signal: ac.signal });
  setImmediate(() => ac.abort());
  const r = await pending;
  assert.equal(sawAbort, true);
  assert.equal(r.status, 0);
  assert.equal(r.appStatus, 2);
  assert.equal(r.body.length, 0);
});
