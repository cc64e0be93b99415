// The supervisor with real worker processes, from the master's side: recycling under load, the
// crash-loop brake (serving on, or exiting 1 with no worker left), and reloads through the API.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runSupervised, type Supervisor, type SupervisorOptions, type SupervisorSettings } from '../../src/supervisor/index.ts';
import { fixtureEntry, get, loadLoop, recordingLog, sleep, until, type RecordingLog } from '../fixtures/supervisor/harness.ts';
import type { FixtureConfig } from '../fixtures/supervisor/worker.ts';

const running = new Set<Supervisor>();
after(async () => {
  await Promise.all([...running].map((s) => s.stop(false)));
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

// Zero failures needs the worker's graceful close to serve connections it accepted just before it
// stopped accepting, whose request bytes are still in flight (postern's drain serves them; see
// test/integration/drain.test.ts). The real server, then; `server: 'plain'` runs the fixture's
// node:http baseline instead, for comparison.
const DRAIN_SAFE: FixtureConfig = { server: 'postern' };

test('recycling after N requests (with jitter) replaces workers under load with zero failed requests', async () => {
  const { sup, port, log } = await start({ workers: 2, maxRequestsPerWorker: 60, maxRequestsJitter: 20, workerConfig: DRAIN_SAFE });
  const load = loadLoop(port, '/', 4, 20_000);
  await until('two workers recycled', () => sup.snapshot().master.recycled >= 2 && sup.workers().filter((w) => w.id > 2 && w.state === 'ready').length >= 2, 15_000);
  await until('replacements serving', () => [...load.result.byWorker.keys()].filter((id) => Number(id) > 2).length >= 2, 5000);
  const r = await load.stop();
  assert.deepEqual(r.failures, []);
  const recycledLines = log.lines.filter((l) => l.level === 'info' && l.meta['reason'] === 'requests');
  assert.ok(recycledLines.length >= 2);
  for (const l of recycledLines) {
    const limit = Number(l.meta['limit']);
    assert.ok(limit >= 60 && limit <= 80, `limit ${limit} within max + jitter`);
  }
  await stop(sup);
});

test('recycling by lifetime replaces a worker gracefully: the request in flight on it completes', async () => {
  const { sup, port } = await start({ workers: 1, maxWorkerLifetimeMs: 1500 });
  const first = sup.workers()[0]!;
  const slow = get(port, '/slow?ms=1500');
  await until('the first worker replaced', () => !sup.workers().some((w) => w.id === first.id), 10_000);
  const r = await slow;
  assert.equal(r.status, 200);
  assert.match(r.body, new RegExp(`^ok ${first.id} `));
  assert.ok(sup.snapshot().master.recycled >= 1);
  await stop(sup);
});

test('crash-loop brake: after K fast deaths respawning stops, loudly, and the remaining worker serves on', async () => {
  const { sup, port, log } = await start({
    workers: 2, workerConfig: { crashAfterReadyMs: 300, keepWorker: 1 }, crashLoopDeaths: 3, respawnDelayMs: 50,
  });
  const line = await log.waitFor((l) => l.level === 'error' && l.meta['crashLoop'] === true, 20_000);
  assert.equal(line.meta['workersLeft'], 1);
  assert.equal(sup.snapshot().master.crashLoopBraked, true);
  await sleep(500);
  assert.deepEqual(sup.workers().map((w) => w.id), [1], 'no respawn after the brake');
  assert.equal(sup.snapshot().master.crashes, 3);
  assert.match((await get(port, '/')).body, /^ok 1 /);
  await stop(sup);
  assert.equal(await sup.exited, 0);
});

test('crash loop with no worker left: the master stops and exits 1', async () => {
  const { sup, log } = await start({ workers: 1, workerConfig: { crashAfterReadyMs: 200 }, crashLoopDeaths: 2, respawnDelayMs: 50 });
  assert.equal(await sup.exited, 1);
  running.delete(sup);
  assert.ok(log.lines.some((l) => l.level === 'error' && l.meta['crashLoop'] === true));
});

test('reload via the API: new config reaches new workers, old ones drain; a failing reload keeps the old ones', async () => {
  let next: FixtureConfig = { tag: 'two' };
  const settings = (cfg: FixtureConfig): SupervisorSettings<FixtureConfig> => ({
    workers: 2, listeners: [{ protocol: 'http', address: '127.0.0.1:0' }], workerConfig: cfg, heartbeatIntervalMs: 100, shutdownTimeoutMs: 3000,
  });
  const { sup, port } = await start({ ...settings({ tag: 'one' }), loadConfig: () => Promise.resolve(settings(next)) });
  assert.match((await get(port, '/')).body, / one$/m);
  await sup.reload();
  assert.deepEqual(sup.workers().map((w) => w.id).sort(), [3, 4]);
  assert.match((await get(port, '/')).body, / two$/m);
  assert.equal(sup.listeners()[0]?.bound, `127.0.0.1:${port}`, 'the same socket, not a new :0 port');

  next = { tag: 'three', failStart: true };
  await assert.rejects(sup.reload(), (err: { code?: string }) => err.code === 'POSTERN_ERR_RELOAD_FAILED');
  await until('the failed generation gone', () => sup.workers().length === 2, 5000);
  assert.deepEqual(sup.workers().map((w) => w.id).sort(), [3, 4]);
  assert.match((await get(port, '/')).body, / two$/m);
  await stop(sup);
});
