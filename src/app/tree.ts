// The application tree, from the server's side: apps mounted at URL prefixes (CherryPy's
// `cherrypy.tree`, uWSGI `--mount` + `--manage-script-name`), one environ dispatched to one app.

import type { Environ, NativeApp, Responder, RoleName } from './types.ts';
import { toNativeApp, type AdapterOptions, type AppKind } from './resolve.ts';
import { APP_STATUS, RUN_SETTLED, runNative, sendPlain, type RunOptions } from './run.ts';
import { fromByteString, normalizePrefix, requestPath, underPrefix } from './path.ts';
import { appCloser, closeApps, type AppCloseProblem, type AppCloser, type NamedCloser } from './shutdown.ts';

export interface TreeOptions {
  /** Put app error stacks in 500 bodies. */
  readonly debug?: boolean;
  /** Told about every app error; defaults to printing it on stderr. Must not throw. */
  readonly onError?: (err: unknown, environ: Environ) => void;
}

export interface MountOptions {
  /** How to read the app (see `toNativeApp`); default `auto`. */
  readonly kind?: AppKind;
  /** The FastCGI role this mount answers; default `responder`. */
  readonly role?: RoleName;
  /** Options for the adapter the app needs (e.g. `{ bridge: 'replay' }` for a Node app). */
  readonly adapter?: AdapterOptions;
  /**
   * How `closeApps()` closes this app; default: as `appCloser` recognises it (a NestJS application
   * or a Fastify instance by its `close()`), nothing for other apps.
   */
  readonly close?: AppCloser;
}

export interface Mount {
  /** The prefix as the app sees it in SCRIPT_NAME: a byte string, `` for the root. */
  readonly scriptName: string;
  /** The prefix for people: decoded, `/` for the root. */
  readonly prefix: string;
  readonly role: RoleName;
  readonly app: NativeApp;
}

export interface MountMatch {
  readonly prefix: string;
  readonly scriptName: string;
  readonly role: RoleName;
  readonly app: NativeApp;
}

/** Code on the TypeError thrown when a prefix is mounted twice for the same role. */
export const MOUNT_CONFLICT_ERROR = 'POSTERN_ERR_MOUNT_CONFLICT';

function defaultOnError(err: unknown, environ: Environ): void {
  const where = `${String(environ.REQUEST_METHOD)} ${String(environ.SCRIPT_NAME)}${String(environ.PATH_INFO)}`;
  console.error(`postern: app error on ${where}:`, err);
}

// Registered, like APP_KIND, so a tree built with one copy of postern (the app's dependency)
// mounts in the CLI of another (`postern --mount /=./app.js#tree`).
const TREE_BRAND = Symbol.for('postern.tree');

/** Whether a value is a Tree (from any copy of postern). */
export function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && (value as { [TREE_BRAND]?: unknown })[TREE_BRAND] === true;
}

/**
 * A tree mounted inside another tree, as one native app: its mounts are matched against the
 * PATH_INFO left below the outer prefix, at request time (so later `mount()` calls count).
 */
function subtreeApp(tree: Tree): NativeApp {
  return (environ, startResponse) => {
    const m = tree.match(environ.PATH_INFO, environ['postern.role']);
    if (m === undefined) {
      startResponse('404 Not Found', [['Content-Type', 'text/plain; charset=utf-8']]);
      return 'Not Found\n';
    }
    environ.SCRIPT_NAME += m.scriptName;
    environ.PATH_INFO = environ.PATH_INFO.slice(m.scriptName.length);
    return m.app(environ, startResponse);
  };
}

export class Tree {
  get [TREE_BRAND](): true {
    return true;
  }


  // Longest prefix first, so the first hit is the longest match (uWSGI core/protocol.c does the
  // same walk). Trees hold a handful of mounts: a sorted array beats a map of segments.
  #mounts: Mount[] = [];
  readonly #roles = new Set<RoleName>();
  readonly #run: RunOptions;
  // In mount order; a mounted Tree is closed through its own closers.
  readonly #closers: Array<{ readonly prefix: string; readonly close: AppCloser | { closers?: () => NamedCloser[] } }> = [];
  #closing: Promise<void> | undefined;

  constructor(options: TreeOptions = {}) {
    this.#run = { debug: options.debug === true, onError: options.onError ?? defaultOnError };
  }

