// The application tree: the mount-split table (segment boundary, longest prefix, trailing slashes,
// root mount, encoded slashes), prefixes, conflicts, roles, 404s, and handle() never rejecting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Tree, MOUNT_CONFLICT_ERROR } from '../../src/app/tree.ts';
import { MOUNT_PREFIX_ERROR } from '../../src/app/path.ts';
import { native } from '../../src/app/resolve.ts';
import { inject } from '../../src/app/inject.ts';
import { buildEnviron } from '../../src/environ.ts';
import type { Environ, NativeApp } from '../../src/app/types.ts';
import { ROLE } from '../../protocols/common/events.ts';
import { MemoryResponder } from '../helpers/memory-responder.ts';

function echo(id: string): NativeApp {
  return native((e, start) => {
    start('200 OK', [['Content-Type', 'application/json']]);
    return JSON.stringify([id, e.SCRIPT_NAME, e.PATH_INFO]);
  });
}

function environ(path: string, extra: Partial<Environ> = {}): Environ {
  return {
    REQUEST_METHOD: 'GET', SCRIPT_NAME: '', PATH_INFO: path, QUERY_STRING: '', SERVER_NAME: 'localhost', SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1', 'postern.protocol': 'fastcgi', 'postern.url_scheme': 'http', 'postern.role': 'responder',
    'postern.input': Readable.from([]), 'postern.signal': new AbortController().signal, ...extra,
  };
}

async function handle(tree: Tree, env: Environ): Promise<MemoryResponder> {
  const r = new MemoryResponder();
  await tree.handle(env, r);
  assert.ok(r.ended, 'handle() ended the response');
  return r;
}

const tree = new Tree()
  .mount(echo('root'), '/')
  .mount(echo('par'), '/par')
  .mount(echo('sub'), '/par/sub/')
  .mount(echo('app'), 'app/par')
  .mount(echo('cafe'), '/café');

// [path (byte string, as PATH_INFO leaves buildEnviron), app, SCRIPT_NAME, PATH_INFO]
const SPLITS: ReadonlyArray<readonly [string, string, string, string]> = [
  ['/par', 'par', '/par', ''],
  ['/par/', 'par', '/par', '/'],
  ['/par/x', 'par', '/par', '/x'],
  ['/par/x/y/', 'par', '/par', '/x/y/'],
  ['/parx', 'root', '', '/parx'],
  ['/par.x', 'root', '', '/par.x'],
  ['/PAR', 'root', '', '/PAR'],
  ['/par/sub', 'sub', '/par/sub', ''],
  ['/par/sub/y', 'sub', '/par/sub', '/y'],
  ['/par/subway', 'par', '/par', '/subway'],
  ['/app/par/m/n', 'app', '/app/par', '/m/n'],
  ['/app/parm', 'root', '', '/app/parm'],
  ['/app', 'root', '', '/app'],
  ['/', 'root', '', '/'],
  ['', 'root', '', ''],
  ['/caf\u00c3\u00a9/x', 'cafe', '/caf\u00c3\u00a9', '/x'],
  ['/caf\u00c3', 'root', '', '/caf\u00c3'],
];

for (const [path, app, scriptName, pathInfo] of SPLITS) {
  test(`mount split: ${JSON.stringify(path)} → ${app} ${JSON.stringify(scriptName)} + ${JSON.stringify(pathInfo)}`, async () => {
    const r = await handle(tree, environ(path));
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), [app, scriptName, pathInfo]);
    assert.equal(tree.match(path)?.scriptName, scriptName);
  });
}

test('encoded slashes and escaped letters split like the decoded path (REQUEST_URI through buildEnviron)', async () => {
  const cases: ReadonlyArray<readonly [string, string, string, string]> = [
    ['/par%2Fx', 'par', '/par', '/x'],
    ['/pa%72/x', 'par', '/par', '/x'],
    ['/par%2F', 'par', '/par', '/'],
    ['/caf%C3%A9', 'cafe', '/caf\u00c3\u00a9', ''],
    ['/par/../app/par/q', 'app', '/app/par', '/q'],
    ['//par//x', 'par', '/par', '/x'],
  ];
  for (const [uri, app, scriptName, pathInfo] of cases) {
    const e = buildEnviron({ id: 1, params: ['REQUEST_URI', uri], role: ROLE.RESPONDER, keepConn: false, contentLength: -1 }, {
      protocol: 'scgi', input: Readable.from([]), signal: new AbortController().signal,
    });
    const r = await handle(tree, e);
    assert.deepEqual(JSON.parse(r.text), [app, scriptName, pathInfo], uri);
  }
});

test('SCRIPT_NAME gains the prefix on top of what it held', async () => {
  const r = await handle(tree, environ('/par/x', { SCRIPT_NAME: '/base' }));
  assert.deepEqual(JSON.parse(r.text), ['par', '/base/par', '/x']);
});

test('mounts are listed longest first, with readable prefixes', () => {
  assert.deepEqual(tree.mounts.map((m) => m.prefix), ['/par/sub', '/app/par', '/café', '/par', '/']);
  assert.deepEqual(tree.mounts.map((m) => m.scriptName), ['/par/sub', '/app/par', '/caf\u00c3\u00a9', '/par', '']);
  assert.ok(tree.mounts.every((m) => m.role === 'responder'));
});

