// Request-deadline policy, from the master's side (uWSGI harakiri, PHP-FPM request_terminate_timeout):
// the server aborts and answers at requestTimeoutMs; a worker still stuck killGraceMs later is the
// master's to kill. A pure function of the last heartbeat and the clock.

export interface DeadlineOptions {
  readonly requestTimeoutMs: number;
  readonly killGraceMs: number;
  readonly heartbeatIntervalMs: number;
}

/** A request the worker reported in flight, with its start on the master's clock. */
export interface ReportedRequest {
  readonly method: string;
  readonly uri: string;
  readonly startedAtMs: number;
}

export interface DeadlineInput {
  readonly nowMs: number;
  /** When the master last heard from the worker (a heartbeat, or readiness). */
  readonly lastHeartbeatAtMs: number;
  /** The oldest request in flight at that heartbeat, if any. */
  readonly oldest: ReportedRequest | undefined;
}

export interface NamedRequest {
  readonly method: string;
  readonly uri: string;
  readonly ageMs: number;
}

export type DeadlineVerdict =
  | { readonly action: 'none' }
  /** The event loop is stuck: nothing but SIGKILL will stop it (a JS signal handler cannot run). */
  | { readonly action: 'kill'; readonly silentMs: number; readonly request: NamedRequest | undefined }
  /**
   * The loop is alive but a request outlived its deadline and the grace: the app ignored its
   * AbortSignal. Killing would fail the worker's other requests; replace it gracefully instead.
   */
  | { readonly action: 'recycle'; readonly request: NamedRequest };

const NONE: DeadlineVerdict = Object.freeze({ action: 'none' });

/** Heartbeats count as missing after this many intervals: one late tick is GC or load, not a hang. */
export const LATE_AFTER_INTERVALS = 3;

export function checkDeadline(input: DeadlineInput, opts: DeadlineOptions): DeadlineVerdict {
  if (opts.requestTimeoutMs <= 0) return NONE;
  const limit = opts.requestTimeoutMs + opts.killGraceMs;
  const lateAfter = LATE_AFTER_INTERVALS * opts.heartbeatIntervalMs;
  const silentMs = input.nowMs - input.lastHeartbeatAtMs;
  const o = input.oldest;
  const request = o === undefined ? undefined : { method: o.method, uri: o.uri, ageMs: input.nowMs - o.startedAtMs };
  // Silent longer than any request may run plus the grace: stuck, whatever it was doing.
  if (silentMs > Math.max(limit, lateAfter)) return { action: 'kill', silentMs, request };
  if (request === undefined || request.ageMs <= limit) return NONE;
  // Late heartbeats and an overdue request: the loop stopped inside (or behind) that request.
  if (silentMs > lateAfter) return { action: 'kill', silentMs, request };
  return { action: 'recycle', request };
}
