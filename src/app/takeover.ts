// listen() takeover, from the loading side: while postern imports a mounted module, `listen()` on
// an `http.Server` binds nothing; the server that listened is later served through the direct
// Node bridge, so an app that starts its own server (`app.listen(3000)`) runs unchanged.
//
// Only `http.Server.prototype.listen` is replaced, and only between `ListenCapture.start()` and
// `stop()`: no global, no `cluster`, no constructor is touched (Passenger's `cluster` shim broke
// log4js and prom-client), and https/net servers are left alone.

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

  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    for (const fn of this.#onClose.splice(0)) fn();
    return true;
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

let active: ListenCapture | undefined;

/**
 * Collects the http.Servers that call listen() while a module loads. One capture at a time (mounts
 * load one after another); `stop()` puts `http.Server.prototype.listen` back as it was.
 */
export class ListenCapture {
  readonly taken: TakenServer[] = [];
  /** Oddities seen (a second listen() on one server), reported as a failed start. */
  readonly problems: string[] = [];
  readonly #waiters: Array<() => void> = [];
  readonly #previous: PropertyDescriptor | undefined;
  #stopped = false;

  private constructor() {
    this.#previous = Object.getOwnPropertyDescriptor(Server.prototype, 'listen');
  }

  /** Starts intercepting; throws if another capture is still running. */
  static start(): ListenCapture {
    if (active !== undefined) throw new Error('postern: a listen() capture is already running');
    const capture = new ListenCapture();
    active = capture;
    const byServer = new WeakMap<Server, TakenServer>();
    const listen: Listen = function listen(this: Server, ...args: unknown[]): Server {
      const last = args[args.length - 1];
      const callback = typeof last === 'function' ? last as (...a: unknown[]) => void : undefined;
      const already = byServer.get(this);
      if (already !== undefined) {
        capture.problems.push(`called listen() a second time on the server that listened ${ordinal(already.order)}`);
        capture.#notify();
        return this;
      }
      const taken = new TakenServer(this, listenRequest(callback === undefined ? args : args.slice(0, -1)), capture.taken.length + 1);
      byServer.set(this, taken);
      capture.taken.push(taken);
      present(this, taken);
      if (callback !== undefined) this.once('listening', callback);
      // As net.Server does once bound: 'listening' comes after listen() returns.
      process.nextTick(() => { this.emit('listening'); });
      capture.#notify();
      return this;
    };
    Object.defineProperty(Server.prototype, 'listen', { value: listen, configurable: true, writable: true, enumerable: false });
    return capture;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Restores `http.Server.prototype.listen`; listen() calls after this bind as usual. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#previous === undefined) delete (Server.prototype as { listen?: unknown }).listen;
    else Object.defineProperty(Server.prototype, 'listen', this.#previous);
    if (active === this) active = undefined;
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
