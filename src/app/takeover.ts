// listen() takeover, from the loading side: while postern imports a mounted module, `listen()` on
// an `http.Server` binds nothing; the server that listened is later served through the direct
// Node bridge, so an app that starts its own server (`app.listen(3000)`) runs unchanged.
//
// Only `http.Server.prototype.listen` is replaced: no global, no `cluster`, no constructor is
// touched (Passenger's `cluster` shim broke log4js and prom-client), and https/net servers are left
// alone. Between `ListenCapture.start()` and `stop()` every http.Server's listen() is intercepted.
// Once a server has been taken over, the replacement stays for the life of the process, but only
// answers for that server and for new servers built around its request handler (Fastify binds each
// address `localhost` resolves to, with one handler, possibly after the load); every other server's
// listen() goes to the original untouched. When nothing was taken over, stop() puts it back as it was.

import { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NativeApp } from './types.ts';
import { bridgeNodeServer } from './adapters/node-bridge.ts';
import { plainAnswer, type NodeAdapterOptions } from './adapters/node-common.ts';

/** What an intercepted listen() asked for: a TCP port and host, or a pipe path. */
export type ListenRequest = { readonly port: number; readonly host: string | undefined } | { readonly path: string };

/** One server whose listen() was intercepted. */
export class TakenServer {
  readonly server: Server;
  readonly request: ListenRequest;
  /** 1 for the first server to listen during the load, 2 for the second… */
  readonly order: number;
  #closed = false;
  readonly #onClose: Array<() => void> = [];
  readonly #onLateListen: Array<(request: ListenRequest) => void> = [];
  /** Servers sharing this one's request handler that listened after the load (taken over, not served). */
  readonly #aliases: TakenServer[] = [];

