// The app-kind marker, from the mounting side: helpers that label a function with the contract it
// follows, so `toNativeApp` never has to guess between `(environ, startResponse)` and `(req, res)`.

import type { NativeApp } from '../types.ts';
import type { NodeHandler } from './node.ts';
import type { FetchHandler } from './fetch.ts';

/** Registered symbol so a marker set by one copy of postern is seen by another (e.g. npm link). */
export const APP_KIND: unique symbol = Symbol.for('postern.appKind') as never;

export type MarkedKind = 'native' | 'node' | 'fetch';

/** `code` on the TypeError thrown when an app's shape cannot be resolved or marked. */
export const APP_KIND_ERROR = 'POSTERN_ERR_APP_KIND';

export function kindError(message: string): TypeError {
  const err = new TypeError(`postern: ${message}`);
  (err as TypeError & { code: string }).code = APP_KIND_ERROR;
  return err;
}

export function markKind<T extends object>(app: T, kind: MarkedKind): T {
  if (typeof app !== 'function' && (typeof app !== 'object' || app === null)) {
    throw kindError(`cannot mark ${describe(app)} as a ${kind} app`);
  }
  Object.defineProperty(app, APP_KIND, { value: kind, configurable: true, enumerable: false, writable: false });
  return app;
}

export function markedKind(app: unknown): MarkedKind | undefined {
  if ((typeof app !== 'function' && typeof app !== 'object') || app === null) return undefined;
  const k = (app as { [APP_KIND]?: unknown })[APP_KIND];
  return k === 'native' || k === 'node' || k === 'fetch' ? k : undefined;
}

/** A short, safe description of a value for error messages (never its contents). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') {
    const name = value.name === '' ? 'anonymous' : value.name;
    return `function ${name}(${value.length} parameter${value.length === 1 ? '' : 's'})`;
  }
  if (typeof value === 'object') {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
    const keys = Object.keys(value).slice(0, 5).join(', ');
    return `${typeof ctor === 'string' ? ctor : 'object'} { ${keys}${keys === '' ? '' : ' '}}`;
  }
  return typeof value;
}

/** Labels a `(environ, startResponse)` function as native, so `auto` never mistakes it for `(req, res)`. */
export function native<T extends NativeApp>(app: T): T {
  return markKind(app, 'native');
}

/** Labels a Node `(req, res[, next])` handler, so `auto` mounts it through the Node adapter. */
export function nodeHandler<T extends NodeHandler>(handler: T): T {
  return markKind(handler, 'node');
}

/** Labels a Fetch `(request, environ) => Response` handler. */
export function fetchHandler<T extends FetchHandler>(handler: T): T {
  return markKind(handler, 'fetch');
}
