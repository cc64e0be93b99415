// `postern health`, from a container runtime's side: which listener a configuration probes, the
// probe in each protocol against a real server, and the failures it must tell apart (nothing
// listening, another protocol on the port, a path that is not 2xx, a peer that never answers).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type PosternServer } from '../../src/server/server.ts';
import { exampleTree } from '../../src/examples/tree.ts';
import { dialOptions, HEALTH_ERRORS, healthTarget, probeHealth, responseHead, type HealthTarget } from '../../src/health.ts';
import { main } from '../../src/cli.ts';
import type { Protocol } from '../../src/app/types.ts';

let server: PosternServer | undefined;
let silent: Server | undefined;
const held: Socket[] = [];
let dir = '';
const addr = new Map<string, string>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-health-'));
  server = await startServer({
    tree: exampleTree({ onError: () => undefined }),
    listeners: [
      { protocol: 'fastcgi', address: '127.0.0.1:0' },
      { protocol: 'scgi', address: '127.0.0.1:0' },
      { protocol: 'uwsgi', address: '127.0.0.1:0' },
      { protocol: 'http', address: '127.0.0.1:0' },
      { protocol: 'fastcgi', address: `unix:${join(dir, 'f.sock')}` },
    ],
    env: {},
  });
  for (const l of server.listeners) addr.set(l.path === undefined ? l.protocol : `${l.protocol}-unix`, l.address);
  // Accepts and never answers.
  silent = createServer((s) => { held.push(s); });
  await new Promise<void>((resolve) => silent?.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  for (const s of held) s.destroy();
  silent?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const at = (key: string): string => {
  const a = addr.get(key);
  assert.ok(a !== undefined, key);
  return a;
};

test('the probed listener: the ping path where it is served, else FastCGI first; wildcards on loopback', () => {
  const listeners = [
    { protocol: 'http' as Protocol, address: ':8080' },
    { protocol: 'fastcgi' as Protocol, address: 'fd:3' },
    { protocol: 'fastcgi' as Protocol, address: '[::]:9000' },
  ];
  assert.deepEqual(healthTarget({ listeners }), { protocol: 'fastcgi', address: '[::]:9000' });
  assert.deepEqual(healthTarget({ listeners, pingPath: '/ping' }), { protocol: 'http', address: ':8080', path: '/ping' });
  assert.deepEqual(healthTarget({ listeners, pingPath: '/ping', statusListen: ':9001' }), { protocol: 'http', address: ':9001', path: '/ping' });
  assert.deepEqual(healthTarget({ listeners: [{ protocol: 'uwsgi', address: 'unix:/run/u.sock' }], pingPath: '/ping' }), { protocol: 'uwsgi', address: 'unix:/run/u.sock', path: '/ping' });
  assert.equal(healthTarget({ listeners: [{ protocol: 'fastcgi', address: 'fd:3' }, { protocol: 'http', address: '127.0.0.1:0' }] }), undefined);
  assert.deepEqual(dialOptions(':9000'), { host: '127.0.0.1', port: 9000 });
  assert.deepEqual(dialOptions('0.0.0.0:9000'), { host: '127.0.0.1', port: 9000 });
  assert.deepEqual(dialOptions('[::]:9000'), { host: '::1', port: 9000 });
  assert.deepEqual(dialOptions('unix:/x.sock'), { path: '/x.sock' });
});

test('response heads: a CGI Status header, a status line, or neither', () => {
  assert.deepEqual(responseHead(Buffer.from('Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nx')), { status: 404, form: 'cgi' });
  assert.deepEqual(responseHead(Buffer.from('Content-Type: text/plain\n\nx')), { status: 200, form: 'cgi' });
  assert.deepEqual(responseHead(Buffer.from('HTTP/1.1 503 Busy\r\n\r\n')), { status: 503, form: 'http' });
  assert.equal(responseHead(Buffer.from('garbage without a head')), undefined);
  assert.equal(responseHead(Buffer.from('not a header line\r\n\r\n')), undefined);
});

test('each protocol\'s probe succeeds against postern, with and without a path', async () => {
  const cases: Array<[HealthTarget, string]> = [
    [{ protocol: 'fastcgi', address: at('fastcgi') }, 'GET_VALUES'],
    [{ protocol: 'fastcgi', address: at('fastcgi-unix') }, 'GET_VALUES'],
    [{ protocol: 'uwsgi', address: at('uwsgi') }, 'PING'],
    [{ protocol: 'scgi', address: at('scgi') }, 'GET /'],
    [{ protocol: 'http', address: at('http') }, 'GET /'],
    [{ protocol: 'fastcgi', address: at('fastcgi'), path: '/par/x' }, 'GET /par/x'],
    [{ protocol: 'uwsgi', address: at('uwsgi'), path: '/par/x' }, 'GET /par/x'],
    [{ protocol: 'scgi', address: at('scgi'), path: '/par/x' }, 'GET /par/x'],
    [{ protocol: 'http', address: at('http'), path: '/par/x' }, 'GET /par/x'],
  ];
  for (const [target, probe] of cases) {
    const r = await probeHealth(target, { timeoutMs: 2000 });
    assert.equal(r.ok, true, `${target.protocol} ${target.address}: ${r.detail}`);
    assert.equal(r.probe, probe);
    if (target.path !== undefined) assert.equal(r.status, 200);
  }
  const values = await probeHealth({ protocol: 'fastcgi', address: at('fastcgi') });
  assert.match(values.detail, /FCGI_MAX_CONNS=\d+/);
});

test('failures are told apart by code', async () => {
  const expect = async (target: HealthTarget, code: string, timeoutMs = 2000): Promise<void> => {
    const r = await probeHealth(target, { timeoutMs });
    assert.equal(r.ok, false, JSON.stringify(r));
    assert.equal(r.code, code, `${target.protocol} → ${target.address}: ${r.detail}`);
  };
  // A path that answers, but not 2xx.
  await expect({ protocol: 'fastcgi', address: at('fastcgi'), path: '/nope/nope' }, HEALTH_ERRORS.STATUS);
  await expect({ protocol: 'http', address: at('http'), path: '/nope/nope' }, HEALTH_ERRORS.STATUS);
  // Another protocol's listener on the port.
  await expect({ protocol: 'fastcgi', address: at('http') }, HEALTH_ERRORS.BAD_REPLY);
  await expect({ protocol: 'http', address: at('fastcgi') }, HEALTH_ERRORS.BAD_REPLY);
  await expect({ protocol: 'scgi', address: at('http') }, HEALTH_ERRORS.BAD_REPLY);
  await expect({ protocol: 'uwsgi', address: at('scgi'), path: '/' }, HEALTH_ERRORS.BAD_REPLY);
  // Nothing listening; a socket file that does not exist; fd and port 0 cannot be dialled.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await expect({ protocol: 'fastcgi', address: `127.0.0.1:${port}` }, HEALTH_ERRORS.CONNECT);
  await expect({ protocol: 'fastcgi', address: `unix:${join(dir, 'none.sock')}` }, HEALTH_ERRORS.CONNECT);
  await expect({ protocol: 'fastcgi', address: 'fd:3' }, HEALTH_ERRORS.NO_TARGET);
  // A peer that accepts and never answers: bounded by the timeout, for every protocol.
  const silentAddr = `127.0.0.1:${(silent?.address() as { port: number }).port}`;
  for (const protocol of ['fastcgi', 'scgi', 'uwsgi', 'http'] as const) {
    const t0 = Date.now();
    await expect({ protocol, address: silentAddr }, HEALTH_ERRORS.TIMEOUT, 150);
    assert.ok(Date.now() - t0 < 1500);
  }
});

async function cli(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await main(['node', 'postern', ...args], {
    stdout: (t) => { out += t; }, stderr: (t) => { err += t; }, env: {}, cwd: dir, isTTY: false,
  });
  return { status, out, err };
}

test('`postern health` probes what the same flags would serve, and exits 0, 1 or 2', async () => {
  const ok = await cli(['--fastcgi', at('fastcgi'), 'health']);
  assert.equal(ok.status, 0, ok.err);
  assert.match(ok.out, /^ok: fastcgi 127\.0\.0\.1:\d+ GET_VALUES in \d+ ms/);
  const path = await cli(['--http', at('http'), '--ping-path', '/par/x', 'health']);
  assert.equal(path.status, 0, path.err);
  assert.match(path.out, /GET \/par\/x 200/);
  const notOk = await cli(['--http', at('http'), 'health', '--path', '/nope/nope']);
  assert.equal(notOk.status, 1);
  assert.match(notOk.err, new RegExp(`\\[${HEALTH_ERRORS.STATUS}\\]`));
  const none = await cli(['--fastcgi', 'fd:3', 'health']);
  assert.equal(none.status, 1);
  assert.match(none.err, new RegExp(`\\[${HEALTH_ERRORS.NO_TARGET}\\]`));
  const usage = await cli(['--fastcgi', at('fastcgi'), 'health', '--timeout-ms', 'soon']);
  assert.equal(usage.status, 2);
  const config = await cli(['--fastcgi', 'nonsense', 'health']);
  assert.equal(config.status, 2);
});
