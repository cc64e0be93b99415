// Closing mounted apps when postern stops, from the stopping side: each app is closed the way its
// own server would close it (a NestJS application's `close()` runs its onModuleDestroy /
// beforeApplicationShutdown / onApplicationShutdown hooks, a Fastify instance's `close()` its
// onClose hooks, a taken-over http.Server gets 'close'), all at once, within one deadline.

import { isFastify } from './adapters/fastify.ts';
import { isNestApplication } from './adapters/nest.ts';

/** Closes one app; may return a promise. */
export type AppCloser = () => unknown;

/** A mounted app's closer, named for the log (`mount /api`). */
export interface NamedCloser {
  readonly name: string;
  readonly close: AppCloser;
}

/** Code on the errors `closeApps` reports. */
export const APP_CLOSE_ERRORS = {
  /** The close hook threw or rejected. */
  FAILED: 'POSTERN_ERR_APP_CLOSE_FAILED',
  /** The close hook had not settled when appCloseTimeoutMs ran out. */
  TIMEOUT: 'POSTERN_ERR_APP_CLOSE_TIMEOUT',
} as const;

export type AppCloseErrorCode = (typeof APP_CLOSE_ERRORS)[keyof typeof APP_CLOSE_ERRORS];

export interface AppCloseProblem {
  readonly name: string;
  readonly code: AppCloseErrorCode;
  /** What it threw (FAILED). */
  readonly error?: unknown;
}

/**
 * How an exported app is closed, recognised like `prepareApp` recognises it: a NestJS application
 * or a Fastify instance (or a `{ default }` wrapper of one) by its own `close()`. Undefined for apps
 * with nothing to close (an Express or Koa app, a handler function).
 */
export function appCloser(app: unknown): AppCloser | undefined {
  if (isNestApplication(app) || isFastify(app)) {
    const close = (app as { close?: unknown }).close;
    return typeof close === 'function' ? () => (close as () => unknown).call(app) : undefined;
  }
  if (typeof app === 'object' && app !== null && !Array.isArray(app)) {
    const inner = (app as { default?: unknown }).default;
    if (inner !== undefined && inner !== app && (isNestApplication(inner) || isFastify(inner))) return appCloser(inner);
  }
  return undefined;
}

/**
 * Runs every closer at once and resolves when all have settled or `timeoutMs` has passed, whichever
 * comes first; never rejects. Each closer that throws, rejects or is still running at the deadline
 * is told to `onProblem`, named. A hung closer is left running: nothing can cancel it.
 */
export async function closeApps(closers: readonly NamedCloser[], options: { readonly timeoutMs: number; readonly onProblem: (problem: AppCloseProblem) => void }): Promise<void> {
  if (closers.length === 0) return;
  const pending = new Set<NamedCloser>();
  const runs = closers.map(async (closer) => {
    pending.add(closer);
    try {
      await closer.close();
    } catch (error) {
      options.onProblem({ name: closer.name, code: APP_CLOSE_ERRORS.FAILED, error });
    } finally {
      pending.delete(closer);
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    Promise.all(runs).then(() => false),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), options.timeoutMs); }),
  ]);
  clearTimeout(timer);
  if (timedOut) for (const { name } of pending) options.onProblem({ name, code: APP_CLOSE_ERRORS.TIMEOUT });
}
