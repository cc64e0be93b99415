// The listen() takeover through the real `postern` command: apps that start their own server
// (Express, Koa, Fastify, plain node:http; CommonJS and ESM) mounted unchanged, served behind real
// nginx over FastCGI or straight over FastCGI, with nothing bound at the port they asked for; and
// the start failures (never listens, throws, listens twice, too few servers) with exit status 2.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { startNginx, type FrontServer, type NginxMode } from '../helpers/front/nginx.ts';
import { freePort } from '../helpers/front/ports.ts';
import { fcgiRequest } from '../helpers/clients.ts';
import { fcgiParams } from '../helpers/servers.ts';
import { ROOT, startCli, type Cli } from './hardening-helpers.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'takeover');
const running: Cli[] = [];
after(async () => { await Promise.all(running.map((c) => c.stop())); });

/** True when something accepts connections on host:port (127.0.0.1 unless said). */
function bound(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { resolve(false); });
  });
}

interface Started {
  readonly cli: Cli;
  readonly fastcgi: number;
  /** The port the app was told to listen on (PORT). */
  readonly appPort: number;
}

async function serve(mount: string, extra: readonly string[] = [], env: Record<string, string> = {}): Promise<Started> {
  const appPort = await freePort();
  const cli = startCli(['--fastcgi', '127.0.0.1:0', '--mount', mount, ...extra], { env: { ...env, PORT: String(appPort) } });
  running.push(cli);
  const ports = await cli.listening(['fastcgi']);
  return { cli, fastcgi: ports.get('fastcgi') ?? 0, appPort };
}

async function get(s: Started, target: string): Promise<{ status: number; body: string }> {
  const [path = '/', query = ''] = target.split('?');
  const params = fcgiParams('', [['REQUEST_URI', target], ['PATH_INFO', path], ['QUERY_STRING', query]]);
  const r = await fcgiRequest({ port: s.fastcgi }, { params });
  return { status: r.status, body: r.body.toString() };
}

/** Runs a mount that must fail to start; returns its exit status and output. */
async function failing(mount: string, extra: readonly string[] = []): Promise<{ status: number; output: string; appPort: number }> {
  const appPort = await freePort();
  const cli = startCli(['--fastcgi', '127.0.0.1:0', '--mount', mount, ...extra], { env: { PORT: String(appPort) } });
  running.push(cli);
  const timer = setTimeout(() => { void cli.stop(); }, 20_000);
  const status = await cli.exited;
  clearTimeout(timer);
  return { status, output: cli.output(), appPort };
}

let nginx: FrontServer<NginxMode>;
let express: Started;
before(async () => {
  express = await serve(`/=${join(FIXTURES, 'express.cjs')}`);
  nginx = await startNginx([{ mode: 'fastcgi', backend: `127.0.0.1:${express.fastcgi}` }]);
});
after(async () => { await nginx?.stop(); });

test('an Express script calling app.listen(PORT) is served behind nginx over FastCGI; nothing is bound at PORT', async () => {
  const site = nginx.sites[0];
  assert.ok(site !== undefined);
  const r = await fetch(site.url('/hello?x=1'));
  assert.equal(r.status, 200);
  const body = await r.json() as Record<string, unknown>;
  assert.equal(body.hello, 'express');
  assert.equal(body.url, '/hello?x=1');
  assert.equal(body.ip, '127.0.0.1');
  assert.equal(body.listening, true);
  // address() answers what the app asked for: its port, on `::` when it named no host.
  assert.deepEqual(body.address, { address: '::', family: 'IPv6', port: express.appPort });
  const post = await fetch(site.url('/form'), { method: 'POST', body: new URLSearchParams({ name: 'ada' }) });
  assert.equal(post.status, 200);
  assert.equal(await post.text(), 'got ada');
  assert.equal(await bound(express.appPort), false);
  // The app's listen callback ran, with the port it asked for.
  assert.match(express.cli.output(), new RegExp(`express app listening on ${express.appPort}`));
  assert.match(express.cli.output(), /serving the http\.Server .*express\.cjs listened on \(it asked for port \d+; nothing was bound\)/);
});

test('close() on a taken-over server calls back without error and stops the mount (503)', async () => {
  const site = nginx.sites[0];
  assert.ok(site !== undefined);
  const r = await fetch(site.url('/close'));
  assert.equal(await r.text(), 'closing');
  await express.cli.waitFor('server closed, error: none');
  const next = await fetch(site.url('/hello'));
  assert.equal(next.status, 503);
  await next.arrayBuffer();
  await express.cli.waitFor('closed its server; the mount answers 503');
});

test('Koa (ESM) app.listen() is taken over', async () => {
  const s = await serve(`/=${join(FIXTURES, 'koa.mjs')}`);
  const r = await get(s, '/k?q=1');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { hello: 'koa', path: '/k', ip: '127.0.0.1' });
  assert.equal(await bound(s.appPort), false);
});

