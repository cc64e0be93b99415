// A Next.js server as `next({ dev: false })` returns it (the custom-server API), from the mounting
// side: recognised by the members only it has together, prepared once (`prepare()` loads the build
// without listening), then served by its own `getRequestHandler()` through the Node adapter.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NativeApp } from '../types.ts';
import { fromNodeHandler, type NodeAdapterOptions } from './node.ts';
import { hasMethods, prepareOnce, whenReady } from './prepared.ts';

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
  return hasMethods(app, MEMBERS);
}

// One prepare() per server, shared by start-up (prepareApp) and the first request. Export the
// server unprepared: Next cannot be asked whether prepare() already ran, and a second one loads
// its request handlers again (docs/frameworks.md).
const PREPARED = new WeakMap<object, Promise<NextRequestHandler>>();

/** Resolves with the request handler once the server is prepared; rejects with a coded error. */
export function nextHandler(app: NextServerLike): Promise<NextRequestHandler> {
  return prepareOnce(PREPARED, app, async () => {
    await app.prepare();
    return app.getRequestHandler();
  }, NEXT_PREPARE_ERROR, 'the Next.js server failed to prepare');
}

/**
 * Mounts a Next.js server: `prepare()` at start-up (prepareApp) or the first request, then its
 * `getRequestHandler()` as a Node handler. Next reads `req.url` as the full path, so mount it at `/`
 * (or give next.config `basePath` the mount prefix).
 */
export function fromNext(app: NextServerLike, options: NodeAdapterOptions = {}): NativeApp {
  // Two arguments only: Next takes a third for a parsed URL, where the Node adapter passes
  // Express's `next`.
  return whenReady(async () => {
    const handler = await nextHandler(app);
    return fromNodeHandler((req, res) => handler(req, res), options);
  });
}
