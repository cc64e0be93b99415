// Listening sockets, from the server's side: TCP (IPv4/IPv6), unix sockets (mode applied, stale
// files from a dead process replaced, live ones never), inherited fds (fd 0 as spawn-fcgi and
// mod_fcgid pass it) and systemd socket activation. Kept apart from serving: `serveConnection`
// takes any accepted socket, so a supervisor may own the listeners and hand sockets to workers.

import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Protocol } from '../app/types.ts';
import { formatAddress, type ListenAddress } from './address.ts';
import { peerOf, type ServeContext } from './context.ts';
import { FastCgiConnection } from './fastcgi-connection.ts';
import { serveHttpConnection } from './http-connection.ts';
import { StreamConnection } from './stream-connection.ts';
import type { SocketOwner } from './privileges.ts';

export const LISTEN_ERRORS = {
  /** A unix socket path is in use by a live server (a connect succeeded). */
  SOCKET_IN_USE: 'POSTERN_ERR_SOCKET_IN_USE',
  /** A unix socket path exists and is not a socket: never removed. */
  NOT_A_SOCKET: 'POSTERN_ERR_NOT_A_SOCKET',
  /** systemd passed a socket no listener claims (no matching fd:N, no protocol FileDescriptorName). */
  UNCLAIMED_FD: 'POSTERN_ERR_UNCLAIMED_FD',
  /** Listening failed (EADDRINUSE, EACCES, EINVAL for an fd that is not a listening socket…). */
  LISTEN_FAILED: 'POSTERN_ERR_LISTEN_FAILED',
} as const;

export class ListenError extends Error {
  readonly code: (typeof LISTEN_ERRORS)[keyof typeof LISTEN_ERRORS];
  /** The system error code underneath (EADDRINUSE, EACCES, EINVAL…), when there is one. */
  readonly syscallCode: string | undefined;
  readonly address: string;
  constructor(code: ListenError['code'], address: string, message: string, syscallCode?: string) {
    super(message);
    this.name = 'ListenError';
    this.code = code;
    this.address = address;
    this.syscallCode = syscallCode;
  }
}

/** Serves one accepted socket with `protocol` until it closes. Never throws. */
export function serveConnection(protocol: Protocol, socket: Socket, ctx: ServeContext): void {
  // No 'error' listener of its own: nothing here can make the socket emit one (destroy() without
  // an error emits none), and every connection adds its 'error' listener (node:http's for HTTP)
  // in the same tick. A second listener made the socket's listener list an array per connection
  // (not measurable alone: FastCGI 1,211k with it, 1,205k without, Node 20, connection-cost.sh).
  // allowedClients / FCGI_WEB_SERVER_ADDRS (§3.2: "responds by closing the connection").
  const rule = ctx.access?.refusal(protocol, socket.remoteAddress);
  if (rule !== undefined) {
    ctx.denied(rule, protocol, peerOf(socket));
    socket.destroy();
    return;
  }
  // A connection accepted while draining (the listener closes in the same tick the stop begins)
  // is served all the same: its client sent a request and must get an answer, not a close.
  if (ctx.connections >= ctx.limits.maxConnections) {
    rejected(ctx, socket);
    socket.destroy();
    return;
  }
  if (protocol === 'http') {
    serveHttpConnection(socket, ctx);
    return;
  }
  const conn = protocol === 'fastcgi' ? new FastCgiConnection(socket, ctx) : new StreamConnection(socket, ctx, protocol);
  ctx.admit(conn);
}

/**
 * Serves a keep-alive connection another worker handed over between requests (see
 * src/server/handoff.ts), with the bytes it had read and not yet parsed. FastCGI and HTTP only:
 * SCGI and uwsgi carry one request per connection, so none is ever idle to hand over.
 */
