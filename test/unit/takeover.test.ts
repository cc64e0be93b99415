// The listen() capture from the loading side: the argument forms it reads, what a taken-over
// server answers (address, listening, close, shutdown), http.Server.prototype.listen put back when
// nothing was taken over, and what a listen() after the load does (taken over only for the servers
// taken over and those sharing their handler).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Server, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListenCapture, listenRequest } from '../../src/app/takeover.ts';
import { buildTree } from '../../src/config/mounts.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { inject } from '../../src/app/inject.ts';

test('listen() argument forms', () => {
  const cases: Array<[unknown[], unknown]> = [
    [[], { port: 0, host: undefined }],
    [[3000], { port: 3000, host: undefined }],
    [['3000'], { port: 3000, host: undefined }],
    [[3000, '127.0.0.1'], { port: 3000, host: '127.0.0.1' }],
    [[3000, '::1', 511], { port: 3000, host: '::1' }],
    [[{ port: 8080, host: 'localhost' }], { port: 8080, host: 'localhost' }],
    [['/run/app.sock'], { path: '/run/app.sock' }],
    [[{ path: '/run/app.sock' }], { path: '/run/app.sock' }],
    [[{ fd: 3 }], { port: 0, host: undefined }],
  ];
  for (const [args, expect] of cases) assert.deepEqual(listenRequest(args), expect, JSON.stringify(args));
});

// First of the tests that capture: `http.Server.prototype.listen` is process-wide state.
test('a capture that takes nothing puts http.Server.prototype.listen back exactly as it was', () => {
  const own = Object.getOwnPropertyDescriptor(Server.prototype, 'listen');
  const capture = ListenCapture.start();
  assert.notEqual(Object.getOwnPropertyDescriptor(Server.prototype, 'listen'), own);
  capture.stop();
  assert.deepEqual(Object.getOwnPropertyDescriptor(Server.prototype, 'listen'), own);
});

test('a captured server binds nothing, answers address()/listening, and close() calls back without error', async () => {
  const capture = ListenCapture.start();
  const server = createServer();
  const order: string[] = [];
  let returned: unknown;
  try {
    returned = server.listen(4321, 'localhost', () => { order.push('callback'); });
    order.push('returned');
  } finally {
    capture.stop();
  }
  assert.equal(returned, server);
  const taken = await capture.waitFor(1, 1000);
  assert.equal(taken?.server, server);
  assert.deepEqual(order, ['returned', 'callback']);
  assert.equal(server.listening, true);
  assert.deepEqual(server.address(), { address: '127.0.0.1', family: 'IPv4', port: 4321 });
  const closed = await new Promise<unknown>((resolve) => { server.close(resolve); });
  assert.equal(closed, undefined);
  assert.equal(taken?.closed, true);
  assert.equal(server.listening, false);
  assert.equal(server.address(), null);
  const again = await new Promise<unknown>((resolve) => { server.close(resolve); });
  assert.equal((again as { code?: string }).code, 'ERR_SERVER_NOT_RUNNING');
});

test('only one capture at a time', () => {
  const capture = ListenCapture.start();
  try {
    assert.throws(() => ListenCapture.start(), /already running/);
  } finally {
    capture.stop();
  }
});

test('buildTree takes over a script with no export, and a recognised export wins over its listen()', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-takeover-'));
  try {
    writeFileSync(join(dir, 'script.mjs'), "import { createServer } from 'node:http';\ncreateServer((req, res) => { res.end('taken ' + req.url); }).listen(0);\n");
    writeFileSync(join(dir, 'both.mjs'), "import { createServer } from 'node:http';\nconst h = (_req, res) => { res.end('exported'); };\ncreateServer(h).listen(0);\nexport default { fetch: () => new Response('exported') };\n");
    const config = resolveConfig({ flags: { mount: ['/s=./script.mjs', '/b=./both.mjs'] }, cwd: dir });
    const warnings: string[] = [];
    const tree = await buildTree(config.mount, { onWarning: (m) => { warnings.push(m); } });
    assert.equal((await inject(tree, { url: '/s/x?y' })).text, 'taken /x?y');
    assert.equal((await inject(tree, { url: '/b/' })).text, 'exported');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /both\.mjs exports "default", which is mounted; the http\.Server it called listen\(\) on gets no requests/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function listening(server: Server, ...args: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => Server)(...args, () => { resolve(); });
  });
}

test('after the load: a server sharing a taken-over handler binds nothing; any other server binds as usual', async () => {
  const handler: RequestListener = (_req, res) => { res.end('app'); };
  const capture = ListenCapture.start();
  const main = createServer(handler);
  main.listen(4322, 'localhost');
  capture.stop();
  const taken = await capture.waitFor(1, 1000);
  assert.ok(taken !== undefined);
  const late: unknown[] = [];
  taken.onLateListen((r) => { late.push(r); });

  // Fastify's second binding of `localhost`: a new server around the same handler, after the load.
  const secondary = createServer(handler);
  await listening(secondary, { port: 4322, host: '::1' });
  assert.deepEqual(secondary.address(), { address: '::1', family: 'IPv6', port: 4322 });
  assert.equal(secondary.listening, true);
  assert.deepEqual(late, [{ port: 4322, host: '::1' }]);

  // Anything else is not postern's business: it binds a real port.
  const other = createServer((_req, res) => { res.end('other'); });
  await listening(other, 0, '127.0.0.1');
  const port = (other.address() as AddressInfo).port;
  assert.ok(port > 0);
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'other');
  await new Promise((resolve) => { other.close(resolve); });

  // listen() again on the taken-over server: refused as Node refuses it, until the app closes it.
  assert.throws(() => main.listen(4322), { code: 'ERR_SERVER_ALREADY_LISTEN' });
  await new Promise((resolve) => { main.close(resolve); });
  assert.equal(taken.closed, true);
  await listening(main, 4322);
  assert.equal(taken.closed, false);
  assert.equal(main.listening, true);
});

test('shutdown() emits close on the server and the servers sharing its handler, once; close(cb) callbacks run', async () => {
  const handler: RequestListener = (_req, res) => { res.end('app'); };
  const capture = ListenCapture.start();
  const main = createServer(handler);
  main.listen(4323);
  capture.stop();
  const taken = await capture.waitFor(1, 1000);
  assert.ok(taken !== undefined);
  const secondary = createServer(handler);
  await listening(secondary, 4323, '::1');
  const heard: string[] = [];
  let appClosed = false;
  taken.onClose(() => { appClosed = true; });
  main.on('close', () => { heard.push('main'); });
  secondary.on('close', () => { heard.push('secondary'); });
  await taken.shutdown();
  assert.deepEqual(heard, ['main', 'secondary']);
  assert.equal(main.listening, false);
  assert.equal(secondary.listening, false);
  assert.equal(appClosed, false, 'onClose hears of the app closing its server, not of postern stopping');
  await taken.shutdown();
  assert.deepEqual(heard, ['main', 'secondary'], 'once');

  // A 'close' listener that throws rejects the shutdown (the caller logs it, naming the mount).
  const capture2 = ListenCapture.start();
  const failing = createServer(handler);
  failing.listen(4324);
  capture2.stop();
  const taken2 = await capture2.waitFor(1, 1000);
  failing.on('close', () => { throw new Error('pool already gone'); });
  await assert.rejects(taken2?.shutdown() ?? Promise.resolve(), /pool already gone/);
});
