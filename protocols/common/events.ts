// The one event vocabulary that every protocol decoder feeds, from the application's side.
// A decoder is sans-IO: `push(bytes)` in, calls on a `DecoderSink` out, synchronously.

import type { ProtocolError } from './errors.ts';

/** FastCGI roles (spec §6); SCGI and uwsgi requests are always RESPONDER. */
export const ROLE = { RESPONDER: 1, AUTHORIZER: 2, FILTER: 3 } as const;
export type Role = (typeof ROLE)[keyof typeof ROLE];

/** What the front server said about one request, once its params are complete. */
export interface RequestHead {
  /** FastCGI request id; always 1 for SCGI and uwsgi. */
  readonly id: number;
  /**
   * Params in wire order as a flat list `[name0, value0, name1, value1, …]`, bytes decoded as
   * latin1 (names and values are bytes, not UTF-8). Duplicates are kept; the environ decides.
   */
  readonly params: string[];
  readonly role: Role;
  /** FastCGI FCGI_KEEP_CONN: the front server owns the connection. False for SCGI and uwsgi. */
  readonly keepConn: boolean;
  /**
   * Body length the decoder will deliver: CONTENT_LENGTH for SCGI/uwsgi (the body ends after
   * exactly that many bytes), -1 for FastCGI (the empty STDIN record ends the body).
   */
  readonly contentLength: number;
}

/** Receives a decoder's events. Calls are synchronous, in wire order, from inside `push()`/`end()`. */
export interface DecoderSink {
  /** A request began and its params are complete; body events for `head.id` follow. */
  request(head: RequestHead): void;
  /** A piece of the request body (FastCGI STDIN). A view into the pushed chunk: copy to keep it. */
  body(id: number, chunk: Buffer): void;
  /** The body is complete (FastCGI empty STDIN; SCGI/uwsgi CONTENT_LENGTH reached). */
  bodyEnd(id: number): void;
  /** A piece of the FastCGI FILTER role's FCGI_DATA stream (spec §6.4). */
  data(id: number, chunk: Buffer): void;
  /** The FCGI_DATA stream is complete. */
  dataEnd(id: number): void;
  /** The front server aborted the request (FCGI_ABORT_REQUEST, or the connection closed early). */
  abort(id: number): void;
  /**
   * Bytes the protocol itself obliges us to send (GET_VALUES_RESULT, UNKNOWN_TYPE,
   * END_REQUEST(UNKNOWN_ROLE / CANT_MPX_CONN / OVERLOADED), uwsgi PONG). When `close` is true
   * the connection should be closed once they are written.
   */
  reply(bytes: Buffer, close: boolean): void;
  /**
   * A coded protocol error. After an error concerning the connection (`requestId` 0) the
   * decoder emits nothing more; an error naming a request ends only that request.
   */
  error(err: ProtocolError): void;
}

/** The shape every protocol decoder has. */
export interface Decoder {
  /** Feed bytes as they arrive; any split is fine. Never throws. */
  push(chunk: Buffer): void;
  /** The peer closed its side: unfinished requests are aborted, a partial frame is an error. */
  end(): void;
}

/** Limits every decoder checks as bytes arrive. Each is a named option with a unit. */
export interface DecoderLimits {
  /** Params/vars bytes per request, as sent on the wire (names, values and length prefixes). */
  readonly maxParamsBytes: number;
  /** Number of params per request. */
  readonly maxParamCount: number;
  /** Body bytes per request; 0 means unlimited (the body is streamed, never buffered). */
  readonly maxBodyBytes: number;
}

export const DEFAULT_LIMITS: DecoderLimits = Object.freeze({
  maxParamsBytes: 64 * 1024,
  maxParamCount: 1000,
  maxBodyBytes: 0,
});
