// Closing the mounted apps on a graceful stop, through the real `postern` command: a taken-over
// node:http server hears 'close', an exported Fastify instance runs its onClose hook, after the last
// request in flight has finished; a hook that throws or hangs is logged with its mount and does not
// hold the exit past appCloseTimeoutMs; a fast stop (SIGINT) closes nothing. (NestJS: in
// frameworks-nestjs.test.ts; workers under the master: in takeover-supervised.test.ts.)
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fcgiRequest } from '../helpers/clients.ts';
import { fcgiParams } from '../helpers/servers.ts';
import { freePort } from '../helpers/front/ports.ts';
import { ROOT, startCli, type Cli } from './hardening-helpers.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'takeover');
const running: Cli[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(running.map((c) => c.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Started {
  readonly cli: Cli;
  readonly fastcgi: number;
  readonly markers: string;
  readonly pid: number;
}

async function start(extra: readonly string[], env: Record<string, string> = {}): Promise<Started> {
  const markers = mkdtempSync(join(tmpdir(), 'postern-shutdown-'));
  dirs.push(markers);
  const cli = startCli([
    '--fastcgi', '127.0.0.1:0', '--mount', `/p=${join(FIXTURES, 'close-marker.cjs')}`, '--mount', `/f=${join(FIXTURES, 'fastify-onclose.mjs')}`, ...extra,
  ], { env: { ...env, MARKER_DIR: markers, PORT: String(await freePort()) } });
  running.push(cli);
  const fastcgi = (await cli.listening(['fastcgi'])).get('fastcgi') ?? 0;
  return { cli, fastcgi, markers, pid: cli.child.pid ?? 0 };
}

async function get(s: Started, path: string): Promise<{ status: number; body: string }> {
  const params = fcgiParams('', [['REQUEST_URI', path], ['PATH_INFO', path]]);
  const r = await fcgiRequest({ port: s.fastcgi }, { params });
  return { status: r.status, body: r.body.toString() };
}

test('SIGTERM: after the request in flight, the taken-over server gets close and Fastify its onClose hook', async () => {
  const s = await start([]);
  assert.equal((await get(s, '/f/hello')).body, JSON.stringify({ hello: 'fastify exported' }));
  const slow = get(s, '/p/slow');
  await new Promise((resolve) => setTimeout(resolve, 100));
  s.cli.child.kill('SIGTERM');
  assert.deepEqual(await slow, { status: 200, body: `plain ${s.pid}` });
  assert.equal(await s.cli.exited, 0, s.cli.output());
  assert.equal(readFileSync(join(s.markers, `plain-${s.pid}`), 'utf8'), 'server closed, requests running: 0');
  assert.equal(readFileSync(join(s.markers, `fastify-${s.pid}`), 'utf8'), 'onClose ran');
  assert.match(s.cli.output(), /closed the apps \(mount \/p, mount \/f\)/);
});

test('a close hook that throws and one that hangs are logged with their mount; the stop goes on past appCloseTimeoutMs', async () => {
  const s = await start(['--app-close-timeout-ms', '500'], { CLOSE_THROWS: '1', HANG_CLOSE: '1' });
  assert.equal((await get(s, '/p/')).status, 200);
  s.cli.child.kill('SIGTERM');
  const timer = setTimeout(() => { void s.cli.stop(); }, 15_000);
  const status = await s.cli.exited;
  clearTimeout(timer);
  assert.equal(status, 0, s.cli.output());
  const out = s.cli.output();
  assert.match(out, /mount \/p failed to close: Error: close listener failed on purpose/);
  assert.match(out, /mount \/f was still closing after appCloseTimeoutMs \(500 ms\); not waiting for it/);
  assert.match(out, /POSTERN_ERR_APP_CLOSE_TIMEOUT/);
  assert.equal(existsSync(join(s.markers, `fastify-${s.pid}`)), false);
});

test('SIGINT (fast stop) closes no app', async () => {
  const s = await start([]);
  assert.equal((await get(s, '/p/')).status, 200);
  s.cli.child.kill('SIGINT');
  assert.equal(await s.cli.exited, 0, s.cli.output());
  assert.equal(existsSync(join(s.markers, `plain-${s.pid}`)), false);
  assert.equal(existsSync(join(s.markers, `fastify-${s.pid}`)), false);
  assert.doesNotMatch(s.cli.output(), /closed the apps/);
});

test('single process, SIGHUP with the same listeners: the replaced apps are closed once shutdownTimeoutMs has passed; the new ones serve', async () => {
  const markers = mkdtempSync(join(tmpdir(), 'postern-shutdown-'));
  dirs.push(markers);
  const cli = startCli(['--fastcgi', '127.0.0.1:0', '--mount', `/f=${join(FIXTURES, 'fastify-onclose.mjs')}`, '--shutdown-timeout-ms', '500'],
    { env: { MARKER_DIR: markers } });
  running.push(cli);
  const s: Started = { cli, fastcgi: (await cli.listening(['fastcgi'])).get('fastcgi') ?? 0, markers, pid: cli.child.pid ?? 0 };
  assert.equal((await get(s, '/f/hello')).status, 200);
  cli.child.kill('SIGHUP');
  await cli.waitFor('reloaded (same listeners');
  await cli.waitFor(/closed the apps \(mount \/f\)/);
  assert.equal(readFileSync(join(markers, `fastify-${s.pid}`), 'utf8'), 'onClose ran');
  assert.equal((await get(s, '/f/hello')).body, JSON.stringify({ hello: 'fastify exported' }));
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0, cli.output());
  assert.equal((cli.output().match(/closed the apps \(mount \/f\)/g) ?? []).length, 2, 'the new generation is closed at the stop');
});
