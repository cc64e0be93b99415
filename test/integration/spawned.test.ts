// postern started by the front server itself, with the real spawners: Apache mod_fcgid behind an
// .htaccess front-controller rewrite, lighttpd `bin-path`, spawn-fcgi (with an empty environment),
// and Apache mod_cgid running postern as a plain CGI program. Each serves the example tree, a
// POST form, 10 MiB each way, and shows the app the same SCRIPT_NAME/PATH_INFO split whatever the
// spawner sent; a SIGTERM (and libfcgi's SIGUSR1) with a request in flight ends the process only
// after the answer; idleTimeoutMs and maxRequestsPerWorker end it too. With workers > 1 a master
// runs on fd 0 (spawn-fcgi): it serves, reloads and stops the same way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pattern, spawnedSite, spawnFcgi, startApacheSpawner, startLighttpd, type RunningFront, type SpawnedSite } from '../helpers/front/spawners.ts';
import { fcgiRequest, type ParsedResponse } from '../helpers/clients.ts';

const TEN_MIB = 10 * 1024 * 1024;
const upload = pattern(TEN_MIB);
const uploadSha = createHash('sha256').update(upload).digest('hex');

let site: SpawnedSite;
before(() => { site = spawnedSite(); });
after(async () => {
  await site.stopStrays();
  site.remove();
});

/** True once `pid` has exited (gone, or a zombie nobody reaped yet). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Where { script: string; path: string; query: string; protocol: string; pid: number; envPath: string | null }

async function get(front: RunningFront, path: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const r = await fetch(front.url(path));
  return { status: r.status, type: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()) };
}

/** The JSON answer of the `where` endpoint; anything else fails with what the front server said. */
async function getWhere(front: RunningFront, path: string): Promise<Where> {
  const r = await get(front, path);
  assert.equal(r.status, 200, `GET ${path}: ${r.status} ${r.body.toString().slice(0, 300)}\n${front.errorLog()}`);
  return JSON.parse(r.body.toString()) as Where;
}

