// A Fastify instance as it is exported, from the mounting side: recognised by several members only
// Fastify has together, made ready once (its plugins load in `ready()`), then served by its own
// router, `app.routing(req, res)`, through the Node adapter.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NativeApp } from '../types.ts';
import { fromNodeHandler, type NodeAdapterOptions } from './node.ts';

/** The members of a Fastify instance the bridge reads (fastify/fastify.js, v4 and v5). */
export interface FastifyLike {
  routing(req: IncomingMessage, res: ServerResponse): void;
  ready(): PromiseLike<unknown>;
  inject(...args: unknown[]): unknown;
  register(...args: unknown[]): unknown;
  addHook(...args: unknown[]): unknown;
  listen(...args: unknown[]): unknown;
  readonly server: object;
}

/** `code` on the error every request gets when the Fastify instance failed to become ready. */
export const FASTIFY_READY_ERROR = 'POSTERN_ERR_FASTIFY_READY';

const MEMBERS = ['routing', 'ready', 'inject', 'register', 'addHook', 'listen'] as const;

/**
 * Fastify keeps its state under `Symbol('fastify.state')` (lib/symbols.js, not a registered
 * symbol, so it is matched by description; only its presence is read, never its contents).
 */
function hasFastifyState(app: object): boolean {
  for (const s of Object.getOwnPropertySymbols(app)) if (s.description === 'fastify.state') return true;
  return false;
}

/**
 * A root Fastify instance: an object with routing(), ready(), inject(), register(), addHook() and
 * listen(), an http `server` object, and Fastify's own state symbol. No other framework has that
 * set (Koa has listen and callback, Hono fetch and request, Express is a function).
 */
export function isFastify(app: unknown): boolean {
  if (typeof app !== 'object' || app === null) return false;
  const o = app as Record<string, unknown>;
  for (const name of MEMBERS) if (typeof o[name] !== 'function') return false;
  const server = o.server;
  if (typeof server !== 'object' || server === null || typeof (server as { emit?: unknown }).emit !== 'function') return false;
  return hasFastifyState(app);
}

// One ready() per instance, shared by start-up (prepareApp) and the first request.
const READY = new WeakMap<object, Promise<void>>();

/** Resolves once the instance is ready; rejects with a coded error naming the cause if it fails. */
export function fastifyReady(app: FastifyLike): Promise<void> {
  let ready = READY.get(app);
  if (ready === undefined) {
    ready = Promise.resolve()
      .then(() => app.ready())
      .then(() => undefined, (cause: unknown) => {
        const err = new Error(`postern: the Fastify app failed to become ready: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
        (err as Error & { code: string }).code = FASTIFY_READY_ERROR;
        throw err;
      });
    // Failures are reported where the promise is awaited (start-up, or each request).
    ready.catch(() => undefined);
    READY.set(app, ready);
  }
  return ready;
}

/**
 * Mounts a Fastify instance. `ready()` is called at the first request unless start-up already
 * awaited it (prepareApp); until it settles requests wait for it; if it failed, that request and
 * every later one fail with FASTIFY_READY_ERROR (a 500, told to the tree's onError).
 */
export function fromFastify(app: FastifyLike, options: NodeAdapterOptions = {}): NativeApp {
  const serve = fromNodeHandler((req: IncomingMessage, res: ServerResponse) => app.routing(req, res), options);
  let state: 'waiting' | 'ready' | 'failed' = 'waiting';
  let failure: unknown;
  let ready: Promise<void> | undefined;
  return (environ, startResponse) => {
    if (state === 'ready') return serve(environ, startResponse);
    if (state === 'failed') throw failure;
    if (ready === undefined) {
      ready = fastifyReady(app).then(() => {
        state = 'ready';
      }, (err: unknown) => {
        state = 'failed';
        failure = err;
        throw err;
      });
    }
    return ready.then(() => serve(environ, startResponse));
  };
}
