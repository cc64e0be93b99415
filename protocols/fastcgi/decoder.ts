// The FastCGI decoder, from the application's side of the connection: web-server records in,
// `DecoderSink` events out. Sans-IO; the connection layer owns the socket and calls `release()`
// once it has sent a request's END_REQUEST.

import { IdSlots } from '../common/id-slots.ts';
import { COMMON_ERRORS, ProtocolError, type ProtocolErrorCode } from '../common/errors.ts';
import { DEFAULT_LIMITS, ROLE, type Decoder, type DecoderLimits, type DecoderSink, type RequestHead, type Role } from '../common/events.ts';
import { FCGI_ERRORS, FCGI_FLAG, FCGI_MAX_CONTENT_LENGTH, FCGI_PROTOCOL_STATUS, FCGI_TYPE, FCGI_VALUE_NAME } from './constants.ts';
import { encodeEndRequest, encodeGetValuesResult, encodeUnknownType } from './encoder.ts';
import { NV_NUL, NV_OK, NV_TOO_LARGE, NV_TOO_MANY, NameValueDecoder, type NameValueStatus } from './name-value.ts';
import { FastCgiRecordReader, type FastCgiRecordHandler } from './records.ts';

export interface FastCgiDecoderOptions extends DecoderLimits {
  /** Concurrent request ids per connection; 1 means no multiplexing (advertised as FCGI_MPXS_CONNS 0). */
  readonly maxRequestsPerConnection: number;
  /** Connections the server accepts, advertised as FCGI_MAX_CONNS (the listener enforces it). */
  readonly maxConns: number;
  /**
   * Requests the server runs at once, all connections together (its admission cap, enforced by
   * the server, not the decoder); caps the FCGI_MAX_REQS answer. 0 or absent: no cap.
   */
  readonly maxInflightRequests?: number;
}

export const DEFAULT_FASTCGI_OPTIONS: FastCgiDecoderOptions = Object.freeze({
  ...DEFAULT_LIMITS,
  maxRequestsPerConnection: 1,
  maxConns: 1024,
});

/** One request id between BEGIN_REQUEST and `release()` (§3.3: "active"). */
class RequestState {
  readonly id: number;
  readonly role: Role;
  readonly keepConn: boolean;
  /** The PARAMS stream decoder until the params end (then the head owns the list). */
  params: NameValueDecoder | null;
  /** `sink.request()` has been called: the params ended and were valid. */
  surfaced = false;
  stdinDone = false;
  /** An Authorizer's body ended with its params: later STDIN records for it are skipped. */
  stdinImplicit = false;
  dataDone = false;
  /** Errored, aborted or released: the rest of its records are skipped (§3.3). */
  ignored = false;
  bodyBytes = 0;
  dataBytes = 0;

  constructor(id: number, role: Role, keepConn: boolean, params: NameValueDecoder) {
    this.id = id;
    this.role = role;
    this.keepConn = keepConn;
    this.params = params;
  }
}

// What the current record's content and end mean.
const M_SKIP = 0;
const M_BEGIN = 1;
const M_PARAMS = 2;
const M_PARAMS_END = 3;
const M_STDIN = 4;
const M_STDIN_END = 5;
const M_DATA = 6;
const M_DATA_END = 7;
const M_ABORT = 8;
const M_GET_VALUES = 9;
const M_UNKNOWN = 10;

/**
 * The decoder's state and record handling. Kept apart from `FastCgiDecoder` so that the record
 * handler methods the reader calls are not part of the public API.
 *
 * Memory: one of these lives as long as its connection, and an idle keep-alive connection is the
 * common case (BENCHMARKS.md "Memory", 10,000 of them). Hence no per-connection Map or Buffer
 * until one is needed: the GET_VALUES answer is built when asked, the BEGIN_REQUEST body is read
 * into a number, and the active requests are one slot until a second is active at once (which
 * only a multiplexing client does). 20,000 decoders that served one request, tsc output, heap
 * after gc: 1.17 → 0.31 KiB each (Node 20 and 24); 10,000 idle connections' RSS growth fell by
 * ~15 MiB (bench/memory.ts --only idle, with the shared socket listeners of the connection).
 */
