// The real `postern` command in a child process for the operate tests, from an operator's side:
// started with flags, its bound ports read back from the event log, a module of small native apps
// to mount, and requests over HTTP and FastCGI.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const compiled = here.endsWith('.js');
export const root = (() => {
  let dir = dirname(here);
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();
// The CLI as this test run built it (build/src/cli.js compiled, src/cli.ts under tsx), from a script
// file: supervised workers re-run process.argv[1].
const cliUrl = new URL(`../../src/cli.${compiled ? 'js' : 'ts'}`, import.meta.url).href;

/** A scratch directory with the launcher and the apps module; `remove()` in `after`. */
export interface Scratch {
  readonly dir: string;
  readonly launcher: string;
  /** The apps module: `root` (answers everything), `app` (`?status=N`, `?bytes=N`), `slow` (`?ms=N`). */
  readonly apps: string;
  remove(): void;
}

const APPS = `
const mark = (app) => { Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' }); return app; };
const query = (environ) => new URLSearchParams(environ.QUERY_STRING);
export const root = mark((environ, start) => {
  const body = 'root ' + environ.SCRIPT_NAME + '|' + environ.PATH_INFO;
  start('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]]);
  return body;
});
export const app = mark((environ, start) => {
  const q = query(environ);
  const status = Number(q.get('status') ?? '200');
  const body = 'x'.repeat(Number(q.get('bytes') ?? '5'));
  start(status + ' Whatever', [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]]);
  return body;
});
export const slow = mark(async (environ, start) => {
  await new Promise((resolve) => setTimeout(resolve, Number(query(environ).get('ms') ?? '100')));
  start('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', '4']]);
  return 'slow';
});
`;

export function scratch(): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'postern-operate-'));
  const launcher = join(dir, 'postern.mjs');
  writeFileSync(launcher, `import { main } from ${JSON.stringify(cliUrl)};\nawait main(process.argv);\n`);
  const apps = join(dir, 'apps.mjs');
  writeFileSync(apps, APPS);
  return { dir, launcher, apps, remove: () => { rmSync(dir, { recursive: true, force: true }); } };
}

/** The mounts every operate test serves: `/` root, `/app`, `/slow`. */
export function mounts(s: Scratch): string[] {
  return ['--mount', `/=${s.apps}#root`, '--mount', `/app=${s.apps}#app`, '--mount', `/slow=${s.apps}#slow`];
}

function nodeArgs(s: Scratch): string[] {
  return [...(compiled ? [] : ['--import', import.meta.resolve('tsx')]), s.launcher];
}

/** The environment without any POSTERN_* variable of the test runner's own. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('POSTERN_')) env[k] = v;
  return env;
}

export interface Cli {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Event log lines (stderr, or the log file when given) parsed as JSON; other lines skipped. */
  events(): Array<Record<string, unknown>>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
  /** Waits until `text` shows in the output (and the log file, when one is given). */
  waitFor(text: string, ms?: number): Promise<void>;
  /** Every `<protocol> listening on <address>` announced, in order. */
  listening(): Array<{ protocol: string; port: number }>;
  /** The port of the first `protocol` listener announced, waited for. */
  port(protocol: string): Promise<number>;
  /** Exits within `ms` (after a signal), else the test fails. */
  exitWithin(ms: number): Promise<number>;
  kill(): Promise<void>;
}

/** `nodeFlags`: node's own flags, before the script (workers inherit them through execArgv). */
export function startCli(s: Scratch, args: readonly string[], options: { logFile?: string; nodeFlags?: readonly string[] } = {}): Cli {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...nodeArgs(s), ...args], { cwd: s.dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => { resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)); });
  });
  const text = (): string => {
    let file = '';
    if (options.logFile !== undefined && existsSync(options.logFile)) file = readFileSync(options.logFile, 'utf8');
    return `${out}\n${file}`;
  };
  const cli: Cli = {
    child,
    output: () => out,
    events: () => text().split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    }),
    exited,
    async waitFor(wanted, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (!text().includes(wanted)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${JSON.stringify(wanted)} in:\n${text()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    listening: () => [...text().matchAll(/(fastcgi|scgi|uwsgi|http|status) listening on [^\s"]*:(\d+)/g)].map((m) => ({ protocol: m[1] ?? '', port: Number(m[2]) })),
    async port(protocol) {
      await cli.waitFor(`${protocol} listening on`);
      const p = cli.listening().find((l) => l.protocol === protocol)?.port;
      assert.ok(p !== undefined && p > 0, `${protocol} port in:\n${text()}`);
      return p;
    },
    async exitWithin(ms) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<number>((_, reject) => {
        timer = setTimeout(() => { reject(new Error(`no exit within ${ms} ms:\n${text()}`)); }, ms);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  return cli;
}

/** Runs the CLI to completion (`postern status --once`). */
export function runCli(s: Scratch, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...nodeArgs(s), ...args], { cwd: s.dir, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface HttpAnswer {
  readonly status: number;
  readonly type: string;
  readonly text: string;
}

export async function get(port: number, path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** Polls `check` until it holds (bounded). */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
