// Started by a front server, driven without one: the start decision, the kernel tables that tell a
// listening fd 0 from a connected one (fixtures in /proc's own format), the limits that end a
// spawned process, the CGI params taken from the environment, and one CGI request end to end
// through the example tree with in-memory stdin/stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { decideStart, socketState, type Fd0 } from '../../src/spawn/detect.ts';
import { spawnedExitDue, type SpawnedLimits } from '../../src/spawn/lifecycle.ts';
import { cgiParams, serveCgi, CGI_ERRORS } from '../../src/spawn/cgi.ts';
import { servingFd0, startModeFor } from '../../src/spawn/start.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { exampleTree } from '../../src/examples/tree.ts';
import { Tree } from '../../src/app/tree.ts';
import { native } from '../../src/app/resolve.ts';
import type { Environ, NativeApp } from '../../src/app/types.ts';
import type { EventLog } from '../../src/log/types.ts';

/** A recording event log: each line's level, message and meta. */
function memoryLog(): { log: EventLog; lines: () => Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const at = (level: string) => (message: string, meta?: Record<string, unknown>): void => { lines.push({ level, message, ...meta }); };
  return { log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), debugEnabled: false }, lines: () => lines };
}

const listening: Fd0 = { socket: true, listening: true, family: 'unix' };
const connected: Fd0 = { socket: true, listening: false, family: 'unix' };
const unknownSocket: Fd0 = { socket: true, listening: undefined, family: undefined };
const notSocket: Fd0 = { socket: false, listening: false, family: undefined };

test('start decision: a configured listener or systemd sockets leave fd 0 alone; else a listening fd 0, else CGI', () => {
  const base = { listenerConfigured: false, socketActivated: false, cgiVariables: false };
  const cases: Array<[Partial<typeof base> & { fd0: Fd0 }, string]> = [
    [{ fd0: listening }, 'fd0'],
    [{ fd0: listening, cgiVariables: true }, 'fd0'],
    [{ fd0: listening, listenerConfigured: true }, 'listeners'],
    [{ fd0: listening, socketActivated: true }, 'listeners'],
    [{ fd0: connected, cgiVariables: true }, 'cgi'],
    [{ fd0: notSocket, cgiVariables: true }, 'cgi'],
    [{ fd0: connected }, 'listeners'],
    [{ fd0: notSocket }, 'listeners'],
    [{ fd0: notSocket, cgiVariables: true, listenerConfigured: true }, 'listeners'],
    // No /proc: a socket without the CGI variables is taken as listening (as Go's fcgi.Serve(nil)).
    [{ fd0: unknownSocket }, 'fd0'],
    [{ fd0: unknownSocket, cgiVariables: true }, 'cgi'],
  ];
  for (const [facts, kind] of cases) assert.equal(decideStart({ ...base, ...facts }).kind, kind, JSON.stringify(facts));
});

test('startModeFor: any listener source but the default counts as configured, and LISTEN_PID must be this process', () => {
  const none = resolveConfig({});
  assert.equal(startModeFor(none, {}, listening).kind, 'fd0');
  assert.equal(startModeFor(resolveConfig({ flags: { http: ['127.0.0.1:0'] } }), {}, listening).kind, 'listeners');
  assert.equal(startModeFor(resolveConfig({ env: { POSTERN_SCGI: 'unix:/tmp/x.sock' } }), {}, listening).kind, 'listeners');
  // statusListen is not an app listener: fd 0 still wins.
  assert.equal(startModeFor(resolveConfig({ flags: { statusListen: '127.0.0.1:0' } }), {}, listening).kind, 'fd0');
  assert.equal(startModeFor(none, { LISTEN_FDS: '1', LISTEN_PID: String(process.pid) }, listening).kind, 'listeners');
  assert.equal(startModeFor(none, { LISTEN_FDS: '1', LISTEN_PID: '1' }, listening).kind, 'fd0');
  assert.equal(startModeFor(none, { GATEWAY_INTERFACE: 'CGI/1.1' }, connected).kind, 'cgi');
});

test('servingFd0: one FastCGI listener on fd 0; an access log on stdout is turned off with a warning', () => {
  const c = servingFd0(resolveConfig({ flags: { accessLog: '-' } }));
  assert.deepEqual(c.listeners, [{ protocol: 'fastcgi', address: 'fd:0' }]);
  assert.equal(c.accessLog, undefined);
  assert.ok(c.warnings.some((w) => w.includes('accessLog')));
  assert.equal(servingFd0(resolveConfig({ flags: { accessLog: '/tmp/a.log' } })).accessLog, '/tmp/a.log');
});

