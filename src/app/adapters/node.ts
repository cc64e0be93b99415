// Node `(req, res)` handlers (Express, Koa's callback(), Fastify's routing, plain http handlers) as
// native apps, from the mounting side: the public surface, and the choice between the direct
// bridge (src/app/adapters/node-bridge.ts) and the replay (node-replay.ts).

import type { NativeApp } from '../types.ts';
import { bridgeNodeHandler } from './node-bridge.ts';
import { replayNodeHandler } from './node-replay.ts';
import type { NodeAdapterOptions, NodeHandler } from './node-common.ts';

export { environOf, NODE_ADAPTER_ERRORS } from './node-common.ts';
export type { GatewayRequestInfo, NodeAdapterOptions, NodeBridge, NodeHandler, NodeNext } from './node-common.ts';

/**
 * Mounts a Node `(req, res[, next])` handler. `req.url` is mount-relative (see
 * NodeAdapterOptions.path); `req.environ`, `req.scriptName`, `req.baseUrl` and `req.originalUrl`
 * are set (GatewayRequestInfo). `next()` answers 404, `next(err)` fails the request (500 via the
 * runner); a handler that throws or rejects fails it too. Response bytes flow back with
 * backpressure: `res.write()` returns false and `'drain'` follows as the gateway drains. Each
 * request is emitted as 'request' on a private `http.Server`, so APM agents that wrap
 * `http.Server.prototype.emit` see it.
 */
export function fromNodeHandler(handler: NodeHandler, options: NodeAdapterOptions = {}): NativeApp {
  if (typeof handler !== 'function') throw new TypeError('postern: fromNodeHandler needs a (req, res) function');
  const bridge = options.bridge ?? 'direct';
  if (bridge === 'replay') return replayNodeHandler(handler, options);
  if (bridge !== 'direct') throw new TypeError(`postern: unknown Node bridge ${JSON.stringify(String(bridge))}; use direct or replay`);
  return bridgeNodeHandler(handler, options);
}
