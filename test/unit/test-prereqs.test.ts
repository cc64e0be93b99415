// npm test's first step (scripts/test-prereqs.js), from a newcomer's side: on a machine missing the
// front servers it stops before any test with the command to run, or installs them when allowed.
// apt-get, sudo and service are stand-ins here that only record their arguments: nothing is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { repoRoot } from '../helpers/front/root.ts';

const script = join(repoRoot(), 'scripts', 'test-prereqs.js');

/** A directory holding recording stand-ins for apt-get, sudo and service; nothing else. */
function fakeBin(): { dir: string; log: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-prereqs-'));
  const log = join(dir, 'calls.log');
  const recorder = `#!/bin/sh\necho "$(basename "$0") $*" >> ${log}\n`;
  for (const name of ['apt-get', 'service']) {
    writeFileSync(join(dir, name), recorder);
    chmodSync(join(dir, name), 0o755);
  }
  // sudo without a password: runs what it is given (the recording apt-get).
  writeFileSync(join(dir, 'sudo'), '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n');
  chmodSync(join(dir, 'sudo'), 0o755);
  return { dir, log, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function check(searchPath: string, extraEnv: Record<string, string>): { status: number | null; stderr: string; ms: number } {
  const started = Date.now();
  const r = spawnSync(process.execPath, [script], {
    encoding: 'utf8',
    env: { PATH: `${searchPath}${delimiter}/usr/bin${delimiter}/bin`, POSTERN_PREREQS_PATH: searchPath, ...extraEnv },
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr, ms: Date.now() - started };
}

test('a PATH without nginx: the check stops with the exact install command and installs nothing', () => {
  const bin = fakeBin();
  try {
    const r = check(bin.dir, { POSTERN_PREREQS_INSTALL: '0' });
    assert.equal(r.status, 1);
    const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
    const command = new RegExp(`^    ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends nginx apache2 libfcgi-bin lighttpd spawn-fcgi$`, 'm');
    assert.match(r.stderr, command);
    assert.match(r.stderr, /needs nginx, /);
    assert.equal(existsSync(bin.log), false, 'apt-get, sudo or service was run');
  } finally {
    bin.done();
  }
});

test('allowed to install: apt-get update then install of exactly the missing packages, then the packaged services stopped', () => {
  const bin = fakeBin();
  try {
    const r = check(bin.dir, {});
    // The stand-in installs nothing, so the check reports what is still missing and fails.
    assert.equal(r.status, 1);
    assert.match(r.stderr, /still missing after the install: nginx, /);
    assert.deepEqual(readFileSync(bin.log, 'utf8').trim().split('\n'), [
      'apt-get update -qq',
      'apt-get install -y -qq --no-install-recommends nginx apache2 libfcgi-bin lighttpd spawn-fcgi',
      'service nginx stop',
      'service apache2 stop',
      'service lighttpd stop',
    ]);
  } finally {
    bin.done();
  }
});

test('a machine that has everything: no apt-get call, done in well under a second', () => {
  const bin = fakeBin();
  try {
    // The real PATH and sbin directories come after the stand-ins: everything is found there.
    const dirs = [bin.dir, ...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].join(delimiter);
    const r = check(dirs, {});
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(existsSync(bin.log), false, 'apt-get, sudo or service was run');
    // Node's own start-up is most of it; 2 s leaves room for a loaded 2-core machine.
    assert.ok(r.ms < 2000, `${r.ms} ms`);
  } finally {
    bin.done();
  }
});
