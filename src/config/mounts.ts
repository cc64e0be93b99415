// Loading mounted apps, from the start-up side: import each configured module (a file or a package,
// resolved from where it was configured), take the named export and mount it on a fresh Tree.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Tree } from '../app/tree.ts';
import { APP_KIND_ERROR, prepareApp } from '../app/resolve.ts';
import { ListenCapture, ordinal, serveTakenServer, type TakenServer } from '../app/takeover.ts';
import { CONFIG_ERRORS, ConfigError } from './errors.ts';
import type { ConfigIssue } from './errors.ts';
import type { Environ } from '../app/types.ts';
import type { MountConfig } from './options.ts';
import type { NodeBridge } from '../app/adapters/node-common.ts';

/** The module URL to import for a mount: files by path, packages resolved from `baseDir`. */
export function mountUrl(m: MountConfig): string {
  if (m.module.startsWith('file:')) return m.module;
  if (m.module.startsWith('/')) return pathToFileURL(m.module).href;
  try {
    // Resolve a package from where it was configured, not from postern's own node_modules.
    return pathToFileURL(createRequire(join(m.baseDir, 'noop.js')).resolve(m.module)).href;
  } catch {
    // ESM-only packages without a "require"/"default" export condition: let import() resolve it.
    return m.module;
  }
}

function hint(err: unknown, m: MountConfig): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(m.module)) {
    return ' (a .ts module needs Node ≥ 22.18 / 23.6, or running postern under tsx: node --import tsx …; or compile it to .js)';
  }
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return ` (resolved from ${m.baseDir})`;
  return '';
}

/** `#listen` or `#listen:N` in place of an export: serve the N-th http.Server to listen (default 1). */
export function listenPick(exportName: string): number | undefined {
  const m = /^listen(?::([1-9][0-9]{0,2}))?$/.exec(exportName);
  return m === null ? undefined : Number(m[1] ?? '1');
}

function importUrl(m: MountConfig, fresh?: string): string {
  const url = mountUrl(m);
  return fresh !== undefined && url.startsWith('file:') ? `${url}${url.includes('?') ? '&' : '?'}postern-reload=${encodeURIComponent(fresh)}` : url;
}

// CommonJS modules are cached by file name, whatever query the import URL carries: a fresh import
// of one would hand back the copy already loaded (a reload would keep the old code, and a script
// served through the listen() takeover would never listen again).
const REQUIRE_CACHE = createRequire(import.meta.url).cache;

/** Lets a fresh import of a CommonJS entry load its file again (its own requires stay cached, as an ES module's imports do). */
function forgetCommonJsEntry(m: MountConfig): void {
  const url = mountUrl(m);
  if (!url.startsWith('file:')) return;
  try {
    delete REQUIRE_CACHE[fileURLToPath(url)];
  } catch {
    // Not a path this platform can name: nothing was cached under it.
  }
}