export function adoptConnection(protocol: Protocol, socket: Socket, ctx: ServeContext, buffered: Buffer): void {
  socket.on('error', noop);
  if (protocol === 'http') {
    if (buffered.length > 0) socket.unshift(buffered);
    serveHttpConnection(socket, ctx, true);
    return;
  }
  if (protocol !== 'fastcgi' || ctx.connections >= ctx.limits.maxConnections) {
    if (protocol === 'fastcgi') rejected(ctx, socket);
    socket.destroy();
    return;
  }
  const conn = new FastCgiConnection(socket, ctx, buffered);
  ctx.admit(conn);
  if (ctx.draining) conn.drain();
}

function noop(): void {}

let lastRejectLog = 0;

function rejected(ctx: ServeContext, socket: Socket): void {
  ctx.rejectedConnections++;
  ctx.metrics.rejected('maxConnections');
  // Saturation must be visible (PHP-FPM's "max_children reached" is what operators grep for), but
  // a flood must not become a log flood: one line per 10 s, with the running count.
  if (ctx.now - lastRejectLog >= 10_000 || lastRejectLog === 0) {
    lastRejectLog = ctx.now;
    ctx.log.warn('connection refused: maxConnections reached', { limit: 'maxConnections', maxConnections: ctx.limits.maxConnections, rejected: ctx.rejectedConnections, peer: peerOf(socket) });
  }
}

/** A listening server for one protocol, not yet listening: `listenOn` binds it. */
export function createProtocolServer(protocol: Protocol, ctx: ServeContext): Server {
  // allowHalfOpen: an SCGI/uwsgi client that half-closes after its request still gets the answer;
  // node:http wants it too (its own servers set it).
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => serveConnection(protocol, socket, ctx));
  server.on('error', (err: NodeJS.ErrnoException) => {
    // Accept errors (EMFILE, ENFILE) after listening: log, keep serving what is open.
    if (server.listening) ctx.log.error('accept failed', { code: err.code, protocol, error: err.message });
  });
  return server;
}

export interface BoundListener {
  readonly protocol: Protocol;
  /** The address as bound: the real port for `:0`, `unix:PATH`, `fd:N`. */
  readonly address: string;
  readonly port?: number;
  readonly path?: string;
  readonly fd?: number;
}

/** Binds `server` to `address`. Rejects with a `ListenError` naming the address. */
export async function listenOn(server: Server, protocol: Protocol, address: ListenAddress, socketMode?: number, socketOwner?: SocketOwner): Promise<BoundListener> {
  const text = formatAddress(address);
  if (address.kind === 'unix') await clearStaleSocket(address.path, text);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(new ListenError(LISTEN_ERRORS.LISTEN_FAILED, text, `cannot listen on ${text} for ${protocol}: ${err.code ?? err.message}`, err.code));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    switch (address.kind) {
      case 'tcp':
        // No host: every interface, `::` dual-stack (or 0.0.0.0 where IPv6 is off).
        server.listen(address.host === undefined ? { port: address.port } : { port: address.port, host: address.host });
        break;
      case 'unix':
        server.listen({ path: address.path });
        break;
      case 'fd':
        server.listen({ fd: address.fd });
        break;
    }
  });
  if (address.kind === 'unix') {
    if (socketMode !== undefined) await chmod(address.path, socketMode);
    if (socketOwner !== undefined) await chown(address.path, socketOwner.uid, socketOwner.gid);
    return { protocol, address: text, path: address.path };
  }
  if (address.kind === 'fd') {
    const a = server.address();
    return typeof a === 'object' && a !== null ? { protocol, address: text, fd: address.fd, port: a.port } : { protocol, address: text, fd: address.fd };
  }
  const a = server.address();
  if (typeof a !== 'object' || a === null) return { protocol, address: text };
  return { protocol, address: formatAddress({ kind: 'tcp', host: a.address, port: a.port }), port: a.port };
}

/**
 * A socket file left by a process that died cannot be bound over (EADDRINUSE). Remove it, but
 * only when nothing answers on it: a live server's socket is never taken away. `text` is the
 * address as configured, for the errors (`ListenError` NOT_A_SOCKET or SOCKET_IN_USE).
 */
