// What the framework objects that must be prepared before they serve (a Next.js server's
// prepare(), a NestJS application's init()) share, from the mounting side: recognition by a set of
// methods, one preparation per object whose failure becomes a coded error, and a mount that waits
// for it on the first request when start-up (prepareApp) did not.

import type { NativeApp } from '../types.ts';

/** Whether `app` is an object with each of `names` as a method. */
export function hasMethods(app: unknown, names: readonly string[]): boolean {
  if (typeof app !== 'object' || app === null) return false;
  const o = app as Record<string, unknown>;
  for (const name of names) if (typeof o[name] !== 'function') return false;
  return true;
}

/**
 * Runs `prepare` once per `app` (the cache is the caller's) and resolves with what it gives; a
 * failure rejects, every time, with an error carrying `code` and saying `what` failed.
 */
export function prepareOnce<R>(cache: WeakMap<object, Promise<R>>, app: object, prepare: () => Promise<R>, code: string, what: string): Promise<R> {
  let ready = cache.get(app);
  if (ready === undefined) {
    ready = prepare().catch((cause: unknown) => {
      const err = new Error(`postern: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      (err as Error & { code: string }).code = code;
      throw err;
    });
    ready.catch(() => undefined);
    cache.set(app, ready);
  }
  return ready;
}

/** Serves through the app `ready` resolves to, waiting for it on the first request; a failure fails every request. */
export function whenReady(ready: () => Promise<NativeApp>): NativeApp {
  let serve: NativeApp | undefined;
  let failed = false;
  let failure: unknown;
  let waiting: Promise<void> | undefined;
  return (environ, startResponse) => {
    if (serve !== undefined) return serve(environ, startResponse);
    if (failed) throw failure;
    waiting ??= ready().then((app) => {
      serve = app;
    }, (err: unknown) => {
      failed = true;
      failure = err;
      throw err;
    });
    return waiting.then(() => (serve as NativeApp)(environ, startResponse));
  };
}