test('Fastify (ESM) `await fastify.listen()` is taken over, its localhost bindings included', async () => {
  const s = await serve(`/=${join(FIXTURES, 'fastify.mjs')}`);
  const r = await get(s, '/hello');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { hello: 'fastify', url: '/hello' });
  assert.equal(await bound(s.appPort), false);
  assert.match(s.cli.output(), new RegExp(`fastify said: http://127\\.0\\.0\\.1:${s.appPort}`));
  // Fastify's extra ::1 server shares the handler: one app, no "several servers" warning.
  assert.doesNotMatch(s.cli.output(), /listened on \d+ http\.Servers/);
});

test('Fastify (CJS) callback-style listen() on localhost: its second binding, made after the load, binds nothing either', async () => {
  // LOCALHOST_BOTH: localhost resolves to 127.0.0.1 and ::1, as on a stock Debian, wherever this runs.
  const s = await serve(`/=${join(FIXTURES, 'fastify-callback.cjs')}`, [], { LOCALHOST_BOTH: '1' });
  const r = await get(s, '/hello');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { hello: 'fastify callback', url: '/hello' });
  // The ::1 listen() comes after a DNS lookup, once the takeover window has closed.
  await s.cli.waitFor(new RegExp(`fastify callback said: http://127\\.0\\.0\\.1:${s.appPort}`));
  await s.cli.waitFor(/called listen\(\) again after loading, on an http\.Server with the same request handler \(it asked for port \d+ on ::1\); nothing was bound/);
  assert.equal(await bound(s.appPort), false);
  assert.equal(await bound(s.appPort, '::1'), false);
  // Still one app: the requests keep coming to it.
  assert.equal((await get(s, '/hello')).status, 200);
});

test('a plain http.createServer().listen() (CommonJS) with an upgrade listener: served, and one warning about WebSockets', async () => {
  const s = await serve(`/=${join(FIXTURES, 'plain-upgrade.cjs')}`);
  const r = await get(s, '/p?z');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'plain GET /p?z');
  const warnings = s.cli.output().match(/upgrades cannot ride FastCGI, SCGI or uwsgi/g) ?? [];
  assert.equal(warnings.length, 1);
  assert.equal(await bound(s.appPort), false);
});

test('a listen() after top-level await and a timer is waited for', async () => {
  const s = await serve(`/=${join(FIXTURES, 'late.mjs')}`);
  const r = await get(s, '/');
  assert.equal(r.body, 'late but here');
});

test('two servers: the first to listen is served; #listen:2 picks the second; a warning names the rule', async () => {
  const first = await serve(`/=${join(FIXTURES, 'two-servers.mjs')}`);
  assert.equal((await get(first, '/')).body, 'admin');
  assert.match(first.cli.output(), /listened on 2 http\.Servers; serving the first \(pick another with #listen:N\)/);
  const second = await serve(`/=${join(FIXTURES, 'two-servers.mjs')}#listen:2`);
  assert.equal((await get(second, '/')).body, 'site');
  assert.equal(await bound(second.appPort), false);
  assert.equal(await bound(second.appPort + 1), false);
});

test('a module that never listens fails the start after workerStartTimeoutMs, naming it: exit 2', async () => {
  const r = await failing(`/=${join(FIXTURES, 'never.cjs')}`, ['--worker-start-timeout-ms', '400']);
  assert.equal(r.status, 2, r.output);
  assert.match(r.output, /never\.cjs: its default export is not an app .*, and no http\.Server called listen\(\) within 400 ms of loading \(workerStartTimeoutMs\)/);
});

test('a module that throws while loading (after listening): exit 2, the error named, nothing bound', async () => {
  const r = await failing(`/=${join(FIXTURES, 'throws.mjs')}`);
  assert.equal(r.status, 2, r.output);
  assert.match(r.output, /throws\.mjs.*threw while loading: database unreachable/);
  assert.equal(await bound(r.appPort), false);
});

test('listen() twice on one server: exit 2, naming what it did', async () => {
  const r = await failing(`/=${join(FIXTURES, 'twice.cjs')}`);
  assert.equal(r.status, 2, r.output);
  assert.match(r.output, /twice\.cjs called listen\(\) a second time on the server that listened first/);
  assert.equal(await bound(r.appPort), false);
  assert.equal(await bound(r.appPort + 1), false);
});

test('#listen:3 with two servers: exit 2, saying how many listened', async () => {
  const r = await failing(`/=${join(FIXTURES, 'two-servers.mjs')}#listen:3`, ['--worker-start-timeout-ms', '300']);
  assert.equal(r.status, 2, r.output);
  assert.match(r.output, /only 2 http\.Servers called listen\(\) \(#listen:3 asks for the third\) within 300 ms/);
});
