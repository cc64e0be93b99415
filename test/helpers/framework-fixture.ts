// Framework fixtures (test/fixtures/frameworks/<name>/): each has its own package.json and lockfile,
// installed from the npm registry with `npm ci` on first use and reused while the lockfile is the
// same (a stamp in node_modules holds its hash), so the second suite run in CI pays nothing. Apps
// that need a build (Next.js, React Router) are built the same way: once per source hash.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

export interface BuildSpec {
  /** The build command, run with this Node (`process.execPath`): a script path and its arguments. */
  readonly args: readonly string[];
  /** Files and folders of the fixture whose contents the build depends on (besides the lockfile). */
  readonly sources: readonly string[];
  /** The folder the build writes (relative to the fixture); the stamp is kept in it. */
  readonly output: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Runs after a successful build, before the stamp is written (copying assets into place). */
  readonly after?: (dir: string) => void;
}

export interface Built {
  /** Milliseconds spent building (0 when the cached build was reused). */
  readonly buildMs: number;
}

function hashTree(hash: ReturnType<typeof createHash>, dir: string, rel: string): void {
  const path = join(dir, rel);
  if (!existsSync(path)) return;
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) hashTree(hash, dir, join(rel, name));
    return;
  }
  hash.update(`${rel}\0`).update(readFileSync(path)).update('\0');
}

/**
 * Builds a prepared fixture, once per content: a stamp in the output folder holds the hash of the
 * lockfile, the sources, the command and the fixture's path (builds record absolute paths), so the
 * Node 24 re-run in CI, and every run after the first here, reuses the build.
 */
export function buildFixture(dir: string, spec: BuildSpec, timeoutMs = 300_000): Built {
  const hash = createHash('sha256').update(`${dir}\0${spec.args.join('\0')}\0`);
  hashTree(hash, dir, 'package-lock.json');
  for (const source of spec.sources) hashTree(hash, dir, source);
  const digest = hash.digest('hex');
  const stamp = join(dir, spec.output, '.postern-build-hash');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return { buildMs: 0 };
  rmSync(join(dir, spec.output), { recursive: true, force: true });
  const started = Date.now();
  const r = spawnSync(process.execPath, spec.args, { cwd: dir, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...spec.env } });
  if (r.status !== 0) throw new Error(`building ${dir} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  spec.after?.(dir);
  writeFileSync(stamp, digest);
  return { buildMs: Date.now() - started };
}
