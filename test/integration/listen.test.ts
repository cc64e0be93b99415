// Listeners, from the operator's side: address parsing, unix sockets (mode, stale file replaced,
// live one and regular files never touched), fd:0 inherited the way spawn-fcgi passes it, and
// systemd socket activation (LISTEN_FDS) both from a hand-made environment and from
// systemd-socket-activate.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADDRESS_ERROR, formatAddress, parseAddress } from '../../src/server/address.ts';
import { ServeContext } from '../../src/server/context.ts';
import { closeHttpServer } from '../../src/server/http-connection.ts';
import { LISTEN_ERRORS, planListeners, serveConnection, takeSocketActivation } from '../../src/server/listen.ts';
import { OPTION_ERROR } from '../../src/server/options.ts';
import { startServer } from '../../src/server/server.ts';
import { fcgiRequest, httpFetch, type Target } from '../helpers/clients.ts';
import { childCommand, fcgiParams, treeOf } from '../helpers/servers.ts';

const hello = treeOf((_e, start) => {
  start('200 OK', [['Content-Type', 'text/plain']]);
  return 'hello';
});

describe('parseAddress', () => {
  const table: Array<[string, unknown]> = [
    ['127.0.0.1:9000', { kind: 'tcp', host: '127.0.0.1', port: 9000 }],
    ['localhost:0', { kind: 'tcp', host: 'localhost', port: 0 }],
    [':9000', { kind: 'tcp', host: undefined, port: 9000 }],
    ['*:9000', { kind: 'tcp', host: undefined, port: 9000 }],
    ['[::1]:8080', { kind: 'tcp', host: '::1', port: 8080 }],
    ['[fe80::1%lo]:1', { kind: 'tcp', host: 'fe80::1%lo', port: 1 }],
    ['unix:/run/postern.sock', { kind: 'unix', path: '/run/postern.sock' }],
    ['unix:relative.sock', { kind: 'unix', path: 'relative.sock' }],
    ['fd:0', { kind: 'fd', fd: 0 }],
    ['fd:3', { kind: 'fd', fd: 3 }],
  ];
  for (const [text, expected] of table) {
    test(`${text} parses`, () => {
      assert.deepEqual(parseAddress(text), expected);
    });
  }

  const bad = ['', '9000', '127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:-1', '127.0.0.1:9x', '::1:9000', '[::1]9000', '[::1:9000', '[]:1', '[abc]:1', 'unix:', 'fd:', 'fd:x', 'fd:-1', 'host name:80'];
  for (const text of bad) {
    test(`${JSON.stringify(text)} is refused with a coded error naming it`, () => {
      assert.throws(() => parseAddress(text), (err: unknown) => {
        const e = err as { code?: string; address?: string };
        return e.code === ADDRESS_ERROR && e.address === text;
      });
    });
  }

  test('formatAddress round-trips', () => {
    for (const text of ['127.0.0.1:9000', ':9000', '[::1]:8080', 'unix:/x.sock', 'fd:0']) assert.equal(formatAddress(parseAddress(text)), text);
  });
});

