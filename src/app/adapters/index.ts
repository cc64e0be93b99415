// The app adapters' public surface, from a mounting user's side: mount Express, Koa, Hono or any
// Node / Fetch handler unchanged, or label a function's kind explicitly.

export { fromNodeHandler, environOf, NODE_ADAPTER_ERRORS } from './node.ts';
export type { GatewayRequestInfo, NodeAdapterOptions, NodeHandler, NodeNext } from './node.ts';
export { fromFetchHandler, toRequest, LazyRequest, FETCH_ADAPTER_ERRORS, LAZY_REQUEST_ERROR } from './fetch.ts';
export type { FetchAdapterOptions, FetchHandler } from './fetch.ts';
export { native, nodeHandler, fetchHandler, APP_KIND_ERROR } from './marker.ts';
export type { TargetPath } from './target.ts';
export { RESPONSE_READER_ERROR } from './response-reader.ts';
export { fromFastify, FASTIFY_READY_ERROR } from './fastify.ts';
export { NEST_INIT_ERROR } from './nest.ts';
