// Test helper, from a test's side: an in-memory DecoderSink that records any protocol decoder's
// events as a comparable log, and drivers that feed one input whole, byte by byte and split.

import assert from 'node:assert/strict';
import type { ProtocolError } from '../../protocols/common/errors.ts';
import type { Decoder, DecoderSink, RequestHead } from '../../protocols/common/events.ts';

/**
 * One recorded event. Body and data pieces that follow each other for the same request are
 * merged into one entry, because how a stream is cut into pieces depends on how the input was
 * chunked and must not change the log.
 */
export type LoggedEvent =
  | { readonly type: 'request'; readonly id: number; readonly role: number; readonly keepConn: boolean; readonly contentLength: number; readonly params: readonly string[] }
  | { readonly type: 'body'; readonly id: number; readonly bytes: Buffer }
  | { readonly type: 'bodyEnd'; readonly id: number }
  | { readonly type: 'data'; readonly id: number; readonly bytes: Buffer }
  | { readonly type: 'dataEnd'; readonly id: number }
  | { readonly type: 'abort'; readonly id: number }
  | { readonly type: 'reply'; readonly bytes: Buffer; readonly close: boolean }
  | {
      readonly type: 'error';
      readonly code: string;
      readonly requestId: number;
      readonly httpStatus: number;
      readonly limit: string | undefined;
    };

/** Builders for expected logs, so vector tables stay short. Strings for bytes are latin1. */
export const ev = {
  request(id: number, params: readonly string[], contentLength: number, role = 1, keepConn = false): LoggedEvent {
    return { type: 'request', id, role, keepConn, contentLength, params };
  },
  /** The head of a request given as pairs, for tables that read better as `[name, value]`. */
  requestPairs(id: number, pairs: ReadonlyArray<readonly [string, string]>, contentLength: number, role = 1, keepConn = false): LoggedEvent {
    return { type: 'request', id, role, keepConn, contentLength, params: pairs.flat() };
  },
  body(id: number, bytes: string | Uint8Array): LoggedEvent {
    return { type: 'body', id, bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes) };
  },
  bodyEnd(id: number): LoggedEvent {
    return { type: 'bodyEnd', id };
  },
  data(id: number, bytes: string | Uint8Array): LoggedEvent {
    return { type: 'data', id, bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes) };
  },
  dataEnd(id: number): LoggedEvent {
    return { type: 'dataEnd', id };
  },
  abort(id: number): LoggedEvent {
    return { type: 'abort', id };
  },
  reply(bytes: string | Uint8Array, close: boolean): LoggedEvent {
    return { type: 'reply', bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes), close };
  },
  error(code: string, httpStatus = 0, limit?: string, requestId = 0): LoggedEvent {
    return { type: 'error', code, requestId, httpStatus, limit };
  },
};

type Entry =
  | { kind: 'event'; event: LoggedEvent }
  | { kind: 'stream'; type: 'body' | 'data'; id: number; pieces: Buffer[] };

/**
 * Records every DecoderSink call. Body and data views are copied as they arrive (the decoder may
 * hand out views into chunks the caller reuses), so the log stays valid after the test moves on.
 */
export class EventLog implements DecoderSink {
  readonly #entries: Entry[] = [];
  /** The ProtocolError objects as received, for tests that look past the code. */
  readonly errors: ProtocolError[] = [];
  /** How many body() calls arrived; depends on chunking, so kept out of `events`. */
  bodyCalls = 0;
  /** How many data() calls arrived; depends on chunking, so kept out of `events`. */
  dataCalls = 0;

  /** The recorded events, with consecutive body/data pieces of one request merged. */
  get events(): LoggedEvent[] {
    return this.#entries.map((e) => (e.kind === 'event' ? e.event : { type: e.type, id: e.id, bytes: Buffer.concat(e.pieces) }));
  }

  /** Total body bytes received per request id. */
  bodyBytes(id: number): number {
    let n = 0;
    for (const e of this.#entries) if (e.kind === 'stream' && e.type === 'body' && e.id === id) for (const p of e.pieces) n += p.length;
    return n;
  }

  request(head: RequestHead): void {
    this.#push({ type: 'request', id: head.id, role: head.role, keepConn: head.keepConn, contentLength: head.contentLength, params: [...head.params] });
  }
  body(id: number, chunk: Buffer): void {
    this.bodyCalls++;
    this.#stream('body', id, chunk);
  }
  bodyEnd(id: number): void {
    this.#push({ type: 'bodyEnd', id });
  }
  data(id: number, chunk: Buffer): void {
    this.dataCalls++;
    this.#stream('data', id, chunk);
  }
  dataEnd(id: number): void {
    this.#push({ type: 'dataEnd', id });
  }
  abort(id: number): void {
    this.#push({ type: 'abort', id });
  }
  reply(bytes: Buffer, close: boolean): void {
    this.#push({ type: 'reply', bytes: Buffer.from(bytes), close });
  }
  error(err: ProtocolError): void {
    this.errors.push(err);
    this.#push({ type: 'error', code: err.code, requestId: err.requestId, httpStatus: err.httpStatus, limit: err.limit });
  }

  #push(event: LoggedEvent): void {
    this.#entries.push({ kind: 'event', event });
  }

