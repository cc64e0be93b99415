// The socket listeners of the gateway connections (FastCGI, SCGI, uwsgi), from the server's side:
// one set of functions for every connection, where `this` is the socket and the socket points back
// at its connection. Five arrow-function fields per connection were five closures and a context:
// ~310 B a connection (20,000 net.Sockets after gc, Node 20 and 24); the back-reference is 8 B.

import type { Socket } from 'node:net';

/** What a connection does with its socket's events (called only by the listeners below). */
export interface SocketEvents {
  socketData(chunk: Buffer): void;
  socketEnd(): void;
  socketError(err: Error): void;
  socketClose(): void;
  socketDrain(): void;
}

const CONNECTION = Symbol('postern.connection');
type ServedSocket = Socket & { [CONNECTION]?: SocketEvents };

function onData(this: ServedSocket, chunk: Buffer): void {
  this[CONNECTION]!.socketData(chunk);
}
function onEnd(this: ServedSocket): void {
  this[CONNECTION]!.socketEnd();
}
function onError(this: ServedSocket, err: Error): void {
  this[CONNECTION]!.socketError(err);
}
function onClose(this: ServedSocket): void {
  this[CONNECTION]!.socketClose();
}
function onDrain(this: ServedSocket): void {
  this[CONNECTION]!.socketDrain();
}

/** Routes `socket`'s data, end, error, close and drain events to `connection`. */
export function listenToSocket(socket: Socket, connection: SocketEvents): void {
  (socket as ServedSocket)[CONNECTION] = connection;
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
  socket.on('close', onClose);
  socket.on('drain', onDrain);
}

function destroyOnFinish(this: Socket): void {
  this.destroy();
}

/**
 * Closes `socket` after its last write, for a connection whose peer has sent all it will (the
 * whole request was read: nothing waits unread in the receive queue, so the close is a FIN, never
 * an RST that could cut the response short; Go child.go, issue 4183). When every byte written
 * is already in the kernel, the socket is closed at once: close(2) sends them, then the FIN, with
 * no shutdown(2), no wake-up for the peer's FIN and no read of it (the kernel finishes the close).
 * Otherwise our side ends and the socket closes once the rest and the FIN have left (node:net's
 * `destroySoon`, with a shared listener instead of a `once` wrapper per connection).
 * Measured behind nginx, one connection per request (`BENCH_BASELINE=<main> npm run bench --
 * --only postern/P,postern@base/P --paired postern@base/P`, 5 × 5 s): backend CPU per connection
 * main ÷ this, SCGI 1.30, uwsgi 1.31, FastCGI 1.22 on Node 20; 1.25, 1.23, 1.24 on Node 24.
 * An SCGI or FastCGI connection's syscalls (strace -c): 1 read, 1 write, 1 close, 2 epoll_ctl;
 * before, 2 reads, 1 write, 1 shutdown, 1 close, 3 epoll_ctl.
 */
export function closeAfterWrites(socket: Socket): void {
  if (socket.writableLength === 0) {
    socket.destroy();
    return;
  }
  // 'finish' comes after the shutdown completes, never within end().
  socket.end();
  socket.on('finish', destroyOnFinish);
}
