// Access control at accept, from the listener's side over real sockets: `allowedClients` (IPv4,
// IPv6, IPv4-mapped peers of an IPv6 socket) on every protocol, FCGI_WEB_SERVER_ADDRS (FastCGI
// spec §3.2) on FastCGI listeners only, unix sockets never checked; bad entries refused before
// anything listens; socketOwner / socketGroup applied to the unix sockets postern and its
// supervisor bind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { NativeApp, Protocol } from '../../src/app/types.ts';
import { ACCESS_ERRORS } from '../../src/server/access.ts';
import { parseAddress } from '../../src/server/address.ts';
import { SERVER_ERRORS } from '../../src/server/errors.ts';
import { PRIVILEGE_ERRORS } from '../../src/server/privileges.ts';
import { startServer, type PosternServer } from '../../src/server/server.ts';
import type { ServerOptions } from '../../src/server/options.ts';
import { bindListener } from '../../src/supervisor/listeners.ts';
import { RecordingLog, treeOf } from '../helpers/servers.ts';
import { exchange, PROTOCOLS, rawRequest, reply } from './hardening-helpers.ts';

const hello: NativeApp = (environ, start) => {
  start('200 OK', [['Content-Type', 'text/plain']]);
  return `hello ${String(environ.REMOTE_ADDR)}`;
};

interface Started {
  readonly server: PosternServer;
  readonly log: RecordingLog;
  target(protocol: Protocol): { port: number; host: string } | { path: string };
}

async function start(host: string, options: Partial<ServerOptions>, protocols: readonly Protocol[] = PROTOCOLS): Promise<Started> {
  const log = new RecordingLog();
  const server = await startServer({
    tree: treeOf(hello),
    log,
    listeners: protocols.map((protocol) => ({ protocol, address: host.startsWith('unix:') ? `${host}.${protocol}` : `${host.includes(':') ? `[${host}]` : host}:0` })),
    env: {},
    ...options,
  });
  return {
    server,
    log,
    target: (protocol) => {
      const l = server.listeners.find((x) => x.protocol === protocol)!;
      return l.path !== undefined ? { path: l.path } : { port: l.port ?? 0, host };
    },
  };
}

/** Sends a request on each protocol: true when it was served, false when the connection was closed with nothing written. */
async function served(s: Started, protocols: readonly Protocol[] = PROTOCOLS): Promise<Record<string, boolean>> {
  const out: Record<string, boolean> = {};
  for (const protocol of protocols) {
    const r = await exchange(s.target(protocol), rawRequest(protocol, { uri: '/' }));
    if (r.bytes.length === 0) out[protocol] = false;
    else {
      assert.equal(reply(protocol, r.bytes).response?.status, 200, protocol);
      out[protocol] = true;
    }
  }
  return out;
}

const ALL_SERVED = { fastcgi: true, scgi: true, uwsgi: true, http: true };
const NONE_SERVED = { fastcgi: false, scgi: false, uwsgi: false, http: false };

describe('allowedClients', () => {
  test('IPv4: a peer outside every block is closed at accept on every protocol, counted, logged once; one inside is served', async () => {
    const denied = await start('127.0.0.1', { allowedClients: ['10.0.0.0/8', '192.168.0.0/16'] });
    try {
      assert.deepEqual(await served(denied), NONE_SERVED);
      assert.equal(denied.server.stats().deniedConnections, 4);
      assert.equal(denied.server.stats().connections, 0);
      const lines = denied.log.withCode(SERVER_ERRORS.CLIENT_DENIED);
      assert.equal(lines.length, 1, 'one line per interval');
      assert.equal(lines[0]?.meta['rule'], 'allowedClients');
    } finally {
      await denied.server.close();
    }
    const allowed = await start('127.0.0.1', { allowedClients: ['10.0.0.0/8', '127.0.0.0/8'] });
    try {
      assert.deepEqual(await served(allowed), ALL_SERVED);
      assert.equal(allowed.server.stats().deniedConnections, 0);
    } finally {
      await allowed.server.close();
    }
  });

  test('IPv6 peers match IPv6 blocks', async () => {
    const allowed = await start('::1', { allowedClients: ['::1/128'] });
    const denied = await start('::1', { allowedClients: ['2001:db8::/32', '127.0.0.0/8'] });
    try {
      assert.deepEqual(await served(allowed), ALL_SERVED);
      assert.deepEqual(await served(denied), NONE_SERVED);
    } finally {
      await allowed.server.close();
      await denied.server.close();
    }
  });

  test('IPv4-mapped peers of an IPv6 socket (::ffff:127.0.0.1) match IPv4 blocks', async () => {
    const allowed = await start('::ffff:127.0.0.1', { allowedClients: ['127.0.0.0/8'] }, ['http', 'fastcgi']);
    const denied = await start('::ffff:127.0.0.1', { allowedClients: ['10.0.0.0/8', '::1'] }, ['http', 'fastcgi']);
    try {
      const r = await exchange(allowed.target('http'), rawRequest('http', { uri: '/' }));
      assert.equal(reply('http', r.bytes).response?.text, 'hello ::ffff:127.0.0.1', 'the peer really is IPv4-mapped');
      assert.deepEqual(await served(allowed, ['http', 'fastcgi']), { http: true, fastcgi: true });
      assert.deepEqual(await served(denied, ['http', 'fastcgi']), { http: false, fastcgi: false });
    } finally {
      await allowed.server.close();
      await denied.server.close();
    }
  });

  test('unix sockets are not checked: their file mode, owner and group decide', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-access-'));
    const s = await start(`unix:${join(dir, 's')}`, { allowedClients: ['10.0.0.0/8'] });
    try {
      assert.deepEqual(await served(s), ALL_SERVED);
      assert.equal(s.server.stats().deniedConnections, 0);
    } finally {
      await s.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an entry that is not an address or block is refused before anything listens', async () => {
    await assert.rejects(start('127.0.0.1', { allowedClients: ['127.0.0.1', 'localhost'] }), (err: { code?: string }) => err.code === ACCESS_ERRORS.BAD_CIDR);
  });
});

