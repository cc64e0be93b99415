// reloadOnTouch, from the operator's side (Passenger's `touch tmp/restart.txt`): touching the file
// reloads the mounted apps gracefully, in a single process and under a master, with no request
// failing while requests keep coming.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { get, scratch, startCli, until } from './operate-helpers.ts';
import { touched } from '../../src/touch-reload.ts';

const VERSIONED = `
import { readFileSync } from 'node:fs';
const version = readFileSync(new URL('./version.txt', import.meta.url), 'utf8').trim();
export const app = (environ, start) => {
  start('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', String(version.length)]]);
  return version;
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
`;

test('touched: the file appearing or its mtime changing; not its removal, not an unchanged stat', () => {
  assert.equal(touched({ mtimeMs: 0 }, { mtimeMs: 1000 }), true);
  assert.equal(touched({ mtimeMs: 1000 }, { mtimeMs: 2000 }), true);
  assert.equal(touched({ mtimeMs: 1000 }, { mtimeMs: 1000 }), false);
  assert.equal(touched({ mtimeMs: 1000 }, { mtimeMs: 0 }), false);
});

/** Replaces the version atomically: a worker importing the app meanwhile reads the old or the new one, never a truncated file. */
function setVersion(dir: string, v: string): void {
  writeFileSync(join(dir, 'version.tmp'), v);
  renameSync(join(dir, 'version.tmp'), join(dir, 'version.txt'));
}

for (const workers of [1, 2]) {
  test(`a touch reloads the apps with no failed request under load (workers: ${String(workers)})`, async () => {
    const s = scratch();
    let stop = false;
    const cli = (() => {
      writeFileSync(join(s.dir, 'version.txt'), 'v1');
      writeFileSync(join(s.dir, 'versioned.mjs'), VERSIONED);
      return startCli(s, ['--http', '127.0.0.1:0', '--workers', String(workers), '--mount', `/=${join(s.dir, 'versioned.mjs')}#app`,
        '--reload-on-touch', join(s.dir, 'tmp', 'restart.txt'), '--log-format', 'json']);
    })();
    try {
      const port = await cli.port('http');
      // The watch starts with the last ready line (a touch before it is no reload: the apps load fresh anyway).
      await cli.waitFor(workers === 1 ? 'mount(s))' : 'ready (master pid');
      assert.equal((await get(port, '/')).text, 'v1');
      // Load: two clients in a loop until told to stop (bounded by a deadline either way).
      let ok = 0;
      const failures: string[] = [];
      const deadline = Date.now() + 150_000;
      const client = async (): Promise<void> => {
        while (!stop && Date.now() < deadline) {
          try {
            // One connection per request: idle keep-alive connections closing as old workers drain is a
            // separate matter (a client retries those); here every request must be answered.
            const r = await get(port, '/', { connection: 'close' });
            if (r.status === 200 && /^v[123]$/.test(r.text)) ok++;
            else failures.push(`${String(r.status)} ${r.text}`);
          } catch (err) {
            failures.push(String(err));
          }
        }
      };
      const load = Promise.all([client(), client()]);
      await new Promise((r) => setTimeout(r, 300));
      setVersion(s.dir, 'v2');
      // The directory and file appear now (Passenger's tmp/restart.txt need not exist beforehand).
      mkdirSync(join(s.dir, 'tmp'));
      writeFileSync(join(s.dir, 'tmp', 'restart.txt'), '');
      await until(async () => (await get(port, '/', { connection: 'close' })).text === 'v2', 60_000, 'the reloaded app');
      await cli.waitFor('restart.txt was touched: reloading');
      await cli.waitFor(workers === 1 ? 'reloaded (same listeners' : 'reloaded: generation 2');
      // A second touch (mtime moved on) reloads again.
      setVersion(s.dir, 'v3');
      const later = new Date(Date.now() + 5000);
      utimesSync(join(s.dir, 'tmp', 'restart.txt'), later, later);
      await until(async () => (await get(port, '/', { connection: 'close' })).text === 'v3', 60_000, 'the second reload');
      stop = true;
      await load;
      assert.deepEqual(failures, []);
      assert.ok(ok > 0, 'requests were served during the reload');
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exitWithin(15_000), 0);
    } finally {
      stop = true;
      await cli.kill();
      s.remove();
    }
  });
}
