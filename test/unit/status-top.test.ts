// `postern status`: the table drawn from a live status endpoint (a local HTTP server on port 0),
// refresh with rates until aborted, coded failures, and the listen backlog hint from /proc/net/tcp.

import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import { type AddressInfo, type Socket, connect, createServer as createTcpServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { parseProcNetTcp, readListenBacklog } from '../../src/status/backlog.ts';
import { StatusRoutes } from '../../src/status/endpoint.ts';
import { Metrics } from '../../src/status/metrics.ts';
import { buildStatusReport } from '../../src/status/report.ts';
import { STATUS_TOP_ERRORS, renderStatusTable, runStatusTop } from '../../src/status/top.ts';

class Collect extends Writable {
  text = '';
  writes = 0;
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    this.writes++;
    cb();
  }
}

const metrics = new Metrics({ worker: 1 });
const routes = new StatusRoutes({
  statusPath: '/status',
  report: () => buildStatusReport({
    pool: {
      master: { pid: 4242, startedAt: Date.now() - 3_723_000, generation: 1, targetWorkers: 2, crashLoopBraked: false, crashes: 0, deadlineKills: 0, recycled: 5, reloads: 0 },
      workers: [
        { id: 1, pid: 101, state: 'ready', metrics: metrics.snapshot(), lastRestartReason: 'recycled: maxRequestsPerWorker' },
        { id: 2, pid: 102, state: 'starting', requests: 3, inflight: 0, rssBytes: 50 * 1048576, uptimeMs: 1000, metrics: null },
      ],
    },
  }),
});