/** What every HTTP front must answer, whichever way it starts postern. */
async function commonAnswers(front: RunningFront, protocol: 'fastcgi' | 'cgi'): Promise<void> {
  const home = await get(front, '/');
  assert.equal(home.status, 200, front.errorLog());
  assert.equal(home.body.toString(), 'Hello World');
  const par = await get(front, '/par/a/b?x=1');
  assert.equal(par.status, 200);
  assert.equal(par.body.toString(), 'Positional arguments\n\na\nb\n\nKeyword arguments\n\nx: 1\n');
  const where = await getWhere(front, '/t/where/x?y=2');
  assert.deepEqual({ script: where.script, path: where.path, query: where.query, protocol: where.protocol },
    { script: '/t', path: '/where/x', query: 'y=2', protocol });
  const form = await fetch(front.url('/t/form'), { method: 'POST', body: 'name=caf%C3%A9&n=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(form.status, 200);
  assert.deepEqual(await form.json(), { name: 'café', n: '2' });
  const up = await fetch(front.url('/t/echo'), { method: 'POST', body: new Uint8Array(upload), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(up.status, 200, front.errorLog());
  assert.deepEqual(await up.json(), { bytes: TEN_MIB, sha256: uploadSha, type: 'application/octet-stream' });
  const down = await get(front, `/t/big?bytes=${String(TEN_MIB)}`);
  assert.equal(down.status, 200);
  assert.equal(down.body.length, TEN_MIB);
  assert.ok(down.body.equals(upload), 'the 10 MiB download arrives intact');
}

/** A slow request in flight, then `signal` to postern: the answer completes, then the process exits. */
async function signalInFlight(pid: number, signal: NodeJS.Signals, slow: () => Promise<{ status: number; text: string }>): Promise<void> {
  const pending = slow();
  await new Promise((r) => setTimeout(r, 300));
  process.kill(pid, signal);
  const answer = await pending;
  assert.deepEqual(answer, { status: 200, text: `slow ${String(pid)}` });
  await until(`postern ${String(pid)} to exit after ${signal}`, () => gone(pid));
}

const fetchSlow = (front: RunningFront) => async (): Promise<{ status: number; text: string }> => {
  const r = await fetch(front.url('/t/slow?ms=1200'));
  return { status: r.status, text: await r.text() };
};

test('Apache mod_fcgid with an .htaccess front controller starts postern bare; it serves FastCGI on fd 0', async () => {
  site.wrapper('index.fcgi');
  // FcgidMaxRequestLen defaults to 128 KB: the 10 MiB upload needs it raised (docs/shared-hosting.md).
  // fcgid:info logs each process mod_fcgid reaps (below).
  const front = await startApacheSpawner(site, 'fcgid', 'FcgidMaxRequestLen 16777216\nFcgidIOTimeout 60\nLogLevel warn fcgid:info\n');
  try {
    await commonAnswers(front, 'fastcgi');
    // mod_fcgid sends SCRIPT_NAME=/index.fcgi and PATH_INFO=/t/where/x after the rewrite: the app sees the mount split.
    const where = await getWhere(front, '/t/where/deep/er');
    assert.deepEqual([where.script, where.path], ['/t', '/where/deep/er']);
    assert.match(front.errorLog(), /serving FastCGI on it \(started by a front server\)/);
    await signalInFlight(where.pid, 'SIGTERM', fetchSlow(front));
    // A process killed behind mod_fcgid's back stays in its table until its process manager's next
    // scan (FcgidErrorScanInterval, 3 s): a request routed to it before then is reset (500, "End
    // of script output before headers"), whatever the process did. Once mod_fcgid has logged the
    // exit, the next request gets a fresh process.
    const exited = new RegExp(`mod_fcgid: process \\S+\\(${String(where.pid)}\\) exit`);
    await until(`mod_fcgid to reap postern ${String(where.pid)}`, () => exited.test(front.errorLog()), 15_000);
    const again = await getWhere(front, '/t/where');
    assert.notEqual(again.pid, where.pid);
  } finally {
    await front.stop();
    await site.stopStrays();
  }
});

test('lighttpd bin-path starts postern with no environment (no PATH); SIGTERM in flight finishes the request', async () => {
  const front = await startLighttpd(site, site.wrapper('lighttpd.fcgi'));
  try {
    await commonAnswers(front, 'fastcgi');
    const where = await getWhere(front, '/t/where/x');
    assert.equal(where.envPath, null, 'lighttpd passed no PATH');
    await signalInFlight(where.pid, 'SIGTERM', fetchSlow(front));
  } finally {
    await front.stop();
    await site.stopStrays();
  }
});

/** nginx-like FastCGI params for a GET of `uri` (spawn-fcgi has no HTTP side; the test is the web server). */
function params(uri: string, extra: Array<[string, string]> = []): Array<[string, string]> {
  const q = uri.indexOf('?');
  return [['REQUEST_METHOD', 'GET'], ['REQUEST_URI', uri], ['QUERY_STRING', q === -1 ? '' : uri.slice(q + 1)], ['SCRIPT_NAME', uri.slice(0, q === -1 ? undefined : q)],
    ['SERVER_PROTOCOL', 'HTTP/1.1'], ['SERVER_NAME', 'localhost'], ['SERVER_PORT', '80'], ['REMOTE_ADDR', '127.0.0.1'], ['GATEWAY_INTERFACE', 'CGI/1.1'], ...extra];
}

async function whereOver(socket: string): Promise<Where> {
  const r = await fcgiRequest({ path: socket }, { params: params('/t/where/x') });
  return JSON.parse(r.text) as Where;
}

test('spawn-fcgi with env -i: FastCGI on fd 0, maxRequestsPerWorker, idleTimeoutMs and SIGUSR1/SIGTERM end the process cleanly', async () => {
  const log = join(site.dir, 'spawn-fcgi.log');
  const plain = spawnFcgi(site, site.wrapper('plain.fcgi', ['--log-file', log]), 'plain');
  const home: ParsedResponse = await fcgiRequest({ path: plain.socket }, { params: params('/') });
  assert.equal(home.status, 200);
  assert.equal(home.text, 'Hello World');
  const post = await fcgiRequest({ path: plain.socket }, {
    params: params('/t/echo', [['REQUEST_METHOD', 'POST'], ['CONTENT_TYPE', 'application/octet-stream'], ['CONTENT_LENGTH', String(TEN_MIB)]]),
    body: upload,
  });
  assert.deepEqual(JSON.parse(post.text), { bytes: TEN_MIB, sha256: uploadSha, type: 'application/octet-stream' });
  const w = await whereOver(plain.socket);
  assert.deepEqual([w.pid, w.script, w.path, w.envPath], [plain.pid, '/t', '/where/x', null]);
  // SIGUSR1 under libfcgi's convention: finish the request, then exit.
  await signalInFlight(plain.pid, 'SIGUSR1', async () => {
    const r = await fcgiRequest({ path: plain.socket }, { params: params('/t/slow?ms=1200') });
    return { status: r.status, text: r.text };
  });
  assert.match(readFileSync(log, 'utf8'), /SIGUSR1: stopping gracefully/);

  const limited = spawnFcgi(site, site.wrapper('limited.fcgi', ['--max-requests-per-worker', '2', '--log-file', log]), 'limited');
  for (let i = 0; i < 2; i++) assert.equal((await whereOver(limited.socket)).pid, limited.pid);
  await until('the process to exit after maxRequestsPerWorker', () => gone(limited.pid));

  const idle = spawnFcgi(site, site.wrapper('idle.fcgi', ['--idle-timeout-ms', '300', '--log-file', log]), 'idle');
  assert.equal((await whereOver(idle.socket)).pid, idle.pid);
  await until('the process to exit after idleTimeoutMs', () => gone(idle.pid));
  assert.match(readFileSync(log, 'utf8'), /exiting: no request for \d+ ms \(idleTimeoutMs 300\)/);

  // A listener configured: fd 0 is left alone (and the process says where it listens instead).
  const configured = spawnFcgi(site, site.wrapper('configured.fcgi', ['--http', '127.0.0.1:0', '--log-file', log]), 'configured');
  await until('the configured listener', () => readFileSync(log, 'utf8').includes(`"pid":${String(configured.pid)},"message":"http listening on 127.0.0.1:`));
  assert.doesNotMatch(readFileSync(log, 'utf8'), new RegExp(`"pid":${String(configured.pid)},"message":"fd 0 is a listening`));
  process.kill(configured.pid, 'SIGTERM');
  await until('the configured process to stop', () => gone(configured.pid));
});

test('spawn-fcgi with workers 2: a master on fd 0 serves through its workers, reloads on SIGHUP, and SIGTERM finishes the request in flight', async () => {
  const log = join(site.dir, 'supervised.log');
  const sup = spawnFcgi(site, site.wrapper('supervised.fcgi', ['--workers', '2', '--log-file', log]), 'supervised');
  const first = await whereOver(sup.socket);
  assert.notEqual(first.pid, sup.pid, 'a worker answers, not the master spawn-fcgi started');
  assert.deepEqual([first.script, first.path], ['/t', '/where/x']);
  process.kill(sup.pid, 'SIGHUP');
  await until('the reload', () => readFileSync(log, 'utf8').includes('reloaded: generation 2'), 60_000);
  await until(`the old worker ${String(first.pid)} to exit`, () => gone(first.pid), 30_000);
  const after = await whereOver(sup.socket);
  assert.notEqual(after.pid, first.pid, 'a worker of the new generation answers');
  // A slow request in flight, then SIGTERM to the master: the answer completes, then everything exits.
  const pending = fcgiRequest({ path: sup.socket }, { params: params('/t/slow?ms=1200') });
  await new Promise((r) => setTimeout(r, 300));
  process.kill(sup.pid, 'SIGTERM');
  const slow = await pending;
  assert.equal(slow.status, 200);
  assert.match(slow.text, /^slow \d+$/);
  await until('the master to exit after SIGTERM', () => gone(sup.pid), 30_000);
  assert.ok(gone(after.pid), 'its workers are gone too');
});

test('Apache mod_cgid runs postern as a plain CGI program: the same answers as over FastCGI, one process per request', async () => {
  site.wrapper('index.cgi');
  const front = await startApacheSpawner(site, 'cgid');
  try {
    await commonAnswers(front, 'cgi');
    const a = await getWhere(front, '/t/where');
    const b = await getWhere(front, '/t/where');
    assert.notEqual(a.pid, b.pid, 'each CGI request is its own process');
    assert.ok(gone(a.pid));
  } finally {
    await front.stop();
  }
});
