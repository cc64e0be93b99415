// The metrics registry: counters, status classes, histogram bucket edges, caps on mounts and
// reasons, snapshots that survive structured cloning (cluster IPC), merging workers, quantiles,
// and the status report built from a process or from a supervisor pool snapshot.

import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import {
  LATENCY_BUCKETS_MS, MAX_MOUNTS, Metrics, STATUS_CLASSES, isMetricsSnapshot, mergeSnapshots, quantileMs,
  type MetricsSnapshot,
} from '../../src/status/metrics.ts';
import { buildStatusReport, isStatusReport } from '../../src/status/report.ts';
import type { PoolSnapshot } from '../../src/supervisor/messages.ts';

function cls(name: (typeof STATUS_CLASSES)[number]): number {
  return STATUS_CLASSES.indexOf(name);
}

describe('Metrics', () => {
  test('requests, in flight and busy starts', () => {
    const m = new Metrics({ worker: 4 });
    m.requestStarted();
    m.requestStarted(); // one already in flight: busy
    m.requestFinished('/a', 200, 3);
    m.requestStarted(); // still one in flight: busy
    m.requestFinished('/a', 200, 3);
    m.requestFinished('/b', 404, 1);
    m.requestStarted(); // idle before: not busy
    const s = m.snapshot();
    assert.equal(s.worker, 4);
    assert.equal(s.pid, process.pid);
    assert.equal(s.requests, 3);
    assert.equal(s.inFlight, 1);
    assert.equal(s.busyStarts, 2);
    assert.ok(s.rssBytes > 0);
    assert.ok(s.eventLoopUtilization >= 0 && s.eventLoopUtilization <= 1);
  });

  test('status classes: 1xx–5xx, and other for 0 and out-of-range codes', () => {
    const m = new Metrics();
    for (const st of [100, 199, 200, 204, 301, 399, 400, 499, 500, 599, 0, 600, 99]) {
      m.requestStarted();
      m.requestFinished('/', st, 1);
    }
    const [mt] = m.snapshot().mounts;
    assert.deepEqual(mt?.statusClasses, [2, 2, 2, 2, 2, 3]);
    assert.equal(mt?.statusClasses[cls('other')], 3);
  });

  test('a duration equal to a bound lands in that bucket (le is inclusive); beyond the last in +Inf', () => {
    const m = new Metrics({ bucketsMs: [1, 10, 100] });
    for (const d of [0, 1, 1.0001, 10, 99, 100, 100.5, 1e9, -5]) {
      m.requestStarted();
      m.requestFinished('/x', 200, d);
    }
    const [mt] = m.snapshot().mounts;
    assert.deepEqual(mt?.buckets, [3, 2, 2, 2]); // ≤1: 0,1,-5(→0)  ≤10: 1.0001,10  ≤100: 99,100  +Inf: 100.5, 1e9
    assert.equal(mt?.requests, 9);
    assert.equal(mt?.sumMs, 0 + 1 + 1.0001 + 10 + 99 + 100 + 100.5 + 1e9);
  });

  test('default buckets are the documented ones', () => {
    const s = new Metrics().snapshot();
    assert.deepEqual(s.bucketsMs, LATENCY_BUCKETS_MS);
    assert.throws(() => new Metrics({ bucketsMs: [5, 5] }), RangeError);
  });

  test('connections per protocol; closes never go below zero', () => {
    const m = new Metrics();
    m.connectionOpened('fastcgi');
    m.connectionOpened('fastcgi');
    m.connectionOpened('http');
    m.connectionClosed('fastcgi');
    m.connectionClosed('scgi');
    const s = m.snapshot();
    assert.deepEqual(s.connectionsOpen, { fastcgi: 1, scgi: 0, uwsgi: 0, http: 1 });
    assert.deepEqual(s.connectionsTotal, { fastcgi: 2, scgi: 0, uwsgi: 0, http: 1 });
  });

  test('rejections by reason, capped at 32 distinct reasons', () => {
    const m = new Metrics();
    m.rejected('maxConnections');
    m.rejected('maxConnections');
    m.rejected('overloaded');
    for (let i = 0; i < 40; i++) m.rejected(`bogus-${String(i)}`);
    const r = m.snapshot().rejected;
    assert.equal(r['maxConnections'], 2);
    assert.equal(r['overloaded'], 1);
    assert.equal(Object.keys(r).length, 33);
    assert.equal(r['other'], 10);
  });

  test('mounts beyond MAX_MOUNTS fold into (other)', () => {
    const m = new Metrics();
    for (let i = 0; i < MAX_MOUNTS + 10; i++) {
      m.requestStarted();
      m.requestFinished(`/m${String(i)}`, 200, 1);
    }
    const s = m.snapshot();
    assert.equal(s.mounts.length, MAX_MOUNTS + 1);
    assert.equal(s.mounts.find((x) => x.mount === '(other)')?.requests, 10);
  });

  test('a snapshot is plain data: it survives structured cloning and validates', () => {
    const m = new Metrics({ worker: 2 });
    m.requestStarted();
    m.requestFinished('/a', 200, 7);
    const s = m.snapshot();
    const copy = structuredClone(s);
    assert.deepEqual(copy, s);
    assert.ok(isMetricsSnapshot(copy));
    assert.ok(!isMetricsSnapshot({ ...copy, version: 2 }));
    assert.ok(!isMetricsSnapshot({ ...copy, mounts: [{ mount: '/a', requests: 1, statusClasses: [1], buckets: [], sumMs: 0 }] }));
    assert.ok(!isMetricsSnapshot(null));
    assert.ok(!isMetricsSnapshot({ ...copy, connectionsOpen: { fastcgi: 1 } }));
  });
});

