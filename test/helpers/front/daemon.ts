// Starts a front server in the foreground as a child process, waits until its port answers, and
// stops it by pid. A server that does not come up is a test failure carrying its error log.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';

// Debian installs nginx and apache2 in /usr/sbin, which a non-root user's PATH lacks: look there
// after PATH, as scripts/test-prereqs.js (npm test's first step) does when it finds them.
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** A bare command name as found on PATH, then in the sbin directories; unchanged when not found. */
export function resolveCommand(name: string): string {
  if (name.includes('/')) return name;
  for (const dir of [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''), ...SBIN_DIRS]) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return name;
}

export interface Daemon {
  readonly pid: number;
  stop(): Promise<void>;
  readonly exited: boolean;
}

export interface DaemonSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly port: number;
  readonly errorLog: string;
  readonly startTimeoutMs?: number;
}

export async function startDaemon(spec: DaemonSpec): Promise<Daemon> {
  const child = spawn(resolveCommand(spec.command), spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  let exitCode: number | null = null;
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      exitCode = code ?? (signal === null ? null : 128);
      resolve();
    });
    child.once('error', (err) => {
      output += `spawn error: ${err.message}\n`;
      exited = true;
      resolve();
    });
  });
  const deadline = Date.now() + (spec.startTimeoutMs ?? 10_000);
  while (!(await portOpen(spec.port))) {
    if (exited || Date.now() > deadline) {
      if (!exited) await kill(child, exitPromise);
      const log = existsSync(spec.errorLog) ? readFileSync(spec.errorLog, 'utf8') : '(no error log)';
      throw new Error(`${spec.name} did not start (exit ${String(exitCode)}):\n${output}\n--- ${spec.errorLog} ---\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid ?? 0,
    get exited() { return exited; },
    stop: () => kill(child, exitPromise),
  };
}

async function kill(child: ChildProcess, exitPromise: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exitPromise;
  clearTimeout(timer);
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}
