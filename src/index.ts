// postern's public API, from an app author's side (`import { tree, type Environ } from 'postern'`):
// the app contract, the application tree, the adapters, object dispatch, inject, and the server.

import { Tree } from './app/tree.ts';

// ——— the app contract (WSGI in TypeScript) ———
export type {
  AppBody, BodyChunk, Environ, HeaderList, EnvironProtocol, NativeApp, Protocol, Responder, RoleName, StartResponse,
} from './app/types.ts';

// ——— the application tree ———
export { isTree, MOUNT_CONFLICT_ERROR, Tree } from './app/tree.ts';
export type { Mount, MountMatch, MountOptions, TreeOptions } from './app/tree.ts';
export { MOUNT_PREFIX_ERROR } from './app/path.ts';

/**
 * A ready tree, as `cherrypy.tree` is: mount apps on it in your module and export it, then serve
 * it with `postern --mount /=./app.js#tree` (or pass it to `startServer`). One per copy of postern
 * loaded; build a `new Tree()` when a process needs several.
 */
export const tree: Tree = new Tree();

// ——— app shapes and adapters (Express, Koa, Hono, plain Node / Fetch handlers) ———
export { APP_KIND_ERROR, fetchHandler, native, nodeHandler, prepareApp, toNativeApp } from './app/resolve.ts';
export type { AdapterOptions, AppKind } from './app/resolve.ts';
export { environOf, FETCH_ADAPTER_ERRORS, fromFetchHandler, fromNodeHandler, NODE_ADAPTER_ERRORS, toRequest } from './app/adapters/index.ts';
export type { FetchAdapterOptions, FetchHandler, GatewayRequestInfo, NodeAdapterOptions, NodeHandler, NodeNext, TargetPath } from './app/adapters/index.ts';

// ——— CherryPy-style object dispatch ———
export { expose, HTTPError, objectApp } from './app/dispatch.ts';
export type {
  DispatchContext, DispatchRequest, ExposeOptions, FilePart, FormValue, Handler, HandlerResult, KwValue, Kwargs, ObjectAppOptions,
} from './app/dispatch.ts';

// ——— driving a tree without a socket (tests) ———
export { inject } from './app/inject.ts';
export type { InjectRequest, InjectResponse } from './app/inject.ts';

// ——— serving from code ———
export { startServer } from './server/server.ts';
export type { PosternServer, ServerStats } from './server/server.ts';
export type { ListenerSpec, ServerLimits, ServerOptions } from './server/options.ts';
export { silentLog } from './log/types.ts';
export type { AccessLog, AccessRecord, EventLog } from './log/types.ts';

// ——— health probes ———
export { HEALTH_ERRORS, healthTarget, probeHealth } from './health.ts';
export type { HealthResult, HealthTarget } from './health.ts';

// ——— errors the protocol layer reports (`code` is stable, `httpStatus` the reply hint) ———
export { ProtocolError } from '../protocols/common/errors.ts';