describe('socket activation environment', () => {
  test('LISTEN_FDS for this pid gives fds 3.. with names, and the variables are unset', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '42', LISTEN_FDS: '3', LISTEN_FDNAMES: 'fastcgi:http:', OTHER: 'kept' };
    const a = takeSocketActivation(env, 42);
    assert.deepEqual(a, { fds: [{ fd: 3, name: 'fastcgi' }, { fd: 4, name: 'http' }, { fd: 5, name: undefined }] });
    assert.deepEqual(env, { OTHER: 'kept' });
  });

  test('LISTEN_PID of another process is not ours (and is still unset)', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '41', LISTEN_FDS: '1' };
    assert.equal(takeSocketActivation(env, 42), undefined);
    assert.deepEqual(env, {});
  });

  test('no LISTEN_FDS: not activated, nothing touched', () => {
    const env: NodeJS.ProcessEnv = { PATH: '/bin' };
    assert.equal(takeSocketActivation(env, 1), undefined);
    assert.deepEqual(env, { PATH: '/bin' });
  });

  test('fds map to listeners by fd:N first, then by name; an unclaimed fd is an error', () => {
    const activation = { fds: [{ fd: 3, name: 'unknown' }, { fd: 4, name: 'scgi' }] };
    const planned = planListeners([{ protocol: 'fastcgi', address: { kind: 'fd', fd: 3 } }], activation);
    assert.deepEqual(planned, [
      { protocol: 'fastcgi', address: { kind: 'fd', fd: 3 } },
      { protocol: 'scgi', address: { kind: 'fd', fd: 4 } },
    ]);
    assert.throws(() => planListeners([], activation), { code: LISTEN_ERRORS.UNCLAIMED_FD });
  });

  test('the same address twice is refused', () => {
    const a = parseAddress('127.0.0.1:9000');
    assert.throws(() => planListeners([{ protocol: 'fastcgi', address: a }, { protocol: 'http', address: a }], undefined), { code: LISTEN_ERRORS.LISTEN_FAILED });
  });
});

describe('listeners', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'postern-listen-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('TCP on IPv6 loopback', async () => {
    const server = await startServer({ tree: hello, listeners: [{ protocol: 'http', address: '[::1]:0' }], env: {} });
    try {
      const l = server.listeners[0]!;
      assert.match(l.address, /^\[::1\]:\d+$/);
      const r = await httpFetch({ host: '::1', port: l.port! }, { path: '/' });
      assert.equal(r.text, 'hello');
    } finally {
      await server.close();
    }
  });

  test('unix socket: mode applied, served, and removed on close', async () => {
    const path = join(dir, 'mode.sock');
    const server = await startServer({ tree: hello, listeners: [{ protocol: 'fastcgi', address: `unix:${path}` }], socketMode: '0600', env: {} });
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(server.listeners[0], { protocol: 'fastcgi', address: `unix:${path}`, path });
      const r = await fcgiRequest({ path }, { params: fcgiParams('/') });
      assert.equal(r.text, 'hello');
    } finally {
      await server.close();
    }
    assert.equal(existsSync(path), false);
  });

  test('a bad socketMode is refused before anything listens', async () => {
    await assert.rejects(startServer({ tree: hello, listeners: [{ protocol: 'http', address: '127.0.0.1:0' }], socketMode: 'rw-rw----', env: {} }), { code: OPTION_ERROR });
  });

  test('a stale socket file left by a dead process is replaced', async () => {
    const path = join(dir, 'stale.sock');
    // A process that dies without closing leaves its socket file behind.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => child.once('exit', r));
    assert.equal(statSync(path).isSocket(), true, 'the stale file exists');
    const server = await startServer({ tree: hello, listeners: [{ protocol: 'http', address: `unix:${path}` }], env: {} });
    try {
      assert.equal((await httpFetch({ path }, { path: '/' })).text, 'hello');
    } finally {
      await server.close();
    }
  });

  test('a live socket is never taken over', async () => {
    const path = join(dir, 'live.sock');
    const other = createServer((s) => {
      s.on('error', () => undefined);
      s.end('other\n');
    });
    await new Promise<void>((r) => other.listen(path, r));
    try {
      await assert.rejects(startServer({ tree: hello, listeners: [{ protocol: 'http', address: `unix:${path}` }], env: {} }), { code: LISTEN_ERRORS.SOCKET_IN_USE });
      const reply = await new Promise<string>((resolve, reject) => {
        const s = connect({ path });
        let out = '';
        s.on('data', (d: Buffer) => (out += d.toString()));
        s.on('end', () => resolve(out));
        s.on('error', reject);
      });
      assert.equal(reply, 'other\n');
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  test('a regular file at the socket path is never removed', async () => {
    const path = join(dir, 'file.sock');
    writeFileSync(path, 'keep me');
    await assert.rejects(startServer({ tree: hello, listeners: [{ protocol: 'fastcgi', address: `unix:${path}` }], env: {} }), { code: LISTEN_ERRORS.NOT_A_SOCKET });
    assert.equal(readFileSync(path, 'utf8'), 'keep me');
  });

  test('a listener that cannot bind fails startServer and closes what was opened', async () => {
    const first = await startServer({ tree: hello, listeners: [{ protocol: 'http', address: '127.0.0.1:0' }], env: {} });
    try {
      const port = first.listeners[0]!.port!;
      const path = join(dir, 'opened-then-closed.sock');
      await assert.rejects(
        startServer({ tree: hello, listeners: [{ protocol: 'fastcgi', address: `unix:${path}` }, { protocol: 'http', address: `127.0.0.1:${String(port)}` }], env: {} }),
        (err: unknown) => (err as { code?: string; syscallCode?: string }).code === LISTEN_ERRORS.LISTEN_FAILED && (err as { syscallCode?: string }).syscallCode === 'EADDRINUSE',
      );
      assert.equal(existsSync(path), false, 'the unix listener opened first was closed again');
    } finally {
      await first.close();
    }
  });
});

describe('serving sockets accepted elsewhere', () => {
  test('serveConnection serves sockets a supervisor-owned listener accepted, for every protocol', async () => {
    const ctx = new ServeContext({ tree: hello });
    const servers = (['fastcgi', 'http'] as const).map((protocol) => createServer({ allowHalfOpen: true }, (socket) => serveConnection(protocol, socket, ctx)));
    try {
      const ports = await Promise.all(servers.map((s) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)))));
      assert.equal((await fcgiRequest({ port: ports[0]! }, { params: fcgiParams('/') })).text, 'hello');
      assert.equal((await httpFetch({ port: ports[1]! }, { path: '/' })).text, 'hello');
      assert.equal(ctx.stats().requests, 2);
    } finally {
      for (const s of servers) s.close();
      ctx.destroyAll();
      closeHttpServer(ctx);
      ctx.close();
    }
  });
});

