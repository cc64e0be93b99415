// The supervisor with real worker processes (fixture worker on the real postern server), from the
// master's side: startup, listeners, crash respawn under load, the request deadline kill.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSupervised, type Supervisor, type SupervisorOptions } from '../../src/supervisor/index.ts';
import { fixtureEntry, get, loadLoop, recordingLog, sleep, until, type RecordingLog } from '../fixtures/supervisor/harness.ts';
import type { FixtureConfig } from '../fixtures/supervisor/worker.ts';

const running = new Set<Supervisor>();
const dir = mkdtempSync(join(tmpdir(), 'postern-sup-'));
after(async () => {
  await Promise.all([...running].map((s) => s.stop(false)));
  rmSync(dir, { recursive: true, force: true });
});

async function start(over: Partial<SupervisorOptions<FixtureConfig>> = {}, log: RecordingLog = recordingLog()): Promise<{ sup: Supervisor; port: number; log: RecordingLog }> {
  const sup = await runSupervised<FixtureConfig>({
    workers: 2,
    listeners: [{ protocol: 'http', address: '127.0.0.1:0' }],
    workerConfig: {},
    heartbeatIntervalMs: 100,
    shutdownTimeoutMs: 3000,
    killGraceMs: 1000,
    log,
    signals: false,
    workerEntry: fixtureEntry(),
    ...over,
  });
  running.add(sup);
  const bound = sup.listeners()[0]?.bound ?? '';
  return { sup, port: Number(bound.slice(bound.lastIndexOf(':') + 1)), log };
}

async function stop(sup: Supervisor): Promise<void> {
  await sup.stop(true);
  running.delete(sup);
}

function unixGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('N workers serve TCP and unix listeners; collect() gathers each worker\'s metrics; stop closes the sockets', async () => {
  const sock = join(dir, 'a.sock');
  const { sup, port } = await start({ listeners: [{ protocol: 'http', address: '127.0.0.1:0' }, { protocol: 'http', address: `unix:${sock}` }], socketMode: '0600' });
  assert.equal(sup.workers().length, 2);
  assert.ok(sup.workers().every((w) => w.state === 'ready'));
  assert.ok(port > 0);
  const r = await get(port, '/');
  assert.equal(r.status, 200);
  assert.match(await unixGet(sock), /^ok [12] /);
  const snap = await sup.collect(2000);
  assert.deepEqual(snap.workers.map((w) => w.metrics).sort((a, b) => (a as { worker: number }).worker - (b as { worker: number }).worker), [
    { fixture: true, worker: 1 }, { fixture: true, worker: 2 },
  ]);
  assert.equal(snap.master.targetWorkers, 2);
  await until('the request counted in a heartbeat', () => sup.workers().reduce((n, w) => n + w.requests, 0) >= 1, 3000);
  await stop(sup);
  assert.equal(await sup.exited, 0);
  assert.equal(existsSync(sock), false, 'the unix socket file is removed');
  await assert.rejects(get(port, '/', 1000), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
});

test('a worker that cannot start fails runSupervised (POSTERN_ERR_WORKER_START) and leaves nothing listening', async () => {
  const log = recordingLog();
  const sock = join(dir, 'b.sock');
  await assert.rejects(
    start({ workerConfig: { failStart: true }, listeners: [{ protocol: 'http', address: `unix:${sock}` }] }, log),
    (err: { code?: string }) => err.code === 'POSTERN_ERR_WORKER_START',
  );
  assert.equal(existsSync(sock), false);
  assert.ok(log.lines.some((l) => l.level === 'error' && l.meta['code'] === 'POSTERN_ERR_FIXTURE_FAIL'), 'the worker\'s own error code reaches the master log');
});

test('a crashed worker is replaced under load; no request started after the crash fails', async () => {
  const { sup, port, log } = await start({ workers: 2 });
  const load = loadLoop(port, '/', 4, 15_000);
  await until('load on both workers', () => load.result.byWorker.size >= 2 && load.result.ok > 40, 5000);
  const victim = sup.workers()[0]!;
  const killedAt = Date.now();
  process.kill(victim.pid, 'SIGKILL');
  await log.waitFor((l) => l.level === 'error' && l.meta['worker'] === victim.id && l.meta['signal'] === 'SIGKILL', 5000);
  await until('a replacement ready', () => sup.workers().filter((w) => w.state === 'ready' && w.id > 2).length === 1, 8000);
  const replacement = sup.workers().find((w) => w.id > 2)!;
  await until('the replacement serving', () => (load.result.byWorker.get(String(replacement.id)) ?? 0) > 5, 5000);
  const r = await load.stop();
  // Only requests already on the killed worker may fail: at most one per loop, none started later.
  assert.ok(r.failures.length <= 4, `failures: ${JSON.stringify(r.failures)}`);
  assert.deepEqual(r.failures.filter((f) => f.startedAt > killedAt + 50), []);
  assert.equal(sup.snapshot().master.crashes, 1);
  assert.ok(r.ok > 100);
  await stop(sup);
});

test('a stuck request: the worker is killed past requestTimeoutMs + killGraceMs, named in the log, and replaced', async () => {
  const { sup, port, log } = await start({
    workers: 1, requestTimeoutMs: 600, killGraceMs: 300, workerConfig: { requestTimeoutMs: 600 },
  });
  const stuck = sup.workers()[0]!;
  const started = Date.now();
  // Waits 300 ms (heartbeats report it), then blocks the loop for 20 s.
  const failed = get(port, '/block?ms=20000&after=300').then(() => 'answered', (err: { code?: string }) => err.code ?? 'error');
  const line = await log.waitFor((l) => l.level === 'error' && l.meta['worker'] === stuck.id && l.meta['limit'] === 'requestTimeoutMs', 6000);
  const tookMs = Date.now() - started;
  assert.ok(tookMs >= 900 && tookMs < 5000, `killed after ${tookMs} ms`);
  assert.equal(line.meta['method'], 'GET');
  assert.equal(line.meta['uri'], '/block?ms=20000&after=300');
  assert.ok(Number(line.meta['ageMs']) >= 900);
  assert.notEqual(await failed, 'answered');
  await until('a replacement ready', () => sup.workers().some((w) => w.id !== stuck.id && w.state === 'ready'), 8000);
  assert.equal((await get(port, '/')).status, 200);
  const snap = sup.snapshot();
  assert.equal(snap.master.deadlineKills, 1);
  assert.equal(snap.master.crashes, 0, 'a deadline kill is not a crash');
  await stop(sup);
});

test('a request blocking from its first tick is killed all the same', async () => {
  const { sup, port, log } = await start({ workers: 1, requestTimeoutMs: 400, killGraceMs: 200, workerConfig: { requestTimeoutMs: 400 } });
  const stuck = sup.workers()[0]!;
  void get(port, '/block?ms=20000').catch(() => undefined);
  await log.waitFor((l) => l.level === 'error' && l.meta['worker'] === stuck.id && l.meta['limit'] === 'requestTimeoutMs', 6000);
  await until('a replacement ready', () => sup.workers().some((w) => w.id !== stuck.id && w.state === 'ready'), 8000);
  assert.equal((await get(port, '/')).status, 200);
  await stop(sup);
});

test('a slow request within its deadline is left alone', async () => {
  const { sup, port } = await start({ workers: 1, requestTimeoutMs: 2000, killGraceMs: 200, workerConfig: { requestTimeoutMs: 2000 } });
  const r = await get(port, '/slow?ms=900');
  assert.equal(r.status, 200);
  await sleep(200);
  assert.equal(sup.snapshot().master.deadlineKills, 0);
  assert.deepEqual(sup.workers().map((w) => w.id), [1]);
  await stop(sup);
});

test('recycling by memory: a worker over maxWorkerRssMiB is replaced gracefully, the request on it completes', async () => {
  // Any Node process is over 1 MiB: the worker is due at its first heartbeat.
  const { sup, port, log } = await start({ workers: 1, maxWorkerRssMiB: 1 });
  const first = sup.workers()[0]!;
  const slow = get(port, '/slow?ms=800');
  const line = await log.waitFor((l) => l.meta['reason'] === 'memory' && l.meta['worker'] === first.id, 5000);
  assert.equal(line.meta['limitMiB'], 1);
  assert.ok(Number(line.meta['rssMiB']) > 1);
  const r = await slow;
  assert.equal(r.status, 200);
  assert.match(r.body, new RegExp(`^ok ${first.id} `));
  await until('the first worker gone', () => !sup.workers().some((w) => w.id === first.id), 8000);
  await stop(sup);
});
