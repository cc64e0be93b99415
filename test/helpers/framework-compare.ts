// Comparing a framework app served by postern with the same build on its own server, from the
// test's side: start the app's own server, ask both the same requests, normalise what legitimately
// differs per run (the base URL the app prints), a config file for a handler mounted with a kind, a
// copy of a build's public files that nginx's workers can read, and postern serving a build both
// ways (standalone entry and handler export) behind nginx.
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { freePort } from './front/ports.ts';
import { startNginx, type FrontServer, type NginxMode } from './front/nginx.ts';
import { cleanEnv, retry, start, type Running } from '../integration/ship-helpers.ts';
import { startCli, type Cli } from '../integration/hardening-helpers.ts';

export interface Answer {
  readonly status: number;
  /** The content type; null for static files (nginx and the app's own file server type them alike, but not byte for byte). */
  readonly type: string | null;
  /** The body, with the base URL asked replaced by `BASE` (an app that prints its origin prints its port). */
  readonly body: string;
}

export type Ask = readonly [path: string, init: (base: string) => RequestInit | undefined];

/**
 * Asks the app's own server (`own`) and postern (`ours`) each request in turn and hands both answers
 * to `check`, which by default wants them equal.
 */
export async function sameAnswers(
  own: string, ours: string, requests: readonly Ask[], isStatic: (path: string) => boolean,
  check: (answer: Answer, theirs: Answer, path: string, what: string) => void = (answer, theirs, _path, what) => assert.deepEqual(answer, theirs, what),
): Promise<void> {
  for (const [path, init] of requests) {
    const theirs = await ask(own, path, init(own), isStatic(path));
    const answer = await ask(ours, path, init(ours), isStatic(path));
    check(answer, theirs, path, `${init(ours)?.method ?? 'GET'} ${path}`);
  }
}

/** postern serving a framework build two ways behind one nginx (see startTwoWays). */
export interface TwoWays {
  readonly nginx: FrontServer<NginxMode>;
  /** Site 0's postern: the build's standalone entry, its listen() taken over. */
  readonly takeover: Cli;
  /** Site 1's postern: the handler export, mounted from a config file with kind: node. */
  readonly handler: Cli;
  /** Stops nginx and both posterns, and removes the config file and the static copy. */
  stop(): Promise<void>;
}

export interface TwoWaysSpec {
  /** The build's client files, which nginx serves itself in front of the handler (a readable copy). */
  readonly staticDir: string;
  /** The standalone entry, run on a free PORT with HOST=127.0.0.1 plus `env(site 0's URL)`. */
  readonly takeover: { readonly entry: string; readonly env?: (site: string) => Record<string, string> };
  /** The handler export (`module`'s `export`), and the environment of its postern. */
  readonly handler: { readonly module: string; readonly export: string; readonly env?: Record<string, string> };
}

/**
 * nginx with two sites, each on a fresh backend port, and a postern for each, both listening on
 * return: the stock FastCGI site with the standalone entry mounted at / (through the listen()
 * takeover), and frameworks/static.conf with nginx serving the build's client files itself and the
 * handler export mounted with kind: node. What started is stopped again if a later step fails.
 */
export async function startTwoWays(spec: TwoWaysSpec): Promise<TwoWays> {
  const started: Array<() => unknown> = [];
  const stop = async (): Promise<void> => {
    for (const undo of started.splice(0).reverse()) await undo();
  };
  try {
    const statics = readableCopy(spec.staticDir);
    started.push(() => { statics.remove(); });
    const backends = [await freePort(), await freePort()] as const;
    const nginx = await startNginx([
      { mode: 'fastcgi', backend: `127.0.0.1:${backends[0]}` },
      { mode: 'frameworks/static', backend: `127.0.0.1:${backends[1]}`, values: { STATIC_ROOT: statics.path } },
    ]);
    started.push(() => nginx.stop());
    const site = nginx.sites[0];
    assert.ok(site !== undefined);
    const takeover = startCli(['--fastcgi', `127.0.0.1:${backends[0]}`, '--mount', `/=${spec.takeover.entry}`], {
      env: { HOST: '127.0.0.1', PORT: String(await freePort()), ...spec.takeover.env?.(site.url('')) },
    });
    started.push(() => takeover.stop());
    const config = mountConfig(spec.handler.module, spec.handler.export, 'node');
    started.push(() => { config.remove(); });
    const handler = startCli(['--config', config.path, '--fastcgi', `127.0.0.1:${backends[1]}`], spec.handler.env === undefined ? {} : { env: spec.handler.env });
    started.push(() => handler.stop());
    for (const cli of [takeover, handler]) await cli.listening(['fastcgi'], 60_000);
    return { nginx, takeover, handler, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function ask(base: string, path: string, init: RequestInit | undefined, isStatic: boolean): Promise<Answer> {
  const r = await fetch(`${base}${path}`, { redirect: 'manual', ...init });
  return { status: r.status, type: isStatic ? null : r.headers.get('content-type'), body: (await r.text()).replaceAll(base, 'BASE') };
}

/** A browser's form POST from `origin` that wants an HTML page back. */
export function formPost(origin: string, fields: Readonly<Record<string, string>>): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', origin }, body: new URLSearchParams(fields).toString() };
}

export interface OwnServer {
  readonly base: string;
  readonly running: Running;
}

/**
 * Starts the app on its own server (`node <entry>`, on a free loopback port given as PORT with
 * HOST=127.0.0.1 and whatever `env(base)` adds) and waits until its output matches `ready`.
 */
export async function startOwnServer(entry: string, cwd: string, ready: RegExp, env: (base: string) => Record<string, string> = () => ({})): Promise<OwnServer> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const running = start(process.execPath, [entry], { cwd, env: cleanEnv({ HOST: '127.0.0.1', PORT: String(port), ...env(base) }) });
  await retry(() => {
    if (ready.test(running.stdout())) return true;
    if (running.child.exitCode !== null) throw new Error(`exited: ${running.stdout()}${running.stderr()}`);
    return undefined;
  }, 30_000, `the app's own server (${entry})`);
  return { base, running };
}

type MountKind = 'node' | 'fetch' | 'native';

/** Writes `dir`/postern.yaml mounting `module`'s `exportName` at / with `kind` (the CLI's --mount has no kind); returns its path. */
export function writeMountConfig(dir: string, module: string, exportName: string, kind: MountKind): string {
  const path = join(dir, 'postern.yaml');
  writeFileSync(path, `mount:\n  - { prefix: /, module: ${JSON.stringify(module)}, export: ${exportName}, kind: ${kind} }\n`);
  return path;
}

/** writeMountConfig in a directory of its own, removed by `remove()`. */
export function mountConfig(module: string, exportName: string, kind: MountKind): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-framework-'));
  return { path: writeMountConfig(dir, module, exportName, kind), remove: () => { rmSync(dir, { recursive: true, force: true }); } };
}

/**
 * A copy of `dir` under the temporary directory, readable by everyone: nginx's workers run as
 * www-data when the tests run as root (CI), and the checkout may sit where they cannot read (/root).
 */
export function readableCopy(dir: string): { path: string; remove(): void } {
  const top = mkdtempSync(join(tmpdir(), 'postern-static-'));
  chmodSync(top, 0o755);
  const path = join(top, 'public');
  cpSync(dir, path, { recursive: true });
  return { path, remove: () => { rmSync(top, { recursive: true, force: true }); } };
}
