// Child processes for the shipping tests, from the test's side: run a command to its end with a
// deadline, or start a server, collect its output and stop it by pid, never leaving one behind.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Environment variables of the test runner that must not leak into what a test starts. */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('POSTERN_') || k.startsWith('LISTEN_') || k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs a command to its end; kills it (SIGKILL) past `timeoutMs`, which the result shows as the signal. */
export function run(command: string, args: readonly string[], options: SpawnOptions & { timeoutMs: number }): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const { timeoutMs, ...spawnOptions } = options;
    const child = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a long-running process with piped stdout/stderr (extra stdio entries pass handles on). */
export function start(command: string, args: readonly string[], options: SpawnOptions = {}): Running {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => { resolve({ code, signal }); });
    child.once('error', (e) => {
      err += `spawn error: ${e.message}\n`;
      resolve({ code: null, signal: null });
    });
  });
  return {
    child,
    pid: child.pid ?? 0,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Calls `attempt` every `everyMs` until it returns a value; `undefined` means not yet. Throws, with
 * `what` in the message, when `ms` pass or at once when `attempt` throws (a process that died).
 */
export async function retry<T>(attempt: () => Promise<T | undefined> | T | undefined, ms: number, what: string | (() => string), everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  const fail = (why: string): Error => new Error(`${typeof what === 'string' ? what : what()}: ${why}`);
  for (;;) {
    let v: T | undefined;
    try {
      v = await attempt();
    } catch (err) {
      throw fail(err instanceof Error ? err.message : 'failed');
    }
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw fail(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every non-empty line of a log, parsed as JSON; throws naming the first line that is not. */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => {
    try {
      const v = JSON.parse(l) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON line: ${JSON.stringify(l.slice(0, 200))}`);
    }
  });
}

/**
 * How to run this test run's `postern`: a launcher script importing build/src/cli.js when the tests
 * are compiled, src/cli.ts under tsx, so a stale dist/ never decides a result. `dispose` removes it.
 */
export function posternCommand(): { command: string; args: string[]; dispose: () => void } {
  const compiled = import.meta.url.endsWith('.js');
  const cliUrl = new URL(`../../src/cli.${compiled ? 'js' : 'ts'}`, import.meta.url).href;
  const dir = mkdtempSync(join(tmpdir(), 'postern-launcher-'));
  const launcher = join(dir, 'postern.mjs');
  writeFileSync(launcher, `import { main } from ${JSON.stringify(cliUrl)};\nawait main(process.argv);\n`);
  return {
    command: process.execPath,
    args: [...(compiled ? [] : ['--import', import.meta.resolve('tsx')]), launcher],
    dispose: () => { rmSync(dir, { recursive: true, force: true }); },
  };
}
