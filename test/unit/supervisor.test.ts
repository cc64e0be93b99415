// The supervisor's option handling, IPC vocabulary and listener binding, from the master's side,
// without worker processes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAddress } from '../../src/server/address.ts';
import { bindListener } from '../../src/supervisor/listeners.ts';
import { isMasterMessage, isWorkerMessage, TAG } from '../../src/supervisor/messages.ts';
import { isWorkerProcess, resolvePolicy, resolveWorkerCount, runSupervised, runWorker, SUPERVISOR_DEFAULTS } from '../../src/supervisor/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-supu-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('policy defaults follow the team brief; a whole config object may be passed', () => {
  const whole = { requestTimeoutMs: 3000, maxRequestsPerWorker: 10, unrelated: 'x' };
  const p = resolvePolicy(whole);
  assert.equal(p.requestTimeoutMs, 3000);
  assert.equal(p.killGraceMs, 5000);
  assert.equal(p.shutdownTimeoutMs, 30_000);
  assert.equal(p.maxRequestsPerWorker, 10);
  assert.equal(p.maxRequestsJitter, 0);
  assert.equal(p.maxWorkerRssMiB, 0);
  assert.equal(p.maxWorkerLifetimeMs, 0);
  assert.ok(Object.isFrozen(p));
  assert.equal(SUPERVISOR_DEFAULTS.crashLoopDeaths, 5);
});

test('bad policy values are refused with POSTERN_ERR_BAD_OPTION', () => {
  for (const bad of [{ killGraceMs: -1 }, { maxRequestsPerWorker: 1.5 }, { heartbeatIntervalMs: 0 }, { crashLoopWindowMs: Number.NaN }]) {
    assert.throws(() => resolvePolicy(bad), (err: { code?: string }) => err.code === 'POSTERN_ERR_BAD_OPTION', JSON.stringify(bad));
  }
});

test('workers: an integer >= 1, or auto (one per CPU)', () => {
  assert.equal(resolveWorkerCount(3), 3);
  assert.ok(resolveWorkerCount('auto') >= 1);
  assert.throws(() => resolveWorkerCount(0), (err: { code?: string }) => err.code === 'POSTERN_ERR_BAD_OPTION');
});

test('IPC guards accept tagged messages only', () => {
  assert.equal(isWorkerMessage({ postern: TAG, type: 'ready' }), true);
  assert.equal(isWorkerMessage({ postern: TAG, type: 'heartbeat', requests: 1, inflight: 0, oldest: [], rssBytes: 1 }), true);
  assert.equal(isWorkerMessage({ postern: TAG, type: 'heartbeat', requests: '1' }), false);
  assert.equal(isWorkerMessage({ type: 'ready' }), false, 'an app\'s own process.send traffic');
  assert.equal(isWorkerMessage({ postern: TAG, type: 'nope' }), false);
  assert.equal(isMasterMessage({ postern: TAG, type: 'stop', graceful: true, timeoutMs: 1 }), true);
  assert.equal(isMasterMessage(null), false);
  // Hand-over: only the keep-alive protocols, with the bytes read and not parsed.
  assert.equal(isWorkerMessage({ postern: TAG, type: 'handoff', protocol: 'fastcgi', buffered: Buffer.alloc(0) }), true);
  assert.equal(isWorkerMessage({ postern: TAG, type: 'handoff', protocol: 'scgi', buffered: Buffer.alloc(0) }), false);
  assert.equal(isWorkerMessage({ postern: TAG, type: 'handoff', protocol: 'http' }), false);
  assert.equal(isMasterMessage({ postern: TAG, type: 'adopt', protocol: 'http', buffered: new Uint8Array(2) }), true);
  assert.equal(isMasterMessage({ postern: TAG, type: 'adopt', protocol: 'uwsgi', buffered: new Uint8Array(0) }), false);
  assert.equal(isMasterMessage({ postern: TAG, type: 'stop', graceful: true, timeoutMs: 1, handoff: true }), true);
});

test('runWorker outside a supervised worker fails with POSTERN_ERR_NOT_A_WORKER', async () => {
  assert.equal(isWorkerProcess({}), false);
  await assert.rejects(runWorker(() => Promise.resolve({ close: () => Promise.resolve(), closeNow() {} })), (err: { code?: string }) => err.code === 'POSTERN_ERR_NOT_A_WORKER');
});

test('bindListener: TCP :0 reports the real port, and the master does not accept on it', async () => {
  const l = await bindListener(parseAddress('127.0.0.1:0'), undefined);
  try {
    assert.match(l.bound, /^127\.0\.0\.1:[1-9][0-9]*$/);
    assert.ok(l.fd > 2);
    // Bound, not listening until a worker listens: a connect is refused, never half-accepted.
    const port = Number(l.bound.split(':')[1]);
    const code = await new Promise<string>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve('connected'); });
      c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''));
    });
    assert.equal(code, 'ECONNREFUSED');
  } finally {
    l.close();
  }
});

test('bindListener: a unix socket gets socketMode, a stale file is replaced, a live one and a non-socket are not', async () => {
  const path = join(dir, 'm.sock');
  const l = await bindListener(parseAddress(`unix:${path}`), 0o600);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  l.close();
  assert.equal(existsSync(path), false, 'closing unlinks the socket file');

  // A stale file: its server was killed without unlinking it.
  const dead = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await new Promise((resolve) => dead.once('exit', resolve));
  assert.equal(existsSync(path), true);
  const again = await bindListener(parseAddress(`unix:${path}`), undefined);
  again.close();

  // A live server's socket: refused with POSTERN_ERR_SOCKET_IN_USE.
  const live: Server = await new Promise((resolve) => { const s = createServer().listen(path, () => resolve(s)); });
  await assert.rejects(bindListener(parseAddress(`unix:${path}`), undefined), (err: { code?: string }) => err.code === 'POSTERN_ERR_SOCKET_IN_USE');
  live.close();

  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  await assert.rejects(bindListener(parseAddress(`unix:${file}`), undefined), (err: { code?: string }) => err.code === 'POSTERN_ERR_NOT_A_SOCKET');
});

test('bindListener: fd:N must be an open socket', async () => {
  await assert.rejects(bindListener(parseAddress('fd:987'), undefined), (err: { code?: string; syscallCode?: string }) => err.code === 'POSTERN_ERR_LISTEN_FAILED' && err.syscallCode === 'EBADF');
});

test('runSupervised: an address in use fails before any worker starts (POSTERN_ERR_LISTEN_FAILED)', async () => {
  const busy: Server = await new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => resolve(s)); });
  const port = (busy.address() as { port: number }).port;
  try {
    await assert.rejects(
      runSupervised({ workers: 1, listeners: [{ protocol: 'http', address: `127.0.0.1:${port}` }], workerConfig: null, signals: false, workerEntry: { exec: '/nonexistent' } }),
      (err: { code?: string; syscallCode?: string }) => err.code === 'POSTERN_ERR_LISTEN_FAILED' && err.syscallCode === 'EADDRINUSE',
    );
  } finally {
    busy.close();
  }
});

test('runSupervised: bad options fail at once', async () => {
  await assert.rejects(
    runSupervised({ workers: 0, listeners: [], workerConfig: null, signals: false }),
    (err: { code?: string }) => err.code === 'POSTERN_ERR_BAD_OPTION',
  );
  await assert.rejects(
    runSupervised({ workers: 1, listeners: [{ protocol: 'http', address: 'nope' }], workerConfig: null, signals: false }),
    (err: { code?: string }) => err.code === 'POSTERN_ERR_BAD_ADDRESS',
  );
});
