// uwsgi request decoder, from the application's side: a 4-byte header, datasize bytes of vars,
// then CONTENT_LENGTH body bytes, on a connection that carries one request (PROTOCOLS.md §B.4).
//
// Decisions (each has a test in test/protocols/uwsgi.test.ts):
// - modifier1 0 is served (modifier2 ignored, as nginx and Apache always send 0); 100 is PING,
//   answered like uWSGI's ping plugin: any vars are skipped unread, then PONG and close. Every
//   other modifier1 is UNSUPPORTED_MODIFIER (501): postern serves one kind of app per port.
// - The header is checked for the wrong protocol before anything else: an HTTP method (`GET `
//   reads as datasize 21573, uWSGI's "invalid request block size"), a FastCGI record header, a
//   TLS handshake. Each has its own code naming the likely misconfiguration.
// - CONTENT_LENGTH absent or empty means no body (nginx's uwsgi_params sends it empty on a GET;
//   Apache leaves it out). Two that differ are a 400, as for SCGI.
// - Bytes after the body are a connection-level error (TRAILING_BYTES, httpStatus 0): neither
//   nginx nor Apache keeps uwsgi connections alive, so extra bytes mean the framing is off.
// - A connection closed before its first byte is not an error (port probes, health checks).

import { BlockAssembler } from '../common/block.ts';
import { COMMON_ERRORS, ProtocolError } from '../common/errors.ts';
import { DEFAULT_LIMITS, ROLE } from '../common/events.ts';
import type { Decoder, DecoderLimits, DecoderSink, RequestHead } from '../common/events.ts';
import { UWSGI_CONTENT_LENGTH, UWSGI_ERRORS, UWSGI_HEADER_SIZE, UWSGI_MODIFIER1, UWSGI_PONG, UWSGI_REQUEST_ID } from './constants.ts';
import { parseVars } from './vars.ts';

// Decoder states (ws receiver style: a numeric state and a loop that stops when bytes run short).
const HEADER = 0; // collecting the 4-byte packet header
const VARS = 1; // collecting datasize bytes of vars
const SKIP = 2; // skipping a PING's vars
const BODY = 3; // streaming CONTENT_LENGTH body bytes
const DONE = 4; // request (or PING) complete; the peer must send nothing more
const ENDED = 5; // end() was called
const FAILED = 6; // an error was reported; nothing more is emitted

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

const NO_PARAMS: Buffer = Buffer.alloc(0);

export class UwsgiDecoder implements Decoder {
  readonly #sink: DecoderSink;
  readonly #maxParamsBytes: number;
  readonly #maxParamCount: number;
  readonly #maxBodyBytes: number;

  #state = HEADER;
  /** The packet header, only used when it arrives split across chunks. */
  readonly #header = Buffer.alloc(UWSGI_HEADER_SIZE);
  #headerFilled = 0;
  /** datasize: the vars block size. */
  #length = 0;
  /** Only allocated when the vars block crosses chunks; otherwise it is parsed as a view. */
  readonly #assembler = new BlockAssembler();
  /** Body (or skipped PING vars) bytes still to come. */
  #remaining = 0;

  constructor(sink: DecoderSink, options: Partial<DecoderLimits> = {}) {
    this.#sink = sink;
    this.#maxParamsBytes = limit(options, 'maxParamsBytes');
    this.#maxParamCount = limit(options, 'maxParamCount');
    this.#maxBodyBytes = limit(options, 'maxBodyBytes');
  }

  /** Bytes copied and held while a vars block that crosses chunks is assembled; at most maxParamsBytes. */
  get bufferedBytes(): number {
    return this.#assembler.bufferedBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.#state === FAILED) return;
    if (this.#state === ENDED) {
      this.#fail(new ProtocolError(COMMON_ERRORS.AFTER_END, `uwsgi decoder received ${String(chunk.length)} bytes after end()`));
      return;
    }
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.#state) {
        case HEADER:
          pos = this.#readHeader(chunk, pos);
          break;
        case VARS:
          pos = this.#readVars(chunk, pos);
          break;
        case SKIP: {
          const n = Math.min(this.#remaining, len - pos);
          this.#remaining -= n;
          pos += n;
          if (this.#remaining === 0) this.#pong();
          break;
        }
        case BODY:
          pos = this.#readBody(chunk, pos);
          break;
        case DONE:
          this.#fail(new ProtocolError(UWSGI_ERRORS.TRAILING_BYTES, `uwsgi peer sent ${String(len - pos)} bytes after the request's CONTENT_LENGTH body`));
          return;
        default:
          // ENDED or FAILED, reached through a sink callback that called end() or pushed bad bytes.
          return;
      }
    }
  }

