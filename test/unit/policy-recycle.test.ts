// Recycling by requests (with jitter), memory and lifetime, driven without processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recycleDue, requestLimit, type RecycleOptions } from '../../src/supervisor/policy/recycle.ts';

const off: RecycleOptions = { maxRequestsPerWorker: 0, maxRequestsJitter: 0, maxWorkerRssMiB: 0, maxWorkerLifetimeMs: 0 };
const base = { nowMs: 1_000_000, spawnedAtMs: 0, requests: 1_000_000, rssBytes: 10 * 1024 ** 3, requestLimit: 0 };

test('everything off: never due', () => {
  assert.equal(recycleDue(base, off), null);
  assert.equal(requestLimit(off, 0.99), 0);
});

test('request limit: max plus a jitter in 0..maxRequestsJitter, inclusive', () => {
  const o = { ...off, maxRequestsPerWorker: 1000, maxRequestsJitter: 50 };
  assert.equal(requestLimit(o, 0), 1000);
  assert.equal(requestLimit(o, 0.999999), 1050);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(requestLimit(o, Math.random()));
  assert.ok([...seen].every((n) => n >= 1000 && n <= 1050));
  assert.ok(seen.size > 30, 'jitter spreads the limits');
  assert.equal(requestLimit({ ...o, maxRequestsJitter: 0 }, 0.7), 1000);
});

test('due by requests at the limit, not before', () => {
  const o = { ...off, maxRequestsPerWorker: 10 };
  assert.equal(recycleDue({ ...base, requests: 9, requestLimit: 10 }, o), null);
  assert.deepEqual(recycleDue({ ...base, requests: 10, requestLimit: 10 }, o), { reason: 'requests', requests: 10, limit: 10 });
});

test('due by memory above the cap (MiB), and memory wins over the others', () => {
  const o = { ...off, maxWorkerRssMiB: 100, maxRequestsPerWorker: 1, maxWorkerLifetimeMs: 1 };
  assert.equal(recycleDue({ ...base, rssBytes: 100 * 1024 * 1024, requests: 0, requestLimit: 1, nowMs: 0 }, o), null);
  const v = recycleDue({ ...base, rssBytes: 150 * 1024 * 1024, requestLimit: 1 }, o);
  assert.deepEqual(v, { reason: 'memory', rssMiB: 150, limitMiB: 100 });
});

test('due by lifetime', () => {
  const o = { ...off, maxWorkerLifetimeMs: 60_000 };
  assert.equal(recycleDue({ ...base, nowMs: 59_999 }, o), null);
  assert.deepEqual(recycleDue({ ...base, nowMs: 60_000 }, o), { reason: 'lifetime', ageMs: 60_000, limitMs: 60_000 });
});
