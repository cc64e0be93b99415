// When `postern` runs a master, from the operator's side: more than one worker, or with one worker
// any policy only a master can carry out (recycling, the stuck-worker kill); otherwise the single
// process. The master's knobs reach the supervisor, and set without a master they are a warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summary, supervisorSettings } from '../../src/cli.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { MASTER_OPTIONS, SUPERVISOR_OPTIONS, needsMaster } from '../../src/config/options.ts';
import { SUPERVISOR_DEFAULTS, resolvePolicy } from '../../src/supervisor/index.ts';

test('a master runs for more than one worker, or for one worker with a recycling or deadline policy; else a single process', () => {
  const cases: ReadonlyArray<[Record<string, string>, boolean]> = [
    [{}, false],
    [{ workers: '1' }, false],
    [{ workers: '2' }, true],
    [{ requestTimeoutMs: '30s' }, true],
    [{ maxRequestsPerWorker: '1000' }, true],
    [{ maxWorkerRssMiB: '512' }, true],
    [{ maxWorkerLifetimeMs: '1h' }, true],
    // Jitter alone recycles nothing; killGraceMs alone has no deadline to count from.
    [{ maxRequestsJitter: '10' }, false],
    [{ killGraceMs: '1s' }, false],
    [{ heartbeatIntervalMs: '100' }, false],
    // The on-demand pool is the master's to grow and shrink; its idle limit alone changes nothing.
    [{ workersOnDemand: 'true' }, true],
    [{ idleWorkerTimeoutMs: '5s' }, false],
  ];
  for (const [flags, expected] of cases) assert.equal(needsMaster(resolveConfig({ flags })), expected, JSON.stringify(flags));
  assert.deepEqual([...MASTER_OPTIONS].sort(), ['maxRequestsPerWorker', 'maxWorkerLifetimeMs', 'maxWorkerRssMiB', 'requestTimeoutMs']);
});

test('every supervisor knob and master policy reaches the supervisor with its configured value', () => {
  const flags: Record<string, string> = {
    heartbeatIntervalMs: '250', workerStartTimeoutMs: '7s', respawnDelayMs: '20', respawnDelayMaxMs: '900',
    fastDeathMs: '3s', crashLoopDeaths: '2', crashLoopWindowMs: '40s', killGraceMs: '1500',
    requestTimeoutMs: '10s', maxRequestsPerWorker: '50', maxWorkerRssMiB: '300', maxWorkerLifetimeMs: '2h', maxRequestsJitter: '5', shutdownTimeoutMs: '4s', appCloseTimeoutMs: '1500', idleWorkerTimeoutMs: '3s',
  };
  const config = resolveConfig({ flags });
  const settings = supervisorSettings(config) as unknown as Record<string, unknown>;
  const policy = resolvePolicy(settings) as unknown as Record<string, unknown>;
  for (const name of Object.keys(SUPERVISOR_DEFAULTS)) {
    assert.equal(policy[name], (config as unknown as Record<string, unknown>)[name], name);
    assert.notEqual(policy[name], (SUPERVISOR_DEFAULTS as unknown as Record<string, unknown>)[name], `${name} is set away from its default here`);
  }
  assert.equal(settings['workers'], 1);
  assert.equal(settings['workerConfig'], config);
});

test('the option table\'s defaults for the master\'s knobs are the supervisor\'s own', () => {
  const config = resolveConfig({}) as unknown as Record<string, unknown>;
  for (const name of SUPERVISOR_OPTIONS) assert.equal(config[name], SUPERVISOR_DEFAULTS[name], name);
});

test('check-config says when one worker runs under a master, and why', () => {
  assert.match(summary(resolveConfig({ flags: { maxWorkerLifetimeMs: '1h', requestTimeoutMs: '30s' } })), /^ {2}workers 1 \(under a master, for requestTimeoutMs, maxWorkerLifetimeMs\)$/m);
  assert.match(summary(resolveConfig({})), /^ {2}workers 1$/m);
});

test('the master\'s knobs set for a single process are a warning naming them', () => {
  const single = resolveConfig({ flags: { crashLoopDeaths: '2', heartbeatIntervalMs: '200' } });
  assert.equal(single.warnings.filter((w) => w.includes('no effect in a single process')).length, 1);
  assert.ok(single.warnings.some((w) => w.startsWith('heartbeatIntervalMs, crashLoopDeaths have no effect')), single.warnings.join('\n'));
  assert.deepEqual(resolveConfig({ flags: { crashLoopDeaths: '2', workers: '2' } }).warnings, []);
  assert.deepEqual(resolveConfig({ flags: { crashLoopDeaths: '2', maxRequestsPerWorker: '100' } }).warnings, []);
});