export async function clearStaleSocket(path: string, text: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new ListenError(LISTEN_ERRORS.NOT_A_SOCKET, text, `${path} exists and is not a socket; not removing it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => {
      probe.destroy();
      // ECONNREFUSED: nobody listens; anything else (EACCES…) we cannot judge, so leave it be.
      resolve(err.code !== 'ECONNREFUSED');
    });
  });
  if (live) throw new ListenError(LISTEN_ERRORS.SOCKET_IN_USE, text, `${path} is in use by a running server`, 'EADDRINUSE');
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The listening sockets systemd passed (sd_listen_fds(3)): fds 3…3+n-1 with their names. */
export interface SocketActivation {
  readonly fds: ReadonlyArray<{ readonly fd: number; readonly name: string | undefined }>;
}

/** First fd systemd passes (SD_LISTEN_FDS_START). */
export const SD_LISTEN_FDS_START = 3;

/**
 * Reads systemd socket activation from `env` when `LISTEN_PID` is this process, and unsets
 * LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES (as sd_listen_fds(unset_environment=1) does) so child
 * processes do not take the sockets for theirs. Undefined when not socket-activated.
 */
export function takeSocketActivation(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): SocketActivation | undefined {
  const listenPid = env['LISTEN_PID'];
  const listenFds = env['LISTEN_FDS'];
  if (listenPid === undefined || listenFds === undefined) return undefined;
  const names = env['LISTEN_FDNAMES'];
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (!/^[0-9]+$/.test(listenPid) || Number(listenPid) !== pid) return undefined;
  if (!/^[0-9]+$/.test(listenFds)) return undefined;
  const n = Number(listenFds);
  const nameList = names === undefined ? [] : names.split(':');
  const fds: Array<{ fd: number; name: string | undefined }> = [];
  for (let i = 0; i < n; i++) {
    const name = nameList[i];
    fds.push({ fd: SD_LISTEN_FDS_START + i, name: name === undefined || name === '' ? undefined : name });
  }
  return { fds };
}

const PROTOCOLS: ReadonlySet<string> = new Set<Protocol>(['fastcgi', 'scgi', 'uwsgi', 'http']);

export interface PlannedListener {
  readonly protocol: Protocol;
  readonly address: ListenAddress;
}

/**
 * Merges the configured listeners with systemd's sockets. An activated fd is served by the
 * listener that names it (`fd:3`), else by the protocol its FileDescriptorName= names
 * (`fastcgi`, `scgi`, `uwsgi`, `http`); an fd claimed by neither is a startup error.
 */
export function planListeners(configured: ReadonlyArray<PlannedListener>, activation: SocketActivation | undefined): PlannedListener[] {
  const out = [...configured];
  const seen = new Set<string>();
  for (const l of out) {
    const key = formatAddress(l.address);
    // Port 0 asks the kernel for a fresh port each time, so two of them never collide.
    if (l.address.kind === 'tcp' && l.address.port === 0) continue;
    if (seen.has(key)) throw new ListenError(LISTEN_ERRORS.LISTEN_FAILED, key, `${key} is listed twice`);
    seen.add(key);
  }
  if (activation === undefined) return out;
  for (const { fd, name } of activation.fds) {
    if (seen.has(`fd:${String(fd)}`)) continue;
    if (name !== undefined && PROTOCOLS.has(name)) {
      out.push({ protocol: name as Protocol, address: { kind: 'fd', fd } });
      continue;
    }
    throw new ListenError(
      LISTEN_ERRORS.UNCLAIMED_FD,
      `fd:${String(fd)}`,
      `systemd passed fd ${String(fd)}${name === undefined ? '' : ` (named ${JSON.stringify(name)})`} and no listener claims it: ` +
        'set FileDescriptorName=fastcgi|scgi|uwsgi|http on the socket unit, or list it as e.g. --fastcgi fd:' + String(fd),
    );
  }
  return out;
}
