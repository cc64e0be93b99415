// Small pieces every per-protocol connection shares, from the server's side: role names, the
// canned error answers postern sends on its own, and the access record.

import { STATUS_CODES } from 'node:http';
import { performance } from 'node:perf_hooks';
import { ProtocolError } from '../../protocols/common/errors.ts';
import { ROLE } from '../../protocols/common/events.ts';
import type { HeaderList } from '../../protocols/common/head.ts';
import type { Environ, Protocol, RoleName } from '../app/types.ts';
import { decimalParam } from '../environ.ts';
import type { AccessRecord } from '../log/types.ts';
import type { ServeContext } from './context.ts';

export const ROLE_NAMES: Readonly<Record<number, RoleName>> = Object.freeze({
  [ROLE.RESPONDER]: 'responder',
  [ROLE.AUTHORIZER]: 'authorizer',
  [ROLE.FILTER]: 'filter',
});

export function reasonOf(status: number): string {
  return STATUS_CODES[status] ?? 'Unknown';
}

export interface CannedAnswer {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  readonly body: Buffer;
}

const canned = new Map<number, CannedAnswer>();

/** The plain-text answer postern sends itself (limits, timeouts): `431 Request Header Fields Too Large\n`. */
export function cannedAnswer(status: number): CannedAnswer {
  let a = canned.get(status);
  if (a === undefined) {
    const reason = reasonOf(status);
    const body = Buffer.from(`${String(status)} ${reason}\n`, 'latin1');
    a = Object.freeze({
      status,
      reason,
      headers: Object.freeze([
        ['Content-Type', 'text/plain; charset=utf-8'],
        ['Content-Length', String(body.length)],
      ] as const),
      body,
    });
    canned.set(status, a);
  }
  return a;
}

/** CONTENT_LENGTH as a number; -1 when absent, empty or not a decimal number. */
export function declaredLength(environ: Environ): number {
  return decimalParam(environ.CONTENT_LENGTH);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * A request is over (call it once, where `ctx.inFlight` drops): per-mount metrics, the slow-request
 * warning, and the access record when an access log is configured. `t0` is the request's start on
 * performance.now(); `startMs` its epoch start, taken only when the access log is on.
 */
export function requestFinished(ctx: ServeContext, protocol: Protocol, environ: Environ | undefined, status: number, bytes: number, t0: number, startMs: number, seq: number): void {
  const durationMs = performance.now() - t0;
  const mount = environ?.['postern.mount'];
  ctx.metrics.requestFinished(typeof mount === 'string' ? mount : '', status, durationMs);
  const slow = ctx.limits.slowRequestMs;
  if (slow > 0 && durationMs >= slow) {
    const e: Partial<Environ> = environ ?? {};
    ctx.log.warn('slow request', {
      method: str(e.REQUEST_METHOD), uri: str(e.REQUEST_URI) || `${str(e.SCRIPT_NAME)}${str(e.PATH_INFO)}`, mount: typeof mount === 'string' ? mount : '',
      status, durationMs: Math.round(durationMs), worker: ctx.worker, protocol, limit: 'slowRequestMs', slowRequestMs: slow,
    });
  }
  if (ctx.accessLog !== undefined) ctx.accessLog.write(accessRecord(ctx, protocol, environ, status, bytes, startMs, seq, durationMs));
}

/** Builds the access record; called only when an access log is configured. */
export function accessRecord(ctx: ServeContext, protocol: Protocol, environ: Environ | undefined, status: number, bytes: number, startMs: number, seq: number, durationMs = Date.now() - startMs): AccessRecord {
  const e: Partial<Environ> = environ ?? {};
  const query = str(e.QUERY_STRING);
  const uri = str(e.REQUEST_URI) || `${str(e.SCRIPT_NAME)}${str(e.PATH_INFO)}${query === '' ? '' : `?${query}`}`;
  const id = e['postern.request_id'];
  return {
    startMs,
    // Microseconds are as fine as a log line needs (and keep JSON numbers short).
    durationMs: Math.round(durationMs * 1000) / 1000,
    remoteAddr: str(e.REMOTE_ADDR),
    method: str(e.REQUEST_METHOD),
    uri,
    status,
    bytes,
    protocol,
    // The tree appends the mount prefix to SCRIPT_NAME, which the environ starts as "".
    mount: typeof e['postern.mount'] === 'string' ? e['postern.mount'] : str(e.SCRIPT_NAME),
    requestId: typeof id === 'string' ? id : `${String(ctx.worker)}-${String(seq)}`,
    worker: ctx.worker,
    userAgent: str(e.HTTP_USER_AGENT),
    referer: str(e.HTTP_REFERER),
    serverProtocol: str(e.SERVER_PROTOCOL),
  };
}

/** A ProtocolError as is; anything else thrown while building a request becomes a coded 500. */
export function asProtocolError(err: unknown, requestId: number): ProtocolError {
  if (err instanceof ProtocolError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const status = (err as { httpStatus?: unknown } | null)?.httpStatus;
  return new ProtocolError(typeof code === 'string' && code.startsWith('POSTERN_ERR_') ? (code as `POSTERN_ERR_${string}`) : 'POSTERN_ERR_INTERNAL', message, {
    requestId,
    httpStatus: typeof status === 'number' && status >= 400 && status <= 599 ? status : 500,
  });
}

/** The Content-Length a response head declares, or -1. */
export function completeLength(headers: HeaderList): number {
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (h[0].length === 14 && h[0].toLowerCase() === 'content-length') {
      const n = Number(h[1]);
      return Number.isSafeInteger(n) && n >= 0 ? n : -1;
    }
  }
  return -1;
}

/**
 * Whether a response that ended with a failure appStatus is short of what its head promised: no
 * Content-Length (chunked or close-delimited, so the receiver cannot tell), or fewer bytes. A
 * complete error page (the tree's 500) is not.
 */
export function incomplete(length: number, bytes: number, headRequest: boolean): boolean {
  if (headRequest) return false;
  return length < 0 || bytes < length;
}
