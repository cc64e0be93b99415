// The request deadline seen from the master: stuck loop -> kill, overdue request in a live loop ->
// graceful recycle, otherwise nothing. Driven without processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDeadline, type DeadlineOptions } from '../../src/supervisor/policy/deadline.ts';

const opts: DeadlineOptions = { requestTimeoutMs: 1000, killGraceMs: 500, heartbeatIntervalMs: 100 };
const req = (startedAtMs: number) => ({ method: 'GET', uri: '/slow?x=1', startedAtMs });

test('off when requestTimeoutMs is 0, however long the silence', () => {
  const v = checkDeadline({ nowMs: 1e9, lastHeartbeatAtMs: 0, oldest: req(0) }, { ...opts, requestTimeoutMs: 0 });
  assert.equal(v.action, 'none');
});

test('fresh heartbeats and young requests: nothing to do', () => {
  assert.equal(checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 9950, oldest: req(9000) }, opts).action, 'none');
  assert.equal(checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 9950, oldest: undefined }, opts).action, 'none');
});

test('silent past requestTimeoutMs + killGraceMs: kill, naming the request and its age', () => {
  const v = checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 8400, oldest: req(8390) }, opts);
  assert.deepEqual(v, { action: 'kill', silentMs: 1600, request: { method: 'GET', uri: '/slow?x=1', ageMs: 1610 } });
});

test('silent exactly at the limit is not yet stuck', () => {
  assert.equal(checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 8500, oldest: undefined }, opts).action, 'none');
});

test('silent with no request known: kill, request undefined', () => {
  const v = checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 8000, oldest: undefined }, opts);
  assert.equal(v.action, 'kill');
  assert.equal(v.action === 'kill' ? v.request : 'x', undefined);
});

test('late heartbeats and an overdue request: kill sooner than the silence rule alone', () => {
  // Silent 400 ms (> 3 intervals) but far below 1500; the request is 1600 ms old.
  const v = checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 9600, oldest: req(8400) }, opts);
  assert.equal(v.action, 'kill');
});

test('a live loop with an overdue request: recycle gracefully, not kill', () => {
  const v = checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 9990, oldest: req(8000) }, opts);
  assert.deepEqual(v, { action: 'recycle', request: { method: 'GET', uri: '/slow?x=1', ageMs: 2000 } });
});

test('one late heartbeat (GC, load) is not a hang even with a short deadline', () => {
  const short: DeadlineOptions = { requestTimeoutMs: 100, killGraceMs: 50, heartbeatIntervalMs: 1000 };
  // Silent 2.5 s: beyond requestTimeout+grace, within 3 heartbeat intervals.
  assert.equal(checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 7500, oldest: undefined }, short).action, 'none');
  assert.equal(checkDeadline({ nowMs: 10_000, lastHeartbeatAtMs: 6900, oldest: undefined }, short).action, 'kill');
});
