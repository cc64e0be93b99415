// Turns whatever the user mounts (native app, Node handler, Fetch handler, Express/Koa/Fastify/Hono
// app) into the one native contract the tree dispatches to, from the mounting side. Recognition is
// a table of small predicates (APP_SHAPES), tried in order; each answers for one shape only.

import type { NativeApp } from './types.ts';
import { APP_KIND_ERROR, describe, fetchHandler, kindError, markedKind, native, nodeHandler } from './adapters/marker.ts';
import { fromNodeHandler, type NodeAdapterOptions, type NodeHandler } from './adapters/node.ts';
import { fromFetchHandler, type FetchAdapterOptions, type FetchHandler } from './adapters/fetch.ts';
import { fromFastify, isFastify, fastifyReady } from './adapters/fastify.ts';
import { fromNest, isNestApplication, nestInstance, type NestLike } from './adapters/nest.ts';
import { fromNext, isNextServer, nextHandler, type NextServerLike } from './adapters/next.ts';

/** Options for whichever adapter the app needs; the ones that do not apply are ignored. */
export type AdapterOptions = NodeAdapterOptions & FetchAdapterOptions;

export type AppKind = 'native' | 'node' | 'fetch' | 'auto';

export { APP_KIND_ERROR, fetchHandler, native, nodeHandler };

function method(app: unknown, name: string): ((...args: unknown[]) => unknown) | undefined {
  if ((typeof app !== 'object' && typeof app !== 'function') || app === null) return undefined;
  const m = (app as Record<string, unknown>)[name];
  return typeof m === 'function' ? (m as (...args: unknown[]) => unknown) : undefined;
}

// --- the predicates: one shape each ----------------------------------------------------------

/** An explicit `native()` / `nodeHandler()` / `fetchHandler()` label. */
export function isMarked(app: unknown): boolean {
  return markedKind(app) !== undefined;
}

/** Hono, or any object with `fetch(request)`. */
export function isFetchObject(app: unknown): boolean {
  return typeof app === 'object' && app !== null && method(app, 'fetch') !== undefined && !isFastify(app);
}

/** Koa: an object whose `callback()` builds the (req, res) handler. */
export function isKoaLike(app: unknown): boolean {
  return typeof app === 'object' && app !== null && method(app, 'callback') !== undefined && method(app, 'fetch') === undefined;
}

/**
 * Express's app is itself `(req, res, next)` and carries `handle`/`set`; a Router carries `handle`
 * and `use` (and `stack`). Both mount as the function they are.
 */
export function isExpressLike(app: unknown): boolean {
  return typeof app === 'function' && method(app, 'handle') !== undefined && (method(app, 'set') !== undefined || method(app, 'use') !== undefined);
}

/** A function with `fetch()` on it (a Fetch handler dressed as a function). */
export function isFetchFunction(app: unknown): boolean {
  return typeof app === 'function' && !isExpressLike(app) && (method(app, 'fetch') !== undefined || app.length === 1);
}

/** An ES module namespace or `{ default }` wrapper of something else: look one level in. */
export function isModuleWrapper(app: unknown): boolean {
  if (typeof app !== 'object' || app === null) return false;
  const inner = (app as { default?: unknown }).default;
  return inner !== undefined && inner !== app && !isFastify(app) && method(app, 'fetch') === undefined && method(app, 'callback') === undefined;
}

export { isFastify, isNestApplication, isNextServer };

export interface AppShape {
  readonly name: string;
  readonly test: (app: unknown) => boolean;
  readonly adapt: (app: unknown, options: AdapterOptions) => NativeApp;
}

