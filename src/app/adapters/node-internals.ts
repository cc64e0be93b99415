// Every private Node internal the direct bridge touches, in one place, from the bridge's side.
// Each is a future break (node-fastcgi broke on `_storeHeader`, serverless-http on
// `_writableState.corked`): test/unit/node-internals.test.ts fails on the Node version where one
// changes, and each use below has a public fallback.

import type { IncomingMessage, ServerResponse } from 'node:http';

// `kNeedDrain` (lib/_http_outgoing.js, lib/internal/http.js): `res.write()` sets it when it
// returns false; node:http's `socketOnDrain` clears it and emits 'drain' on the response. A
// bridge that assigns its own socket has no socketOnDrain, so it does the same. Without clearing
// the flag, `res.writableNeedDrain` stays true after the first backpressure and a later
// `readable.pipe(res)` waits for a 'drain' that nothing will send. Found on the instance by its
// description (only materialised once a write returned false, so a miss is not cached).
let needDrainKey: symbol | undefined;

function needDrainSymbol(res: ServerResponse): symbol | undefined {
  if (needDrainKey === undefined) {
    for (const s of Object.getOwnPropertySymbols(res)) {
      if (s.description === 'kNeedDrain') {
        needDrainKey = s;
        break;
      }
    }
  }
  return needDrainKey;
}

/**
 * What `socketOnDrain` does for the response on its socket: emit 'drain' when a write had
 * returned false, and clear that state. Falls back on the public `writableNeedDrain` (which then
 * stays true) where the symbol is not found.
 */
export function emitResponseDrain(res: ServerResponse): void {
  if (res.writableEnded || res.destroyed) return;
  const key = needDrainSymbol(res);
  if (key !== undefined) {
    const bag = res as unknown as Record<symbol, unknown>;
    if (bag[key] !== true) return;
    bag[key] = false;
    res.emit('drain');
    return;
  }
  if (res.writableNeedDrain) res.emit('drain');
}

/** For the internals test: whether `kNeedDrain` is where the bridge looks for it. */
export function hasNeedDrainSymbol(res: ServerResponse): boolean {
  return needDrainSymbol(res) !== undefined;
}

// `IncomingMessage.prototype._dump` (lib/_http_incoming.js): what node:http's resOnFinish calls on
// a request whose body the app never read. Its timing is part of the event order an app sees, and
// it changed between releases: Node 20 resumes the stream (the request's 'end' comes two ticks
// later, after the response's 'close'); Node 24 reads a complete, empty request at once ('end'
// before the response's 'close'). Calling the running Node's own method keeps the bridge in step
// with node:http on each version. The fallback is the public resume(), Node 20's behaviour.
interface Dumpable {
  _dump?: () => void;
}

/** What resOnFinish does to an unread request body: node:http's own `_dump`, else `resume()`. */
export function dumpUnreadRequest(req: IncomingMessage): void {
  const dump = (req as unknown as Dumpable)._dump;
  if (typeof dump === 'function') dump.call(req);
  else req.resume();
}

/** For the internals test: whether node:http's `_dump` is where the bridge calls it. */
export function hasRequestDump(req: IncomingMessage): boolean {
  return typeof (req as unknown as Dumpable)._dump === 'function';
}
