// Reloads and recycling, from the front server's side (issue 15): postern with two workers behind
// real nginx (FastCGI with keepalive exactly as config/nginx/fastcgi-keepalive.conf ships it,
// FastCGI without, SCGI, uwsgi, proxy_pass keepalive to --http) and Apache (mod_proxy_fcgi with
// enablereuse=on), plus a keep-alive HTTP client straight at --http that never retries. Under a
// bounded load of GETs and POSTs, ten SIGHUPs, then a run where maxRequestsPerWorker recycles the
// workers: zero failed requests, and not one line at warn level or above in either front server's
// error log. POSTs matter: nginx retries a GET on a fresh connection when a pooled one closes under
// it, never a POST, so a POST is where a closed keep-alive connection becomes a client's 502.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApache } from '../helpers/front/apache.ts';
import { startNginx, type FrontServer } from '../helpers/front/nginx.ts';
import { bodyCountingApp, problemLines, runLoad, type LoadResult, type LoadTarget } from '../helpers/reload-load.ts';
import { request } from 'node:http';
import { sleep, startCli, type Cli } from './hardening-helpers.ts';

const app = bodyCountingApp();
after(() => app.remove());

const CONNS = 2;

interface Rig {
  readonly cli: Cli;
  readonly fronts: Array<FrontServer<string>>;
  readonly targets: LoadTarget[];
}

async function rig(extra: readonly string[]): Promise<Rig> {
  const cli = startCli([
    '--workers', '2', '--fastcgi', '127.0.0.1:0', '--scgi', '127.0.0.1:0', '--uwsgi', '127.0.0.1:0', '--http', '127.0.0.1:0',
    '--mount', `/=${app.path}`, '--log-format', 'json', '--heartbeat-interval-ms', '200', ...extra,
  ]);
  const ports = await cli.listening(['fastcgi', 'scgi', 'uwsgi', 'http']);
  await cli.waitFor(/postern [^ ]+ ready/);
  const at = (p: string): string => `127.0.0.1:${String(ports.get(p))}`;
  const nginx = await startNginx([
    { mode: 'fastcgi-keepalive', backend: at('fastcgi') },
    { mode: 'fastcgi', backend: at('fastcgi') },
    { mode: 'scgi', backend: at('scgi') },
    { mode: 'uwsgi', backend: at('uwsgi') },
    { mode: 'http-proxy', backend: at('http') },
  ]);
  const apache = await startApache([{ mode: 'proxy-fcgi-reuse', backend: at('fastcgi') }]);
  const targets: LoadTarget[] = [
    ...nginx.sites.map((s) => ({ name: `nginx ${s.mode}`, port: s.port })),
    ...apache.sites.map((s) => ({ name: `apache ${s.mode}`, port: s.port })),
    { name: 'direct http keep-alive', port: ports.get('http')! },
  ];
  return { cli, fronts: [nginx, apache], targets };
}

async function teardown(r: Rig): Promise<void> {
  for (const f of r.fronts) await f.stop();
  r.cli.child.kill('SIGTERM');
  await r.cli.exited;
}

/** postern's own lines at warn and above, but the start-up notice about running as root (CI runs as root). */
function ownProblems(out: string): string[] {
  return out.split('\n').filter((l) => /"level":"(?:error|warn)"/.test(l) && !l.includes('POSTERN_ERR_RUNNING_AS_ROOT'));
}

function count(text: string, re: RegExp): number {
  return [...text.matchAll(re)].length;
}

/** Loads every target while `drive` runs; then checks every request succeeded and the front logs are clean. */
async function underLoad(r: Rig, drive: () => Promise<void>): Promise<LoadResult[]> {
  let stop = false;
  const loads = Promise.all(r.targets.map((t) => runLoad(t, CONNS, () => stop)));
  try {
    await sleep(500);
    await drive();
    await sleep(500);
  } finally {
    stop = true;
  }
  const results = await loads;
  const failures = results.flatMap((x) => x.failures.map((f) => `${x.name}: ${f}`));
  const logs = r.fronts.flatMap((f) => problemLines(f.errorLog()));
  process.stderr.write(`# ${results.map((x) => `${x.name} ${String(x.ok)}`).join(', ')}\n`);
  assert.deepEqual(failures.slice(0, 20), [], `${String(failures.length)} failed requests`);
  assert.deepEqual(logs.slice(0, 20), [], 'front server error logs');
  for (const x of results) assert.ok(x.ok > 20, `${x.name} carried load (${String(x.ok)} requests)`);
  return results;
}

test('ten SIGHUP reloads under GET and POST load: no failed request, no front server log line', { timeout: 150_000 }, async () => {
  const r = await rig([]);
  try {
    await underLoad(r, async () => {
      for (let i = 1; i <= 10; i++) {
        r.cli.child.kill('SIGHUP');
        const deadline = Date.now() + 30_000;
        while (count(r.cli.output(), /reloaded: generation/g) < i) {
          assert.ok(Date.now() < deadline, `reload ${String(i)} did not finish:\n${r.cli.output().slice(-3000)}`);
          await sleep(50);
        }
        await sleep(150);
      }
    });
    const out = r.cli.output();
    assert.equal(count(out, /reloaded: generation/g), 10);
    assert.deepEqual(ownProblems(out), [], 'postern itself logged no error or warning');
  } finally {
    await teardown(r);
  }
});

test('recycling by maxRequestsPerWorker under GET and POST load: no failed request, no front server log line', { timeout: 150_000 }, async () => {
  const r = await rig(['--max-requests-per-worker', '1500']);
  try {
    await underLoad(r, async () => {
      const deadline = Date.now() + 40_000;
      while (count(r.cli.output(), /recycling worker \d+/g) < 4 && Date.now() < deadline) await sleep(100);
      // Let the last replacement take over before the load stops.
      while (count(r.cli.output(), /"message":"worker \d+ \(pid \d+\) exited/g) < 4 && Date.now() < deadline) await sleep(100);
    });
    const out = r.cli.output();
    assert.ok(count(out, /recycling worker \d+/g) >= 4, 'workers were recycled under the load');
    assert.deepEqual(ownProblems(out), [], 'postern itself logged no error or warning');
  } finally {
    await teardown(r);
  }
});

/** One GET with its own connection; resolves with the status, or the error's code. */
function getOnce(port: number, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    req.setTimeout(20_000, () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

test('graceful stop (SIGTERM) under load: every request in flight finishes with 200, then the master exits 0', { timeout: 120_000 }, async () => {
  const r = await rig([]);
  try {
    // Slow requests through every front server and straight in, all in flight when SIGTERM arrives.
    const inflight = r.targets.map((t) => getOnce(t.port, '/slow?ms=800'));
    await sleep(300);
    r.cli.child.kill('SIGTERM');
    const statuses = await Promise.all(inflight);
    assert.deepEqual(statuses, r.targets.map(() => 200), r.targets.map((t) => t.name).join(', '));
    assert.equal(await r.cli.exited, 0);
  } finally {
    for (const f of r.fronts) await f.stop();
    await r.cli.stop();
  }
});
