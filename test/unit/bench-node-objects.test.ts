// bench/node-objects.ts (the floor under a (req, res) bridge) checked for what it measures, not for
// how fast: a short run completes every mode, each objects mode's responses reach its sockets (the
// script itself fails otherwise: node:http's head and 'Hello World' for every request), and it
// prints a figure per mode and the two differences BENCHMARKS.md quotes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const self = import.meta.url;
const script = fileURLToPath(new URL(`../../bench/node-objects${self.endsWith('.ts') ? '.ts' : '.js'}`, self));
const loader = self.endsWith('.ts') ? ['--import', 'tsx'] : [];

test('node-objects runs every mode and reports a figure for each', () => {
  const run = spawnSync(process.execPath, [...loader, script, '--n', '500', '--rounds', '1'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const figure = (label: string): number => {
    const line = run.stdout.split('\n').find((l) => l.startsWith(label));
    assert.ok(line !== undefined, `no "${label}" line in:\n${run.stdout}`);
    const value = Number(/(-?\d+\.\d+)/.exec(line.slice(label.length))?.[1]);
    assert.ok(Number.isFinite(value), line);
    return value;
  };
  for (const mode of ['loop ', 'objects ', 'objects+socket ']) assert.ok(figure(mode) > 0, mode);
  figure('objects − loop');
  figure('objects+socket − loop');
  assert.match(run.stdout, new RegExp(`^node ${process.version.replace(/\./g, '\\.')}, 500 requests × 1 rounds`));
});

test('node-objects refuses a count that is not a positive integer', () => {
  const run = spawnSync(process.execPath, [...loader, script, '--n', '0'], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /--n takes a positive integer/);
});
