// The server object, from the caller's side (the CLI, a worker, a test): opens every listener,
// serves the tree on them, reports counters, and stops gracefully or at once.

import type { Server, Socket } from 'node:net';
import type { Protocol } from '../app/types.ts';
import { parseAddress } from './address.ts';
import { ServeContext, type ServeStats } from './context.ts';
import { closeHttpServer } from './http-connection.ts';
import { adoptConnection, serveConnection, createProtocolServer, listenOn, planListeners, takeSocketActivation, type BoundListener } from './listen.ts';
import { SERVER_DEFAULTS, type ServerOptions } from './options.ts';
import { FCGI_WEB_SERVER_ADDRS } from './access.ts';
import type { HandoffSink } from './handoff.ts';

export interface PosternServer {
  /** What is listening, in the order given (systemd-activated sockets last). */
  readonly listeners: ReadonlyArray<BoundListener>;
  /** The shared serving state (limits, counters), e.g. for a status endpoint. */
  readonly context: ServeContext;
  /**
   * Graceful stop: stop accepting, let in-flight requests finish, and after `shutdownTimeoutMs`
   * destroy whatever is left. Resolves when all is closed. Connections accepted just before the
   * listener closed, whose request has not arrived yet, are still served: each gets
   * `headerTimeoutMs` from accept to send it, and closes after its response (HTTP with
   * `Connection: close`). Idle keep-alive connections close at once (a request already arriving
   * on one is served first), or, after handOffTo(), go to the successor between requests.
   */
  close(): Promise<void>;
  /** Immediate stop: every request is aborted (its signal fires) and every socket destroyed. */
  closeNow(): void;
  /**
   * For the graceful stop that follows: idle keep-alive connections (FastCGI keep_conn, HTTP
   * keep-alive) go to `sink` (a successor process) between requests instead of being closed, and
   * HTTP responses no longer say `Connection: close`. Connections the sink refuses are closed.
   */
  handOffTo(sink: HandoffSink): void;
  /** Serves a connection another server handed over idle (see handOffTo), with the bytes it had read and not parsed. */
  adopt(protocol: Protocol, socket: Socket, buffered: Buffer): void;
  /**
   * Serves a connection accepted elsewhere (an on-demand master) on the listener bound as
   * `address`, as if accepted here. False when no listener has that address.
   */
  serveAccepted(address: string, socket: Socket): boolean;
  stats(): ServerStats;
}

export interface ServerStats extends ServeStats {
  readonly listeners: number;
}

/**
 * Starts serving `options.tree` on every listener. Rejects (having closed whatever it opened) with
 * an `AddressError` for a malformed address, a `ListenError` when a listener cannot bind, an
 * `OptionError` for an option out of range, an `AccessError` for an `allowedClients` entry (or an
 * FCGI_WEB_SERVER_ADDRS item) that is not an address or CIDR block, a `PrivilegeError` for a
 * `socketOwner` / `socketGroup` this system does not know.
 */
export async function startServer(options: ServerOptions): Promise<PosternServer> {
  const ctx = new ServeContext({ ...options, fcgiWebServerAddrs: (options.env ?? process.env)[FCGI_WEB_SERVER_ADDRS] });
  try {
    const activation = takeSocketActivation(options.env ?? process.env);
    const planned = planListeners(options.listeners.map((l) => ({ protocol: l.protocol, address: parseAddress(l.address) })), activation);
    const servers: Server[] = [];
    const bound: BoundListener[] = [];
    try {
      for (const p of planned) {
        const server = createProtocolServer(p.protocol, ctx);
        servers.push(server);
        bound.push(await listenOn(server, p.protocol, p.address, ctx.limits.socketMode, ctx.limits.socketOwner));
      }
    } catch (err) {
      servers.forEach(stopListening);
      throw err;
    }
    ctx.log.info('listening', { listeners: bound.map((b) => `${b.protocol} ${b.address}`), worker: ctx.worker });
    return new Instance(ctx, servers, bound);
  } catch (err) {
    ctx.close();
    throw err;
  }
}

// Closes the listening handle now (node unlinks a unix socket file then). close()'s callback
// would wait for the connections the net.Server counts; postern's registry decides that instead.
function stopListening(server: Server): void {
  if (server.listening) server.close();
}

class Instance implements PosternServer {
  readonly listeners: ReadonlyArray<BoundListener>;
  readonly context: ServeContext;
  readonly #servers: Server[];
  #closing: Promise<void> | undefined;

  constructor(ctx: ServeContext, servers: Server[], bound: BoundListener[]) {
    this.context = ctx;
    this.#servers = servers;
    this.listeners = Object.freeze(bound.map((b) => Object.freeze(b)));
  }

  close(): Promise<void> {
    return (this.#closing ??= this.#close());
  }

  async #close(): Promise<void> {
    const ctx = this.context;
    this.#servers.forEach(stopListening);
    ctx.drain();
    const limit = ctx.limits.shutdownTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const expired = await Promise.race([
      ctx.idle().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), limit);
      }),
    ]);
    clearTimeout(timer);
    if (expired) {
      ctx.log.warn('shutdown deadline passed; closing connections with requests in flight', {
        limit: 'shutdownTimeoutMs',
        shutdownTimeoutMs: limit,
        connections: ctx.connections,
        inFlight: ctx.inFlight,
      });
      ctx.destroyAll();
      await ctx.idle();
    }
    closeHttpServer(ctx);
    ctx.close();
  }

  closeNow(): void {
    const ctx = this.context;
    this.#servers.forEach(stopListening);
    ctx.draining = true;
    ctx.destroyAll();
    closeHttpServer(ctx);
    ctx.close();
  }

  handOffTo(sink: HandoffSink): void {
    this.context.handoff = sink;
  }

  adopt(protocol: Protocol, socket: Socket, buffered: Buffer): void {
    adoptConnection(protocol, socket, this.context, buffered);
  }

  serveAccepted(address: string, socket: Socket): boolean {
    const l = this.listeners.find((b) => b.address === address);
    if (l === undefined) return false;
    serveConnection(l.protocol, socket, this.context);
    return true;
  }

  stats(): ServerStats {
    return { ...this.context.stats(), listeners: this.listeners.length };
  }
}

export { SERVER_DEFAULTS };
export type { Protocol };
