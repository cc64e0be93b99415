// A NestJS application as `NestFactory.create()` returns it, from the mounting side: recognised by
// the members only a Nest application has together, initialised once (`app.init()` wires its
// modules and routes without listening), then served by its platform's own instance,
// `app.getHttpAdapter().getInstance()`: an Express app or a Fastify instance, mounted as those are.

import type { NativeApp } from '../types.ts';
import { hasMethods, prepareOnce, whenReady } from './prepared.ts';

/** The members of a Nest application the bridge reads (@nestjs/core nest-application.js, v10–v12). */
export interface NestLike {
  init(): PromiseLike<unknown>;
  getHttpAdapter(): { getInstance(): unknown };
  getHttpServer(): unknown;
  listen(...args: unknown[]): unknown;
  enableShutdownHooks(...args: unknown[]): unknown;
}

/** `code` on the error every request gets when the Nest application failed to initialise. */
export const NEST_INIT_ERROR = 'POSTERN_ERR_NEST_INIT';

const MEMBERS = ['init', 'getHttpAdapter', 'getHttpServer', 'listen', 'enableShutdownHooks', 'useGlobalPipes'] as const;

/** A Nest application: init(), getHttpAdapter(), getHttpServer(), listen(), enableShutdownHooks(), useGlobalPipes(). */
export function isNestApplication(app: unknown): boolean {
  return hasMethods(app, MEMBERS);
}

// One init() per application, shared by start-up (prepareApp) and the first request.
const INIT = new WeakMap<object, Promise<unknown>>();

/** Resolves with the platform instance once the application is initialised; rejects with a coded error. */
export function nestInstance(app: NestLike): Promise<unknown> {
  return prepareOnce(INIT, app, async () => {
    await app.init();
    return app.getHttpAdapter().getInstance();
  }, NEST_INIT_ERROR, 'the NestJS application failed to initialise');
}

/**
 * Mounts a Nest application: `init()` at start-up (prepareApp) or the first request, then its
 * platform instance through `mountInstance` (Express app or Fastify instance, as recognised).
 */
export function fromNest(app: NestLike, mountInstance: (instance: unknown) => NativeApp): NativeApp {
  return whenReady(async () => mountInstance(await nestInstance(app)));
}
