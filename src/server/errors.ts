// Error codes the connection layer gives apps and logs, from the server's side: what an app's
// `postern.input` fails with and what `postern.signal.reason` carries. Each is a ProtocolError so
// it has a stable code and the status postern answers with when it still can.

import { ProtocolError } from '../../protocols/common/errors.ts';

export const SERVER_ERRORS = {
  /** FCGI_ABORT_REQUEST: the front server gave up on the request. */
  ABORTED: 'POSTERN_ERR_ABORTED',
  /** The connection closed (or reset) before the request finished. */
  CONNECTION_CLOSED: 'POSTERN_ERR_CONNECTION_CLOSED',
  /** The FastCGI body ended (empty STDIN) before CONTENT_LENGTH bytes arrived (spec §6.2). */
  BODY_TRUNCATED: 'POSTERN_ERR_BODY_TRUNCATED',
  /** FCGI_STDIN carried more bytes than CONTENT_LENGTH declared (spec §6.2): refused with 400. */
  BODY_TOO_LONG: 'POSTERN_ERR_BODY_TOO_LONG',
  /** `requestTimeoutMs` passed: the signal aborts, 504 if the head was not sent yet. */
  REQUEST_TIMEOUT: 'POSTERN_ERR_REQUEST_TIMEOUT',
  /** `headerTimeoutMs` passed before the params/headers were complete. */
  HEADER_TIMEOUT: 'POSTERN_ERR_HEADER_TIMEOUT',
  /** `bodyIdleTimeoutMs` passed while the app waited for body bytes that did not come. */
  BODY_TIMEOUT: 'POSTERN_ERR_BODY_TIMEOUT',
  /** The server stopped (`closeNow`, or `close` past `shutdownTimeoutMs`). */
  SHUTDOWN: 'POSTERN_ERR_SHUTDOWN',
  /** `maxInflightRequests` were in flight: the request was refused (503 + Retry-After, FastCGI OVERLOADED). */
  OVERLOADED: 'POSTERN_ERR_OVERLOADED',
  /** The peer read nothing of our output for `writeTimeoutMs`: the connection was closed. */
  WRITE_TIMEOUT: 'POSTERN_ERR_WRITE_TIMEOUT',
  /** A connection from an address `allowedClients` (or FCGI_WEB_SERVER_ADDRS) does not list: closed at accept. */
  CLIENT_DENIED: 'POSTERN_ERR_CLIENT_DENIED',
  /** `Responder.head` called twice, or `write` before `head`: a bug in the caller. */
  RESPONSE_STATE: 'POSTERN_ERR_RESPONSE_STATE',
} as const;

export function serverError(code: (typeof SERVER_ERRORS)[keyof typeof SERVER_ERRORS], message: string, httpStatus = 0, requestId = 0): ProtocolError {
  return new ProtocolError(code, message, { httpStatus, requestId });
}
