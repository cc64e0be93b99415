// The serving state every connection of one process shares, from the server's side: the tree, the
// resolved limits, the logs, the live-connection registry with its counters, and one coarse clock
// that drives every timeout (one sweep per interval, so no timer is armed per request).

import type { Tree } from '../app/tree.ts';
import type { AccessLog, EventLog } from '../log/types.ts';
import { silentLog } from '../log/types.ts';
import { Metrics } from '../status/metrics.ts';
import type { StatusRoutes } from '../status/endpoint.ts';
import type { ResolvedLimits, ServerLimits } from './options.ts';
import { clientAccess, type AccessRule, type ClientAccess } from './access.ts';
import { LogThrottle, overloadedAnswer } from './admission.ts';
import type { CannedAnswer } from './shared.ts';
import { SERVER_ERRORS } from './errors.ts';
import type { Protocol } from '../app/types.ts';
import { resolveLimits } from './options.ts';
import type { HandoffSink } from './handoff.ts';
import { fastCgiDecoderOptions, type FastCgiDecoderOptions } from '../../protocols/fastcgi/index.ts';
import { LiveList, type LiveMember } from './live-list.ts';

/** One live connection, as the registry sees it. */
export interface Tracked extends LiveMember {
  /** Requests started on this connection and not yet finished. */
  readonly inFlight: number;
  /** Checks this connection's deadlines against the coarse clock. */
  sweep(now: number): void;
  /**
   * Graceful stop: finish what is in flight, then close. A connection that has not carried a
   * request yet keeps headerTimeoutMs (from accept) to send one, which is served; an idle
   * keep-alive one closes at once unless a request has started arriving on it.
   */
  drain(): void;
  /** Hard stop: abort everything and destroy the socket. */
  destroy(): void;
}

export interface ServeContextOptions extends ServerLimits {
  tree: Tree;
  log?: EventLog;
  accessLog?: AccessLog;
  worker?: number;
  metrics?: Metrics;
  statusRoutes?: StatusRoutes;
  /** The FCGI_WEB_SERVER_ADDRS value (spec §3.2) for FastCGI listeners; unset or blank = no check. */
  fcgiWebServerAddrs?: string | undefined;
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
  /** Requests refused because `maxInflightRequests` were in flight (503, FastCGI OVERLOADED). */
  readonly overloaded: number;
  /** Connections closed at accept by `allowedClients` or FCGI_WEB_SERVER_ADDRS. */
  readonly deniedConnections: number;
  /** Connections closed because their peer read nothing for `writeTimeoutMs`. */
  readonly writeTimeouts: number;
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
  /** Per-process counters for the status endpoint (a few increments per request). */
  readonly metrics: Metrics;
  /** Status and ping paths matched before the tree; undefined (or disabled) skips the check. */
  readonly statusRoutes: StatusRoutes | undefined;
  /** Coarse clock (epoch ms), refreshed by the sweep; good to a sweep interval. */
  now: number = Date.now();
  /**
   * The clock the client-silence timeouts (headerTimeoutMs, bodyIdleTimeoutMs, keepAliveTimeoutMs)
   * run on: like `now`, except that time this process could not look at its sockets (its event
   * loop blocked by an app, starved on a loaded machine) counts as at most one sweep interval. A
   * 408 then means the client was slow, never that postern was (issue 15).
   */
  clientClock: number = Date.now();
  /** Sweeps that found the event loop held up for more than two intervals (see clientClock). */
  stalls = 0;
  /** True once a graceful stop began: no new connection is served, idle keep-alive ones close. */
  draining = false;
  /**
   * Set while draining with a successor (a reload, a recycled worker): idle keep-alive connections
   * are handed to it instead of closed, so the front server never sees them go.
   */
  handoff: HandoffSink | undefined;

  requests = 0;
  inFlight = 0;
  rejectedConnections = 0;
  protocolErrors = 0;
  timedOut = 0;
  aborted = 0;
  overloaded = 0;
  deniedConnections = 0;
  writeTimeouts = 0;
  /** Who may connect; undefined when nothing restricts it. */
  readonly access: ClientAccess | undefined;
  /** The 503 (with Retry-After) an overloaded server answers. */
  readonly overloadedAnswer: CannedAnswer;
  readonly #inflightCap: number;
  readonly #overloadLog = new LogThrottle();
  readonly #deniedLog = new LogThrottle();

  readonly #live = new LiveList<Tracked>();
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #every: number = 0;
  #lastSweep: number = this.now;
  #idleWaiters: Array<() => void> = [];

