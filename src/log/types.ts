// The logging interfaces the rest of postern depends on; winston (events) and the batched access
// log writer implement them in this folder, and tests can pass a recording fake.

/** Event/error log: lifecycle, warnings, protocol errors. Never per-request on the hot path. */
export interface EventLog {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
  /** Cheap guard for debug-level work on hot paths (a cached boolean). */
  readonly debugEnabled: boolean;
}

/** One finished request, as the access log sees it (PHP-FPM access.format / uWSGI log-format fields). */
export interface AccessRecord {
  /** Epoch milliseconds when the request began. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly remoteAddr: string;
  readonly method: string;
  /** REQUEST_URI as received (path and query). */
  readonly uri: string;
  readonly status: number;
  /** Response body bytes sent. */
  readonly bytes: number;
  readonly protocol: 'fastcgi' | 'scgi' | 'uwsgi' | 'http';
  /** The mount prefix that served it ('' when none matched). */
  readonly mount: string;
  readonly requestId: string;
  readonly worker: number;
  readonly userAgent: string;
  readonly referer: string;
  /**
   * SERVER_PROTOCOL as the front server reported it (`HTTP/1.1`, `HTTP/2.0`): the client's protocol
   * behind nginx and Apache. Optional (added after the first contract); `combined` writes `HTTP/1.1`
   * when it is absent.
   */
  readonly serverProtocol?: string;
}

export interface AccessLog {
  /** Must cost a few µs at most; may drop (and count) lines when the output is stuck. */
  write(record: AccessRecord): void;
}

/** A log that discards everything: the default for library use and tests. */
export const silentLog: EventLog = Object.freeze({
  error() {},
  warn() {},
  info() {},
  debug() {},
  debugEnabled: false,
});
