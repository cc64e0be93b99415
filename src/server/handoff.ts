// Handing an idle connection to another process, from the connection's side: stop reading the
// socket without losing a byte the peer may be sending right now, wait until what we wrote has
// left, then let a sink (the supervised worker's IPC channel) carry the fd to a successor.
//
// The one private Node internal here: `socket._handle.readStop()` (the libuv stream's
// uv_read_stop, through node's LibuvStreamWrap). Public `socket.pause()` only stops 'data'
// events: the handle keeps reading into the stream's buffer, and those bytes would stay behind
// in this process when the fd leaves. readStop() leaves them in the kernel, where the process
// that adopts the fd reads them. `handle.reading` is left true on purpose: net.Socket's _read()
// restarts reading only when it is false. Present and unchanged in Node 20 and 24
// (test/unit/handoff.test.ts fails where it changes).

import type { Socket } from 'node:net';
import type { Protocol } from '../app/types.ts';

/** Where a draining server sends a connection it hands over; resolves false if it could not. */
export type HandoffSink = (protocol: Protocol, socket: Socket, buffered: Buffer) => Promise<boolean>;

interface ReadableHandle {
  readStop(): number;
}

function handleOf(socket: Socket): ReadableHandle | undefined {
  const h = (socket as unknown as { _handle?: unknown })._handle;
  if (typeof h !== 'object' || h === null) return undefined;
  return typeof (h as { readStop?: unknown }).readStop === 'function' ? (h as ReadableHandle) : undefined;
}

/**
 * Stops the kernel-level reads of `socket` (see the file comment): from now on bytes the peer
 * sends stay in the kernel's receive queue. False when the socket has no stream handle (destroyed,
 * or a Node without the internal), and the caller must not hand it over.
 */
export function stopReading(socket: Socket): boolean {
  if (socket.destroyed) return false;
  const h = handleOf(socket);
  if (h === undefined) return false;
  return h.readStop() === 0;
}

/** Resolves once everything written to `socket` has been handed to the kernel (or the socket is gone). */
export function whenWritten(socket: Socket): Promise<void> {
  if (socket.destroyed || socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('close', done);
      resolve();
    };
    socket.once('close', done);
    // Writes complete in order: an empty write's callback runs after every earlier one.
    socket.write(EMPTY, done);
  });
}

const EMPTY = Buffer.alloc(0);

/**
 * Hands `socket` over through `sink`: reading stops first, output is flushed, then the sink sends
 * the fd. On success the socket here is destroyed (our fd closes; the connection lives on in the
 * other process, so the peer sees nothing). Resolves false (socket untouched but no longer
 * reading) when it could not be sent; the caller then closes it.
 */
export async function handOff(sink: HandoffSink, protocol: Protocol, socket: Socket, buffered: Buffer): Promise<boolean> {
  await whenWritten(socket);
  if (socket.destroyed) return false;
  let sent: boolean;
  try {
    sent = await sink(protocol, socket, buffered);
  } catch {
    sent = false;
  }
  if (sent) socket.destroy();
  return sent;
}