  constructor(options: ServeContextOptions) {
    this.tree = options.tree;
    this.limits = resolveLimits(options);
    this.log = options.log ?? silentLog;
    this.accessLog = options.accessLog;
    this.worker = options.worker ?? 0;
    this.metrics = options.metrics ?? new Metrics({ worker: this.worker });
    this.statusRoutes = options.statusRoutes?.enabled === true ? options.statusRoutes : undefined;
    const l = this.limits;
    this.access = clientAccess(l.allowedClients, options.fcgiWebServerAddrs);
    this.overloadedAnswer = overloadedAnswer(l.retryAfterSeconds);
    this.#inflightCap = l.maxInflightRequests === 0 ? Infinity : l.maxInflightRequests;
    const enabled = [l.headerTimeoutMs, l.bodyIdleTimeoutMs, l.keepAliveTimeoutMs, l.requestTimeoutMs, l.writeTimeoutMs].filter((ms) => ms > 0);
    if (enabled.length > 0) {
      const every = Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(Math.min(...enabled) / 4)));
      this.#every = every;
      this.#timer = setInterval(this.#sweep, every);
      this.#timer.unref();
    }
  }

  #fastcgiDecoderOptions: Readonly<FastCgiDecoderOptions> | undefined;

  /** The FastCGI decoder's options from these limits: made and checked once, shared by every connection. */
  get fastcgiDecoderOptions(): Readonly<FastCgiDecoderOptions> {
    const l = this.limits;
    return (this.#fastcgiDecoderOptions ??= fastCgiDecoderOptions({
      maxParamsBytes: l.maxParamsBytes,
      maxParamCount: l.maxParamCount,
      maxBodyBytes: l.maxBodyBytes,
      maxRequestsPerConnection: l.maxRequestsPerConnection,
      maxConns: l.maxConnections,
      // Caps FCGI_MAX_REQS: past it requests are refused with OVERLOADED (refuseOverloaded).
      maxInflightRequests: l.maxInflightRequests,
    }));
  }

  get connections(): number {
    return this.#live.size;
  }

  /** Registers a connection; false (and the caller closes the socket) when over `maxConnections`. */
  admit(conn: Tracked): boolean {
    if (this.#live.size >= this.limits.maxConnections) {
      this.rejectedConnections++;
      this.metrics.rejected('maxConnections');
      return false;
    }
    this.#live.add(conn);
    return true;
  }

  /**
   * Called when a request's head is complete, before it starts: true (counted, logged at most once
   * per 10 s) when `maxInflightRequests` are already in flight and it must be refused.
   */
  refuseOverloaded(protocol: Protocol, socket: PeerAddress): boolean {
    if (this.inFlight < this.#inflightCap) return false;
    this.overloaded++;
    this.metrics.rejected('overloaded');
    if (this.#overloadLog.due(Date.now())) {
      this.log.warn('request refused: maxInflightRequests reached', {
        code: SERVER_ERRORS.OVERLOADED, limit: 'maxInflightRequests', maxInflightRequests: this.limits.maxInflightRequests,
        overloaded: this.overloaded, protocol, peer: peerOf(socket),
      });
    }
    return true;
  }

  /** A connection closed at accept by an access rule: counted, logged at most once per 10 s. */
  denied(rule: AccessRule, protocol: Protocol, peer: string): void {
    this.deniedConnections++;
    this.metrics.rejected('denied');
    if (this.#deniedLog.due(Date.now())) {
      this.log.warn(`connection refused: the client is not in ${rule}`, { code: SERVER_ERRORS.CLIENT_DENIED, rule, protocol, peer, denied: this.deniedConnections });
    }
  }

  /** A connection closed because its peer stopped reading (`writeTimeoutMs`). */
  writeTimedOut(protocol: Protocol, peer: string): void {
    this.writeTimeouts++;
    this.metrics.rejected('timeout');
    this.log.info('client stopped reading: connection closed', { code: SERVER_ERRORS.WRITE_TIMEOUT, limit: 'writeTimeoutMs', protocol, peer });
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
    for (const c of this.#live.snapshot()) c.drain();
  }

  /** Destroys every connection now. */
  destroyAll(): void {
    for (const c of this.#live.snapshot()) c.destroy();
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
      overloaded: this.overloaded,
      deniedConnections: this.deniedConnections,
      writeTimeouts: this.writeTimeouts,
    };
  }

  readonly #sweep = (): void => {
    const now = (this.now = Date.now());
    const gap = now - this.#lastSweep;
    this.#lastSweep = now;
    if (gap > 2 * this.#every) {
      // Timers run before the I/O poll: bytes a client sent while the loop was held are still in
      // the kernel now. Count one interval of the stall, read them, then judge.
      this.clientClock += this.#every;
      this.stalls++;
      afterPoll(sweepAll, this);
      return;
    }
    this.clientClock += Math.max(0, gap);
    this.sweepConnections();
  };

  /** Checks every connection's deadlines (the sweep; after a stall, once the waiting I/O was read). */
  sweepConnections(): void {
    const now = this.now;
    for (const c of this.#live.snapshot()) c.sweep(now);
  }
}

function sweepAll(ctx: ServeContext): void {
  ctx.sweepConnections();
}

/**
 * Calls `fn(arg)` once the event loop has polled for I/O at least once more, so that bytes the
 * kernel already holds for a socket reach its 'data' handler first (a graceful stop deciding that
 * a keep-alive connection is idle). Two immediates: the first may run before the next poll.
 */
export function afterPoll<T>(fn: (arg: T) => void, arg: T): void {
  setImmediate(secondImmediate<T>, fn, arg);
}

function secondImmediate<T>(fn: (arg: T) => void, arg: T): void {
  setImmediate(fn, arg);
}

/**
 * writeTimeoutMs bookkeeping, the same for every connection: when `socket` started asking writers
 * to wait (`now` if it just did, else `since`, kept), or 0 while its output flows.
 */
export function writeStallStart(socket: { readonly writableNeedDrain: boolean }, since: number, now: number): number {
  if (!socket.writableNeedDrain) return 0;
  return since === 0 ? now : since;
}

/** Socket errors that only mean the peer went away: debug-level, never an error storm (STYLE.md 16). */
export function isDisconnect(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ETIMEDOUT' ||
    code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END' || code === 'ENOTCONN';
}

/** What `peerOf` reads of a socket. */
export interface PeerAddress {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/** `address:port` of a socket's peer for log lines; `unix` for unix sockets. */
export function peerOf(socket: PeerAddress): string {
  const a = socket.remoteAddress;
  if (a === undefined) return 'unix';
  return a.includes(':') ? `[${a}]:${String(socket.remotePort)}` : `${a}:${String(socket.remotePort)}`;
}