test('without a root mount, an unmatched path is a small text/plain 404 (no body for HEAD)', async () => {
  const t = new Tree().mount(echo('par'), '/par');
  const r = await handle(t, environ('/parx'));
  assert.equal(r.status, 404);
  assert.equal(r.header('content-type'), 'text/plain; charset=utf-8');
  assert.equal(r.text, 'Not Found\n');
  assert.equal(r.header('content-length'), '10');
  assert.equal(r.appStatus, 0);
  const h = await handle(t, environ('/nothing', { REQUEST_METHOD: 'HEAD' }));
  assert.equal(h.status, 404);
  assert.equal(h.body.length, 0);
  assert.equal(t.match('/parx'), undefined);
});

test('bad prefixes throw POSTERN_ERR_MOUNT_PREFIX', () => {
  for (const p of ['/a?b', '/a#b', '/a//b', '/a/./b', '/a/../b', '/..', '/a\u0000']) {
    assert.throws(() => new Tree().mount(echo('x'), p), (err: unknown) => (err as { code?: string }).code === MOUNT_PREFIX_ERROR, p);
  }
});

test('equivalent prefixes: "", "/", "//" are the root; "par", "/par/", "/par//" are /par', () => {
  for (const p of ['', '/', '//']) assert.equal(new Tree().mount(echo('x'), p).mounts[0]?.scriptName, '');
  for (const p of ['par', '/par/', '/par//']) assert.equal(new Tree().mount(echo('x'), p).mounts[0]?.scriptName, '/par');
});

test('mounting a prefix twice for one role throws POSTERN_ERR_MOUNT_CONFLICT; another role may share it', () => {
  const t = new Tree().mount(echo('a'), '/par');
  assert.throws(() => t.mount(echo('b'), '/par/'), (err: unknown) => (err as { code?: string }).code === MOUNT_CONFLICT_ERROR);
  t.mount(echo('c'), '/par', { role: 'authorizer' });
  assert.equal(t.mounts.length, 2);
});

test('mount resolves apps through toNativeApp: an explicit kind takes an unmarked function', async () => {
  const t = new Tree().mount((_e: Environ, start: (s: string, h: Array<[string, string]>) => unknown) => {
    start('200 OK', []);
    return 'plain native';
  }, '/', { kind: 'native' });
  const r = await handle(t, environ('/'));
  assert.equal(r.text, 'plain native');
});

test('roles: hasRole, and each request goes only to mounts of its own role', async () => {
  const t = new Tree().mount(echo('resp'), '/').mount(echo('auth'), '/secure', { role: 'authorizer' });
  assert.equal(t.hasRole('responder'), true);
  assert.equal(t.hasRole('authorizer'), true);
  assert.equal(t.hasRole('filter'), false);
  assert.deepEqual(JSON.parse((await handle(t, environ('/secure/x'))).text), ['resp', '', '/secure/x']);
  const auth = await handle(t, environ('/secure/x', { 'postern.role': 'authorizer' }));
  assert.deepEqual(JSON.parse(auth.text), ['auth', '/secure', '/x']);
  const outside = await handle(t, environ('/public', { 'postern.role': 'authorizer' }));
  assert.equal(outside.status, 404);
});

test('authorizer requests carry no SCRIPT_NAME/PATH_INFO (§6.3): routed by REQUEST_URI', async () => {
  const t = new Tree().mount(echo('auth'), '/secure', { role: 'authorizer' }).mount(echo('catch'), '/', { role: 'authorizer' });
  // What Apache mod_authnz_fcgi sends: the CGI variables without SCRIPT_NAME, PATH_INFO, CONTENT_LENGTH.
  const params = ['REQUEST_METHOD', 'GET', 'REQUEST_URI', '/secure/doc?x=1', 'QUERY_STRING', 'x=1', 'HTTP_HOST', 'example.com'];
  const e = buildEnviron({ id: 1, params, role: ROLE.AUTHORIZER, keepConn: false, contentLength: -1 }, {
    protocol: 'fastcgi', input: Readable.from([]), signal: new AbortController().signal,
  });
  assert.deepEqual(JSON.parse((await handle(t, e)).text), ['auth', '/secure', '/doc']);
  // An environ made elsewhere with an empty PATH_INFO still routes by REQUEST_URI.
  const bare = environ('', { 'postern.role': 'authorizer', REQUEST_URI: '/secure/z' });
  assert.deepEqual(JSON.parse((await handle(t, bare)).text), ['auth', '/secure', '/z']);
  const other = environ('', { 'postern.role': 'authorizer', REQUEST_URI: '/elsewhere' });
  assert.deepEqual(JSON.parse((await handle(t, other)).text), ['catch', '', '/elsewhere']);
});

test('a filter app reads postern.data', async () => {
  const t = new Tree().mount(native(async (e, start) => {
    const data = e['postern.data'];
    assert.ok(data !== undefined);
    let text = '';
    for await (const chunk of data) text += String(chunk);
    start('200 OK', [['Content-Type', 'text/plain']]);
    return text.toUpperCase();
  }), '/', { role: 'filter' });
  const r = await inject(t, { url: '/doc.txt', role: 'filter', data: 'file body' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'FILE BODY');
});

test('handle() never rejects: a broken responder and a broken environ still end the response', async () => {
  const errors: unknown[] = [];
  const t = new Tree({ onError: (err) => errors.push(err) }).mount(echo('x'), '/');
  const r = new MemoryResponder();
  // PATH_INFO missing entirely: the tree must not throw out of handle().
  const broken = environ('/');
  Reflect.deleteProperty(broken, 'PATH_INFO');
  await t.handle(broken, r);
  assert.ok(r.ended);
  assert.equal(r.status, 500);
  assert.equal(r.appStatus, 1);
  assert.equal(errors.length, 1);
});
