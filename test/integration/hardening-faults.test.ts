// Faults, from the operator's side: while one thing goes wrong the other requests keep being
// served and postern says what happened. Through the real CLI with two workers: an app that leaks
// memory (recycled by maxWorkerRssMiB), one that blocks its event loop (killed past
// requestTimeoutMs + killGraceMs), one that crashes its process (respawned). In-process: a front
// server that drops connections mid-request on every protocol, and logs on a full disk
// (/dev/full). The supervisor's own tests (supervisor*.test.ts) cover each mechanism with a single
// worker and a fixture; these add "and everyone else is still served" with a real app.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeAbortRequest } from '../../protocols/fastcgi/index.ts';
import type { Environ, NativeApp, Protocol } from '../../src/app/types.ts';
import { createAccessLog } from '../../src/log/access-log.ts';
import { SERVER_ERRORS } from '../../src/server/errors.ts';
import { loadLoop, type LoadResult } from '../fixtures/supervisor/harness.ts';
import { eventually, RecordingLog, startTestServer, treeOf } from '../helpers/servers.ts';
import { dialRaw, exchange, faultApp, PROTOCOLS, rawRequest, reply, sleep, startCli, type Cli } from './hardening-helpers.ts';

async function startFaulty(extra: readonly string[]): Promise<{ cli: Cli; port: number; app: ReturnType<typeof faultApp> }> {
  const app = faultApp();
  const cli = startCli(['--workers', '2', '--http', '127.0.0.1:0', '--mount', `/=${app.path}`, '--log-format', 'json', '--heartbeat-interval-ms', '100', ...extra]);
  try {
    const port = (await cli.listening(['http'])).get('http')!;
    await cli.waitFor(/postern [^ ]+ ready/);
    return { cli, port, app };
  } catch (err) {
    await cli.stop();
    app.remove();
    throw err;
  }
}

async function fetchStatus(port: number, path: string): Promise<number | string> {
  const r = await exchange({ port }, rawRequest('http', { uri: path }), 40_000).catch((err: Error) => ({ bytes: Buffer.alloc(0), how: err.message }));
  return r.bytes.length === 0 ? 'no reply' : (reply('http', r.bytes).response?.status ?? 'unparsable');
}

function pidsOf(r: LoadResult): Set<string> {
  return new Set(r.byWorker.keys());
}