function workerSnapshot(worker: number, requests: Array<[string, number, number]>, inFlight = 0): MetricsSnapshot {
  const m = new Metrics({ worker });
  for (const [mount, status, ms] of requests) {
    m.requestStarted();
    m.requestFinished(mount, status, ms);
  }
  for (let i = 0; i < inFlight; i++) m.requestStarted();
  m.connectionOpened('fastcgi');
  m.rejected('overloaded');
  return m.snapshot();
}

describe('merging and reports', () => {
  test('mergeSnapshots sums counters, buckets and mounts across workers', () => {
    const a = workerSnapshot(1, [['/a', 200, 2], ['/a', 500, 30], ['/b', 200, 0.5]], 1);
    const b = workerSnapshot(2, [['/a', 200, 2000]]);
    const t = mergeSnapshots([a, b]);
    assert.equal(t.workers, 2);
    assert.equal(t.requests, 4);
    assert.equal(t.inFlight, 1);
    assert.equal(t.busyWorkers, 1);
    assert.deepEqual(t.connectionsOpen, { fastcgi: 2, scgi: 0, uwsgi: 0, http: 0 });
    assert.deepEqual(t.rejected, { overloaded: 2 });
    assert.deepEqual(t.mounts.map((x) => x.mount), ['/a', '/b']);
    const ma = t.mounts[0]!;
    assert.equal(ma.requests, 3);
    assert.equal(ma.sumMs, 2032);
    assert.deepEqual(ma.statusClasses, [0, 2, 0, 0, 1, 0]);
    assert.equal(ma.buckets.reduce((x, y) => x + y, 0), 3);
    assert.equal(ma.buckets[LATENCY_BUCKETS_MS.indexOf(2.5)], 1);
    assert.equal(ma.buckets[LATENCY_BUCKETS_MS.indexOf(50)], 1);
    assert.equal(ma.buckets[LATENCY_BUCKETS_MS.indexOf(2500)], 1);
  });

  test('a snapshot with other bucket bounds keeps its counts but not its buckets', () => {
    const a = workerSnapshot(1, [['/a', 200, 2]]);
    const m = new Metrics({ bucketsMs: [1, 2, 3] });
    m.requestStarted();
    m.requestFinished('/a', 200, 2);
    const t = mergeSnapshots([a, m.snapshot()]);
    assert.equal(t.mounts[0]?.requests, 2);
    assert.equal(t.mounts[0]?.buckets.reduce((x, y) => x + y, 0), 1);
  });

  test('quantiles interpolate inside buckets', () => {
    const bounds = [10, 20, 40];
    assert.equal(quantileMs(0.5, [0, 10, 0, 0], bounds), 15);
    assert.equal(quantileMs(1, [0, 10, 0, 0], bounds), 20);
    assert.equal(quantileMs(0.5, [5, 0, 5, 0], bounds), 10);
    assert.equal(quantileMs(0.99, [0, 0, 0, 4], bounds), 40);
    assert.ok(Number.isNaN(quantileMs(0.5, [0, 0, 0, 0], bounds)));
  });

  test('report from this process alone', () => {
    const s = workerSnapshot(0, [['/a', 200, 1]], 1);
    const r = buildStatusReport({ snapshots: [s], now: s.startedAt + 5000, backlog: [{ address: '127.0.0.1:9000', port: 9000, queued: 0, max: 511 }] });
    assert.ok(isStatusReport(structuredClone(r)));
    assert.equal(r.master, undefined);
    assert.equal(r.workers.length, 1);
    assert.equal(r.workers[0]?.uptimeMs, 5000);
    assert.equal(r.workers[0]?.metrics, true);
    assert.equal(r.totals.saturated, true);
    assert.equal(r.backlog.length, 1);
  });

  test('report from a supervisor PoolSnapshot: metrics where they arrived, heartbeat figures where not', () => {
    const w1 = workerSnapshot(1, [['/a', 200, 1], ['/a', 200, 1]], 0);
    const now = Date.now();
    const pool: PoolSnapshot = {
      master: { pid: 100, startedAt: now - 60_000, generation: 2, targetWorkers: 2, crashLoopBraked: false, crashes: 1, deadlineKills: 0, recycled: 3, reloads: 1 },
      workers: [
        { id: 1, pid: w1.pid, generation: 2, state: 'ready', retiring: false, startedAt: now - 1000, uptimeMs: 1000, requests: 2, inflight: 0, rssBytes: 1, lastHeartbeatAgeMs: 10, oldest: [], metrics: w1 },
        { id: 2, pid: 999, generation: 2, state: 'ready', retiring: true, startedAt: now - 2000, uptimeMs: 2000, requests: 7, inflight: 2, rssBytes: 5000, lastHeartbeatAgeMs: 10, oldest: [], metrics: null },
      ],
    };
    const r = buildStatusReport({ pool: { ...pool, workers: pool.workers.map((w) => (w.id === 2 ? { ...w, lastRestartReason: 'recycled: maxRequestsPerWorker' } : w)) }, now });
    assert.equal(r.master?.uptimeMs, 60_000);
    assert.equal(r.master?.recycled, 3);
    assert.deepEqual(r.workers.map((w) => [w.id, w.metrics, w.requests, w.inFlight, w.state]), [[1, true, 2, 0, 'ready'], [2, false, 7, 2, 'ready']]);
    assert.equal(r.workers[1]?.lastRestartReason, 'recycled: maxRequestsPerWorker');
    assert.equal(r.workers[1]?.retiring, true);
    assert.equal(r.totals.requests, 9); // the silent worker's heartbeat count is included
    assert.equal(r.totals.rssBytes, w1.rssBytes + 5000);
    assert.equal(r.totals.inFlight, 2); // in flight counts the silent worker's heartbeat
    assert.equal(r.totals.busyWorkers, 1);
    assert.equal(r.totals.saturated, false);
    assert.equal(r.totals.workers, 2);
    assert.equal(r.mounts[0]?.requests, 2);
  });
});
