// Privileges, from the operator's side: when running as root is refused or only warned about
// (rootCheck, with listeners classified as local or reachable, inherited fds through /proc), user
// and group lookups, and the real CLI: the refusal before anything binds, the warning with the
// loopback defaults, `--user` switching the master and every worker before the app is imported,
// and `--user` that cannot be honoured failing loudly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../../src/cli.ts';
import { listenerExposure, lookupGroup, lookupUser, PRIVILEGE_ERRORS, rootCheck } from '../../src/server/privileges.ts';
import { exchange, procIds, rawRequest, reply, runCli, startCli } from './hardening-helpers.ts';

const root = process.geteuid?.() === 0;

describe('rootCheck', () => {
  const base = { euid: 0, allowRoot: false, addresses: ['127.0.0.1:9000'] };

  test('refused as root only with a listener other hosts can reach and neither user nor allowRoot', () => {
    assert.deepEqual(rootCheck({ ...base, euid: 1000, addresses: [':9000'] }), { action: 'ok' }, 'not root');
    for (const exposed of [':9000', '0.0.0.0:9000', '[::]:9000', '192.0.2.10:9000', 'example.com:9000', '[2001:db8::1]:9000']) {
      assert.equal(rootCheck({ ...base, addresses: ['127.0.0.1:9000', exposed] }).action, 'refuse', exposed);
    }
    for (const local of ['127.0.0.1:9000', '127.1.2.3:0', '[::1]:9000', 'localhost:9000', '[::ffff:127.0.0.1]:8080', 'unix:/run/postern.sock']) {
      const v = rootCheck({ ...base, addresses: [local] });
      assert.equal(v.action, 'warn', local);
    }
    assert.equal(rootCheck({ ...base, addresses: [':9000'], allowRoot: true }).action, 'warn', 'allowRoot: warned, not refused');
    assert.deepEqual(rootCheck({ ...base, addresses: [':9000'], user: 'nobody' }), { action: 'ok' }, 'privileges dropped after binding');
    assert.equal(rootCheck({ ...base, addresses: [':9000'], user: 'root' }).action, 'refuse', 'user root drops nothing');
    assert.equal(rootCheck({ ...base, addresses: [':9000'], user: '0' }).action, 'refuse');
    const refused = rootCheck({ ...base, addresses: [':9000', 'unix:/x.sock'] });
    assert.ok(refused.action === 'refuse' && refused.message.includes(':9000') && !refused.message.includes('unix:'), 'names what is exposed');
  });

  test('inherited fds are classified through /proc: unix and loopback TCP sockets are local, others are not', () => {
    const proc = mkdtempSync(join(tmpdir(), 'postern-proc-'));
    try {
      mkdirSync(join(proc, 'self', 'fd'), { recursive: true });
      mkdirSync(join(proc, 'net'));
      symlinkSync('socket:[1001]', join(proc, 'self', 'fd', '3'));
      symlinkSync('socket:[1002]', join(proc, 'self', 'fd', '4'));
      symlinkSync('socket:[1003]', join(proc, 'self', 'fd', '5'));
      symlinkSync('socket:[1004]', join(proc, 'self', 'fd', '6'));
      symlinkSync('/dev/null', join(proc, 'self', 'fd', '7'));
      writeFileSync(join(proc, 'net', 'unix'), 'Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 1001 /run/postern.sock\n');
      const tcpHead = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
      writeFileSync(join(proc, 'net', 'tcp'), `${tcpHead}   0: 0100007F:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0\n`
        + `   1: 00000000:2329 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100 0 0 10 0\n`);
      writeFileSync(join(proc, 'net', 'tcp6'), `${tcpHead}   0: 00000000000000000000000001000000:232A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0\n`);
      assert.equal(listenerExposure('fd:3', proc), 'local', 'a unix socket');
      assert.equal(listenerExposure('fd:4', proc), 'local', '127.0.0.1');
      assert.equal(listenerExposure('fd:5', proc), 'network', '0.0.0.0');
      assert.equal(listenerExposure('fd:6', proc), 'local', '::1');
      assert.equal(listenerExposure('fd:7', proc), 'network', 'not a socket: cannot tell');
      assert.equal(listenerExposure('fd:9', proc), 'network', 'no such fd');
      assert.equal(rootCheck({ euid: 0, allowRoot: false, addresses: ['fd:3', 'fd:4'], procRoot: proc }).action, 'warn');
      assert.equal(rootCheck({ euid: 0, allowRoot: false, addresses: ['fd:3', 'fd:5'], procRoot: proc }).action, 'refuse');
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  test('users and groups by name or id; unknown names fail with a code', () => {
    assert.deepEqual(lookupUser('root'), { name: 'root', uid: 0, gid: 0 });
    assert.deepEqual(lookupUser('0'), { name: 'root', uid: 0, gid: 0 });
    assert.deepEqual(lookupUser('4000000'), { name: undefined, uid: 4000000, gid: undefined }, 'a bare uid no database knows');
    assert.equal(lookupGroup('root'), 0);
    assert.equal(lookupGroup('4000000'), 4000000);
    const me = userInfo();
    assert.equal(lookupUser(me.username).uid, me.uid);
    assert.throws(() => lookupUser('no-such-user-postern'), (err: { code?: string }) => err.code === PRIVILEGE_ERRORS.UNKNOWN_USER);
    assert.throws(() => lookupGroup('no-such-group-postern'), (err: { code?: string }) => err.code === PRIVILEGE_ERRORS.UNKNOWN_GROUP);
  });
});

const APP = `// Top-level code runs when a worker imports the module: note who that was.
const loadedAs = process.getuid();
const app = (environ, start) => {
  if (loadedAs === 0) {
    start('500 Imported As Root', []);
    return 'imported as root';
  }
  start('200 OK', [['Content-Type', 'text/plain']]);
  return \`uid \${process.getuid()} gid \${process.getgid()} groups \${process.getgroups().join(',')} pid \${process.pid}\`;
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
export default app;
`;

describe('the CLI', () => {
  test(root ? 'as root: a listener on every interface is refused before anything binds (exit 2, coded)' : 'not root: --user naming someone else fails loudly (exit 1, coded)', () => {
    if (root) {
      const r = runCli(['--http', ':0', '--fastcgi', '127.0.0.1:0', '--log-format', 'json']);
      assert.equal(r.status, EXIT.CONFIG, r.stderr);
      assert.ok(r.stderr.includes(PRIVILEGE_ERRORS.RUNNING_AS_ROOT), r.stderr);
      assert.ok(r.stderr.includes('--allow-root'), 'the message names the way out');
      assert.ok(!r.stderr.includes('listening'), 'nothing was bound');
    } else {
      const r = runCli(['--http', '127.0.0.1:0', '--user', 'root']);
      assert.equal(r.status, EXIT.FAILURE, r.stderr);
      assert.ok(r.stderr.includes(PRIVILEGE_ERRORS.DROP_FAILED), r.stderr);
    }
  });

  test('the loopback defaults start (as root with a coded warning naming user and allowRoot)', async () => {
    const cli = startCli(['--http', '127.0.0.1:0', '--log-format', 'json']);
    try {
      const port = (await cli.listening(['http'])).get('http')!;
      const r = await exchange({ port }, rawRequest('http', { uri: '/' }));
      assert.equal(reply('http', r.bytes).response?.status, 200);
      const warned = cli.output().split('\n').some((l) => l.includes(PRIVILEGE_ERRORS.RUNNING_AS_ROOT) && l.includes('"level":"warn"'));
      assert.equal(warned, root, cli.output());
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0);
    } finally {
      await cli.stop();
    }
  });

  test(root ? '--user nobody: the master and every worker switch after binding, and the app never runs as root' : '--user <self>: nothing to switch, and it serves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-user-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'whoami.mjs'), APP, { mode: 0o644 });
    const target = root ? { name: 'nobody', uid: 65534, gid: 65534 } : { name: userInfo().username, uid: userInfo().uid, gid: userInfo().gid };
    const sock = join(dir, 'fcgi.sock');
    const cli = startCli([
      '--user', target.name, '--workers', '2', '--http', '127.0.0.1:0', '--fastcgi', `unix:${sock}`, '--socket-mode', '0660',
      '--socket-owner', target.name, '--mount', `/=${join(dir, 'whoami.mjs')}`, '--log-format', 'json',
    ]);
    try {
      const port = (await cli.listening(['http'])).get('http')!;
      await cli.waitFor(/postern [^ ]+ ready/);
      const pids = new Set<number>();
      for (let i = 0; i < 12; i++) {
        const text = reply('http', (await exchange({ port }, rawRequest('http', { uri: '/' }))).bytes).response?.text ?? '';
        const m = /^uid (\d+) gid (\d+) groups (\S*) pid (\d+)$/.exec(text);
        assert.ok(m !== null, text);
        assert.equal(Number(m[1]), target.uid);
        assert.equal(Number(m[2]), target.gid);
        if (root) assert.ok(!(m[3] ?? '').split(',').includes('0'), `no root group left: ${m[3] ?? ''}`);
        pids.add(Number(m[4]));
      }
      for (const pid of [cli.child.pid!, ...pids]) {
        const ids = procIds(pid);
        assert.deepEqual(ids.uid, [target.uid, target.uid, target.uid, target.uid], `pid ${String(pid)} uids`);
        assert.deepEqual(ids.gid, [target.gid, target.gid, target.gid, target.gid], `pid ${String(pid)} gids`);
      }
      if (root) assert.ok(cli.output().includes('master switched to uid 65534'), cli.output());
      const st = statSync(sock);
      assert.deepEqual({ uid: st.uid, mode: st.mode & 0o777 }, { uid: target.uid, mode: 0o660 }, 'the socket the master bound');
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0, cli.output());
    } finally {
      await cli.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