  end(): void {
    switch (this.#state) {
      case HEADER:
        if (this.#headerFilled === 0) {
          this.#state = ENDED;
          return;
        }
        this.#fail(new ProtocolError(COMMON_ERRORS.TRUNCATED, `uwsgi peer closed the connection ${String(this.#headerFilled)} bytes into the packet header`));
        return;
      case VARS:
      case SKIP:
        this.#fail(new ProtocolError(COMMON_ERRORS.TRUNCATED, `uwsgi peer closed the connection inside a ${String(this.#length)}-byte vars block`));
        return;
      case BODY:
        // The request began, so this is the front server giving up on it, not a framing error.
        this.#state = ENDED;
        this.#sink.abort(UWSGI_REQUEST_ID);
        return;
      case DONE:
        this.#state = ENDED;
        return;
      default:
        return;
    }
  }

  #readHeader(chunk: Buffer, pos: number): number {
    const header = this.#header;
    if (this.#headerFilled === 0 && chunk.length - pos >= UWSGI_HEADER_SIZE) {
      this.#onHeader(chunk[pos] ?? 0, chunk[pos + 1] ?? 0, chunk[pos + 2] ?? 0, chunk[pos + 3] ?? 0);
      return pos + UWSGI_HEADER_SIZE;
    }
    while (pos < chunk.length && this.#headerFilled < UWSGI_HEADER_SIZE) header[this.#headerFilled++] = chunk[pos++] ?? 0;
    if (this.#headerFilled === UWSGI_HEADER_SIZE) this.#onHeader(header[0] ?? 0, header[1] ?? 0, header[2] ?? 0, header[3] ?? 0);
    return pos;
  }

  #onHeader(modifier1: number, size0: number, size1: number, modifier2: number): void {
    // Marks the header as complete so end() from here on reports the state set below.
    this.#headerFilled = UWSGI_HEADER_SIZE;
    const wrong = sniff(modifier1, size0, size1, modifier2);
    if (wrong !== undefined) {
      this.#fail(wrong);
      return;
    }
    const datasize = size0 | (size1 << 8);
    if (modifier1 === UWSGI_MODIFIER1.PING) {
      this.#length = datasize;
      if (datasize === 0) this.#pong();
      else {
        this.#remaining = datasize;
        this.#state = SKIP;
      }
      return;
    }
    if (modifier1 !== UWSGI_MODIFIER1.WSGI) {
      this.#fail(
        new ProtocolError(UWSGI_ERRORS.UNSUPPORTED_MODIFIER, `uwsgi modifier1 ${String(modifier1)} is not supported: postern serves modifier1 0 (and 100, PING)`, {
          httpStatus: 501,
        }),
      );
      return;
    }
    if (datasize > this.#maxParamsBytes) {
      this.#fail(
        new ProtocolError(COMMON_ERRORS.PARAMS_TOO_LARGE, `uwsgi vars block of ${String(datasize)} bytes is over maxParamsBytes (${String(this.#maxParamsBytes)})`, {
          httpStatus: 431,
          limit: 'maxParamsBytes',
        }),
      );
      return;
    }
    this.#length = datasize;
    if (datasize === 0) this.#completeVars(NO_PARAMS);
    else this.#state = VARS;
  }

  #readVars(chunk: Buffer, pos: number): number {
    const block = this.#assembler.take(chunk, pos, this.#length);
    if (block !== undefined) this.#completeVars(block);
    return this.#assembler.next;
  }

  #completeVars(block: Buffer): void {
    const params = parseVars(block, this.#maxParamCount);
    if (params instanceof ProtocolError) {
      this.#fail(params);
      return;
    }
    const contentLength = this.#contentLength(params);
    if (contentLength instanceof ProtocolError) {
      this.#fail(contentLength);
      return;
    }
    const head: RequestHead = { id: UWSGI_REQUEST_ID, params, role: ROLE.RESPONDER, keepConn: false, contentLength };
    this.#remaining = contentLength;
    if (contentLength > 0) {
      this.#state = BODY;
      this.#sink.request(head);
      return;
    }
    this.#state = DONE;
    this.#sink.request(head);
    if (this.#state !== FAILED) this.#sink.bodyEnd(UWSGI_REQUEST_ID);
  }

  #contentLength(params: string[]): number | ProtocolError {
    let text: string | undefined;
    for (let i = 0; i < params.length; i += 2) {
      if (params[i] !== UWSGI_CONTENT_LENGTH) continue;
      const value = params[i + 1] ?? '';
      if (text === undefined) text = value;
      else if (value !== text) {
        return badContentLength(`uwsgi request has two CONTENT_LENGTH vars that differ (${JSON.stringify(text)}, ${JSON.stringify(value)})`);
      }
    }
    if (text === undefined || text.length === 0) return 0;
    const value = parseDecimal(text);
    if (value < 0) return badContentLength(`uwsgi CONTENT_LENGTH ${JSON.stringify(text)} is not a decimal number`);
    if (this.#maxBodyBytes > 0 && value > this.#maxBodyBytes) {
      return new ProtocolError(COMMON_ERRORS.BODY_TOO_LARGE, `uwsgi CONTENT_LENGTH ${text} is over maxBodyBytes (${String(this.#maxBodyBytes)})`, {
        httpStatus: 413,
        limit: 'maxBodyBytes',
      });
    }
    if (!Number.isSafeInteger(value)) return badContentLength(`uwsgi CONTENT_LENGTH ${text} is too large to count`);
    return value;
  }

  #readBody(chunk: Buffer, pos: number): number {
    const avail = chunk.length - pos;
    if (avail < this.#remaining) {
      this.#remaining -= avail;
      this.#sink.body(UWSGI_REQUEST_ID, pos === 0 ? chunk : chunk.subarray(pos));
      return chunk.length;
    }
    const n = this.#remaining;
    this.#remaining = 0;
    this.#state = DONE;
    this.#sink.body(UWSGI_REQUEST_ID, pos === 0 && n === chunk.length ? chunk : chunk.subarray(pos, pos + n));
    if (this.#state !== FAILED) this.#sink.bodyEnd(UWSGI_REQUEST_ID);
    return pos + n;
  }

  #pong(): void {
    this.#state = DONE;
    this.#sink.reply(UWSGI_PONG, true);
  }

  #fail(err: ProtocolError): void {
    this.#state = FAILED;
    this.#assembler.clear();
    this.#sink.error(err);
  }
}

