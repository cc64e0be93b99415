// The on-demand pool (workersOnDemand), from the operator's side, behind a real nginx: no worker
// until the first connection, each front (FastCGI with and without keep-alive, SCGI) answered
// while the master starts one, idle workers stopped down to none after idleWorkerTimeoutMs and the
// next request answered again, growth to `workers` under bounded concurrent load, and a touch
// (reloadOnTouch) under load with no failed request, then one with no worker at all; a SIGTERM while
// the master holds a connection for a starting worker still answers it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { scratch, startCli, until, type Cli } from './operate-helpers.ts';
import { startNginx, type RunningSite, type NginxMode } from '../helpers/front/nginx.ts';

const APP = `
import { readFileSync } from 'node:fs';
const version = readFileSync(new URL('./version.txt', import.meta.url), 'utf8').trim();
export const app = async (environ, start) => {
  const ms = Number(new URLSearchParams(environ.QUERY_STRING).get('ms') ?? '0');
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  const body = version + ' ' + String(process.pid);
  start('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]]);
  return body;
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
`;

/** Replaces the version atomically (a worker importing the app meanwhile reads the old or the new one). */
function setVersion(dir: string, v: string): void {
  writeFileSync(join(dir, 'version.tmp'), v);
  renameSync(join(dir, 'version.tmp'), join(dir, 'version.txt'));
}

/** The master's live worker processes (children carrying POSTERN_WORKER_ID; the fd helper is not one). */
function workerPids(master: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== master || state === 'Z') continue;
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes('POSTERN_WORKER_ID=')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function answer(url: string): Promise<{ status: number; text: string; ms: number }> {
  const t = performance.now();
  const r = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  const text = await r.text();
  return { status: r.status, text, ms: Math.round(performance.now() - t) };
}

function start(args: (dir: string) => readonly string[]): { cli: Cli; dir: string; remove: () => void } {
  const s = scratch();
  setVersion(s.dir, 'v1');
  writeFileSync(join(s.dir, 'versioned.mjs'), APP);
  // A worker's start took 15-30 s here on a loaded machine (tsx compiles the sources): the default 30 s start limit would fail a reload.
  const cli = startCli(s, [...args(s.dir), '--worker-start-timeout-ms', '120000', '--mount', `/=${join(s.dir, 'versioned.mjs')}#app`, '--log-format', 'json']);
  return { cli, dir: s.dir, remove: () => { s.remove(); } };
}

test('on demand behind nginx (FastCGI keep-alive and not, SCGI): no worker until a request, idle ones stopped to none, growth to workers', async (t) => {
  const { cli, remove } = start(() => ['--fastcgi', '127.0.0.1:0', '--scgi', '127.0.0.1:0', '--workers', '2', '--workers-on-demand',
    '--idle-worker-timeout-ms', '1500', '--heartbeat-interval-ms', '100']);
  let front: Awaited<ReturnType<typeof startNginx>> | undefined;
  try {
    // Generous waits: a worker's start takes seconds on a loaded machine (tsx compiles the sources).
    await cli.waitFor('scgi listening on', 60_000);
    const fastcgi = await cli.port('fastcgi');
    const scgi = await cli.port('scgi');
    await cli.waitFor('ready (master pid', 60_000);
    const master = cli.child.pid ?? 0;
    assert.deepEqual(workerPids(master), [], 'no worker at start');
    front = await startNginx([
      { mode: 'fastcgi', backend: `127.0.0.1:${String(fastcgi)}` },
      { mode: 'fastcgi-keepalive', backend: `127.0.0.1:${String(fastcgi)}` },
      { mode: 'scgi', backend: `127.0.0.1:${String(scgi)}` },
    ]);
    const sites = front.sites;
    const site = (mode: NginxMode): RunningSite<NginxMode> => {
      const s = sites.find((x) => x.mode === mode);
      assert.ok(s !== undefined);
      return s;
    };
    for (const round of ['cold start', 'after the pool went back to none']) {
      assert.deepEqual(workerPids(master), [], `no worker before the ${round} request`);
      // The first request finds no worker: the master accepts it and starts one.
      const first = await answer(site('fastcgi-keepalive').url('/'));
      assert.equal(first.status, 200, front.errorLog());
      assert.match(first.text, /^v1 \d+$/);
      t.diagnostic(`first request, ${round}, nginx FastCGI keep-alive: ${String(first.ms)} ms (the worker's start included)`);
      for (const mode of ['fastcgi', 'fastcgi-keepalive', 'scgi'] as const) {
        const r = await answer(site(mode).url('/'));
        assert.equal(r.status, 200, `${mode}: ${front.errorLog()}`);
        assert.match(r.text, /^v1 \d+$/);
      }
      assert.ok(workerPids(master).length >= 1);
      // Idle: every worker is drained and stopped after idleWorkerTimeoutMs.
      await until(() => workerPids(master).length === 0, 60_000, 'the idle pool to hold no worker');
    }
    assert.match(cli.output(), /no request for \d+ ms \(idleWorkerTimeoutMs 1500\)/);

    // Bounded concurrent load (4 clients, 400 ms requests): every worker busy, so the pool grows to 2 and no further.
    const seen = new Set<string>();
    let most = 0;
    const failures: string[] = [];
    const deadline = Date.now() + 120_000;
    const client = async (): Promise<void> => {
      while (Date.now() < deadline && seen.size < 2) {
        const r = await answer(site('fastcgi').url('/?ms=400')).catch((err: unknown) => ({ status: 0, text: String(err), ms: 0 }));
        if (r.status === 200) seen.add(r.text.split(' ')[1] ?? '');
        else failures.push(`${String(r.status)} ${r.text}`);
        most = Math.max(most, workerPids(master).length);
      }
    };
    await Promise.all([client(), client(), client(), client()]);
    assert.deepEqual(failures, []);
    assert.equal(seen.size, 2, 'two workers answered');
    assert.ok(most <= 2, `at most workers (2) ran, saw ${String(most)}`);
    assert.match(cli.output(), /on demand: 2 worker\(s\) wanted \(every worker is busy\)/);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exitWithin(20_000), 0);
  } finally {
    await front?.stop();
    await cli.kill();
    remove();
  }
});