// ---- inherited sockets, in child processes ------------------------------------------------------

interface Child {
  readonly proc: ChildProcess;
  /** Lines the child printed on stdout. */
  readonly lines: string[];
  line(prefix: string): Promise<string>;
  stop(): Promise<void>;
}

function startChild(command: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const proc = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let waiters: Array<() => void> = [];
  let buf = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    lines,
    async line(prefix) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const found = lines.find((l) => l.startsWith(prefix));
        if (found !== undefined) return found.slice(prefix.length);
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`child gave no "${prefix}" line; stderr:\n${err}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 100))]);
      }
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// Binds listening TCP sockets on 127.0.0.1:0, prints their ports, puts them on the fds given
// (as spawn-fcgi puts its socket on fd 0, as systemd puts its sockets on 3…), then execs the rest
// of argv in the same process, so LISTEN_PID=getpid() stays true.
const BIND_AND_EXEC = `
import os, socket, sys, json
fds = json.loads(sys.argv[1])
socks = []
for fd in fds:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    s.listen(64)
    socks.append(s)
print('PORTS ' + json.dumps([s.getsockname()[1] for s in socks]), flush=True)
high = [os.dup(s.fileno()) for s in socks]
for s in socks:
    s.close()
for h, fd in zip(high, fds):
    os.dup2(h, fd)
    os.set_inheritable(fd, True)
    os.close(h)
if sys.argv[2] == 'activate':
    os.environ['LISTEN_PID'] = str(os.getpid())
    os.environ['LISTEN_FDS'] = str(len(fds))
os.execvp(sys.argv[3], sys.argv[3:])
`;

describe('inherited listening sockets', () => {
  test('fd:0, the FastCGI listen socket spawn-fcgi and mod_fcgid hand over', async () => {
    const { command, args } = childCommand();
    const env: NodeJS.ProcessEnv = { ...process.env, POSTERN_TEST_CHILD: JSON.stringify({ listeners: [{ protocol: 'fastcgi', address: 'fd:0' }] }) };
    delete env['LISTEN_FDS'];
    const child = startChild('python3', ['-c', BIND_AND_EXEC, '[0]', 'plain', command, ...args], env);
    try {
      const [port] = JSON.parse(await child.line('PORTS ')) as number[];
      const listeners = JSON.parse(await child.line('READY ')) as Array<{ protocol: string; address: string }>;
      assert.deepEqual(listeners.map((l) => [l.protocol, l.address]), [['fastcgi', 'fd:0']]);
      const r = await fcgiRequest({ port: port!, host: '127.0.0.1' }, { params: fcgiParams('/') });
      const body = JSON.parse(r.text) as { pid: number; protocol: string };
      assert.equal(body.pid, child.proc.pid, 'served by the child that inherited fd 0');
      assert.equal(body.protocol, 'fastcgi');
    } finally {
      await child.stop();
    }
  });

  test('LISTEN_FDS without names: fds 3 and 4 serve the protocols their fd:N listeners name; the variables are unset', async () => {
    const { command, args } = childCommand();
    const env = {
      ...process.env,
      POSTERN_TEST_CHILD: JSON.stringify({ listeners: [{ protocol: 'http', address: 'fd:4' }, { protocol: 'fastcgi', address: 'fd:3' }] }),
    };
    const child = startChild('python3', ['-c', BIND_AND_EXEC, '[3, 4]', 'activate', command, ...args], env);
    try {
      const [fcgiPort, httpPort] = JSON.parse(await child.line('PORTS ')) as number[];
      await child.line('READY ');
      const viaFcgi = JSON.parse((await fcgiRequest({ port: fcgiPort!, host: '127.0.0.1' }, { params: fcgiParams('/') })).text) as Record<string, unknown>;
      const viaHttp = JSON.parse((await httpFetch({ port: httpPort!, host: '127.0.0.1' }, { path: '/' })).text) as Record<string, unknown>;
      assert.deepEqual([viaFcgi['protocol'], viaHttp['protocol']], ['fastcgi', 'http']);
      assert.equal(viaFcgi['listenFds'], null, 'LISTEN_FDS was unset so children do not take the sockets');
    } finally {
      await child.stop();
    }
  });

  test('systemd-socket-activate: fds named by FileDescriptorName map to protocols', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-activate-'));
    const { command, args } = childCommand();
    const fcgiPath = join(dir, 'fcgi.sock');
    const httpPath = join(dir, 'http.sock');
    // systemd-socket-activate passes on only the variables named with -E.
    const config = `POSTERN_TEST_CHILD=${JSON.stringify({ listeners: [] })}`;
    const child = startChild('systemd-socket-activate', ['-l', fcgiPath, '-l', httpPath, '--fdname=fastcgi:http', '-E', config, command, ...args], process.env);
    try {
      // systemd-socket-activate starts the service on the first connection, as systemd would.
      const deadline = Date.now() + 10_000;
      while (!existsSync(fcgiPath) || !existsSync(httpPath)) {
        if (Date.now() > deadline) throw new Error('systemd-socket-activate did not listen');
        await new Promise((r) => setTimeout(r, 20));
      }
      const fcgiTarget: Target = { path: fcgiPath };
      const viaFcgi = JSON.parse((await fcgiRequest(fcgiTarget, { params: fcgiParams('/') })).text) as Record<string, unknown>;
      const listeners = JSON.parse(await child.line('READY ')) as Array<{ protocol: string; address: string }>;
      assert.deepEqual(listeners.map((l) => [l.protocol, l.address]), [['fastcgi', 'fd:3'], ['http', 'fd:4']]);
      const viaHttp = JSON.parse((await httpFetch({ path: httpPath }, { path: '/' })).text) as Record<string, unknown>;
      assert.deepEqual([viaFcgi['protocol'], viaHttp['protocol']], ['fastcgi', 'http']);
      assert.equal(viaFcgi['pid'], child.proc.pid);
    } finally {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