test('socketState reads listening from /proc/net/unix flags and /proc/net/tcp{,6} state', () => {
  const root = mkdtempSync(join(tmpdir(), 'postern-proc-'));
  try {
    mkdirSync(join(root, 'net'));
    // Lines as Linux 6.x prints them (trimmed): a listening and a connected unix socket.
    writeFileSync(join(root, 'net', 'unix'), [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000000000000: 00000002 00000000 00010000 0001 01 1001 /run/fcgid/1.sock',
      '0000000000000000: 00000003 00000000 00000000 0001 03 1002',
      '',
    ].join('\n'));
    writeFileSync(join(root, 'net', 'tcp'), [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0 100 0 0 10 0',
      '   1: 0100007F:2328 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0 20 4 30 10 -1',
      '',
    ].join('\n'));
    writeFileSync(join(root, 'net', 'tcp6'), '  sl  local_address remote_address st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n');
    assert.deepEqual(socketState('1001', root), { socket: true, listening: true, family: 'unix' });
    assert.deepEqual(socketState('1002', root), { socket: true, listening: false, family: 'unix' });
    assert.deepEqual(socketState('2001', root), { socket: true, listening: true, family: 'tcp' });
    assert.deepEqual(socketState('2002', root), { socket: true, listening: false, family: 'tcp' });
    // A socket in none of them (UDP, netlink) is not a listener; with no tables at all, unknown.
    assert.deepEqual(socketState('9999', root), { socket: true, listening: false, family: undefined });
    assert.deepEqual(socketState('1001', join(root, 'absent')), { socket: true, listening: undefined, family: undefined });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

const noLimits: SpawnedLimits = { idleTimeoutMs: 0, requestLimit: 0, maxRequestsPerWorker: 0, maxRequestsJitter: 0, maxWorkerRssMiB: 0, maxWorkerLifetimeMs: 0 };
const state = { nowMs: 100_000, startedAtMs: 0, lastActivityMs: 0, requests: 5, connections: 0, rssBytes: 0 };

test('spawned exit: idle only with no connection open, after idleTimeoutMs since the last activity', () => {
  assert.equal(spawnedExitDue(state, noLimits), null);
  const l = { ...noLimits, idleTimeoutMs: 60_000 };
  assert.equal(spawnedExitDue({ ...state, lastActivityMs: 50_000 }, l), null);
  assert.deepEqual(spawnedExitDue({ ...state, lastActivityMs: 40_000 }, l), { reason: 'idle', idleMs: 60_000, limitMs: 60_000 });
  assert.equal(spawnedExitDue({ ...state, lastActivityMs: 0, connections: 1 }, l), null);
});

test('spawned exit: the recycling limits end the process (requests, lifetime)', () => {
  assert.deepEqual(spawnedExitDue({ ...state, requests: 10 }, { ...noLimits, maxRequestsPerWorker: 10, requestLimit: 10 }), { reason: 'requests', requests: 10, limit: 10 });
  assert.equal(spawnedExitDue({ ...state, requests: 9 }, { ...noLimits, maxRequestsPerWorker: 10, requestLimit: 10 }), null);
  assert.equal(spawnedExitDue(state, { ...noLimits, maxWorkerLifetimeMs: 100_000 })?.reason, 'lifetime');
});

test('cgiParams: raw environ bytes as latin1, POSTERN_* left out; process.env fallback re-encodes UTF-8', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-environ-'));
  try {
    const file = join(dir, 'environ');
    // PATH_INFO with a byte that is not UTF-8 (0xE9, latin1 é): kept as that byte.
    writeFileSync(file, Buffer.concat([Buffer.from('REQUEST_METHOD=GET\0PATH_INFO=/caf'), Buffer.from([0xe9]), Buffer.from('\0POSTERN_DEBUG=1\0EMPTY=\0A=b=c\0')]));
    assert.deepEqual(cgiParams({}, file), ['REQUEST_METHOD', 'GET', 'PATH_INFO', '/caf\u00e9', 'EMPTY', '', 'A', 'b=c']);
    assert.deepEqual(cgiParams({ PATH_INFO: '/café', POSTERN_WORKERS: '2' }, join(dir, 'absent')), ['PATH_INFO', '/caf\u00c3\u00a9']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Captured { readonly out: Writable; readonly text: () => string; readonly bytes: () => Buffer }

function capture(): Captured {
  const chunks: Buffer[] = [];
  const out = new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(Buffer.from(chunk)); cb(); } });
  return { out, text: () => Buffer.concat(chunks).toString('latin1'), bytes: () => Buffer.concat(chunks) };
}

function env(extra: Record<string, string>): string[] {
  const all: Record<string, string> = { GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'GET', SERVER_NAME: 'localhost', SERVER_PORT: '80', REMOTE_ADDR: '127.0.0.1', ...extra };
  return Object.entries(all).flat();
}

test('CGI: the example tree answers with a Status line, headers, blank line and body', async () => {
  const { log } = memoryLog();
  for (const [uri, body] of [['/', 'Hello World'], ['/par/a/b?x=1', 'Positional arguments\n\na\nb\n\nKeyword arguments\n\nx: 1\n']] as const) {
    const c = capture();
    const q = uri.indexOf('?');
    const code = await serveCgi({
      params: env({ REQUEST_URI: uri, SCRIPT_NAME: '/index.fcgi', QUERY_STRING: q === -1 ? '' : uri.slice(q + 1) }),
      stdin: Readable.from([]), stdout: c.out, tree: exampleTree(), log, maxBodyBytes: 0, trustForwardedProto: false,
    });
    assert.equal(code, 0);
    assert.equal(c.text(), `Status: 200 OK\r\nContent-Type: text/plain;charset=utf-8\r\nContent-Length: ${String(body.length)}\r\n\r\n${body}`);
  }
});

const echo: NativeApp = native(async (environ: Environ, start) => {
  const parts: Buffer[] = [];
  for await (const chunk of environ['postern.input']) parts.push(chunk as Buffer);
  const body = Buffer.concat(parts);
  start('200 OK', [['Content-Type', 'application/octet-stream'], ['X-Protocol', environ['postern.protocol']]]);
  return [body];
});

test('CGI: exactly CONTENT_LENGTH bytes of stdin are the body, even when stdin carries more and never ends', async () => {
  const { log } = memoryLog();
  const stdin = new PassThrough();
  stdin.write('name=value&x=1TRAILING');
  const c = capture();
  const code = await serveCgi({
    params: env({ REQUEST_METHOD: 'POST', REQUEST_URI: '/', CONTENT_LENGTH: '14', CONTENT_TYPE: 'application/x-www-form-urlencoded' }),
    stdin, stdout: c.out, tree: new Tree().mount(echo, '/'), log, maxBodyBytes: 0, trustForwardedProto: false,
  });
  assert.equal(code, 0);
  assert.equal(c.text(), 'Status: 200 OK\r\nContent-Type: application/octet-stream\r\nX-Protocol: cgi\r\nContent-Length: 14\r\n\r\nname=value&x=1');
});

test('CGI: a body short of CONTENT_LENGTH fails the app\'s read; a bad CONTENT_LENGTH is 400, too large 413', async () => {
  const m = memoryLog();
  const c1 = capture();
  await serveCgi({
    params: env({ REQUEST_METHOD: 'POST', REQUEST_URI: '/', CONTENT_LENGTH: '100' }),
    stdin: Readable.from([Buffer.from('short')]), stdout: c1.out, tree: new Tree().mount(echo, '/'), log: m.log, maxBodyBytes: 0, trustForwardedProto: false,
  });
  assert.match(c1.text(), /^Status: 500 /);
  const c2 = capture();
  await serveCgi({ params: env({ REQUEST_URI: '/', CONTENT_LENGTH: '12x' }), stdin: Readable.from([]), stdout: c2.out, tree: exampleTree(), log: m.log, maxBodyBytes: 0, trustForwardedProto: false });
  assert.match(c2.text(), /^Status: 400 Bad Request\r\n/);
  const c3 = capture();
  await serveCgi({ params: env({ REQUEST_METHOD: 'POST', REQUEST_URI: '/', CONTENT_LENGTH: '2048' }), stdin: new PassThrough(), stdout: c3.out, tree: exampleTree(), log: m.log, maxBodyBytes: 1024, trustForwardedProto: false });
  assert.match(c3.text(), /^Status: 413 Content Too Large\r\n/);
  assert.ok(m.lines().some((l) => l.code === CGI_ERRORS.BAD_CONTENT_LENGTH));
  assert.ok(m.lines().some((l) => l.code === CGI_ERRORS.BODY_TOO_LARGE));
});

test('CGI: a streaming body streams: the head and first chunk reach stdout before the app has finished', async () => {
  const { log } = memoryLog();
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => { release = r; });
  const seen: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      seen.push(Buffer.from(chunk).toString('latin1'));
      if (seen.join('').includes('first')) release();
      cb();
    },
  });
  const streaming = native(async function* (_environ: Environ, start) {
    start('200 OK', [['Content-Type', 'text/plain']]);
    yield 'first';
    // Only continues once the test saw `first` on stdout: a buffered response would deadlock here.
    await gate;
    yield 'second';
  } as NativeApp);
  const code = await serveCgi({ params: env({ REQUEST_URI: '/' }), stdin: Readable.from([]), stdout: out, tree: new Tree().mount(streaming, '/'), log, maxBodyBytes: 0, trustForwardedProto: false });
  assert.equal(code, 0);
  assert.equal(seen.join(''), 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nfirstsecond');
});
