// Framework fixtures (test/fixtures/frameworks/<name>/): each has its own package.json and lockfile,
// installed from the npm registry with `npm ci` on first use and reused while the lockfile is the
// same (a stamp in node_modules holds its hash), so the second suite run in CI pays nothing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Prepared {
  readonly dir: string;
  /** Milliseconds spent installing (0 when the cached install was reused). */
  readonly installMs: number;
}

export function prepareFixture(root: string, name: string, timeoutMs = 300_000): Prepared {
  const dir = join(root, 'test', 'fixtures', 'frameworks', name);
  const lock = readFileSync(join(dir, 'package-lock.json'));
  const hash = createHash('sha256').update(lock).digest('hex');
  const stamp = join(dir, 'node_modules', '.postern-lock-hash');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return { dir, installMs: 0 };
  const started = Date.now();
  const r = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`npm ci in ${dir} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  writeFileSync(stamp, hash);
  return { dir, installMs: Date.now() - started };
}