class Connection implements FastCgiRecordHandler {
  readonly #sink: DecoderSink;
  readonly #maxParamsBytes: number;
  readonly #maxParamCount: number;
  readonly #maxBodyBytes: number;
  readonly #maxRequests: number;
  /** For the GET_VALUES answer (§4.1), made when asked: GET_VALUES is rare, connections are many. */
  readonly #maxConns: number;
  readonly #maxReqs: number;
  readonly #reader: FastCgiRecordReader;
  /** The active requests, in BEGIN order (the order `end()` aborts them in). */
  readonly #active = new IdSlots<RequestState>();

  #mode = M_SKIP;
  #type = 0;
  #id = 0;
  #cur: RequestState | null = null;
  /** BEGIN_REQUEST body bytes 0–2 (role, flags), big-endian; its other 5 bytes are reserved (§5.1). */
  #beginBits = 0;
  #beginFill = 0;
  #getValues: NameValueDecoder | null = null;

  /** Nothing more is emitted (a connection-level error, or `end()`). */
  #stopped = false;
  #ended = false;
  /** A connection-level error has been emitted. */
  #errored = false;

  constructor(sink: DecoderSink, options: FastCgiDecoderOptions) {
    this.#sink = sink;
    this.#maxParamsBytes = options.maxParamsBytes;
    this.#maxParamCount = options.maxParamCount;
    this.#maxBodyBytes = options.maxBodyBytes;
    this.#maxRequests = options.maxRequestsPerConnection;
    this.#maxConns = options.maxConns;
    // §4.1: "the maximum number of concurrent requests this application will accept": every
    // connection full, unless the server's in-flight cap refuses (OVERLOADED) before that.
    const all = options.maxConns * options.maxRequestsPerConnection;
    const inflight = options.maxInflightRequests ?? 0;
    this.#maxReqs = inflight > 0 && inflight < all ? inflight : all;
    this.#reader = new FastCgiRecordReader(this);
  }

  push(chunk: Buffer): void {
    if (this.#stopped) {
      if (this.#ended && !this.#errored && chunk.length > 0) {
        this.#errored = true;
        this.#sink.error(new ProtocolError(COMMON_ERRORS.AFTER_END, 'bytes pushed after end()', { requestId: 0, httpStatus: 0 }));
      }
      return;
    }
    this.#reader.push(chunk);
  }

  get partial(): boolean {
    return this.#reader.partial;
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#stopped) return;
    this.#stopped = true;
    this.#reader.stop();
    // Requests the app has seen are aborted: the web server went away (nginx never sends
    // ABORT_REQUEST; it closes the connection). A request still reading its params was never
    // seen, so it cannot be aborted; it makes the close a truncation, as does a partial record.
    let truncated = this.#reader.partial;
    const seen: RequestState[] = [];
    for (const req of this.#active.values()) {
      if (req.ignored) continue;
      if (req.surfaced) seen.push(req);
      else truncated = true;
    }
    for (const req of seen) {
      // An earlier abort() callback may have released this one already.
      if (req.ignored) continue;
      req.ignored = true;
      this.#sink.abort(req.id);
    }
    // The aborts explain the close; a TRUNCATED error on top would report one event twice.
    if (seen.length === 0 && truncated) {
      this.#errored = true;
      this.#sink.error(new ProtocolError(COMMON_ERRORS.TRUNCATED, 'connection closed inside a FastCGI record or params stream', { requestId: 0, httpStatus: 0 }));
    }
  }

  keepConn(id: number): boolean | undefined {
    return this.#get(id)?.keepConn;
  }

  release(id: number): void {
    const req = this.#get(id);
    if (req === undefined) return;
    req.ignored = true;
    req.params = null;
    this.#remove(req);
  }

  // ---- the active requests -------------------------------------------------------------------