describe('FCGI_WEB_SERVER_ADDRS (FastCGI spec §3.2)', () => {
  test('FastCGI connections from an address not in the list are closed; other protocols are not affected', async () => {
    const s = await start('127.0.0.1', { env: { FCGI_WEB_SERVER_ADDRS: '10.0.0.1,10.0.0.2' } });
    try {
      assert.deepEqual(await served(s), { fastcgi: false, scgi: true, uwsgi: true, http: true });
      assert.equal(s.server.stats().deniedConnections, 1);
      assert.equal(s.log.withCode(SERVER_ERRORS.CLIENT_DENIED)[0]?.meta['rule'], 'FCGI_WEB_SERVER_ADDRS');
    } finally {
      await s.server.close();
    }
  });

  test('listed web servers connect (spaces around the commas allowed); with allowedClients both must agree', async () => {
    const listed = await start('127.0.0.1', { env: { FCGI_WEB_SERVER_ADDRS: '199.170.183.28, 127.0.0.1' } }, ['fastcgi']);
    const both = await start('127.0.0.1', { env: { FCGI_WEB_SERVER_ADDRS: '127.0.0.1' }, allowedClients: ['10.0.0.0/8'] }, ['fastcgi']);
    const blank = await start('127.0.0.1', { env: { FCGI_WEB_SERVER_ADDRS: ' ' } }, ['fastcgi']);
    try {
      assert.deepEqual(await served(listed, ['fastcgi']), { fastcgi: true });
      assert.deepEqual(await served(both, ['fastcgi']), { fastcgi: false });
      assert.equal(both.log.withCode(SERVER_ERRORS.CLIENT_DENIED)[0]?.meta['rule'], 'allowedClients');
      assert.deepEqual(await served(blank, ['fastcgi']), { fastcgi: true }, 'a blank variable is unset');
    } finally {
      await listed.server.close();
      await both.server.close();
      await blank.server.close();
    }
  });

  test('a FastCGI unix socket is served whatever the variable says; a malformed value fails startServer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-access-'));
    const s = await start(`unix:${join(dir, 's')}`, { env: { FCGI_WEB_SERVER_ADDRS: '10.0.0.1' } }, ['fastcgi']);
    try {
      assert.deepEqual(await served(s, ['fastcgi']), { fastcgi: true });
    } finally {
      await s.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await assert.rejects(start('127.0.0.1', { env: { FCGI_WEB_SERVER_ADDRS: '10.0.0.1 10.0.0.2' } }, ['fastcgi']),
      (err: { code?: string; option?: string }) => err.code === ACCESS_ERRORS.BAD_CIDR && err.option === 'FCGI_WEB_SERVER_ADDRS');
  });
});

describe('socketOwner and socketGroup', () => {
  // As root (CI) the socket goes to another user; otherwise to this user's own ids, which chown allows.
  const root = process.getuid?.() === 0;
  const owner = root ? { user: 'nobody', uid: 65534, group: 'nogroup', gid: 65534 }
    : { user: userInfo().username, uid: userInfo().uid, group: String(userInfo().gid), gid: userInfo().gid };

  test('the unix sockets startServer binds get the owner and group, by name or id, with socketMode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-owner-'));
    try {
      const s = await start(`unix:${join(dir, 's')}`, { socketOwner: owner.user, socketGroup: owner.group, socketMode: '0660' }, ['fastcgi', 'http']);
      try {
        for (const p of ['fastcgi', 'http'] as const) {
          const st = statSync(join(dir, `s.${p}`));
          assert.deepEqual({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }, { uid: owner.uid, gid: owner.gid, mode: 0o660 }, p);
        }
      } finally {
        await s.server.close();
      }
      const byId = await start(`unix:${join(dir, 'n')}`, { socketOwner: String(owner.uid) }, ['scgi']);
      try {
        assert.equal(statSync(join(dir, 'n.scgi')).uid, owner.uid);
      } finally {
        await byId.server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the sockets the supervisor\'s master binds get them too; unknown names fail with a code before anything listens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-owner-'));
    try {
      const m = await bindListener(parseAddress(`unix:${join(dir, 'm.sock')}`), 0o600, { uid: owner.uid, gid: owner.gid });
      try {
        const st = statSync(join(dir, 'm.sock'));
        assert.deepEqual({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }, { uid: owner.uid, gid: owner.gid, mode: 0o600 });
      } finally {
        m.close();
      }
      await assert.rejects(start(`unix:${join(dir, 'x')}`, { socketOwner: 'no-such-user-postern' }, ['http']), (err: { code?: string }) => err.code === PRIVILEGE_ERRORS.UNKNOWN_USER);
      await assert.rejects(start(`unix:${join(dir, 'y')}`, { socketGroup: 'no-such-group-postern' }, ['http']), (err: { code?: string }) => err.code === PRIVILEGE_ERRORS.UNKNOWN_GROUP);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