/** What `auto` recognises, in order; the first shape whose test holds mounts the app. */
export const APP_SHAPES: readonly AppShape[] = [
  { name: 'marked', test: isMarked, adapt: (app, options) => toNativeApp(app, markedKind(app) ?? 'auto', options) },
  { name: 'NestJS application', test: isNestApplication, adapt: (app, options) => fromNest(app as NestLike, (instance) => toNativeApp(instance, 'auto', options)) },
  { name: 'Next.js server (next())', test: isNextServer, adapt: (app, options) => fromNext(app as NextServerLike, options) },
  { name: 'Fastify instance', test: isFastify, adapt: (app, options) => fromFastify(app as Parameters<typeof fromFastify>[0], options) },
  { name: 'object with fetch() (Hono)', test: isFetchObject, adapt: asFetch },
  { name: 'object with callback() (Koa)', test: isKoaLike, adapt: asNode },
  { name: 'Express app or router', test: isExpressLike, adapt: asNode },
  { name: 'one-parameter function or function with fetch() (Fetch)', test: isFetchFunction, adapt: asFetch },
  { name: 'module namespace / { default }', test: isModuleWrapper, adapt: (app, options) => toNativeApp((app as { default: unknown }).default, 'auto', options) },
];

function asNode(app: unknown, options: AdapterOptions): NativeApp {
  if (isFastify(app)) return fromFastify(app as Parameters<typeof fromFastify>[0], options);
  const callback = method(app, 'callback');
  // Koa: `app.callback()` builds the (req, res) handler from the middleware registered so far.
  if (callback !== undefined && typeof app === 'object') return fromNodeHandler(callback.call(app) as NodeHandler, options);
  if (typeof app === 'function') return fromNodeHandler(app as NodeHandler, options);
  if (callback !== undefined) return fromNodeHandler(callback.call(app) as NodeHandler, options);
  throw kindError(`kind 'node' needs a (req, res) function, an object with callback() (Koa) or a Fastify instance; got ${describe(app)}`);
}

function asFetch(app: unknown, options: AdapterOptions): NativeApp {
  const fetch = method(app, 'fetch');
  if (fetch !== undefined) return fromFetchHandler(fetch.bind(app) as FetchHandler, options);
  if (typeof app === 'function') return fromFetchHandler(app as FetchHandler, options);
  throw kindError(`kind 'fetch' needs a (request) => Response function or an object with fetch() (Hono); got ${describe(app)}`);
}

/**
 * Resolves an app to the native contract. `auto` (the default) takes the first of APP_SHAPES that
 * recognises it: an explicit marker; a NestJS application (initialised, then its Express or Fastify
 * instance); a Next.js server from `next()` (prepared, then its request handler); a Fastify
 * instance (ready, then its router); an object with `fetch()` (Hono, `{ fetch }`); an object with
 * `callback()` (Koa); an Express app or router; a
 * one-parameter function (Fetch); a `{ default }` wrapper of any of these.
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
  for (const shape of APP_SHAPES) if (shape.test(app)) return shape.adapt(app, options);
  if (typeof app === 'object' && app !== null) {
    throw kindError(`cannot mount ${describe(app)}: expected a function, an object with fetch() (Hono) or callback() (Koa), or a Fastify instance`);
  }
  if (typeof app !== 'function') {
    throw kindError(`cannot mount ${describe(app)}: expected a function or an app object`);
  }
  throw kindError(
    `cannot tell the app kind of ${describe(app)}: a function that does not take exactly one (request) parameter may be native ` +
    `(environ, startResponse) or Node (req, res). Wrap it with native(), nodeHandler() or fetchHandler(), ` +
    `or mount it with an explicit kind`,
  );
}

/**
 * Makes an app ready to serve before the first request, for start-up code that can wait: a NestJS
 * application gets its `init()` awaited (then its platform instance is prepared); a Next.js server
 * its `prepare()`; a Fastify instance (or a `{ default }` wrapper of one) its `ready()`, so plugins
 * or builds that fail to load fail the start instead of the first request. Anything else resolves
 * at once.
 */
export async function prepareApp(app: unknown): Promise<void> {
  if (isNestApplication(app)) return prepareApp(await nestInstance(app as NestLike));
  if (isNextServer(app)) {
    await nextHandler(app as NextServerLike);
    return;
  }
  if (isFastify(app)) return fastifyReady(app as Parameters<typeof fastifyReady>[0]);
  if (isModuleWrapper(app)) return prepareApp((app as { default: unknown }).default);
}