const UPPER_A = 0x41;
const UPPER_Z = 0x5a;
const SPACE = 0x20;

function isUpper(c: number): boolean {
  return c >= UPPER_A && c <= UPPER_Z;
}

/** Names the wrong protocol when the header reads like another protocol's first bytes. */
function sniff(b0: number, b1: number, b2: number, b3: number): ProtocolError | undefined {
  // HTTP methods are upper-case tokens (RFC 9110 §9): `GET `, `PUT `, `POST`, `HEAD`, `DELE`…,
  // and `PRI ` starts the HTTP/2 preface. No served modifier1 is a letter, so this never
  // shadows a valid uwsgi header.
  if (isUpper(b0) && isUpper(b1) && isUpper(b2) && (isUpper(b3) || b3 === SPACE)) {
    return new ProtocolError(
      UWSGI_ERRORS.HTTP_ON_UWSGI_PORT,
      `received what looks like an HTTP request line (${JSON.stringify(String.fromCharCode(b0, b1, b2, b3))}, datasize ${String(b1 | (b2 << 8))}): this port speaks uwsgi; is the front server using proxy_pass instead of uwsgi_pass?`,
      { httpStatus: 400 },
    );
  }
  // FastCGI record header: version 1, then a record type 1..11 (spec §8).
  if (b0 === 1 && b1 >= 1 && b1 <= 11) {
    return new ProtocolError(
      UWSGI_ERRORS.FASTCGI_ON_UWSGI_PORT,
      'received what looks like a FastCGI record header: this port speaks uwsgi; is the front server using fastcgi_pass instead of uwsgi_pass?',
    );
  }
  // TLS record: ContentType handshake (22), then protocol version major 3.
  if (b0 === 0x16 && b1 === 0x03) {
    return new ProtocolError(
      UWSGI_ERRORS.TLS_ON_UWSGI_PORT,
      'received what looks like a TLS handshake: this port speaks plain uwsgi; is the front server using suwsgi:// or uwsgi_ssl?',
    );
  }
  return undefined;
}

function badContentLength(message: string): ProtocolError {
  return new ProtocolError(COMMON_ERRORS.BAD_CONTENT_LENGTH, message, { httpStatus: 400 });
}

/** Digits only (no sign, space or empty string); -1 otherwise. Imprecise above 2^53, checked by the caller. */
function parseDecimal(text: string): number {
  if (text.length === 0) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < DIGIT_0 || c > DIGIT_9) return -1;
    value = value * 10 + (c - DIGIT_0);
  }
  return value;
}

function limit(options: Partial<DecoderLimits>, name: keyof DecoderLimits): number {
  const value = options[name] ?? DEFAULT_LIMITS[name];
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}