describe('app faults under load, two workers (the CLI)', () => {
  test('a leaking app: the worker past maxWorkerRssMiB is replaced gracefully, and no other request fails', async () => {
    const { cli, port, app } = await startFaulty(['--max-worker-rss-mib', '150']);
    const load = loadLoop(port, '/', 3, 20_000);
    try {
      await eventually(() => load.result.ok > 30, 5000, 'load flowing');
      // 4 × 48 MiB land on one worker or the other: at least one goes past 150 MiB.
      for (let i = 0; i < 4 && !cli.output().includes('"reason":"memory"'); i++) assert.equal(await fetchStatus(port, '/leak?mib=48'), 200);
      await cli.waitFor('"reason":"memory"', 10_000);
      const before = pidsOf(load.result);
      await eventually(() => [...pidsOf(load.result)].some((p) => !before.has(p)), 10_000, 'the replacement serving');
      const r = await load.stop();
      assert.deepEqual(r.failures, [], 'recycling loses nothing');
      assert.ok(r.ok > 60);
      assert.match(cli.output(), /recycling worker \d+ \(pid \d+\): RSS \d+ MiB over maxWorkerRssMiB 150/);
    } finally {
      await load.stop();
      await cli.stop();
      app.remove();
    }
  });

  test('an app that blocks its event loop: that worker is killed past requestTimeoutMs + killGraceMs, named in the log; the other serves on', async () => {
    const { cli, port, app } = await startFaulty(['--request-timeout-ms', '600', '--kill-grace-ms', '300']);
    const load = loadLoop(port, '/', 3, 20_000);
    try {
      await eventually(() => load.result.ok > 30, 5000, 'load flowing');
      const blockedAt = Date.now();
      const blocked = fetchStatus(port, '/block?ms=30000');
      // Blocked from its first tick, the request was never reported by a heartbeat: the line names the worker and the limit.
      await cli.waitFor(/"level":"error"[^\n]*killing and replacing it[^\n]*"limit":"requestTimeoutMs"/, 10_000);
      assert.notEqual(await blocked, 200, 'the blocking request itself is lost');
      const before = pidsOf(load.result);
      await eventually(() => [...pidsOf(load.result)].some((p) => !before.has(p)), 10_000, 'the replacement serving');
      const r = await load.stop();
      // Only a request the stuck worker accepted in the same instant it blocked can be lost with it.
      assert.deepEqual(r.failures.filter((f) => f.startedAt > blockedAt + 100), [], 'nothing started after the block failed');
      assert.ok(r.failures.length <= 3, JSON.stringify(r.failures));
      assert.ok(r.ok > 60);
    } finally {
      await load.stop();
      await cli.stop();
      app.remove();
    }
  });

  test('an app that crashes its process: the worker is respawned, the crash logged; only the crashing request fails', async () => {
    const { cli, port, app } = await startFaulty([]);
    const load = loadLoop(port, '/', 3, 20_000);
    try {
      await eventually(() => load.result.ok > 30, 5000, 'load flowing');
      const crashedAt = Date.now();
      assert.equal(await fetchStatus(port, '/crash'), 'no reply');
      await cli.waitFor(/"message":"worker \d+ \(pid \d+\) died \(code/, 10_000);
      const before = pidsOf(load.result);
      await eventually(() => [...pidsOf(load.result)].some((p) => !before.has(p)), 10_000, 'the respawned worker serving');
      const r = await load.stop();
      assert.deepEqual(r.failures.filter((f) => f.startedAt > crashedAt + 100), [], 'nothing started after the crash failed');
      assert.ok(r.failures.length <= 3, JSON.stringify(r.failures));
      assert.ok(cli.output().includes('fault fixture: crashing on purpose'), 'the crash is reported with its error');
    } finally {
      await load.stop();
      await cli.stop();
      app.remove();
    }
  });
});

describe('the front server drops connections mid-request', () => {
  test('on every protocol: mid-head, mid-body and mid-response drops abort only their own request; nothing errors, nothing is left', async () => {
    const aborts: Array<{ path: string; code: string }> = [];
    const started = { upload: 0, stream: 0 };
    const app: NativeApp = async (environ: Environ, start) => {
      if (environ.PATH_INFO === '/upload') started.upload++;
      if (environ.PATH_INFO === '/stream') started.stream++;
      const signal = environ['postern.signal'];
      signal.addEventListener('abort', () => aborts.push({ path: environ.PATH_INFO, code: String((signal.reason as { code?: unknown }).code) }), { once: true });
      if (environ.PATH_INFO === '/upload') {
        for await (const _ of environ['postern.input']) { /* read until it fails */ }
      }
      if (environ.PATH_INFO === '/stream') {
        start('200 OK', [['Content-Type', 'application/octet-stream']]);
        return (async function* () {
          while (!signal.aborted) {
            yield Buffer.alloc(16 * 1024, 0x61);
            await sleep(5);
          }
        })();
      }
      start('200 OK', [['Content-Type', 'text/plain']]);
      return 'ok';
    };
    const log = new RecordingLog();
    const srv = await startTestServer({ tree: treeOf(app), log });
    let normal = 0;
    let stopNormal = false;
    const normals = (async () => {
      while (!stopNormal) {
        for (const p of PROTOCOLS) {
          const r = await exchange(srv.target(p), rawRequest(p, { uri: '/' }));
          assert.equal(reply(p, r.bytes).response?.status, 200, `${p}: a normal request beside the drops`);
          normal++;
        }
      }
    })();
    try {
      const drop = async (p: Protocol, bytes: Buffer, waitFor?: () => boolean): Promise<void> => {
        const s = await dialRaw(srv.target(p));
        s.on('error', () => undefined);
        s.on('data', () => undefined);
        s.write(bytes);
        if (waitFor !== undefined) await eventually(waitFor, 3000, `${p} request under way`);
        else await sleep(20);
        s.destroy();
      };
      let expectAborts = 0;
      for (let round = 0; round < 3; round++) {
        for (const p of PROTOCOLS) {
          const whole = rawRequest(p, { uri: '/' });
          await drop(p, whole.subarray(0, whole.length >> 1)); // mid-head: no request yet
          // Mid-body: 4 KiB of a declared 100000 (FastCGI: no empty STDIN record either).
          const upload = rawRequest(p, { method: 'POST', uri: '/upload', body: Buffer.alloc(4096, 0x62), contentLength: '100000' });
          const uploads = started.upload;
          await drop(p, p === 'fastcgi' ? upload.subarray(0, upload.length - 8) : upload, () => started.upload > uploads);
          expectAborts++;
          const streams = started.stream;
          await drop(p, rawRequest(p, { uri: '/stream' }), () => started.stream > streams); // mid-response
          expectAborts++;
        }
        // FastCGI's own way of dropping a request: ABORT_REQUEST, answered with one END_REQUEST.
        const s = await dialRaw(srv.target('fastcgi'));
        const got: Buffer[] = [];
        s.on('data', (c: Buffer) => got.push(c));
        s.write(rawRequest('fastcgi', { uri: '/stream', keepConn: true }));
        await eventually(() => Buffer.concat(got).length > 1024, 3000, 'the stream flowing');
        s.write(encodeAbortRequest(1));
        expectAborts++;
        await eventually(() => aborts.length >= expectAborts, 3000, 'the abort');
        s.destroy();
      }
      await eventually(() => aborts.length === expectAborts, 3000, `${String(expectAborts)} aborts`);
      stopNormal = true;
      await normals;
      assert.ok(normal >= 8, `${String(normal)} normal requests`);
      const codes = new Set(aborts.map((a) => a.code));
      assert.deepEqual([...codes].sort(), [SERVER_ERRORS.ABORTED, SERVER_ERRORS.CONNECTION_CLOSED].sort());
      assert.ok(aborts.every((a) => a.path === '/upload' || a.path === '/stream'), JSON.stringify(aborts));
      await eventually(() => srv.server.stats().inFlight === 0 && srv.server.stats().connections === 0, 3000, 'nothing left');
      assert.equal(srv.server.stats().aborted, expectAborts);
      assert.deepEqual(log.entries.filter((e) => e.level === 'error'), [], 'a dropped connection is not an error');
    } finally {
      stopNormal = true;
      await normals.catch(() => undefined);
      await srv.close();
    }
  });
});

describe('the disk for logs is full', () => {
  test('the access log on a full disk: requests are all served, the failure is logged with its code, lost lines are counted', async () => {
    const log = new RecordingLog();
    const accessLog = createAccessLog({ format: 'combined', file: '/dev/full', log, flushMs: 5 });
    const srv = await startTestServer({ tree: treeOf((_e, start) => { start('200 OK', []); return 'ok'; }), accessLog, log });
    try {
      for (let i = 0; i < 200; i++) {
        const p = PROTOCOLS[i % 4]!;
        const r = await exchange(srv.target(p), rawRequest(p, { uri: `/r${String(i)}` }));
        assert.equal(reply(p, r.bytes).response?.status, 200);
        if (i === 20) await eventually(() => log.entries.some((e) => e.meta['code'] === 'ENOSPC'), 3000, 'the write failure');
      }
      accessLog.flush();
      const failed = log.entries.filter((e) => e.meta['code'] === 'ENOSPC');
      assert.equal(failed.length, 1, 'one line for the failure, not one per request');
      assert.equal(failed[0]?.level, 'error');
      assert.ok(accessLog.dropped > 100, `${String(accessLog.dropped)} lines counted as dropped`);
    } finally {
      await srv.close();
      await accessLog.close();
    }
  });

  test('the event log file on a full disk (the CLI, --log-file /dev/full): postern says so, serves, and logs on to stderr', async () => {
    // The start-up lines went to the file before its first write failed: listen where the test knows.
    const dir = mkdtempSync(join(tmpdir(), 'postern-full-'));
    const sock = join(dir, 'http.sock');
    const cli = startCli(['--http', `unix:${sock}`, '--log-file', '/dev/full', '--log-format', 'json']);
    try {
      await cli.waitFor('event log file /dev/full failed (ENOSPC)', 20_000);
      await eventually(() => existsSync(sock), 20_000, 'the socket');
      for (let i = 0; i < 20; i++) {
        const r = await exchange({ path: sock }, rawRequest('http', { uri: '/' }));
        assert.equal(reply('http', r.bytes).response?.status, 200);
      }
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0, cli.output());
      assert.ok(cli.output().includes('"message":"stopped"'), `later lines reach stderr:\n${cli.output()}`);
    } finally {
      await cli.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
