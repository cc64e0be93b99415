// The listen() capture from the loading side: the argument forms it reads, what a taken-over
// server answers (address, listening, close), and http.Server.prototype.listen put back afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:http';
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

test('a captured server binds nothing, answers address()/listening, and close() calls back without error', async () => {
  const own = Object.getOwnPropertyDescriptor(Server.prototype, 'listen');
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
  assert.equal(Object.getOwnPropertyDescriptor(Server.prototype, 'listen'), own, 'listen is put back as it was');
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
    writeFileSync(join(dir, 'both.mjs'), "import { createServer } from 'node:http';\nconst h = (req, res) => { res.end('exported'); };\ncreateServer(h).listen(0);\nexport default { fetch: () => new Response('exported') };\n");
    const config = resolveConfig({ flags: { mount: ['/s=./script.mjs', '/b=./both.mjs'] }, cwd: dir });
    const warnings: string[] = [];
    const tree = await buildTree(config.mount, { onWarning: (m) => { warnings.push(m); } });
    assert.equal((await inject(tree, { url: '/s/x?y' })).text, 'taken /x?y');
    assert.equal((await inject(tree, { url: '/b/' })).text, 'exported');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /both\.mjs exports "default", which is mounted; the http\.Server it called listen\(\) on gets no requests/);
    assert.equal(Object.getOwnPropertyDescriptor(Server.prototype, 'listen'), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
