// Server options, from the caller's side: the flat option names the team brief fixes, their
// defaults, and the frozen resolved form every connection reads.

import type { Protocol } from '../app/types.ts';
import type { Tree } from '../app/tree.ts';
import type { AccessLog, EventLog } from '../log/types.ts';
import { resolveSocketOwner, type SocketOwner } from './privileges.ts';
import type { Metrics } from '../status/metrics.ts';
import type { StatusRoutes } from '../status/endpoint.ts';

export interface ListenerSpec {
  readonly protocol: Protocol;
  /** `HOST:PORT`, `:PORT`, `[::1]:PORT`, `unix:PATH` or `fd:N` (see `parseAddress`). */
  readonly address: string;
}

/** Limits and timeouts; every field optional, defaults in `SERVER_DEFAULTS`. */
export interface ServerLimits {
  /** FastCGI PARAMS / SCGI netstring / uwsgi vars bytes per request. */
  maxParamsBytes?: number;
  maxParamCount?: number;
  /** Request body bytes; 0 = unlimited (bodies are streamed, never buffered). */
  maxBodyBytes?: number;
  /** FastCGI concurrent request ids per connection; 1 = no multiplexing (CANT_MPX_CONN). */
  maxRequestsPerConnection?: number;
  /** Open connections across all listeners of this process; advertised as FCGI_MAX_CONNS. */
  maxConnections?: number;
  /** HTTP listener: request line + headers (node:http `maxHeaderSize`). */
  maxHeadersBytes?: number;
  /** Params/headers must be complete this long after the first byte (or after accept). */
  headerTimeoutMs?: number;
  /** A request body that sends nothing for this long (while the app reads) is abandoned. */
  bodyIdleTimeoutMs?: number;
  /** An idle keep-alive connection (FastCGI KEEP_CONN, HTTP) is closed after this long. */
  keepAliveTimeoutMs?: number;
  /** Whole-request deadline; 0 = off. On expiry the signal aborts and 504 is sent if it still can be. */
  requestTimeoutMs?: number;
  /** A connection whose output stays stuck (the peer reads nothing) this long is closed; 0 = off. */
  writeTimeoutMs?: number;
  /** Requests in flight in this process; past it a request is refused (503, FastCGI OVERLOADED); 0 = no cap. */
  maxInflightRequests?: number;
  /** `Retry-After` on the 503 an overloaded server answers; 0 = no header. */
  retryAfterSeconds?: number;
  /** CIDR blocks (IPv4, IPv6) whose TCP peers may connect, on every protocol; empty = everyone. Unix sockets are not checked. */
  allowedClients?: readonly string[];
  /** `close()` lets in-flight requests finish for this long, then destroys what is left. */
  shutdownTimeoutMs?: number;
  trustForwardedProto?: boolean;
  /** Show app error details in 500 bodies (the tree reads it; carried here for completeness). */
  debug?: boolean;
  /** Octal permission string for unix sockets, e.g. "0660"; unset = leave the umask's result. */
  socketMode?: string;
  /** Owner of the unix sockets postern creates: a user name or uid; unset = the process's. */
  socketOwner?: string;
  /** Group of the unix sockets postern creates: a group name or gid; unset = the process's. */
  socketGroup?: string;
  /** A request taking at least this long is logged (warn); 0 = off. */
  slowRequestMs?: number;
}

export interface ServerOptions extends ServerLimits {
  tree: Tree;
  listeners: ReadonlyArray<ListenerSpec>;
  log?: EventLog;
  accessLog?: AccessLog;
  /** Worker number for access records and logs (0 = single process / master). */
  worker?: number;
  /** Environment read for systemd socket activation; default `process.env` (tests pass their own). */
  env?: NodeJS.ProcessEnv;
  /** The process's metrics registry (shared by every server of the process); default a fresh one. */
  metrics?: Metrics;
  /** Status and ping paths answered before the tree on these listeners; unset = none. */
  statusRoutes?: StatusRoutes;
}

