// The two ways a Node `(req, res)` handler is served, from a test's side: the direct bridge and
// the replay (the oracle the direct bridge is compared with).

import { fromNodeHandler, type NodeAdapterOptions, type NodeHandler } from '../../src/app/adapters/node.ts';
import type { NativeApp } from '../../src/app/types.ts';

export type Bridge = 'direct' | 'replay';
/** The oracle first, so a failure message reads "oracle, then bridge". */
export const BRIDGES: readonly Bridge[] = ['replay', 'direct'];

/** A Node handler mounted through one bridge. */
export function nodeApp(handler: NodeHandler, bridge: Bridge, options: NodeAdapterOptions = {}): NativeApp {
  // Typed loosely until `bridge` is part of NodeAdapterOptions on every branch this file meets.
  const withBridge: Record<string, unknown> = { ...options, bridge };
  return fromNodeHandler(handler, withBridge);
}
