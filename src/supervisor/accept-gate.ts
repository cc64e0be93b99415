// The master's own accept on one listening socket, from the master's side, for the on-demand pool:
// while no worker serves the socket, the master accepts and hands each connection (not a byte read)
// to the worker it starts; once one serves, the master stops accepting and the socket stays bound.
//
// The fds. The master's bound socket (the "keeper", see listeners.ts) is never polled and never
// closed here: libuv unlinks a unix socket's path when the handle that bound it closes, and an
// inherited fd (fd:N, fd 0 from a spawner) is not ours to close. libuv has no call that stops a
// listening handle without closing its fd, so the master polls a *duplicate* of the socket and
// closes that duplicate to stop. Node has no dup(); a duplicate comes from a short-lived helper
// process that inherits the socket and sends it back over IPC (an fd passed in SCM_RIGHTS arrives
// as a new fd). One spare duplicate is kept in reserve, so stopping is immediate; the helper runs
// again each time the reserve is spent (once per empty-pool episode).
//
// Private Node internals, both also used by listeners.ts and by node:cluster itself:
//   - `net._createServerHandle(null, 0, 0, fd, 0)` in the helper: a raw TCP/Pipe handle on an
//     inherited fd, not listening (what cluster's workers use for SCHED_NONE);
//   - the raw handle's `listen(backlog)` / `onconnection(err, clientHandle)` / `close()` in the
//     master: node's TCPWrap/PipeWrap as net.Server drives them.
// A connection is then sent as the raw client handle ('net.Native' in child_process's handle
// transfer); the worker wraps it (worker.ts). Checked on Node 20 and 24 (test/integration/on-demand.test.ts).

import { spawn } from 'node:child_process';

/** node's TCPWrap/PipeWrap as the master sees it (listeners.ts has the binding side). */
export interface RawHandle {
  readonly fd: number;
  listen?(backlog: number): number;
  onconnection?: ((err: number, client: RawClient | undefined) => void) | null;
  close(): void;
}

/** An accepted connection's raw handle. */
export interface RawClient {
  readonly fd?: number;
  close(): void;
}

/** net.Server's default backlog, which the workers' listen() uses too (a listen() call re-sets it). */
const BACKLOG = 511;
/** A helper that has not answered in this long is killed. */
const HELPER_TIMEOUT_MS = 10_000;
/** After a failed helper, the next try waits this long (the master calls set() on every tick). */
const RETRY_AFTER_MS = 5000;

// Runs in the helper: fd 3 is the socket, the IPC channel is fd 4. It sends the fd back as a raw
// handle and exits once the master disconnects.
const HELPER = `const h = require('node:net')._createServerHandle(null, 0, 0, 3, 0);
if (typeof h === 'number') process.exit(1);
process.send({ dup: true }, h);`;

/** Duplicates the socket on `fd` (see the file comment). */
export function duplicateSocket(fd: number): Promise<RawHandle> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', HELPER], { stdio: ['ignore', 'ignore', 'inherit', fd, 'ipc'], env: {} });
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`the fd helper did not answer within ${String(HELPER_TIMEOUT_MS)} ms`)), HELPER_TIMEOUT_MS);
    const finish = (err: Error | undefined, handle?: RawHandle): void => {
      if (settled) {
        handle?.close();
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (child.connected) child.disconnect();
      if (err !== undefined) {
        child.kill('SIGKILL');
        reject(err);
      } else if (handle !== undefined) {
        resolve(handle);
      }
    };
    child.on('message', (_m: unknown, handle: unknown) => {
      if (typeof handle === 'object' && handle !== null && typeof (handle as RawHandle).close === 'function') finish(undefined, handle as RawHandle);
      else finish(new Error('the fd helper sent no socket'));
    });
    child.on('error', (err) => finish(err));
    child.on('exit', (code, signal) => finish(new Error(`the fd helper exited (${signal ?? `code ${String(code)}`}) without a socket`)));
  });
}

export interface AcceptGateEvents {
  /** A connection the master accepted: it owns `client` now (send it on, or close it). */
  connection(client: RawClient): void;
  /** Something failed (an accept error, the helper); the gate tries the helper again on a later set(), RETRY_AFTER_MS on. */
  error(message: string): void;
}

/** The master's accept switch for one socket. */
export class AcceptGate {
  readonly #keeperFd: number;
  readonly #events: AcceptGateEvents;
  #spare: RawHandle | undefined;
  #poller: RawHandle | undefined;
  #want = false;
  #fetching: Promise<void> | undefined;
  #closed = false;
  #retryAt = 0;
  #dup: (fd: number) => Promise<RawHandle>;

  constructor(keeperFd: number, events: AcceptGateEvents, dup: (fd: number) => Promise<RawHandle> = duplicateSocket) {
    this.#keeperFd = keeperFd;
    this.#events = events;
    this.#dup = dup;
  }

  /** Whether the master is polling this socket right now. */
  get accepting(): boolean {
    return this.#poller !== undefined;
  }

  /**
   * Accept (true) or leave the socket to the workers (false). Starting needs a spare duplicate: the
   * first time, it comes a moment later (connections wait in the kernel meanwhile); stopping is
   * immediate once the reserve is refilled.
   */
  set(accepting: boolean): void {
    this.#want = accepting;
    this.#settle();
  }

  /**
   * Resolves once a spare duplicate is at hand (or fetching it failed, which was reported), so
   * that set(true) takes effect at once: until the master or a worker listen()s, a freshly bound
   * socket refuses connections.
   */
  prepare(): Promise<void> {
    this.#settle();
    return this.#fetching ?? Promise.resolve();
  }

  close(): void {
    this.#closed = true;
    this.#want = false;
    this.#poller?.close();
    this.#poller = undefined;
    this.#spare?.close();
    this.#spare = undefined;
  }

  #settle(): void {
    if (this.#closed) return;
    if (this.#want && this.#poller === undefined && this.#spare !== undefined) {
      const h = this.#spare;
      this.#spare = undefined;
      h.onconnection = (err, client) => {
        if (err !== 0 || client === undefined) {
          this.#events.error(`accept failed (errno ${String(err)})`);
          return;
        }
        this.#events.connection(client);
      };
      const err = h.listen?.(BACKLOG) ?? -1;
      if (err !== 0) {
        h.close();
        this.#events.error(`listen on the duplicate socket failed (errno ${String(err)})`);
      } else {
        this.#poller = h;
      }
    } else if (!this.#want && this.#poller !== undefined && this.#spare !== undefined) {
      this.#poller.onconnection = null;
      this.#poller.close();
      this.#poller = undefined;
    }
    if (this.#spare === undefined && this.#fetching === undefined && Date.now() >= this.#retryAt) this.#fetch();
  }

  #fetch(): void {
    this.#fetching = this.#dup(this.#keeperFd).then((h) => {
      this.#fetching = undefined;
      if (this.#closed) {
        h.close();
        return;
      }
      this.#spare = h;
      this.#settle();
    }, (err: unknown) => {
      this.#fetching = undefined;
      this.#retryAt = Date.now() + RETRY_AFTER_MS;
      if (!this.#closed) this.#events.error(`cannot duplicate the listening socket: ${err instanceof Error ? err.message : String(err)}`);
    });
  }
}