test('on demand: a touch reloads under load with no failed request, and again with no worker running', async () => {
  const { cli, dir, remove } = start((d) => ['--http', '127.0.0.1:0', '--workers', '2', '--workers-on-demand', '--idle-worker-timeout-ms', '1000',
    '--heartbeat-interval-ms', '100', '--reload-on-touch', join(d, 'tmp', 'restart.txt')]);
  const restart = join(dir, 'tmp', 'restart.txt');
  let stop = false;
  try {
    await cli.waitFor('http listening on', 60_000);
    const port = await cli.port('http');
    await cli.waitFor('ready (master pid', 60_000);
    const master = cli.child.pid ?? 0;
    const url = (path: string): string => `http://127.0.0.1:${String(port)}${path}`;
    let ok = 0;
    const failures: string[] = [];
    const deadline = Date.now() + 120_000;
    const client = async (): Promise<void> => {
      while (!stop && Date.now() < deadline) {
        try {
          const r = await fetch(url('/?ms=20'), { headers: { connection: 'close' }, signal: AbortSignal.timeout(60_000) });
          const text = await r.text();
          if (r.status === 200 && /^v[12] \d+$/.test(text)) ok++;
          else failures.push(`${String(r.status)} ${text}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const load = Promise.all([client(), client()]);
    await until(async () => (await answer(url('/'))).text.startsWith('v1'), 60_000, 'a worker');
    setVersion(dir, 'v2');
    mkdirSync(join(dir, 'tmp'));
    writeFileSync(restart, '');
    await cli.waitFor('restart.txt was touched: reloading', 60_000);
    await cli.waitFor('reloaded: generation 2', 120_000);
    assert.match((await answer(url('/'))).text, /^v2 \d+$/);
    stop = true;
    await load;
    assert.deepEqual(failures, []);
    assert.ok(ok > 0, 'requests were served during the reload');

    // Idle: none left; a touch now reloads a pool with no worker, and the next request gets the new app.
    await until(() => workerPids(master).length === 0, 60_000, 'the idle pool to hold no worker');
    setVersion(dir, 'v3');
    const later = new Date(Date.now() + 5000);
    utimesSync(restart, later, later);
    await cli.waitFor('reloaded: generation 3', 60_000);
    assert.deepEqual(workerPids(master), [], 'a reload of an empty pool starts no worker');
    const r = await answer(url('/'));
    assert.equal(r.status, 200);
    assert.match(r.text, /^v3 \d+$/);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exitWithin(20_000), 0);
  } finally {
    stop = true;
    await cli.kill();
    remove();
  }
});

test('on demand: SIGTERM while the master holds a connection for a starting worker; the worker answers it, then all exit 0', async () => {
  const { cli, remove } = start(() => ['--http', '127.0.0.1:0', '--workers-on-demand']);
  try {
    await cli.waitFor('http listening on', 60_000);
    const port = await cli.port('http');
    await cli.waitFor('ready (master pid', 60_000);
    const pending = answer(`http://127.0.0.1:${String(port)}/`);
    // The master accepted it and is starting a worker: stop now.
    await cli.waitFor('1 worker(s) wanted (a connection is waiting)', 60_000);
    cli.child.kill('SIGTERM');
    const r = await pending;
    assert.equal(r.status, 200);
    assert.match(r.text, /^v1 \d+$/);
    assert.equal(await cli.exitWithin(60_000), 0);
    assert.doesNotMatch(cli.output(), /"level":"(error|warn)","pid":\d+,"message":"(?!running as root)/);
  } finally {
    await cli.kill();
    remove();
  }
});
