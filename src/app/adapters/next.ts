// A Next.js server as `next({ dev: false })` returns it (the custom-server API), from the mounting
// side: recognised by the members only it has together, prepared once (`prepare()` loads the build
// without listening), then served by its own `getRequestHandler()` through the Node adapter.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NativeApp } from '../types.ts';
import { fromNodeHandler, type NodeAdapterOptions } from './node.ts';

/** Next's request handler: `(req, res, parsedUrl?)`. */
type NextRequestHandler = (req: IncomingMessage, res: ServerResponse, parsedUrl?: unknown) => unknown;

/** The members of Next's custom server the bridge reads (next/dist/server/next.js, v13–v16). */
export interface NextServerLike {
  prepare(): PromiseLike<unknown>;
  getRequestHandler(): NextRequestHandler;
  getUpgradeHandler(): unknown;
  close(): unknown;
}

/** `code` on the error every request gets when the Next.js server failed to prepare. */
export const NEXT_PREPARE_ERROR = 'POSTERN_ERR_NEXT_PREPARE';

const MEMBERS = ['prepare', 'getRequestHandler', 'getUpgradeHandler', 'close'] as const;

/** A Next.js server: prepare(), getRequestHandler(), getUpgradeHandler() and close(). */
export function isNextServer(app: unknown): boolean {
  if (typeof app !== 'object' || app === null) return false;
  const o = app as Record<string, unknown>;
  for (const name of MEMBERS) if (typeof o[name] !== 'function') return false;
  return true;
}

// One prepare() per server, shared by start-up (prepareApp) and the first request. Export the
// server unprepared: Next cannot be asked whether prepare() already ran, and a second one loads
// its request handlers again (docs/frameworks.md).
const PREPARED = new WeakMap<object, Promise<NextRequestHandler>>();

/** Resolves with the request handler once the server is prepared; rejects with a coded error. */
export function nextHandler(app: NextServerLike): Promise<NextRequestHandler> {
  let ready = PREPARED.get(app);
  if (ready === undefined) {
    ready = Promise.resolve()
      .then(() => app.prepare())
      .then(() => app.getRequestHandler(), (cause: unknown) => {
        const err = new Error(`postern: the Next.js server failed to prepare: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
        (err as Error & { code: string }).code = NEXT_PREPARE_ERROR;
        throw err;
      });
    ready.catch(() => undefined);
    PREPARED.set(app, ready);
  }
  return ready;
}

/**
 * Mounts a Next.js server: `prepare()` at start-up (prepareApp) or the first request, then its
 * `getRequestHandler()` as a Node handler. Next reads `req.url` as the full path, so mount it at `/`
 * (or give next.config `basePath` the mount prefix).
 */
export function fromNext(app: NextServerLike, options: NodeAdapterOptions = {}): NativeApp {
  let serve: NativeApp | undefined;
  let failed = false;
  let failure: unknown;
  let ready: Promise<void> | undefined;
  return (environ, startResponse) => {
    if (serve !== undefined) return serve(environ, startResponse);
    if (failed) throw failure;
    ready ??= nextHandler(app).then((handler) => {
      // Two arguments only: Next takes a third for a parsed URL, where the Node adapter passes
      // Express's `next`.
      serve = fromNodeHandler((req, res) => handler(req, res), options);
    }, (err: unknown) => {
      failed = true;
      failure = err;
      throw err;
    });
    return ready.then(() => (serve as NativeApp)(environ, startResponse));
  };
}