  #get(id: number): RequestState | undefined {
    return this.#active.get(id);
  }

  #remove(req: RequestState): void {
    if (this.#active.get(req.id) === req) this.#active.delete(req.id);
  }

  // ---- record handler ------------------------------------------------------------------------

  recordStart(type: number, id: number, contentLength: number): void {
    this.#mode = M_SKIP;
    this.#type = type;
    this.#id = id;
    this.#cur = null;
    if (id === 0) {
      if (type === FCGI_TYPE.GET_VALUES) {
        this.#mode = M_GET_VALUES;
        this.#getValues = new NameValueDecoder(FCGI_MAX_CONTENT_LENGTH, FCGI_MAX_CONTENT_LENGTH);
      } else if (
        type === FCGI_TYPE.BEGIN_REQUEST ||
        type === FCGI_TYPE.ABORT_REQUEST ||
        type === FCGI_TYPE.PARAMS ||
        type === FCGI_TYPE.STDIN ||
        type === FCGI_TYPE.DATA
      ) {
        this.#failConnection(FCGI_ERRORS.NULL_REQUEST_ID, `FastCGI record type ${type} used the null request id (reserved for management records)`);
      } else {
        this.#mode = M_UNKNOWN;
      }
      return;
    }
    if (type === FCGI_TYPE.BEGIN_REQUEST) {
      if (contentLength !== 8) {
        this.#failConnection(FCGI_ERRORS.BAD_BEGIN_REQUEST, `BEGIN_REQUEST body is ${contentLength} bytes, not 8`);
      } else if (this.#get(id) !== undefined) {
        this.#failConnection(FCGI_ERRORS.REQUEST_ID_IN_USE, `BEGIN_REQUEST for request id ${id}, which is still active`);
      } else {
        this.#mode = M_BEGIN;
        this.#beginBits = 0;
        this.#beginFill = 0;
      }
      return;
    }
    const req = this.#get(id);
    // §3.3: "the application ignores records with requestId == R" while R is inactive.
    if (req === undefined || req.ignored) return;
    switch (type) {
      case FCGI_TYPE.PARAMS:
        if (req.surfaced || req.params === null) {
          this.#failRequest(req, FCGI_ERRORS.UNEXPECTED_RECORD, 400, 'PARAMS after the params stream ended');
        } else if (contentLength === 0) {
          this.#mode = M_PARAMS_END;
          this.#cur = req;
        } else if (req.params.bytes + contentLength > this.#maxParamsBytes) {
          this.#paramsFailed(req, NV_TOO_LARGE);
        } else {
          this.#mode = M_PARAMS;
          this.#cur = req;
        }
        return;
      case FCGI_TYPE.STDIN:
        if (req.stdinImplicit) return;
        if (!req.surfaced || req.stdinDone) {
          this.#failRequest(req, FCGI_ERRORS.UNEXPECTED_RECORD, 400, req.surfaced ? 'STDIN after the body ended' : 'STDIN before the params ended');
        } else if (contentLength === 0) {
          this.#mode = M_STDIN_END;
          this.#cur = req;
        } else if (this.#maxBodyBytes > 0 && req.bodyBytes + contentLength > this.#maxBodyBytes) {
          this.#failRequest(req, COMMON_ERRORS.BODY_TOO_LARGE, 413, `request body exceeds maxBodyBytes (${this.#maxBodyBytes})`, 'maxBodyBytes');
        } else {
          req.bodyBytes += contentLength;
          this.#mode = M_STDIN;
          this.#cur = req;
        }
        return;
      case FCGI_TYPE.DATA:
        if (!req.surfaced || req.dataDone || req.role !== ROLE.FILTER) {
          this.#failRequest(req, FCGI_ERRORS.UNEXPECTED_RECORD, 400, req.role !== ROLE.FILTER ? 'DATA outside the FILTER role' : 'DATA out of order');
        } else if (contentLength === 0) {
          this.#mode = M_DATA_END;
          this.#cur = req;
        } else if (this.#maxBodyBytes > 0 && req.dataBytes + contentLength > this.#maxBodyBytes) {
          this.#failRequest(req, COMMON_ERRORS.BODY_TOO_LARGE, 413, `FILTER data exceeds maxBodyBytes (${this.#maxBodyBytes})`, 'maxBodyBytes');
        } else {
          req.dataBytes += contentLength;
          this.#mode = M_DATA;
          this.#cur = req;
        }
        return;
      case FCGI_TYPE.ABORT_REQUEST:
        this.#mode = M_ABORT;
        this.#cur = req;
        return;
      default:
        // A type the web server never sends, on an active request: say so, as Go's child does
        // (§4.2 defines UNKNOWN_TYPE for management records; no reply is defined for these).
        this.#mode = M_UNKNOWN;
    }
  }

  recordContent(buf: Buffer, start: number, end: number): void {
    switch (this.#mode) {
      case M_STDIN: {
        const req = this.#cur!;
        if (!req.ignored) this.#sink.body(req.id, buf.subarray(start, end));
        return;
      }
      case M_PARAMS: {
        const req = this.#cur!;
        if (req.ignored || req.params === null) return;
        const status = req.params.write(buf, start, end);
        if (status !== NV_OK) this.#paramsFailed(req, status);
        return;
      }
      case M_DATA: {
        const req = this.#cur!;
        if (!req.ignored) this.#sink.data(req.id, buf.subarray(start, end));
        return;
      }
      case M_BEGIN: {
        // At most 8 bytes, usually in one chunk: a loop, not a copy into a per-connection scratch
        // Buffer (~180 B that every idle connection kept).
        let bits = this.#beginBits;
        let fill = this.#beginFill;
        for (let i = start; i < end && fill < 3; i++, fill++) bits = (bits << 8) | buf[i]!;
        this.#beginBits = bits;
        this.#beginFill = fill;
        return;
      }
      case M_GET_VALUES: {
        const status = this.#getValues!.write(buf, start, end);
        if (status !== NV_OK) this.#failConnection(FCGI_ERRORS.BAD_NAME_VALUE, 'malformed GET_VALUES body');
        return;
      }
      default:
    }
  }

  recordEnd(): void {
    const req = this.#cur;
    // The record is done with it: an idle connection keeps no finished request alive.
    this.#cur = null;
    switch (this.#mode) {
      case M_PARAMS_END:
        if (!req!.ignored) this.#paramsEnded(req!);
        return;
      case M_STDIN_END:
        if (req!.ignored) return;
        req!.stdinDone = true;
        this.#sink.bodyEnd(req!.id);
        return;
      case M_BEGIN:
        this.#beginRequest();
        return;
      case M_DATA_END:
        if (req!.ignored) return;
        req!.dataDone = true;
        this.#sink.dataEnd(req!.id);
        return;
      case M_ABORT:
        this.#abort(req!);
        return;
      case M_GET_VALUES:
        this.#answerGetValues();
        return;
      case M_UNKNOWN:
        this.#sink.reply(encodeUnknownType(this.#type), false);
        return;
      default:
    }
  }

  recordError(err: ProtocolError): void {
    this.#stopped = true;
    this.#errored = true;
    this.#sink.error(err);
  }

  // ---- record meanings -----------------------------------------------------------------------

  #beginRequest(): void {
    const id = this.#id;
    const role = this.#beginBits >>> 8;
    // §5.1: the web server owns the connection only when FCGI_KEEP_CONN is set.
    const keepConn = (this.#beginBits & FCGI_FLAG.KEEP_CONN) !== 0;
    if (role !== ROLE.RESPONDER && role !== ROLE.AUTHORIZER && role !== ROLE.FILTER) {
      // §5.5: refused requests never become active.
      this.#sink.reply(encodeEndRequest(id, 0, FCGI_PROTOCOL_STATUS.UNKNOWN_ROLE), !keepConn);
      return;
    }
    if (this.#active.size >= this.#maxRequests) {
      const status = this.#maxRequests === 1 ? FCGI_PROTOCOL_STATUS.CANT_MPX_CONN : FCGI_PROTOCOL_STATUS.OVERLOADED;
      this.#sink.reply(encodeEndRequest(id, 0, status), !keepConn);
      return;
    }
    const req = new RequestState(id, role, keepConn, new NameValueDecoder(this.#maxParamsBytes, this.#maxParamCount));
    this.#active.set(id, req);
  }

  #paramsEnded(req: RequestState): void {
    const decoder = req.params!;
    const status = decoder.finish();
    if (status !== NV_OK) {
      this.#paramsFailed(req, status);
      return;
    }
    req.params = null;
    req.surfaced = true;
    const head: RequestHead = { id: req.id, params: decoder.params, role: req.role, keepConn: req.keepConn, contentLength: -1 };
    this.#sink.request(head);
    // An Authorizer has no body (§6.3 sends no CONTENT_LENGTH), and httpd's mod_authnz_fcgi sends
    // no FCGI_STDIN record at all (seen on the wire: BEGIN, PARAMS, empty PARAMS, then it waits).
    // Waiting for a terminator would hang it; end the body now and skip any STDIN that follows.
    if (req.role === ROLE.AUTHORIZER && !req.ignored && !this.#stopped) {
      req.stdinDone = true;
      req.stdinImplicit = true;
      this.#sink.bodyEnd(req.id);
    }
  }

  #abort(req: RequestState): void {
    req.ignored = true;
    if (req.surfaced) {
      this.#sink.abort(req.id);
      return;
    }
    // The app never saw this request, so the decoder answers for it (§5.4: END_REQUEST) and
    // the id is inactive again at once.
    req.params = null;
    this.#remove(req);
    this.#sink.reply(encodeEndRequest(req.id, 0, FCGI_PROTOCOL_STATUS.REQUEST_COMPLETE), !req.keepConn);
  }

  #answerGetValues(): void {
    const decoder = this.#getValues!;
    this.#getValues = null;
    if (decoder.finish() !== NV_OK) {
      this.#failConnection(FCGI_ERRORS.BAD_NAME_VALUE, 'malformed GET_VALUES body');
      return;
    }
    // §4.1: one record, carrying only the names asked for that we know (each once).
    const asked = decoder.params;
    const pairs: Array<readonly [string, string]> = [];
    const answered = new Set<string>();
    for (let i = 0; i < asked.length; i += 2) {
      const name = asked[i]!;
      const value = this.#value(name);
      if (value === undefined || answered.has(name)) continue;
      answered.add(name);
      pairs.push([name, value]);
    }
    this.#sink.reply(encodeGetValuesResult(pairs), false);
  }

  /** A GET_VALUES answer (§4.1): truthful, from the options; undefined for a name we do not know. */
  #value(name: string): string | undefined {
    switch (name) {
      case FCGI_VALUE_NAME.MAX_CONNS:
        return String(this.#maxConns);
      case FCGI_VALUE_NAME.MAX_REQS:
        return String(this.#maxReqs);
      case FCGI_VALUE_NAME.MPXS_CONNS:
        return this.#maxRequests > 1 ? '1' : '0';
      default:
        return undefined;
    }
  }

  // ---- errors --------------------------------------------------------------------------------

  #paramsFailed(req: RequestState, status: NameValueStatus): void {
    switch (status) {
      case NV_TOO_LARGE:
        this.#failRequest(req, COMMON_ERRORS.PARAMS_TOO_LARGE, 431, `params exceed maxParamsBytes (${this.#maxParamsBytes})`, 'maxParamsBytes');
        return;
      case NV_TOO_MANY:
        this.#failRequest(req, COMMON_ERRORS.TOO_MANY_PARAMS, 431, `more than maxParamCount (${this.#maxParamCount}) params`, 'maxParamCount');
        return;
      case NV_NUL:
        this.#failRequest(req, COMMON_ERRORS.BAD_PARAM, 400, 'a param name or value holds a NUL byte');
        return;
      default:
        this.#failRequest(req, FCGI_ERRORS.BAD_NAME_VALUE, 400, 'the params stream ended inside a name-value pair');
    }
  }

  /** Ends one request: its later records are skipped until `release()`. */
  #failRequest(req: RequestState, code: ProtocolErrorCode, httpStatus: number, message: string, limit?: string): void {
    req.ignored = true;
    req.params = null;
    const init = limit === undefined ? { requestId: req.id, httpStatus } : { requestId: req.id, httpStatus, limit };
    this.#sink.error(new ProtocolError(code, message, init));
  }

  /** Ends the connection: nothing is emitted after this error. */
  #failConnection(code: ProtocolErrorCode, message: string): void {
    this.#stopped = true;
    this.#errored = true;
    this.#reader.stop();
    this.#sink.error(new ProtocolError(code, message, { requestId: 0, httpStatus: 0 }));
  }
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer ${min}..${max}, got ${String(value)}`);
}

/** Option objects fastCgiDecoderOptions() made: complete and checked, so a decoder takes them as they are. */
const CHECKED = new WeakSet<object>();

/**
 * Complete, checked decoder options (defaults filled in), frozen: made once (a server's limits)
 * and passed to every connection's decoder, which then skips the copy and the checks. Throws a
 * `RangeError` for an option out of range.
 */
export function fastCgiDecoderOptions(options: Partial<FastCgiDecoderOptions> = {}): Readonly<FastCgiDecoderOptions> {
  const o: FastCgiDecoderOptions = { ...DEFAULT_FASTCGI_OPTIONS, ...options };
  checkInteger('maxParamsBytes', o.maxParamsBytes, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('maxParamCount', o.maxParamCount, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('maxBodyBytes', o.maxBodyBytes, 0, Number.MAX_SAFE_INTEGER);
  // Request ids are 16-bit and 0 is reserved, so no connection can hold more.
  checkInteger('maxRequestsPerConnection', o.maxRequestsPerConnection, 1, 65535);
  checkInteger('maxConns', o.maxConns, 1, 0x7fffffff);
  if (o.maxInflightRequests !== undefined) checkInteger('maxInflightRequests', o.maxInflightRequests, 0, Number.MAX_SAFE_INTEGER);
  const frozen = Object.freeze(o);
  CHECKED.add(frozen);
  return frozen;
}

/**
 * Decodes the web server's side of one FastCGI connection (spec §3–§6): records split anywhere,
 * several requests multiplexed by id, params checked against the limits as they arrive, bodies
 * passed on as views of the pushed chunks. Replies the protocol demands (GET_VALUES_RESULT,
 * UNKNOWN_TYPE, END_REQUEST for refused or unseen requests) go out through `sink.reply()`.
 *
 * Errors: one naming a request (`requestId` ≠ 0) ends only that request, and its later records
 * are skipped until `release(id)`; one with `requestId` 0 ends the connection and nothing is
 * emitted after it. `push()` never throws (exceptions thrown by the sink propagate).
 *
 * `end()`: every request the sink has seen and that is still live gets `abort(id)`. When no
 * request was aborted and the bytes stopped inside a record, or a request's params were still
 * arriving, a `POSTERN_ERR_TRUNCATED` connection error follows instead.
 */
export class FastCgiDecoder implements Decoder {
  readonly #connection: Connection;

  /**
   * Throws a `RangeError` for an option out of range (configuration errors surface at once).
   * Options from fastCgiDecoderOptions() are taken as they are.
   */
  constructor(sink: DecoderSink, options: Partial<FastCgiDecoderOptions> = {}) {
    this.#connection = new Connection(sink, CHECKED.has(options) ? (options as FastCgiDecoderOptions) : fastCgiDecoderOptions(options));
  }

  push(chunk: Buffer): void {
    this.#connection.push(chunk);
  }

  /** True while a record is unfinished: a connection at rest between records holds no byte of input. */
  get partial(): boolean {
    return this.#connection.partial;
  }

  end(): void {
    this.#connection.end();
  }

  /**
   * The app has sent END_REQUEST for `id`: the id becomes inactive, so its later records are
   * ignored (§3.3) and a new BEGIN_REQUEST may reuse it. Unknown ids are ignored.
   */
  release(id: number): void {
    this.#connection.release(id);
  }

  /**
   * FCGI_KEEP_CONN of an active request (§5.1), `undefined` for an inactive id. For answering an
   * error about a request whose head the sink never saw: close after END_REQUEST unless true.
   */
  keepConn(id: number): boolean | undefined {
    return this.#connection.keepConn(id);
  }
}
