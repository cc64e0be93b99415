// Proves the real-front-server harness on its own, with a tiny fixture backend: every nginx and
// Apache mode postern documents starts from its config/ template, proxies a request, and stops
// without leaving a process behind. A front server that cannot start fails the test; never skips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNginx, type NginxMode } from '../helpers/front/nginx.ts';
import { startApache, type ApacheMode } from '../helpers/front/apache.ts';
import { startFixtureBackend, type FixtureProtocol } from '../fixtures/front/backend.ts';

const NGINX: Array<[NginxMode, FixtureProtocol]> = [
  ['fastcgi', 'fastcgi'], ['fastcgi-keepalive', 'fastcgi'], ['fastcgi-unbuffered', 'fastcgi'], ['scgi', 'scgi'], ['uwsgi', 'uwsgi'],
];
const APACHE: Array<[ApacheMode, FixtureProtocol]> = [
  ['proxy-fcgi', 'fastcgi'], ['proxy-fcgi-reuse', 'fastcgi'], ['proxy-fcgi-sethandler', 'fastcgi'], ['proxy-scgi', 'scgi'], ['proxy-uwsgi', 'uwsgi'],
];

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

test('nginx: every documented gateway mode proxies to a backend', async () => {
  const backends = await Promise.all(NGINX.map(([, p]) => startFixtureBackend(p)));
  const nginx = await startNginx(NGINX.map(([mode], i) => ({ mode, backend: `127.0.0.1:${backends[i]?.port ?? 0}` })));
  try {
    for (const [i, site] of nginx.sites.entries()) {
      const res = await fetch(site.url('/app/par/m/n?x=1%20y'));
      assert.equal(res.status, 200, `${site.mode}: ${nginx.errorLog()}`);
      assert.equal(await res.text(), 'Hello World', site.mode);
      const seen = backends[i]?.requests.at(-1);
      assert.equal(seen?.['REQUEST_URI'], '/app/par/m/n?x=1%20y', site.mode);
      assert.equal(seen?.['QUERY_STRING'], 'x=1%20y', site.mode);
    }
  } finally {
    await nginx.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
});

test('apache: every documented gateway mode proxies to a backend', async () => {
  const backends = await Promise.all(APACHE.map(([, p]) => startFixtureBackend(p)));
  const apache = await startApache(APACHE.map(([mode], i) => ({ mode, backend: `127.0.0.1:${backends[i]?.port ?? 0}` })));
  try {
    for (const [i, site] of apache.sites.entries()) {
      const res = await fetch(site.url('/app/par/m/n?x=1%20y'));
      assert.equal(res.status, 200, `${site.mode}: ${apache.errorLog()}`);
      assert.equal(await res.text(), 'Hello World', site.mode);
      const seen = backends[i]?.requests.at(-1);
      assert.equal(seen?.['QUERY_STRING'], 'x=1%20y', site.mode);
    }
  } finally {
    await apache.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
});

test('apache: mod_authnz_fcgi consults an authorizer before the app', async () => {
  const app = await startFixtureBackend('fastcgi');
  const authz = await startFixtureBackend('fastcgi', {
    respond: (p) => p['REQUEST_URI']?.startsWith('/private')
      ? { status: '403 Forbidden', body: 'no entry' }
      : { status: '200 OK', headers: [['Variable-REMOTE_USER', 'alice'], ['Variable-POSTERN_TAG', 'ok']] },
  });
  const apache = await startApache([{ mode: 'authnz-fcgi', backend: `127.0.0.1:${app.port}`, authorizer: `127.0.0.1:${authz.port}` }]);
  try {
    const site = apache.sites[0];
    assert.ok(site);
    const ok = await fetch(site.url('/public'));
    assert.equal(ok.status, 200, apache.errorLog());
    assert.equal(await ok.text(), 'Hello World');
    assert.equal(authz.requests.at(-1)?.['FCGI_ROLE'], 'AUTHORIZER');
    assert.equal(app.requests.at(-1)?.['POSTERN_TAG'], 'ok', JSON.stringify(app.requests.at(-1)));
    const denied = await fetch(site.url('/private'));
    assert.equal(denied.status, 403);
    assert.equal(await denied.text(), 'no entry');
  } finally {
    await apache.stop();
    await Promise.all([app.close(), authz.close()]);
  }
});

test('a front server that cannot start fails with its error log', async () => {
  await assert.rejects(startNginx([{ mode: 'fastcgi', backend: 'not a valid;; address' }]), /nginx did not start/);
});

test('stop leaves no front-server process behind', async () => {
  const b = await startFixtureBackend('uwsgi');
  const nginx = await startNginx([{ mode: 'uwsgi', backend: `127.0.0.1:${b.port}` }]);
  const pidText = (await import('node:fs')).readFileSync(`${nginx.dir}/nginx.pid`, 'utf8').trim();
  await nginx.stop();
  await b.close();
  assert.equal(alive(Number(pidText)), false);
});
