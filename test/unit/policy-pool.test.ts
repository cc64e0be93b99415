// Pool sequencing (startup, respawn, recycling, reload, shrinking), driven without processes: a
// tiny simulator applies the actions the way the master does and checks capacity never dips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconcile, type PoolAction, type PoolInput, type PoolWorker } from '../../src/supervisor/policy/pool.ts';

function w(id: number, over: Partial<PoolWorker> = {}): PoolWorker {
  return { id, generation: 1, state: 'ready', retiring: false, recycleDue: false, spawnedAtMs: id, ...over };
}
function input(workers: PoolWorker[], over: Partial<PoolInput> = {}): PoolInput {
  return { nowMs: 1000, generation: 1, target: 2, workers, spawnNotBeforeMs: 0, workerStartTimeoutMs: 30_000, ...over };
}
const types = (a: PoolAction[]) => a.map((x) => x.type);

test('startup: spawn the whole target at once', () => {
  assert.deepEqual(reconcile(input([], { target: 3 })), [{ type: 'spawn', count: 3 }]);
});

test('a settled pool: nothing to do', () => {
  assert.deepEqual(reconcile(input([w(1), w(2)])), []);
});

test('a crashed worker is replaced, but not before the backoff allows; never while braked', () => {
  assert.deepEqual(reconcile(input([w(1)])), [{ type: 'spawn', count: 1 }]);
  assert.deepEqual(reconcile(input([w(1)], { spawnNotBeforeMs: 1500 })), [{ type: 'wait', untilMs: 1500 }]);
  assert.deepEqual(reconcile(input([w(1)], { spawnNotBeforeMs: null })), []);
});

test('a worker that does not become ready in time is reported and replaced', () => {
  const a = reconcile(input([w(1), w(2, { state: 'starting', spawnedAtMs: 0 })], { nowMs: 40_000 }));
  assert.deepEqual(a, [{ type: 'start-timeout', id: 2 }, { type: 'spawn', count: 1 }]);
});

test('recycling: retire the oldest due worker, start its replacement, drain only once it is ready', () => {
  let a = reconcile(input([w(1, { recycleDue: true }), w(2, { recycleDue: true })]));
  assert.deepEqual(a, [{ type: 'retire', id: 1, why: 'recycle' }, { type: 'spawn', count: 1 }]);
  // Replacement starting: the retiring worker still serves, the other due one waits its turn.
  a = reconcile(input([w(1, { retiring: true, recycleDue: true }), w(2, { recycleDue: true }), w(3, { state: 'starting', spawnedAtMs: 900 })]));
  assert.deepEqual(a, []);
  a = reconcile(input([w(1, { retiring: true, recycleDue: true }), w(2, { recycleDue: true }), w(3, { spawnedAtMs: 900 })]));
  assert.deepEqual(a, [{ type: 'drain', id: 1 }]);
  // Worker 1 draining: now worker 2's turn.
  a = reconcile(input([w(1, { retiring: true, state: 'stopping' }), w(2, { recycleDue: true }), w(3, { spawnedAtMs: 900 })]));
  assert.deepEqual(a, [{ type: 'retire', id: 2, why: 'recycle' }, { type: 'spawn', count: 1 }]);
});

test('no recycling while braked or while the pool is not full and ready', () => {
  assert.deepEqual(reconcile(input([w(1, { recycleDue: true }), w(2)], { spawnNotBeforeMs: null })), []);
  assert.deepEqual(types(reconcile(input([w(1, { recycleDue: true })]))), ['spawn']);
  assert.deepEqual(reconcile(input([w(1, { recycleDue: true }), w(2, { state: 'starting', spawnedAtMs: 999 })])), []);
});

test('reload: a full new generation starts; the old one drains only when all new workers are ready', () => {
  const old = [w(1), w(2)];
  assert.deepEqual(reconcile(input(old, { generation: 2 })), [{ type: 'spawn', count: 2 }]);
  const half = [...old, w(3, { generation: 2 }), w(4, { generation: 2, state: 'starting' })];
  assert.deepEqual(reconcile(input(half, { generation: 2 })), []);
  const all = [...old, w(3, { generation: 2 }), w(4, { generation: 2 })];
  assert.deepEqual(reconcile(input(all, { generation: 2 })), [{ type: 'drain', id: 1 }, { type: 'drain', id: 2 }]);
});

test('a reverted reload: the new generation drains (starting ones at once), the old one serves on', () => {
  const ws = [w(1), w(2), w(3, { generation: 2 }), w(4, { generation: 2, state: 'starting' })];
  assert.deepEqual(reconcile(input(ws, { generation: 1 })), [{ type: 'drain', id: 3 }, { type: 'drain', id: 4 }]);
});

test('shrinking: starting workers go first, then the oldest ready ones', () => {
  const a = reconcile(input([w(1), w(2), w(3), w(4, { state: 'starting', spawnedAtMs: 10 })], { target: 2 }));
  assert.deepEqual(a, [
    { type: 'retire', id: 4, why: 'surplus' },
    { type: 'retire', id: 1, why: 'surplus' },
    { type: 'drain', id: 4 },
    { type: 'drain', id: 1 },
  ]);
});

test('simulation: recycling every worker keeps at least target ready workers throughout', () => {
  let workers: PoolWorker[] = [w(1, { recycleDue: true }), w(2, { recycleDue: true }), w(3, { recycleDue: true })];
  let next = 4;
  let nowMs = 1000;
  const recycled = new Set<number>();
  for (let step = 0; step < 100 && recycled.size < 3; step++) {
    const ready = workers.filter((x) => x.state === 'ready').length;
    assert.ok(ready >= 3, `step ${step}: ${ready} ready`);
    for (const a of reconcile(input(workers, { nowMs, target: 3 }))) {
      if (a.type === 'retire') workers = workers.map((x) => (x.id === a.id ? { ...x, retiring: true } : x));
      if (a.type === 'spawn') for (let i = 0; i < a.count; i++) workers.push(w(next++, { state: 'starting', spawnedAtMs: nowMs }));
      if (a.type === 'drain') workers = workers.map((x) => (x.id === a.id ? { ...x, state: 'stopping' } : x));
    }
    // Next step: starting workers become ready, stopping ones exit.
    for (const x of workers) if (x.state === 'stopping') recycled.add(x.id);
    workers = workers.filter((x) => x.state !== 'stopping').map((x) => (x.state === 'starting' ? { ...x, state: 'ready' } : x));
    nowMs += 100;
  }
  assert.deepEqual([...recycled].sort(), [1, 2, 3]);
  assert.equal(workers.length, 3);
  assert.ok(workers.every((x) => x.id > 3 && !x.recycleDue));
});