async function importNamespace(m: MountConfig, fresh?: string): Promise<Record<string, unknown>> {
  if (fresh !== undefined) forgetCommonJsEntry(m);
  try {
    return await import(importUrl(m, fresh)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || code === 'ERR_UNKNOWN_FILE_EXTENSION' || err instanceof SyntaxError;
    throw loadError(m, `${notFound ? 'cannot import' : 'threw while loading:'} ${notFound ? m.module : ''}${notFound ? ': ' : ''}${(err as Error).message ?? String(err)}${hint(err, m)}`);
  }
}

function exportNames(ns: Record<string, unknown>): string {
  const names = Object.keys(ns).filter((k) => ns[k] !== undefined);
  return names.length === 0 ? 'nothing' : names.join(', ');
}

/**
 * Imports a mount's module and returns its export. `fresh` defeats the ESM module cache for file
 * modules (a reload that should see new code); each fresh import keeps the old copy in memory.
 */
export async function importMount(m: MountConfig, fresh?: string): Promise<unknown> {
  const ns = await importNamespace(m, fresh);
  if (!(m.export in ns) || ns[m.export] === undefined) {
    throw loadError(m, `${m.module} has no export ${JSON.stringify(m.export)} (it exports: ${exportNames(ns)})`);
  }
  return ns[m.export];
}

/** An export that `auto` cannot mount: an empty CommonJS `module.exports`, a script's nothing. */
function isKindError(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === APP_KIND_ERROR;
}

export interface LoadedMount {
  /** The export mounted, or the app for a taken-over server. */
  readonly app: unknown;
  /** Set when the module's own http.Server was taken over at its listen(). */
  readonly takenOver?: TakenServer;
}

/**
 * Imports a mount's module with listen() intercepted (src/app/takeover.ts) and mounts it on `tree`:
 * its export when `auto` recognises one; else the server that listened (the first, or the N-th
 * with `#listen:N`), waited for up to `listenTimeoutMs` after the import settles.
 */
async function loadMount(tree: Tree, m: MountConfig, options: BuildTreeOptions): Promise<LoadedMount> {
  const adapter = { bridge: options.nodeBridge ?? 'direct' } as const;
  const pick = listenPick(m.export);
  const timeoutMs = options.listenTimeoutMs ?? 30_000;
  const capture = ListenCapture.start();
  try {
    const ns = await importNamespace(m, options.fresh);
    let why: string;
    if (pick === undefined) {
      const exported = ns[m.export];
      if (exported !== undefined) {
        try {
          tree.mount(exported, m.prefix, { kind: m.kind, role: m.role, adapter });
          capture.stop();
          if (capture.taken.length > 0) {
            options.onWarning?.(`mount ${m.prefix}: ${m.module} exports ${JSON.stringify(m.export)}, which is mounted; the http.Server it called listen() on gets no requests (nothing was bound)`);
          }
          return { app: exported };
        } catch (err) {
          // A function whose kind cannot be told was meant as the app: say so now, not after a wait.
          if (!isKindError(err) || m.export !== 'default' || typeof exported === 'function') throw err;
          why = `its default export is not an app (${(err as Error).message.replace(/^postern: /, '')})`;
        }
      } else {
        if (m.export !== 'default') throw loadError(m, `${m.module} has no export ${JSON.stringify(m.export)} (it exports: ${exportNames(ns)})`);
        why = `it has no export "default" (it exports: ${exportNames(ns)})`;
      }
    } else {
      why = `it is mounted with #${m.export}`;
    }
    const n = pick ?? 1;
    const taken = await capture.waitFor(n, timeoutMs);
    if (capture.problems.length > 0) throw loadError(m, `${m.module} ${capture.problems.join('; ')}`);
    if (taken === undefined) {
      const count = capture.taken.length;
      const saw = count === 0 ? 'no http.Server called listen()' : `only ${count} http.Server${count === 1 ? '' : 's'} called listen() (#listen:${n} asks for the ${ordinal(n)})`;
      throw loadError(m, `${m.module}: ${why}, and ${saw} within ${timeoutMs} ms of loading (workerStartTimeoutMs)`);
    }
    capture.stop();
    report(m, capture, taken, n, options);
    // Servers sharing its handler (Fastify's other `localhost` bindings) close with it on stop.
    for (const t of capture.taken) if (t !== taken && sameHandler(t, taken)) taken.addAlias(t);
    const app = serveTakenServer(taken, adapter);
    tree.mount(app, m.prefix, { kind: 'native', role: m.role, close: () => taken.shutdown() });
    taken.onClose(() => { options.onInfo?.(`mount ${m.prefix}: ${m.module} closed its server; the mount answers 503 from now on`); });
    taken.onLateListen((r) => {
      const asked = 'path' in r ? r.path : `port ${r.port}${r.host === undefined ? '' : ` on ${r.host}`}`;
      options.onInfo?.(`mount ${m.prefix}: ${m.module} called listen() again after loading, on an http.Server with the same request handler (it asked for ${asked}); nothing was bound`);
    });
    return { app, takenOver: taken };
  } finally {
    capture.stop();
  }
}

function sameHandler(a: TakenServer, b: TakenServer): boolean {
  return a.server.listeners('request')[0] === b.server.listeners('request')[0];
}

/** One line at start about what was taken over, and a warning for what cannot work through it. */
function report(m: MountConfig, capture: ListenCapture, taken: TakenServer, n: number, options: BuildTreeOptions): void {
  const r = taken.request;
  const asked = 'path' in r ? r.path : `port ${r.port}${r.host === undefined ? '' : ` on ${r.host}`}`;
  options.onInfo?.(`mount ${m.prefix}: serving the http.Server ${m.module} listened on (it asked for ${asked}; nothing was bound)`);
  // Servers sharing one request handler (Fastify's extra localhost bindings) are one app.
  const others = capture.taken.filter((t) => t !== taken && !sameHandler(t, taken));
  if (others.length > 0) {
    options.onWarning?.(`mount ${m.prefix}: ${m.module} listened on ${capture.taken.length} http.Servers; serving the ${ordinal(n)} (pick another with #listen:N); the others get no requests`);
  }
  if (taken.server.listenerCount('upgrade') > 0) {
    options.onWarning?.(`mount ${m.prefix}: ${m.module} listens for 'upgrade' (WebSockets); upgrades cannot ride FastCGI, SCGI or uwsgi, so they will never reach it: serve WebSockets from a separate HTTP listener or process`);
  }
}

function loadError(m: MountConfig, message: string, index?: number): ConfigError {
  const issue: ConfigIssue = { code: CONFIG_ERRORS.MOUNT_LOAD, key: index === undefined ? 'mount' : `mount[${index}]`, source: 'default', origin: `mount ${m.prefix}`, message };
  return new ConfigError([issue]);
}

export interface BuildTreeOptions {
  readonly debug?: boolean;
  /** Cache-busting token for re-imports on reload. */
  readonly fresh?: string;
  readonly onError?: (err: unknown, environ: Environ) => void;
  /** How Node (req, res) apps are bridged (the `nodeBridge` option); default `direct`. */
  readonly nodeBridge?: NodeBridge;
  /** How long a module that exports no app may take to call listen() (workerStartTimeoutMs; default 30 s). */
  readonly listenTimeoutMs?: number;
  /** Start-up notes (a server taken over). */
  readonly onInfo?: (message: string) => void;
  /** Start-up warnings (an 'upgrade' listener that cannot be served, unused servers). */
  readonly onWarning?: (message: string) => void;
}

/** A tree with every configured mount, in order; all load errors are reported together. */
export async function buildTree(mounts: readonly MountConfig[], options: BuildTreeOptions = {}): Promise<Tree> {
  const tree = new Tree({ debug: options.debug === true, ...(options.onError === undefined ? {} : { onError: options.onError }) });
  const issues: ConfigIssue[] = [];
  // Imports run one after another: module top-level code may depend on order (shared state, ports).
  for (const [i, m] of mounts.entries()) {
    try {
      const { app, takenOver } = await loadMount(tree, m, options);
      // A Fastify app that cannot load its plugins fails the start, naming this mount.
      if (takenOver === undefined) await prepareApp(app);
    } catch (err) {
      const message = err instanceof ConfigError ? (err.issues[0]?.message ?? err.message) : (err as Error).message;
      issues.push({ code: CONFIG_ERRORS.MOUNT_LOAD, key: `mount[${i}]`, source: 'default', origin: `mount ${m.prefix}=${m.module}#${m.export}`, message });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return tree;
}
