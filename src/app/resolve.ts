// Turns whatever the user mounts (native app, Node handler, Fetch handler, Express/Koa/Hono app)
// into the one native contract the tree dispatches to, from the mounting side.

import type { NativeApp } from './types.ts';
import { APP_KIND_ERROR, describe, fetchHandler, kindError, markedKind, native, nodeHandler } from './adapters/marker.ts';
import { fromNodeHandler, type NodeAdapterOptions, type NodeHandler } from './adapters/node.ts';
import { fromFetchHandler, type FetchAdapterOptions, type FetchHandler } from './adapters/fetch.ts';

/** Options for whichever adapter the app needs; the ones that do not apply are ignored. */
export type AdapterOptions = NodeAdapterOptions & FetchAdapterOptions;

export type AppKind = 'native' | 'node' | 'fetch' | 'auto';

export { APP_KIND_ERROR, fetchHandler, native, nodeHandler };

function method(app: unknown, name: string): ((...args: unknown[]) => unknown) | undefined {
  if ((typeof app !== 'object' && typeof app !== 'function') || app === null) return undefined;
  const m = (app as Record<string, unknown>)[name];
  return typeof m === 'function' ? (m as (...args: unknown[]) => unknown) : undefined;
}

// Express's app is itself `(req, res, next)` and carries `handle`/`set`; a Router carries `handle`
// and `use` (and `stack`). Both mount as the function they are.
function isExpressLike(app: unknown): boolean {
  return typeof app === 'function' && method(app, 'handle') !== undefined && (method(app, 'set') !== undefined || method(app, 'use') !== undefined);
}

function asNode(app: unknown, options: AdapterOptions): NativeApp {
  const callback = method(app, 'callback');
  // Koa: `app.callback()` builds the (req, res) handler from the middleware registered so far.
  if (callback !== undefined && typeof app === 'object') return fromNodeHandler(callback.call(app) as NodeHandler, options);
  if (typeof app === 'function') return fromNodeHandler(app as NodeHandler, options);
  if (callback !== undefined) return fromNodeHandler(callback.call(app) as NodeHandler, options);
  throw kindError(`kind 'node' needs a (req, res) function or an object with callback() (Koa); got ${describe(app)}`);
}

function asFetch(app: unknown, options: AdapterOptions): NativeApp {
  const fetch = method(app, 'fetch');
  if (fetch !== undefined) return fromFetchHandler(fetch.bind(app) as FetchHandler, options);
  if (typeof app === 'function') return fromFetchHandler(app as FetchHandler, options);
  throw kindError(`kind 'fetch' needs a (request) => Response function or an object with fetch() (Hono); got ${describe(app)}`);
}

/**
 * Resolves an app to the native contract. `auto` (the default) recognises, in order: an explicit
 * marker (`native()`, `nodeHandler()`, `fetchHandler()`); an object with `fetch()` (Hono, `{ fetch }`);
 * an object with `callback()` (Koa); an Express app or router; a one-parameter function (Fetch).
 * Any other plain function is ambiguous (`(environ, startResponse)` and `(req, res)` look alike;
 * rest parameters hide the count) and throws a TypeError with code `POSTERN_ERR_APP_KIND` naming what it got.
 */
export function toNativeApp(app: unknown, kind: AppKind = 'auto', options: AdapterOptions = {}): NativeApp {
  switch (kind) {
    case 'native':
      if (typeof app === 'function') return app as NativeApp;
      throw kindError(`kind 'native' needs an (environ, startResponse) function; got ${describe(app)}`);
    case 'node':
      return asNode(app, options);
    case 'fetch':
      return asFetch(app, options);
    case 'auto':
      break;
    default:
      throw kindError(`unknown app kind ${JSON.stringify(String(kind))}; use native, node, fetch or auto`);
  }
  const marked = markedKind(app);
  if (marked !== undefined) return toNativeApp(app, marked, options);
  if (typeof app === 'object' && app !== null) {
    if (method(app, 'fetch') !== undefined) return asFetch(app, options);
    if (method(app, 'callback') !== undefined) return asNode(app, options);
    // An ES module namespace or `{ default }` wrapper: look one level in.
    const inner = (app as { default?: unknown }).default;
    if (inner !== undefined && inner !== app) return toNativeApp(inner, 'auto', options);
    throw kindError(`cannot mount ${describe(app)}: expected a function, an object with fetch() (Hono) or callback() (Koa)`);
  }
  if (typeof app !== 'function') {
    throw kindError(`cannot mount ${describe(app)}: expected a function or an app object`);
  }
  if (isExpressLike(app)) return asNode(app, options);
  if (method(app, 'fetch') !== undefined) return asFetch(app, options);
  if (app.length === 1) return asFetch(app, options);
  throw kindError(
    `cannot tell the app kind of ${describe(app)}: a function that does not take exactly one (request) parameter may be native ` +
    `(environ, startResponse) or Node (req, res). Wrap it with native(), nodeHandler() or fetchHandler(), ` +
    `or mount it with an explicit kind`,
  );
}
