// The benchmark's stand, from the load generator's side: backends started on loopback ports found
// at run time, one nginx (worker_processes 1) with a server block per target in front of them, and
// the way to take it all down. Shared by bench/run.ts and the test that checks the bench's apps
// answer through every path (test/integration/bench-frameworks.test.ts).
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portOpen, startDaemon, type Daemon } from '../test/helpers/front/daemon.ts';
import { freePort } from '../test/helpers/front/ports.ts';
import { renderTemplate } from '../test/helpers/front/render.ts';

export type Protocol = 'fastcgi' | 'scgi' | 'uwsgi' | 'http';

export interface Backend {
  readonly name: string;
  /** Ports by protocol, as the backend listens (filled in before start). */
  readonly ports: Record<string, number>;
  start(dir: string): ChildProcess;
  readonly available: () => boolean;
  /** The listeners that must answer before the backend counts as up. */
  readonly probe: readonly Protocol[];
}

export interface Target {
  readonly name: string;
  /** The backend's name; '' for a target nginx answers itself. */
  readonly backend: string;
  /** nginx server block, given nginx's listen address and the backend's ports. */
  readonly block: (listen: string, ports: Record<string, number>, name: string) => string;
  readonly scenarios: readonly string[];
}

// The templates' server_name: wrk's URLs name 127.0.0.1, and any other Host gets nginx's 421.
export const SERVER_NAME = '127.0.0.1';

/** A FastCGI front from config/nginx/<mode>.conf (`fastcgi`, `fastcgi-keepalive`). */
export const fcgi = (mode: string) => (listen: string, ports: Record<string, number>, name: string): string =>
  renderTemplate(`nginx/${mode}.conf`, { LISTEN: listen, SERVER_NAME, BACKEND: `127.0.0.1:${ports['fastcgi']}`, NAME: name });

/** proxy_pass to the backend's HTTP port with a keep-alive upstream (config/nginx/http-proxy.conf). */
export const proxy = (listen: string, p: Record<string, number>, n: string): string =>
  renderTemplate('nginx/http-proxy.conf', { LISTEN: listen, SERVER_NAME, BACKEND: `127.0.0.1:${p['http']}`, NAME: n });

export interface Stand {
  /** nginx's port for each target. */
  readonly listens: ReadonlyMap<string, number>;
  /** Each backend's pid (for CPU accounting). */
  readonly pids: ReadonlyMap<string, number | undefined>;
  readonly nginx: Daemon;
  readonly dir: string;
  stop(): Promise<void>;
}

/** Stops a backend and, past a grace period, its whole process group (uWSGI, PHP-FPM and postern
 * workers are children of a master). uWSGI's master exits on SIGINT; SIGTERM means "reload" to it. */
export async function stopChild(c: ChildProcess): Promise<void> {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  const pid = c.pid;
  const exited = new Promise<boolean>((resolve) => {
    c.once('exit', () => resolve(true));
    setTimeout(() => resolve(false), 5000).unref();
  });
  try { process.kill(pid, c.spawnargs[0] === 'uwsgi' ? 'SIGINT' : 'SIGTERM'); } catch { /* already gone */ }
  const clean = await exited;
  try { process.kill(-pid, 'SIGKILL'); } catch { /* no group left */ }
  if (!clean) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
}

const STARTUP_MS = 20_000;

/**
 * Starts every backend the targets name (one after another, each up before the next, so that
 * start-up CPU does not pile up) and one nginx in front of them all. On failure, whatever started
 * is stopped before the error is thrown.
 */
export async function startStand(backends: ReadonlyMap<string, Backend>, targets: readonly Target[]): Promise<Stand> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-'));
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  const pids = new Map<string, number | undefined>();
  const stopAll = async (): Promise<void> => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const name of new Set(targets.map((t) => t.backend).filter(Boolean))) {
      const b = backends.get(name);
      if (b === undefined) throw new Error(`no backend ${name}`);
      for (const proto of ['fastcgi', 'scgi', 'uwsgi', 'http']) b.ports[proto] = await freePort();
      const child = b.start(dir);
      children.push(child);
      pids.set(name, child.pid);
      const deadline = Date.now() + STARTUP_MS;
      for (const proto of b.probe) {
        while (!(await portOpen(b.ports[proto] ?? 0))) {
          if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not start`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    const listens = new Map<string, number>();
    const blocks: string[] = [];
    for (const [i, t] of targets.entries()) {
      const port = await freePort();
      listens.set(t.name, port);
      blocks.push(t.block(`127.0.0.1:${port}`, backends.get(t.backend)?.ports ?? {}, `t${i}`));
    }
    for (const f of ['fastcgi_params', 'scgi_params', 'uwsgi_params']) copyFileSync(join('/etc/nginx', f), join(dir, f));
    for (const sub of ['body', 'fastcgi', 'scgi', 'uwsgi', 'proxy']) mkdirSync(join(dir, sub));
    const asRoot = process.getuid?.() === 0;
    writeFileSync(join(dir, 'nginx.conf'), `${asRoot ? 'user www-data;\n' : ''}worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log error;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/body; fastcgi_temp_path ${dir}/fastcgi; scgi_temp_path ${dir}/scgi; uwsgi_temp_path ${dir}/uwsgi; proxy_temp_path ${dir}/proxy;
${blocks.join('\n')}
}\n`);
    const firstPort = listens.values().next().value ?? 0;
    const nginx = await startDaemon({ name: 'nginx', command: 'nginx', args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], port: firstPort, errorLog: join(dir, 'error.log') });
    return {
      listens, pids, nginx, dir,
      stop: async () => {
        await nginx.stop();
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
