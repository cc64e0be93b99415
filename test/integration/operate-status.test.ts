// The status and ping endpoints of a real `postern` process, from a scraper's and a load balancer's
// side: on the apps' listener (where no mount can shadow them) and on statusListen (where the apps'
// listeners do not answer them), JSON and Prometheus with counters that move, `draining` during a
// graceful stop, `postern status --once`, and a supervised pool's report.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { fcgiRequest } from '../helpers/clients.ts';
import type { StatusReport } from '../../src/status/report.ts';
import { get, mounts, runCli, scratch, startCli, until, type Cli } from './operate-helpers.ts';

const s = scratch();
after(() => { s.remove(); });

async function report(port: number, path = '/status'): Promise<StatusReport> {
  const r = await get(port, path);
  assert.equal(r.status, 200, r.text);
  assert.match(r.type, /^application\/json/);
  const parsed = JSON.parse(r.text) as StatusReport;
  assert.equal(parsed.kind, 'postern.status');
  return parsed;
}

function mountOf(r: StatusReport, mount: string): { requests: number; statusClasses: readonly number[] } {
  return r.mounts.find((m) => m.mount === mount) ?? { requests: 0, statusClasses: [0, 0, 0, 0, 0, 0] };
}

/** The value of one Prometheus sample line (`name{labels} value`), or undefined. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

async function stop(cli: Cli): Promise<void> {
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exitWithin(15_000), 0);
}

test('statusPath and pingPath on the apps\' listener: exact paths a root mount cannot shadow; JSON and Prometheus counters move', async () => {
  const cli = startCli(s, ['--http', '127.0.0.1:0', '--fastcgi', '127.0.0.1:0', ...mounts(s), '--status-path', '/status', '--ping-path', '/ping']);
  try {
    const http = await cli.port('http');
    const fcgi = await cli.port('fastcgi');
    await cli.waitFor('ready');

    // `/` is mounted (it answers everything else), yet the two exact paths are postern's.
    assert.deepEqual(await get(http, '/ping'), { status: 200, type: 'text/plain; charset=utf-8', text: 'pong\n' });
    const first = await report(http);
    for (const path of ['/status/', '/status/x', '/statusx', '/pingx', '/ping/']) {
      const r = await get(http, path);
      assert.equal(r.status, 200, path);
      assert.ok(r.text.startsWith('root '), `${path} goes to the root mount: ${r.text}`);
    }
    assert.equal((await get(http, '/app?status=404')).status, 404);
    assert.equal((await get(http, '/app')).status, 200);
    // Through FastCGI too, as nginx passes a request for the path on.
    const viaFcgi = await fcgiRequest({ port: fcgi }, {
      params: [['REQUEST_METHOD', 'GET'], ['SCRIPT_NAME', '/status'], ['REQUEST_URI', '/status'], ['DOCUMENT_URI', '/status'], ['QUERY_STRING', ''],
        ['SERVER_PROTOCOL', 'HTTP/1.1'], ['SERVER_NAME', 'example.test'], ['SERVER_PORT', '80'], ['REMOTE_ADDR', '127.0.0.1']],
    });
    assert.equal(viaFcgi.status, 200);
    assert.equal((JSON.parse(viaFcgi.text) as StatusReport).kind, 'postern.status');

    const second = await report(http);
    assert.equal(second.workers.length, 1);
    assert.equal(second.master, undefined, 'a single process has no master');
    assert.equal(second.totals.requests - first.totals.requests, 9, 'five root requests, two to /app, the FastCGI scrape and the first scrape');
    assert.equal(second.totals.inFlight, 0, 'the scrape being answered is not counted in flight');
    assert.equal(second.totals.saturated, false);
    const app = mountOf(second, '/app');
    assert.equal(app.requests - mountOf(first, '/app').requests, 2);
    assert.equal(app.statusClasses[1], 1, '2xx');
    assert.equal(app.statusClasses[3], 1, '4xx');
    assert.equal(mountOf(second, '/').requests - mountOf(first, '/').requests, 5);
    assert.ok(mountOf(second, '/ping').requests >= 1, 'probe traffic is counted under its own path');
    assert.ok(second.totals.connectionsTotal.fastcgi >= 1);
    assert.ok(second.totals.connectionsTotal.http >= 1);
    assert.ok(second.workers[0]!.rssBytes > 0);

    const prom = await get(http, '/status?format=prometheus');
    assert.equal(prom.status, 200);
    assert.match(prom.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(prom.text, 'postern_requests_total{mount="/app",status="2xx"}'), 1);
    assert.equal(sample(prom.text, 'postern_requests_total{mount="/app",status="4xx"}'), 1);
    assert.equal(sample(prom.text, 'postern_request_duration_seconds_count{mount="/app"}'), 2);
    assert.equal(sample(prom.text, 'postern_worker_in_flight{worker="0"}'), 0);
    const viaAccept = await get(http, '/status', { accept: 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1' });
    assert.match(viaAccept.type, /^text\/plain; version=0\.0\.4/);
    assert.equal((await fetch(`http://127.0.0.1:${http}/status`, { method: 'POST', signal: AbortSignal.timeout(5000) })).status, 405);
    await stop(cli);
  } finally {
    await cli.kill();
  }
});

test('statusListen: status and ping only there; the apps\' listener routes those paths to the apps; ping says draining during a graceful stop', async () => {
  const cli = startCli(s, ['--http', '127.0.0.1:0', ...mounts(s), '--status-path', '/status', '--ping-path', '/ping', '--status-listen', '127.0.0.1:0', '--shutdown-timeout-ms', '10000']);
  try {
    const http = await cli.port('http');
    const status = await cli.port('status');
    await cli.waitFor('ready');
    assert.notEqual(http, status);
    assert.ok((await get(http, '/status')).text.startsWith('root '), 'not in the apps\' URL space');
    assert.ok((await get(http, '/ping')).text.startsWith('root '));
    assert.equal((await get(status, '/ping')).text, 'pong\n');
    assert.equal((await get(status, '/')).status, 404, 'nothing but status and ping there');
    const before = await report(status);
    assert.equal((await get(http, '/app')).status, 200);
    const after = await report(status);
    assert.equal(mountOf(after, '/app').requests - mountOf(before, '/app').requests, 1);

    // A request in flight holds the graceful stop open; meanwhile the load balancer is told to go.
    // (Long enough to outlast the checks on a loaded machine: the test waits for it either way.)
    const slow = get(http, '/slow?ms=3000');
    await until(async () => (await report(status)).totals.inFlight === 1, 5000, 'the slow request in flight');
    cli.child.kill('SIGTERM');
    await until(async () => (await get(status, '/ping')).status === 503, 5000, 'ping answering 503');
    assert.equal((await get(status, '/ping')).text, 'draining\n');
    assert.equal((await slow).text, 'slow', 'the request in flight finishes');
    assert.equal(await cli.exitWithin(15_000), 0);
  } finally {
    await cli.kill();
  }
});

test('postern status --once: the table of workers and mounts, from a URL or from the configuration', async () => {
  const cli = startCli(s, ['--http', '127.0.0.1:0', ...mounts(s), '--status-path', '/status']);
  try {
    const http = await cli.port('http');
    await cli.waitFor('ready');
    assert.equal((await get(http, '/app')).status, 200);
    const byUrl = runCli(s, ['status', `http://127.0.0.1:${http}/status`, '--once']);
    assert.equal(byUrl.status, 0, byUrl.stderr);
    assert.match(byUrl.stdout, /^postern {2}workers 1/);
    assert.match(byUrl.stdout, /\n\s*WID\s+PID\s+STATE\s+REQS/);
    assert.match(byUrl.stdout, /\n\/app\s+1\s/, byUrl.stdout);
    const byConfig = runCli(s, ['--http', `127.0.0.1:${http}`, '--status-path', '/status', 'status', '--once']);
    assert.equal(byConfig.status, 0, byConfig.stderr);
    assert.match(byConfig.stdout, /\n\/app\s+1\s/);
    const notThere = runCli(s, ['status', `http://127.0.0.1:${http}/nope`, '--once']);
    assert.equal(notThere.status, 1);
    assert.match(notThere.stderr, /POSTERN_ERR_STATUS_(HTTP|BAD_REPORT)/);
    const noPath = runCli(s, ['--http', `127.0.0.1:${http}`, 'status', '--once']);
    assert.equal(noPath.status, 2);
    assert.match(noPath.stderr, /POSTERN_ERR_STATUS_URL/);
    await stop(cli);
  } finally {
    await cli.kill();
  }
});

test('supervised: the pool\'s report from any worker; all-workers-busy counted; a recycled worker names why its predecessor went', async () => {
  const cli = startCli(s, ['--http', '127.0.0.1:0', ...mounts(s), '--workers', '1', '--max-requests-per-worker', '4', '--heartbeat-interval-ms', '100',
    '--status-path', '/status', '--ping-path', '/ping', '--status-listen', '127.0.0.1:0', '--log-format', 'json']);
  try {
    await cli.waitFor('1 worker(s) ready');
    // The master announces both as HTTP listeners: the status one answers the ping.
    const ports = cli.listening().filter((l) => l.protocol === 'http').map((l) => l.port);
    assert.equal(ports.length, 2);
    const pongs = await Promise.all(ports.map(async (p) => (await get(p, '/ping')).text === 'pong\n'));
    const status = ports[pongs.indexOf(true)] ?? 0;
    const http = ports[pongs.indexOf(false)] ?? 0;
    assert.ok(status > 0 && http > 0, `one status listener among ${ports.join(', ')}`);

    const first = await report(status);
    assert.equal(first.master?.targetWorkers, 1);
    assert.equal(first.master.allWorkersBusy, 0);
    assert.deepEqual(first.workers.map((w) => [w.id, w.metrics, w.lastRestartReason]), [[1, true, undefined]]);

    const slow = get(http, '/slow?ms=800');
    await until(async () => (await report(status)).totals.inFlight === 1, 5000, 'the slow request in flight');
    const busy = await report(status);
    assert.equal(busy.totals.busyWorkers, 1);
    assert.equal(busy.totals.saturated, true);
    assert.equal((await slow).text, 'slow');
    await until(async () => ((await report(status)).master?.allWorkersBusy ?? 0) > 0, 5000, 'allWorkersBusy counted');

    // Three more requests reach maxRequestsPerWorker (4): the worker is replaced, its successor says why.
    for (let i = 0; i < 3; i++) assert.equal((await get(http, '/app')).status, 200);
    await until(async () => {
      const r = await report(status);
      return r.workers.some((w) => w.id === 2 && w.state === 'ready' && /^recycled: /.test(w.lastRestartReason ?? ''));
    }, 15_000, 'worker 2 replacing worker 1');
    const prom = await get(status, '/status?format=prometheus');
    assert.match(prom.text, /postern_worker_info\{worker="2",[^}]*last_restart_reason="recycled: [^"]+"\} 1/);
    assert.ok((sample(prom.text, 'postern_all_workers_busy_total') ?? 0) > 0);
    await stop(cli);
  } finally {
    await cli.kill();
  }
});
