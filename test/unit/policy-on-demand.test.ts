// The on-demand pool's sizing rule (src/supervisor/policy/on-demand.ts), from the master's side:
// how many workers are wanted and which idle ones stop, as a pure function of reports and clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planDemand, type DemandInput, type DemandWorker } from '../../src/supervisor/policy/on-demand.ts';

const w = (id: number, over: Partial<DemandWorker> = {}): DemandWorker => ({ id, state: 'ready', counted: true, inflight: 0, lastBusyAtMs: 10_000, ...over });
const input = (over: Partial<DemandInput>): DemandInput => ({ nowMs: 10_000, want: 0, max: 3, held: 0, idleWorkerTimeoutMs: 5000, workers: [], ...over });

test('an empty pool wants nothing until the master holds a connection; then one worker', () => {
  assert.deepEqual(planDemand(input({})), { want: 0, idle: [], grew: false });
  assert.deepEqual(planDemand(input({ held: 3 })), { want: 1, idle: [], grew: true });
  // Held connections while the first worker starts: still one, not one per connection.
  assert.deepEqual(planDemand(input({ held: 3, want: 1, workers: [w(1, { state: 'starting' })] })), { want: 1, idle: [], grew: false });
});

test('it grows by one while every serving worker is busy and none is starting, never past max', () => {
  assert.equal(planDemand(input({ want: 1, workers: [w(1, { inflight: 2 })] })).want, 2);
  assert.equal(planDemand(input({ want: 2, workers: [w(1, { inflight: 1 }), w(2, { inflight: 0 })] })).want, 2, 'one worker is free');
  assert.equal(planDemand(input({ want: 2, workers: [w(1, { inflight: 1 }), w(2, { state: 'starting' })] })).want, 2, 'one is already starting');
  assert.equal(planDemand(input({ want: 3, workers: [w(1, { inflight: 1 }), w(2, { inflight: 1 }), w(3, { inflight: 1 })] })).want, 3, 'at max');
  // Workers of an older generation (a reload) or retiring ones are not the pool's.
  assert.equal(planDemand(input({ want: 1, workers: [w(1, { inflight: 1 }), w(2, { counted: false, inflight: 0 })] })).want, 2);
});

test('a worker idle for idleWorkerTimeoutMs is stopped, down to none; not while connections are held or busy', () => {
  const idle = w(1, { lastBusyAtMs: 4000 });
  assert.deepEqual(planDemand(input({ want: 1, workers: [idle] })), { want: 0, idle: [1], grew: false });
  assert.deepEqual(planDemand(input({ want: 1, workers: [w(1, { lastBusyAtMs: 6000 })] })), { want: 1, idle: [], grew: false }, '4 s idle < 5 s');
  assert.deepEqual(planDemand(input({ want: 1, workers: [w(1, { lastBusyAtMs: 4000, inflight: 1 })] })).idle, [], 'in flight at the last report');
  assert.deepEqual(planDemand(input({ want: 1, held: 1, workers: [idle] })).idle, [], 'a held connection is on its way to it');
  assert.deepEqual(planDemand(input({ want: 2, workers: [idle, w(2, { lastBusyAtMs: 9000, inflight: 1 })] })), { want: 1, idle: [1], grew: false });
  assert.deepEqual(planDemand(input({ want: 1, workers: [w(1, { state: 'starting', lastBusyAtMs: 0 })] })).idle, [], 'a starting worker is not idle');
});

test('want follows a smaller max (a reload to fewer workers) and counts workers the pool already has', () => {
  assert.equal(planDemand(input({ want: 5, max: 2, workers: [w(1, { inflight: 1 }), w(2, { inflight: 1 })] })).want, 2);
  assert.equal(planDemand(input({ want: 0, workers: [w(1, { state: 'starting' })] })).want, 1);
});
