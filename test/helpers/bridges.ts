// The two ways a Node `(req, res)` handler is served, from a test's side: the direct bridge and
// the replay (the oracle the direct bridge is compared with).

import { fromNodeHandler, type NodeAdapterOptions, type NodeBridge, type NodeHandler } from '../../src/app/adapters/node.ts';
import type { NativeApp } from '../../src/app/types.ts';

export type Bridge = NodeBridge;
/** The oracle first, so a failure message reads "oracle, then bridge". */
export const BRIDGES: readonly Bridge[] = ['replay', 'direct'];

/** A Node handler mounted through one bridge. */
export function nodeApp(handler: NodeHandler, bridge: Bridge, options: NodeAdapterOptions = {}): NativeApp {
  return fromNodeHandler(handler, { ...options, bridge });
}

/**
 * An event log (`req:end`, `res:close …`, the app's own entries) split by emitter, each part in
 * order: what stays comparable when only the interleaving of req and res events differs.
 */
export function eventsByEmitter(events: readonly string[]): { req: string[]; res: string[]; app: string[] } {
  return {
    req: events.filter((e) => e.startsWith('req:')),
    res: events.filter((e) => e.startsWith('res:')),
    app: events.filter((e) => !e.startsWith('req:') && !e.startsWith('res:')),
  };
}