export interface ResolvedLimits {
  readonly maxParamsBytes: number;
  readonly maxParamCount: number;
  readonly maxBodyBytes: number;
  readonly maxRequestsPerConnection: number;
  readonly maxConnections: number;
  readonly maxHeadersBytes: number;
  readonly headerTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly writeTimeoutMs: number;
  /** 0 = no cap. */
  readonly maxInflightRequests: number;
  readonly retryAfterSeconds: number;
  readonly shutdownTimeoutMs: number;
  readonly trustForwardedProto: boolean;
  readonly debug: boolean;
  readonly socketMode: number | undefined;
  readonly socketOwner: SocketOwner | undefined;
  readonly allowedClients: readonly string[];
  readonly slowRequestMs: number;
}

export const SERVER_DEFAULTS = Object.freeze({
  maxParamsBytes: 65536,
  maxParamCount: 1000,
  maxBodyBytes: 0,
  maxRequestsPerConnection: 1,
  maxConnections: 1024,
  maxHeadersBytes: 65536,
  headerTimeoutMs: 10_000,
  bodyIdleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 60_000,
  requestTimeoutMs: 0,
  writeTimeoutMs: 30_000,
  maxInflightRequests: 1024,
  retryAfterSeconds: 5,
  shutdownTimeoutMs: 30_000,
  trustForwardedProto: false,
  debug: false,
  slowRequestMs: 0,
});

export const OPTION_ERROR = 'POSTERN_ERR_BAD_OPTION';

export class OptionError extends Error {
  readonly code = OPTION_ERROR;
  readonly option: string;
  constructor(option: string, why: string) {
    super(`option ${option}: ${why}`);
    this.name = 'OptionError';
    this.option = option;
  }
}

function int(name: keyof typeof SERVER_DEFAULTS, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = value ?? (SERVER_DEFAULTS[name] as number);
  if (!Number.isInteger(v) || v < min || v > max) throw new OptionError(name, `must be an integer in ${min}..${max}, got ${String(v)}`);
  return v;
}

/** Parses "0660" / "660" / "0o660" into a mode number. */
export function parseSocketMode(mode: string): number {
  const m = /^(?:0o?)?([0-7]{3,4})$/.exec(mode);
  if (m === null) throw new OptionError('socketMode', `must be an octal mode such as "0660", got ${JSON.stringify(mode)}`);
  return parseInt(m[1] ?? '', 8);
}

export function resolveLimits(o: ServerLimits): ResolvedLimits {
  return Object.freeze({
    maxParamsBytes: int('maxParamsBytes', o.maxParamsBytes, 1),
    maxParamCount: int('maxParamCount', o.maxParamCount, 1),
    maxBodyBytes: int('maxBodyBytes', o.maxBodyBytes, 0),
    // Request ids are 16-bit; 65535 concurrent is the protocol's ceiling.
    maxRequestsPerConnection: int('maxRequestsPerConnection', o.maxRequestsPerConnection, 1, 65535),
    maxConnections: int('maxConnections', o.maxConnections, 1),
    maxHeadersBytes: int('maxHeadersBytes', o.maxHeadersBytes, 1024),
    headerTimeoutMs: int('headerTimeoutMs', o.headerTimeoutMs, 0),
    bodyIdleTimeoutMs: int('bodyIdleTimeoutMs', o.bodyIdleTimeoutMs, 0),
    keepAliveTimeoutMs: int('keepAliveTimeoutMs', o.keepAliveTimeoutMs, 0),
    requestTimeoutMs: int('requestTimeoutMs', o.requestTimeoutMs, 0),
    writeTimeoutMs: int('writeTimeoutMs', o.writeTimeoutMs, 0),
    maxInflightRequests: int('maxInflightRequests', o.maxInflightRequests, 0),
    retryAfterSeconds: int('retryAfterSeconds', o.retryAfterSeconds, 0, 86_400),
    shutdownTimeoutMs: int('shutdownTimeoutMs', o.shutdownTimeoutMs, 0),
    trustForwardedProto: o.trustForwardedProto ?? SERVER_DEFAULTS.trustForwardedProto,
    debug: o.debug ?? SERVER_DEFAULTS.debug,
    socketMode: o.socketMode === undefined ? undefined : parseSocketMode(o.socketMode),
    socketOwner: resolveSocketOwner(o.socketOwner, o.socketGroup),
    allowedClients: Object.freeze([...(o.allowedClients ?? [])]),
    slowRequestMs: int('slowRequestMs', o.slowRequestMs, 0),
  });
}
