// The serving state every connection of one process shares, from the server's side: the tree, the
// resolved limits, the logs, the live-connection registry with its counters, and one coarse clock
// that drives every timeout (one sweep per interval, so no timer is armed per request).

import type { Tree } from '../app/tree.ts';
import type { AccessLog, EventLog } from '../log/types.ts';
import { silentLog } from '../log/types.ts';
import type { ResolvedLimits, ServerLimits } from './options.ts';
import { resolveLimits } from './options.ts';

/** One live connection, as the registry sees it. */
export interface Tracked {
  /** Requests started on this connection and not yet finished. */
  readonly inFlight: number;
  /** Checks this connection's deadlines against the coarse clock. */
  sweep(now: number): void;
  /** Graceful stop: refuse nothing in flight, close once idle. */
  drain(): void;
  /** Hard stop: abort everything and destroy the socket. */
  destroy(): void;
}

export interface ServeContextOptions extends ServerLimits {
  tree: Tree;
  log?: EventLog;
  accessLog?: AccessLog;
  worker?: number;
}

export interface ServeStats {
  /** Connections open now, all protocols. */
  readonly connections: number;
  /** Requests started and not yet finished. */
  readonly inFlight: number;
  /** Requests started since the context was created. */
  readonly requests: number;
  /** Connections closed at once because `maxConnections` were open. */
  readonly rejectedConnections: number;
  /** Protocol errors seen (malformed input, limits exceeded), all protocols. */
  readonly protocolErrors: number;
  /** Requests ended by `requestTimeoutMs`. */
  readonly timedOut: number;
  /** Requests aborted by the peer (FCGI_ABORT_REQUEST, connection closed early). */
  readonly aborted: number;
}

// The sweep runs at a quarter of the shortest enabled timeout, between these bounds: a 10 s
// header timeout fires within 10–11 s, and a 200 ms one in a test within 200–250 ms.
const SWEEP_MIN_MS = 25;
const SWEEP_MAX_MS = 1000;

export class ServeContext {
  readonly tree: Tree;
  readonly limits: ResolvedLimits;
  readonly log: EventLog;
  /** Undefined when off: connections then build no access record at all. */
  readonly accessLog: AccessLog | undefined;
  readonly worker: number;
  /** Coarse clock (epoch ms), refreshed by the sweep; good to a sweep interval. */
  now: number = Date.now();
  /** True once a graceful stop began: new connections are closed, idle ones too. */
  draining = false;

  requests = 0;
  inFlight = 0;
  rejectedConnections = 0;
  protocolErrors = 0;
  timedOut = 0;
  aborted = 0;

  readonly #live = new Set<Tracked>();
  readonly #timer: NodeJS.Timeout | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(options: ServeContextOptions) {
    this.tree = options.tree;
    this.limits = resolveLimits(options);
    this.log = options.log ?? silentLog;
    this.accessLog = options.accessLog;
    this.worker = options.worker ?? 0;
    const l = this.limits;
    const enabled = [l.headerTimeoutMs, l.bodyIdleTimeoutMs, l.keepAliveTimeoutMs, l.requestTimeoutMs].filter((ms) => ms > 0);
    if (enabled.length > 0) {
      const every = Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(Math.min(...enabled) / 4)));
      this.#timer = setInterval(this.#sweep, every);
      this.#timer.unref();
    }
  }

  get connections(): number {
    return this.#live.size;
  }

  /** Registers a connection; false (and the caller closes the socket) when over `maxConnections`. */
  admit(conn: Tracked): boolean {
    if (this.#live.size >= this.limits.maxConnections) {
      this.rejectedConnections++;
      return false;
    }
    this.#live.add(conn);
    return true;
  }

  release(conn: Tracked): void {
    if (!this.#live.delete(conn)) return;
    if (this.#live.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Begins a graceful stop: every connection finishes what it has in flight, then closes. */
  drain(): void {
    this.draining = true;
    for (const c of [...this.#live]) c.drain();
  }

  /** Destroys every connection now. */
  destroyAll(): void {
    for (const c of [...this.#live]) c.destroy();
  }

  /** Resolves when no connection is left. */
  idle(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops the sweep timer; call after the last connection is gone. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  stats(): ServeStats {
    return {
      connections: this.#live.size,
      inFlight: this.inFlight,
      requests: this.requests,
      rejectedConnections: this.rejectedConnections,
      protocolErrors: this.protocolErrors,
      timedOut: this.timedOut,
      aborted: this.aborted,
    };
  }

  readonly #sweep = (): void => {
    const now = (this.now = Date.now());
    for (const c of this.#live) c.sweep(now);
  };
}

/** Socket errors that only mean the peer went away: debug-level, never an error storm (STYLE.md 16). */
export function isDisconnect(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ETIMEDOUT' ||
    code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END' || code === 'ENOTCONN';
}

/** `address:port` of a socket's peer for log lines; `unix` for unix sockets. */
export function peerOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  const a = socket.remoteAddress;
  if (a === undefined) return 'unix';
  return a.includes(':') ? `[${a}]:${String(socket.remotePort)}` : `${a}:${String(socket.remotePort)}`;
}