  /**
   * Mounts an app at a prefix (default `/`). Longest prefix wins, on a path-segment boundary;
   * a trailing `/` is ignored. Mounting a prefix that is already mounted for the same role throws
   * (code `POSTERN_ERR_MOUNT_CONFLICT`): two config lines naming one prefix are a mistake to show,
   * not to resolve silently. A bad prefix throws with code `POSTERN_ERR_MOUNT_PREFIX`.
   */
  mount(app: unknown, prefix = '/', options: MountOptions = {}): this {
    const scriptName = normalizePrefix(prefix);
    const role = options.role ?? 'responder';
    if (this.#mounts.some((m) => m.scriptName === scriptName && m.role === role)) {
      const err = new TypeError(`postern: ${JSON.stringify(prefix)} is already mounted for the ${role} role`);
      (err as TypeError & { code: string }).code = MOUNT_CONFLICT_ERROR;
      throw err;
    }
    const native = isTree(app) ? subtreeApp(app) : toNativeApp(app, options.kind ?? 'auto', options.adapter);
    const mount: Mount = Object.freeze({ scriptName, prefix: scriptName === '' ? '/' : fromByteString(scriptName), role, app: native });
    this.#mounts = [...this.#mounts, mount].sort((a, b) => b.scriptName.length - a.scriptName.length);
    this.#roles.add(role);
    const close = options.close ?? (isTree(app) ? app : appCloser(app));
    if (close !== undefined) this.#closers.push({ prefix: mount.prefix, close });
    return this;
  }

  /** What `closeApps()` runs, each named `mount PREFIX` (a subtree's mounts under its prefix). */
  closers(): NamedCloser[] {
    const out: NamedCloser[] = [];
    for (const { prefix, close } of this.#closers) {
      if (typeof close === 'function') {
        out.push({ name: `mount ${prefix}`, close });
        continue;
      }
      // A Tree from an older copy of postern has no closers().
      for (const inner of close.closers?.() ?? []) {
        const below = inner.name.slice('mount '.length);
        out.push({ name: `mount ${prefix === '/' ? '' : prefix}${below === '/' && prefix !== '/' ? '' : below}`, close: inner.close });
      }
    }
    return out;
  }

  /**
   * Closes the mounted apps as their own servers would on stop (see src/app/shutdown.ts), all at
   * once; resolves when all are closed or after `timeoutMs`, never rejects. Call it once the last
   * request has finished; later calls return the first call's promise.
   */
  closeApps(options: { readonly timeoutMs: number; readonly onProblem: (problem: AppCloseProblem) => void }): Promise<void> {
    this.#closing ??= closeApps(this.closers(), options);
    return this.#closing;
  }

  /** The mounts, longest prefix first. */
  get mounts(): readonly Mount[] {
    return this.#mounts;
  }

  /** Whether any app is mounted for a role (FastCGI answers END_REQUEST(UNKNOWN_ROLE) when not). */
  hasRole(role: RoleName): boolean {
    return this.#roles.has(role);
  }

  /** The mount a byte-string path goes to, for a role (default `responder`). */
  match(path: string, role: RoleName = 'responder'): MountMatch | undefined {
    const mounts = this.#mounts;
    for (let i = 0; i < mounts.length; i++) {
      const m = mounts[i] as Mount;
      if (m.role === role && underPrefix(path, m.scriptName)) return m;
    }
    return undefined;
  }

  /**
   * Dispatches one request: SCRIPT_NAME gains the mount prefix, PATH_INFO keeps the rest; no match
   * is a 404. Never rejects: app errors become a 500 or a non-zero appStatus (see `runNative`).
   */
  handle(environ: Environ, responder: Responder): Promise<void> {
    // Not async, like runNative: a request answered at once costs no promise here either.
    try {
      const role = environ['postern.role'];
      let path = environ.PATH_INFO;
      // FastCGI §6.3: an authorizer gets neither SCRIPT_NAME nor PATH_INFO; route on REQUEST_URI.
      if (path === '' && role === 'authorizer' && typeof environ.REQUEST_URI === 'string') path = requestPath(environ.REQUEST_URI);
      const m = this.match(path, role);
      if (m === undefined) {
        sendPlain(responder, environ, 404, 'Not Found\n');
        return RUN_SETTLED;
      }
      environ.SCRIPT_NAME += m.scriptName;
      environ.PATH_INFO = path.slice(m.scriptName.length);
      // The access log's `mount` field and the per-mount metrics read it once the request is done.
      environ['postern.mount'] = m.prefix;
      const running = runNative(m.app, environ, responder, this.#run);
      return running === RUN_SETTLED ? running : running.then(undefined, (err: unknown) => this.#broken(err, environ, responder));
    } catch (err) {
      this.#broken(err, environ, responder);
      return RUN_SETTLED;
    }
  }

  // Only reached when the environ or responder itself is broken: runNative never throws.
  #broken(err: unknown, environ: Environ, responder: Responder): void {
    try {
      this.#run.onError?.(err, environ);
    } catch {
      // see runNative: an error hook must not throw
    }
    try {
      if (!responder.headSent && !responder.aborted) sendPlain(responder, environ, 500, 'Internal Server Error\n', APP_STATUS.ERROR);
      else responder.end(APP_STATUS.ERROR);
    } catch {
      // nothing left to tell anyone
    }
  }
}