  #stream(type: 'body' | 'data', id: number, chunk: Buffer): void {
    const last = this.#entries.at(-1);
    const piece = Buffer.from(chunk);
    if (last !== undefined && last.kind === 'stream' && last.type === type && last.id === id) last.pieces.push(piece);
    else this.#entries.push({ kind: 'stream', type, id, pieces: [piece] });
  }
}

export type DecoderFactory = (sink: DecoderSink) => Decoder;

export interface DriveOptions {
  /** Call `end()` after the last piece (default true). */
  readonly end?: boolean;
  /** Called after every push, e.g. to check a decoder's buffered bytes. */
  readonly afterPush?: (decoder: Decoder) => void;
}

/** Feeds the pieces in order to a fresh decoder and returns its log. */
export function drive(make: DecoderFactory, pieces: Iterable<Uint8Array>, options: DriveOptions = {}): EventLog {
  const log = new EventLog();
  const decoder = make(log);
  for (const piece of pieces) {
    decoder.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
    options.afterPush?.(decoder);
  }
  if (options.end ?? true) decoder.end();
  return log;
}

/** The input one byte at a time. */
export function bytewise(bytes: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(Buffer.from(bytes.subarray(i, i + 1)));
  return out;
}

/** The input cut at the given offsets (sorted, deduplicated, out-of-range ones dropped). */
export function splitAt(bytes: Uint8Array, cuts: Iterable<number>): Buffer[] {
  const points = [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    out.push(Buffer.from(bytes.subarray(start, p)));
    start = p;
  }
  out.push(Buffer.from(bytes.subarray(start)));
  return out;
}

/**
 * Decodes the input whole, one byte at a time, and split in two at every boundary, and asserts
 * that every run gives the same log (ws "spanning multiple writes"). Returns the whole-input events.
 */
export function assertSplitInvariant(make: DecoderFactory, bytes: Uint8Array, options: DriveOptions = {}): LoggedEvent[] {
  const whole = drive(make, [bytes], options).events;
  assert.deepStrictEqual(drive(make, bytewise(bytes), options).events, whole, 'one byte at a time');
  for (let i = 1; i < bytes.length; i++) {
    assert.deepStrictEqual(drive(make, splitAt(bytes, [i]), options).events, whole, `split at byte ${String(i)}`);
  }
  return whole;
}

/**
 * Protocol-neutral sanity of a log: at most one connection-level error (requestId 0), and
 * nothing after it. Returns a description of the first violation, or undefined.
 */
export function outcomeProblem(events: readonly LoggedEvent[]): string | undefined {
  const i = events.findIndex((e) => e.type === 'error' && e.requestId === 0);
  if (i === -1) return undefined;
  const err = events[i];
  if (err?.type === 'error' && !/^POSTERN_ERR_[A-Z0-9_]+$/.test(err.code)) return `error code ${err.code} is not a POSTERN_ERR_ code`;
  if (i !== events.length - 1) return `${String(events.length - 1 - i)} events after the connection-level error ${err?.type === 'error' ? err.code : ''}`;
  return undefined;
}

/**
 * Sanity of a log from a one-request-per-connection protocol (SCGI, uwsgi): at most one request
 * and it comes first; body bytes never exceed its CONTENT_LENGTH and bodyEnd comes exactly when
 * they reach it; at most one error, last; and after end() the log is empty only if the input was.
 */
export function oneRequestProblem(events: readonly LoggedEvent[], inputLength: number, ended: boolean): string | undefined {
  const generic = outcomeProblem(events);
  if (generic !== undefined) return generic;
  if (events.filter((e) => e.type === 'error').length > 1) return 'more than one error';
  const requests = events.filter((e) => e.type === 'request');
  if (requests.length > 1) return 'more than one request';
  const head = requests[0];
  if (head !== undefined && events[0] !== head) return 'events before the request';
  let received = 0;
  let finished = false;
  for (const e of events) {
    if (e.type === 'body') {
      if (head === undefined || finished) return 'body outside a request';
      received += e.bytes.length;
      if (received > head.contentLength) return `body of ${String(received)} bytes over CONTENT_LENGTH ${String(head.contentLength)}`;
    } else if (e.type === 'bodyEnd' || e.type === 'abort') {
      if (head === undefined || finished) return `${e.type} outside a request`;
      if (e.type === 'bodyEnd' && received !== head.contentLength) return `bodyEnd after ${String(received)} of ${String(head.contentLength)} bytes`;
      finished = true;
    }
  }
  if (ended) {
    const last = events.at(-1);
    if (last === undefined) return inputLength === 0 ? undefined : `${String(inputLength)} bytes and end() gave no event`;
    if (!['bodyEnd', 'abort', 'error', 'reply'].includes(last.type)) return `log ends with ${last.type} after end()`;
  }
  return undefined;
}

/** One change to a byte stream, for mutation fuzzing; offsets wrap around the input length. */
export type Mutation =
  | { readonly kind: 'set'; readonly at: number; readonly byte: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | { readonly kind: 'truncate'; readonly at: number };

export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(input);
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % (bytes.length + (m.kind === 'insert' ? 1 : 0));
    switch (m.kind) {
      case 'set':
        if (bytes.length > 0) bytes[at] = m.byte;
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
    }
  }
  return bytes;
}