  constructor(server: Server, request: ListenRequest, order: number) {
    this.server = server;
    this.request = request;
    this.order = order;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `fn` once when the app closes the server (at once if it already did). */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  /**
   * What `address()` answers: the port and host the app asked for (host `::` when none, `localhost`
   * as `127.0.0.1`), or the pipe path. Nothing is bound there; requests come from postern's listeners.
   */
  address(): AddressInfo | string {
    const r = this.request;
    if ('path' in r) return r.path;
    const host = r.host === undefined || r.host === '' ? '::' : r.host === 'localhost' ? '127.0.0.1' : r.host;
    return { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: r.port };
  }

  /** The app closed its server: the mount answers 503 from now on; `onClose` listeners run. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    for (const fn of this.#onClose.splice(0)) fn();
    return true;
  }

  /** Runs `fn` for each listen() after the load on a server sharing this one's handler. */
  onLateListen(fn: (request: ListenRequest) => void): void {
    this.#onLateListen.push(fn);
  }

  /** An app that closed its server and calls listen() on it again is served again. */
  reopen(): void {
    this.#closed = false;
  }

  addAlias(alias: TakenServer): void {
    this.#aliases.push(alias);
    for (const fn of this.#onLateListen) fn(alias.request);
  }

  /**
   * postern stops: closes the server as net.Server would once its last connection ended, by emitting
   * 'close' (so `server.on('close')` listeners and pending `close(cb)` callbacks run), and the same
   * for servers that share its handler. Resolves once the listeners ran; rejects with what one threw.
   * Nothing when the app had closed it already. `onClose` listeners are not told: they hear of the
   * app closing its server, not of postern stopping.
   */
  shutdown(): Promise<void> {
    const servers = [this, ...this.#aliases].filter((t) => !t.#closed);
    for (const t of servers) t.#closed = true;
    if (servers.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      // As net.Server does: 'close' comes after close() returned, on a later tick.
      process.nextTick(() => {
        try {
          for (const t of servers) t.server.emit('close');
          resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
  }
}

function isPort(v: unknown): v is number | string {
  return (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 65536) || (typeof v === 'string' && /^[0-9]{1,5}$/.test(v) && Number(v) < 65536);
}

/** The listen() argument forms of `net.Server` (port, host, backlog, cb / path, backlog, cb / options, cb). */
export function listenRequest(args: readonly unknown[]): ListenRequest {
  const [first, second] = args;
  if (typeof first === 'object' && first !== null) {
    const o = first as { port?: unknown; host?: unknown; path?: unknown };
    if (typeof o.path === 'string') return { path: o.path };
    return { port: isPort(o.port) ? Number(o.port) : 0, host: typeof o.host === 'string' ? o.host : undefined };
  }
  if (typeof first === 'string' && !isPort(first)) return { path: first };
  return { port: isPort(first) ? Number(first) : 0, host: typeof second === 'string' ? second : undefined };
}

type Listen = (this: Server, ...args: unknown[]) => Server;
type Handler = (...args: unknown[]) => unknown;

let active: ListenCapture | undefined;

// Every server taken over in this process, and the request handlers they were built with. Weak:
// a server the app dropped is not kept alive by being known here.
const takenServers = new WeakMap<Server, TakenServer>();
const takenHandlers = new WeakMap<Handler, TakenServer>();
let anyTaken = false;

// `http.Server.prototype.listen` as it was before `intercept` went in (an own property of
// http.Server.prototype or, in stock Node, none: listen is inherited from net.Server).
let previous: PropertyDescriptor | undefined;

function originalListen(server: Server, args: unknown[]): Server {
  const fn = previous?.value as Listen | undefined ?? (Object.getPrototypeOf(Server.prototype) as { listen: Listen }).listen;
  return Reflect.apply(fn, server, args);
}

function splitCallback(args: readonly unknown[]): { callback: ((...a: unknown[]) => void) | undefined; rest: readonly unknown[] } {
  const last = args[args.length - 1];
  return typeof last === 'function' ? { callback: last as (...a: unknown[]) => void, rest: args.slice(0, -1) } : { callback: undefined, rest: args };
}

/** Calls back and emits 'listening' on the next tick, as net.Server does once bound. */
function announceListening(server: Server, callback: ((...a: unknown[]) => void) | undefined): void {
  if (callback !== undefined) server.once('listening', callback);
  process.nextTick(() => { server.emit('listening'); });
}

/** The taken-over server whose request handler `server` carries too (Fastify's extra bindings). */
function sharedHandler(server: Server): TakenServer | undefined {
  for (const fn of server.listeners('request')) {
    const taken = takenHandlers.get(fn as Handler);
    if (taken !== undefined) return taken;
  }
  return undefined;
}

function remember(taken: TakenServer): void {
  takenServers.set(taken.server, taken);
  for (const fn of taken.server.listeners('request')) takenHandlers.set(fn as Handler, taken);
  anyTaken = true;
}

/**
 * A listen() outside a capture: on a server taken over before, or on a new server built around a
 * taken-over server's handler, it binds nothing (see the file comment); otherwise it is the original.
 */
function lateListen(server: Server, args: unknown[]): Server {
  const { callback, rest } = splitCallback(args);
  const known = takenServers.get(server);
  if (known !== undefined) {
    if (!known.closed) {
      // As net.Server answers a listen() on a listening server.
      throw Object.assign(new Error('Listen method has been called more than once without closing.'), { code: 'ERR_SERVER_ALREADY_LISTEN' });
    }
    known.reopen();
    announceListening(server, callback);
    return server;
  }
  const owner = sharedHandler(server);
  if (owner === undefined) return originalListen(server, args);
  const alias = new TakenServer(server, listenRequest(rest), 0);
  remember(alias);
  present(server, alias);
  owner.addAlias(alias);
  announceListening(server, callback);
  return server;
}

const intercept: Listen = function listen(this: Server, ...args: unknown[]): Server {
  const capture = active;
  if (capture === undefined || (takenServers.has(this) && !capture.taken.some((t) => t.server === this))) return lateListen(this, args);
  return capture.intercept(this, args);
};

function installed(): boolean {
  return Object.getOwnPropertyDescriptor(Server.prototype, 'listen')?.value === intercept;
}

function install(): void {
  if (installed()) return;
  previous = Object.getOwnPropertyDescriptor(Server.prototype, 'listen');
  Object.defineProperty(Server.prototype, 'listen', { value: intercept, configurable: true, writable: true, enumerable: false });
}

/** Puts listen back when nothing was ever taken over; a replacement someone made since is left alone. */
function uninstallIfUnused(): void {
  if (anyTaken || active !== undefined || !installed()) return;
  if (previous === undefined) delete (Server.prototype as { listen?: unknown }).listen;
  else Object.defineProperty(Server.prototype, 'listen', previous);
  previous = undefined;
}

/**
 * Collects the http.Servers that call listen() while a module loads. One capture at a time (mounts
 * load one after another); `stop()` ends the interception of unrelated servers.
 */
export class ListenCapture {
  readonly taken: TakenServer[] = [];
  /** Oddities seen (a second listen() on one server), reported as a failed start. */
  readonly problems: string[] = [];
  readonly #waiters: Array<() => void> = [];
  readonly #byServer = new WeakMap<Server, TakenServer>();
  #stopped = false;

  private constructor() {}

  /** Starts intercepting; throws if another capture is still running. */
  static start(): ListenCapture {
    if (active !== undefined) throw new Error('postern: a listen() capture is already running');
    const capture = new ListenCapture();
    active = capture;
    install();
    return capture;
  }

  /** listen() on any http.Server while this capture runs. */
  intercept(server: Server, args: unknown[]): Server {
    const { callback, rest } = splitCallback(args);
    const already = this.#byServer.get(server);
    if (already !== undefined) {
      this.problems.push(`called listen() a second time on the server that listened ${ordinal(already.order)}`);
      this.#notify();
      return server;
    }
    const taken = new TakenServer(server, listenRequest(rest), this.taken.length + 1);
    this.#byServer.set(server, taken);
    this.taken.push(taken);
    remember(taken);
    present(server, taken);
    announceListening(server, callback);
    this.#notify();
    return server;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Ends the capture: later listen() calls bind as usual, except on the servers taken over and on
   * servers sharing their handlers (see the file comment). With nothing taken over in this process,
   * `http.Server.prototype.listen` is put back as it was.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (active === this) active = undefined;
    uninstallIfUnused();
    this.#notify();
  }

  /**
   * Resolves with the `n`-th server to listen, once it has and its 'listening' listeners have run;
   * with undefined after `timeoutMs`, or at once when a problem was recorded or the capture stopped.
   */
  async waitFor(n: number, timeoutMs: number): Promise<TakenServer | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.taken.length < n && this.problems.length === 0 && !this.#stopped) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.push(done);
      });
    }
    const taken = this.taken[n - 1];
    // 'listening' is emitted on the next tick; let its listeners (and what they start) run first.
    if (taken !== undefined) await new Promise((resolve) => setImmediate(resolve));
    return this.problems.length === 0 ? taken : undefined;
  }

  #notify(): void {
    for (const fn of this.#waiters.splice(0)) fn();
  }
}

/** 'first', 'second'… for messages. */
export function ordinal(n: number): string {
  return ['first', 'second', 'third'][n - 1] ?? `${n}th`;
}

/**
 * Makes a taken-over server look bound to the app: `listening` true until closed, `address()` as
 * TakenServer.address says, `close(cb)` stopping the mount and calling back without error. Own
 * properties on the instance, so nothing shared changes.
 */
function present(server: Server, taken: TakenServer): void {
  Object.defineProperty(server, 'listening', { configurable: true, enumerable: false, get: () => !taken.closed });
  Object.defineProperty(server, 'address', { configurable: true, writable: true, enumerable: false, value: () => (taken.closed ? null : taken.address()) });
  Object.defineProperty(server, 'close', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function close(this: Server, callback?: (err?: Error) => void): Server {
      if (!taken.close()) {
        // As net.Server answers a close() of a server that is not running.
        if (typeof callback === 'function') {
          const err = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
          process.nextTick(callback, err);
        }
        return this;
      }
      if (typeof callback === 'function') this.once('close', callback);
      process.nextTick(() => { this.emit('close'); });
      return this;
    },
  });
}

/**
 * The mount's app for a taken-over server: each request emitted as 'request' on the app's own
 * server through the direct bridge; once the app has closed its server, 503 Service Unavailable.
 */
export function serveTakenServer(taken: TakenServer, options: NodeAdapterOptions = {}): NativeApp {
  const serve = bridgeNodeServer(taken.server, options);
  return (environ, startResponse) => {
    if (taken.closed) return plainAnswer(startResponse, 503, environ.REQUEST_METHOD === 'HEAD');
    return serve(environ, startResponse);
  };
}
