// Respawn backoff and the crash-loop brake, driven without processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESPAWN_INITIAL, recordDeath, releaseBrake, spawnNotBefore, type RespawnOptions, type RespawnState } from '../../src/supervisor/policy/respawn.ts';

const opts: RespawnOptions = { respawnDelayMs: 100, respawnDelayMaxMs: 1000, fastDeathMs: 5000, crashLoopDeaths: 5, crashLoopWindowMs: 60_000 };

function deaths(times: number[], uptimeMs = 10, o = opts): RespawnState {
  return times.reduce((s, at) => recordDeath(s, { atMs: at, uptimeMs }, o), RESPAWN_INITIAL);
}

test('no deaths: spawn at once', () => {
  assert.equal(spawnNotBefore(RESPAWN_INITIAL, 1000, opts), 1000);
});

test('fast deaths double the delay, measured from the last one, up to the cap', () => {
  assert.equal(spawnNotBefore(deaths([1000]), 1000, opts), 1100);
  assert.equal(spawnNotBefore(deaths([1000, 1200]), 1200, opts), 1400);
  assert.equal(spawnNotBefore(deaths([1000, 1200, 1500]), 1500, opts), 1900);
  const big = { ...opts, crashLoopDeaths: 0 };
  assert.equal(spawnNotBefore(deaths([1, 2, 3, 4, 5, 6, 7, 8], 10, big), 8, big), 8 + 1000);
});

test('a slow death (the worker had served a while) neither delays nor counts', () => {
  const s = deaths([1000, 2000, 3000, 4000, 5000, 6000], 5000);
  assert.equal(s.braked, false);
  assert.equal(s.fastDeaths.length, 0);
  assert.equal(spawnNotBefore(s, 6000, opts), 6000);
});

test('K fast deaths within the window engage the brake; it holds after the window passes', () => {
  const four = deaths([0, 100, 200, 300]);
  assert.equal(four.braked, false);
  const five = recordDeath(four, { atMs: 400, uptimeMs: 10 }, opts);
  assert.equal(five.braked, true);
  assert.equal(spawnNotBefore(five, 400, opts), null);
  assert.equal(spawnNotBefore(five, 10 * 60_000, opts), null);
});

test('deaths outside the window do not add up to a crash loop, and the backoff resets', () => {
  const s = deaths([0, 20_000, 40_000, 60_000, 80_000, 100_000]);
  assert.equal(s.braked, false);
  assert.ok(s.fastDeaths.length < opts.crashLoopDeaths);
  // Long after the last death the window is empty: no delay.
  assert.equal(spawnNotBefore(s, 500_000, opts), 500_000);
});

test('crashLoopDeaths 0 never brakes', () => {
  const o = { ...opts, crashLoopDeaths: 0 };
  assert.equal(deaths([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1, o).braked, false);
});

test('a reload releases the brake', () => {
  const braked = deaths([0, 1, 2, 3, 4]);
  assert.equal(braked.braked, true);
  const fresh = releaseBrake();
  assert.equal(fresh.braked, false);
  assert.equal(spawnNotBefore(fresh, 5, opts), 5);
});

test('recordDeath does not mutate the state it was given', () => {
  const s = deaths([0]);
  const before = [...s.fastDeaths];
  recordDeath(s, { atMs: 5, uptimeMs: 1 }, opts);
  assert.deepEqual(s.fastDeaths, before);
});