// A plain node:http server that answers like postern's status path would.
let server: Server;
let base = '';
before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/broken') {
      res.writeHead(500).end('no');
      return;
    }
    if (url.pathname === '/html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
      return;
    }
    if (url.pathname === '/other-json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":1}');
      return;
    }
    void Promise.resolve(routes.route(url.pathname) === 'status' ? routes.app : undefined).then(async (app) => {
      if (app === undefined) {
        res.writeHead(404).end();
        return;
      }
      let status = 0;
      let headers: ReadonlyArray<readonly [string, string]> = [];
      const body = await app(
        { REQUEST_METHOD: req.method ?? 'GET', SCRIPT_NAME: '', PATH_INFO: url.pathname, QUERY_STRING: url.search.slice(1), HTTP_ACCEPT: req.headers.accept } as never,
        (s, h) => { status = Number(s.slice(0, 3)); headers = h; return () => {}; },
      );
      res.writeHead(status, headers.flat()).end(body as string);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function serve(mount: string, status: number, ms: number, n: number): void {
  for (let i = 0; i < n; i++) {
    metrics.requestStarted();
    metrics.requestFinished(mount, status, ms);
  }
}

describe('runStatusTop', () => {
  test('once: one table with master, worker and mount rows', async () => {
    serve('/app', 200, 3, 8);
    serve('/app', 500, 40, 2);
    serve('/', 404, 0.5, 1);
    const out = new Collect();
    await runStatusTop(`${base}/status`, { intervalMs: 1000, once: true, out });
    const lines = out.text.split('\n');
    assert.match(lines[0]!, /^postern master 4242 {2}up 1h02m {2}gen 1 {2}workers 2\/2 .*recycled 5/);
    assert.match(lines[1]!, /^requests 14 {2}req\/s - {2}in flight 0 {2}busy 0\/2/);
    const header = lines.findIndex((l) => l.startsWith('WID'));
    assert.match(lines[header]!, /^WID +PID +STATE +REQS +REQ\/S +INFL +BUSY% +RSS MiB +UPTIME +LAST RESTART$/);
    const w1 = lines[header + 1]!.trim().split(/ {2,}/);
    assert.deepEqual([w1[0], w1[1], w1[2], w1[3], w1[5]], ['1', '101', 'ready', '11', '0']);
    assert.equal(w1[w1.length - 1], 'recycled: maxRequestsPerWorker');
    const w2 = lines[header + 2]!.trim().split(/ {2,}/);
    assert.deepEqual([w2[0], w2[2], w2[3], w2[7]], ['2', 'starting', '3', '50.0']);
    const mh = lines.findIndex((l) => l.startsWith('MOUNT'));
    assert.match(lines[mh]!, /^MOUNT +REQS +REQ\/S +1xx +2xx +3xx +4xx +5xx +AVG ms +P50 +P95 +P99$/);
    const app = lines.slice(mh + 1).find((l) => l.startsWith('/app'))!.trim().split(/ +/);
    assert.deepEqual(app.slice(0, 8), ['/app', '10', '-', '0', '8', '0', '0', '2']);
    assert.equal(app[8], '10'); // (8×3 + 2×40) / 10 = 10.4, whole ms from 10 up
    const root = lines.slice(mh + 1).find((l) => l.startsWith('/ '))!.trim().split(/ +/);
    assert.equal(root[6], '1'); // the 404
  });

  test('refreshing: tables with rates until aborted', async () => {
    const out = new Collect();
    const ac = new AbortController();
    const done = runStatusTop(`${base}/status`, { intervalMs: 100, once: false, out, signal: ac.signal });
    const deadline = Date.now() + 5000;
    while (out.writes < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    serve('/app', 200, 1, 5);
    while (out.writes < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await done;
    assert.ok(out.writes >= 2);
    const tables = out.text.split(/\n\n(?=postern master)/);
    const second = tables[1] ?? '';
    const rate = /req\/s (\S+)/.exec(second)?.[1];
    assert.ok(rate !== undefined && Number(rate) > 0, `a positive rate in the second table: ${String(rate)}`);
  });

  test('failures are coded', async () => {
    const out = new Collect();
    const opts = { intervalMs: 1000, once: true, out, timeoutMs: 2000 };
    await assert.rejects(runStatusTop(`${base}/broken`, opts), { code: STATUS_TOP_ERRORS.HTTP });
    await assert.rejects(runStatusTop(`${base}/html`, opts), { code: STATUS_TOP_ERRORS.BAD_REPORT });
    await assert.rejects(runStatusTop(`${base}/other-json`, opts), { code: STATUS_TOP_ERRORS.BAD_REPORT });
    await assert.rejects(runStatusTop('ftp://x/', opts), { code: STATUS_TOP_ERRORS.BAD_URL });
    await assert.rejects(runStatusTop('not a url', opts), { code: STATUS_TOP_ERRORS.BAD_URL });
    // A port that was just free: connection refused.
    const probe = createTcpServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(runStatusTop(`http://127.0.0.1:${String(port)}/status`, opts), { code: STATUS_TOP_ERRORS.FETCH });
    assert.equal(out.text, '');
  });
});

describe('renderStatusTable', () => {
  test('rates come from the previous report', () => {
    const m = new Metrics({ worker: 0 });
    const first = buildStatusReport({ snapshots: [m.snapshot()], now: 1_000_000 });
    for (let i = 0; i < 20; i++) {
      m.requestStarted();
      m.requestFinished('/x', 200, 1);
    }
    const second = buildStatusReport({ snapshots: [m.snapshot()], now: 1_002_000 });
    const text = renderStatusTable(second, first);
    assert.match(text, /^postern {2}workers 1\nrequests 20 {2}req\/s 10\.0 /);
    assert.match(text, /\n\/x +20 +- /); // the mount was not in the previous report
  });
});

describe('listen backlog', () => {
  test('parses LISTEN rows of /proc/net/tcp and tcp6', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:2328 00000000:0000 0A 000001FF:00000003 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0',
      '   1: 0100007F:2328 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1',
      '   2: 00000000:1F90 00000000:0000 0A 00000080:00000000 00:00000000 00000000  1000        0 3 1 0 100 0 0 10 0',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp), [
      { address: '127.0.0.1:9000', port: 9000, queued: 3 },
      { address: '0.0.0.0:8080', port: 8080, queued: 0 },
    ]);
    assert.deepEqual(parseProcNetTcp(tcp, [8080]).map((b) => b.port), [8080]);
    const tcp6 = [
      '  sl  local_address                         remote_address                        st tx_queue rx_queue',
      '   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000200:00000001 00:00000000 00000000  1000 0 4',
      '   1: 00000000000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 00000010:00000000 00:00000000 00000000  1000 0 5',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp6).map((b) => [b.address, b.queued]), [['[::]:8080', 1], ['[::1]:9000', 0]]);
  });

  test('counts connections waiting to be accepted (Linux)', async () => {
    // A child that listens and then blocks its event loop: the kernel completes handshakes into the
    // accept queue, and nobody accepts them.
    const script = `const s = require('node:net').createServer();
      s.listen({ port: 0, host: '127.0.0.1', backlog: 16 }, () => {
        require('node:fs').writeSync(1, String(s.address().port) + '\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10000);
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const clients: Socket[] = [];
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        child.once('exit', () => reject(new Error('child exited')));
      });
      for (let i = 0; i < 3; i++) {
        const c = connect(port, '127.0.0.1');
        c.on('error', () => {});
        clients.push(c);
        await new Promise<void>((r) => c.once('connect', () => r()));
      }
      const found = await readListenBacklog([port], { backlog: 16 });
      if (process.platform === 'linux') {
        assert.deepEqual(found.map((b) => [b.queued, b.max]), [[3, 16]]);
      } else {
        assert.deepEqual(found, []);
      }
    } finally {
      for (const c of clients) c.destroy();
      child.kill('SIGKILL');
    }
  });

  test('reads a real listener (Linux)', async () => {
    const srv = createTcpServer();
    await new Promise<void>((r) => srv.listen({ port: 0, host: '127.0.0.1', backlog: 37 }, r));
    try {
      const port = (srv.address() as AddressInfo).port;
      const found = await readListenBacklog([port], { backlog: 37 });
      if (process.platform === 'linux') {
        assert.equal(found.length, 1);
        assert.equal(found[0]?.address, `127.0.0.1:${String(port)}`);
        assert.equal(found[0]?.queued, 0);
        const cap = Number(readFileSync('/proc/sys/net/core/somaxconn', 'latin1'));
        assert.equal(found[0]?.max, Math.min(37, cap));
      } else {
        assert.deepEqual(found, []);
      }
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
