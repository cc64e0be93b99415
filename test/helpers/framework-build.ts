// Framework fixture builds (test/fixtures/frameworks/<name>/), from the test's side: run the
// framework's own build once per content of the fixture's sources and lockfile, and reuse the
// output while they are the same (a stamp in the output directory holds their hash), so the second
// suite run in CI (Node 24, same checkout) pays nothing. Telemetry is off for every build.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface BuildSpec {
  /** The fixture directory (prepareFixture's `dir`). */
  readonly dir: string;
  /** The output directory the build writes, relative to `dir`; its stamp says what it was built from. */
  readonly out: string;
  /** The build command: a script of the fixture run by this Node, e.g. `node_modules/vite/bin/vite.js`, and its arguments. */
  readonly command: readonly string[];
  /** Environment for the build beyond the defaults (NODE_ENV=production, telemetry off). */
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export interface Built {
  /** Absolute path of the output directory. */
  readonly out: string;
  /** Milliseconds spent building (0 when the cached output was reused). */
  readonly buildMs: number;
}

/** Directories that are installed or generated, never sources: skipped when hashing. */
function generated(name: string): boolean {
  return name === 'node_modules' || name === 'build' || name.startsWith('dist') || name.startsWith('.');
}

function sourceFiles(root: string, dir = root, into: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!generated(entry.name)) sourceFiles(root, path, into);
    } else if (entry.isFile()) {
      into.push(relative(root, path));
    }
  }
  return into;
}

/** The hash a build is cached by: every source file (path and bytes), the lockfile, the command and its environment. */
export function buildHash(spec: BuildSpec): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ command: spec.command, env: spec.env ?? {} }));
  for (const file of sourceFiles(spec.dir).sort()) {
    h.update(`\0${file}\0`);
    h.update(readFileSync(join(spec.dir, file)));
  }
  return h.digest('hex');
}

/** The environment of a build: the test runner's without what would leak into it, telemetry off. */
function buildEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('POSTERN_') || k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT') continue;
    env[k] = v;
  }
  return {
    ...env,
    NODE_ENV: 'production',
    DO_NOT_TRACK: '1',
    ASTRO_TELEMETRY_DISABLED: '1',
    NUXT_TELEMETRY_DISABLED: '1',
    ...extra,
  };
}

export function buildFixture(spec: BuildSpec): Built {
  const out = join(spec.dir, spec.out);
  const stamp = join(out, '.postern-build-hash');
  const hash = buildHash(spec);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return { out, buildMs: 0 };
  rmSync(out, { recursive: true, force: true });
  const started = Date.now();
  const [script, ...args] = spec.command;
  if (script === undefined) throw new Error('buildFixture needs a command');
  const r = spawnSync(process.execPath, [script, ...args], { cwd: spec.dir, env: buildEnv(spec.env ?? {}), encoding: 'utf8', timeout: spec.timeoutMs ?? 300_000 });
  if (r.status !== 0) throw new Error(`${spec.command.join(' ')} in ${spec.dir} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  if (!existsSync(out)) throw new Error(`${spec.command.join(' ')} in ${spec.dir} wrote no ${spec.out}`);
  writeFileSync(stamp, hash);
  return { out, buildMs: Date.now() - started };
}

/** Bytes under `path` (files only, symlinks not followed), in MB, for the CI budget notes. */
export function sizeMb(path: string): number {
  let bytes = 0;
  const walk = (p: string): void => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
    else if (st.isFile()) bytes += st.size;
  };
  if (existsSync(path)) walk(path);
  return Math.round(bytes / 1e5) / 10;
}

/**
 * One line for the CI budget: what installing and building the fixture cost, with sizes in MB
 * (measured only when something was installed or built, so a cached re-run pays nothing for it).
 */
export function costLine(name: string, dir: string, installMs: number, builds: readonly Built[]): string {
  const built = builds.some((b) => b.buildMs > 0);
  const modules = installMs > 0 ? `, node_modules ${sizeMb(join(dir, 'node_modules'))} MB` : '';
  const outputs = built ? `, ${builds.map((b) => sizeMb(b.out)).join(' + ')} MB` : '';
  return `${name} fixture: npm ci ${installMs} ms${modules}; build ${builds.map((b) => b.buildMs).join(' + ')} ms${outputs}`;
}
