// SCGI request decoder, from the application's side: a netstring header block, then exactly
// CONTENT_LENGTH body bytes, on a connection that carries one request (PROTOCOLS.md §B.3).
//
// Decisions where the spec and its peers differ (each has a test in test/protocols/scgi.test.ts):
// - A missing `SCGI: 1` header is accepted: flup and uWSGI do not check it either. Its absence is
//   visible to anyone who wants it, since the params are passed through untouched.
// - Duplicate header names are accepted and kept in order (RequestHead contract): nginx 1.22 sends
//   one HTTP_COOKIE per Cookie line. CONTENT_LENGTH is the exception: two that differ are a 400,
//   since the framing and the environ could otherwise disagree on the body length.
// - CONTENT_LENGTH need not be the first header (the spec says first; every peer puts it first,
//   none checks the order), but it must be present and all digits.
// - Bytes after the body are a connection-level error (TRAILING_BYTES, httpStatus 0): SCGI has
//   one request per connection and its stream "must be limited to" CONTENT_LENGTH bytes, so extra
//   bytes mean the peer and postern disagree on the framing.
// - A connection closed before its first byte is not an error (port probes, health checks).

import { BlockAssembler } from '../common/block.ts';
import { COMMON_ERRORS, ProtocolError } from '../common/errors.ts';
import { DEFAULT_LIMITS, ROLE } from '../common/events.ts';
import type { Decoder, DecoderLimits, DecoderSink, RequestHead } from '../common/events.ts';
import { SCGI_COLON, SCGI_COMMA, SCGI_CONTENT_LENGTH, SCGI_ERRORS, SCGI_REQUEST_ID } from './constants.ts';
import { parseHeaderBlock } from './netstring.ts';

// Decoder states (ws receiver style: a numeric state and a loop that stops when bytes run short).
const START = 0; // nothing received yet
const LENGTH = 1; // inside the netstring's decimal length
const BLOCK = 2; // collecting the header block
const COMMA = 3; // header block parsed; waiting for the netstring's ","
const BODY = 4; // streaming CONTENT_LENGTH body bytes
const DONE = 5; // request complete; the peer must send nothing more
const ENDED = 6; // end() was called
const FAILED = 7; // an error was reported; nothing more is emitted

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

export class ScgiDecoder implements Decoder {
  readonly #sink: DecoderSink;
  readonly #maxParamsBytes: number;
  readonly #maxParamCount: number;
  readonly #maxBodyBytes: number;

  #state = START;
  /** Netstring length while reading its digits, then the header block size. */
  #length = 0;
  /** Only allocated when the header block crosses chunks; otherwise it is parsed as a view. */
  readonly #assembler = new BlockAssembler();
  /** The parsed head, held between the end of the block and its ",". */
  #head: RequestHead | undefined;
  /** Body bytes still to come. */
  #remaining = 0;

  constructor(sink: DecoderSink, options: Partial<DecoderLimits> = {}) {
    this.#sink = sink;
    this.#maxParamsBytes = limit(options, 'maxParamsBytes');
    this.#maxParamCount = limit(options, 'maxParamCount');
    this.#maxBodyBytes = limit(options, 'maxBodyBytes');
  }

  /** Bytes copied and held while a header block that crosses chunks is assembled; at most maxParamsBytes. */
  get bufferedBytes(): number {
    return this.#assembler.bufferedBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.#state === FAILED) return;
    if (this.#state === ENDED) {
      this.#fail(new ProtocolError(COMMON_ERRORS.AFTER_END, `SCGI decoder received ${String(chunk.length)} bytes after end()`));
      return;
    }
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.#state) {
        case START: {
          const err = sniff(chunk[pos] ?? 0);
          if (err !== undefined) {
            this.#fail(err);
            return;
          }
          this.#state = LENGTH;
          break;
        }
        case LENGTH:
          pos = this.#readLength(chunk, pos);
          break;
        case BLOCK:
          pos = this.#readBlock(chunk, pos);
          break;
        case COMMA:
          if (chunk[pos] !== SCGI_COMMA) {
            this.#fail(new ProtocolError(SCGI_ERRORS.MISSING_COMMA, `SCGI header block of ${String(this.#length)} bytes is not followed by ","`, { httpStatus: 400 }));
            return;
          }
          pos++;
          this.#emitRequest();
          break;
        case BODY:
          pos = this.#readBody(chunk, pos);
          break;
        case DONE:
          this.#fail(
            new ProtocolError(SCGI_ERRORS.TRAILING_BYTES, `SCGI peer sent ${String(len - pos)} bytes after the request's CONTENT_LENGTH body`),
          );
          return;
        default:
          // ENDED or FAILED, reached through a sink callback that called end() or pushed bad bytes.
          return;
      }
    }
  }

  end(): void {
    switch (this.#state) {
      case START:
      case DONE:
        this.#state = ENDED;
        return;
      case LENGTH:
      case BLOCK:
      case COMMA:
        this.#fail(new ProtocolError(COMMON_ERRORS.TRUNCATED, 'SCGI peer closed the connection inside the header netstring'));
        return;
      case BODY:
        // The request began, so this is the front server giving up on it, not a framing error.
        this.#state = ENDED;
        this.#sink.abort(SCGI_REQUEST_ID);
        return;
      default:
        return;
    }
  }

  #readLength(chunk: Buffer, pos: number): number {
    const len = chunk.length;
    let value = this.#length;
    while (pos < len) {
      const c = chunk[pos++] ?? 0;
      if (c >= DIGIT_0 && c <= DIGIT_9) {
        if (value === 0 && c === DIGIT_0) {
          // "0:" is an empty block (no CONTENT_LENGTH), "01:" a leading zero; both are invalid.
          this.#fail(new ProtocolError(SCGI_ERRORS.BAD_NETSTRING_LENGTH, 'SCGI netstring length starts with "0"', { httpStatus: 400 }));
          return len;
        }
        value = value * 10 + (c - DIGIT_0);
        // Checked per digit, so the number of digits read is capped by the limit's own digit
        // count: no digit string, however long, is read past the first digit that overflows it.
        if (value > this.#maxParamsBytes) {
          this.#fail(
            new ProtocolError(COMMON_ERRORS.PARAMS_TOO_LARGE, `SCGI header block announces ${String(value)}+ bytes, over maxParamsBytes (${String(this.#maxParamsBytes)})`, {
              httpStatus: 431,
              limit: 'maxParamsBytes',
            }),
          );
          return len;
        }
      } else if (c === SCGI_COLON && value > 0) {
        this.#length = value;
        this.#state = BLOCK;
        return pos;
      } else {
        const what = c === SCGI_COLON ? 'is empty' : `holds byte 0x${c.toString(16).padStart(2, '0')}`;
        this.#fail(new ProtocolError(SCGI_ERRORS.BAD_NETSTRING_LENGTH, `SCGI netstring length ${what}`, { httpStatus: 400 }));
        return len;
      }
    }
    this.#length = value;
    return pos;
  }

  #readBlock(chunk: Buffer, pos: number): number {
    const block = this.#assembler.take(chunk, pos, this.#length);
    if (block !== undefined) this.#completeBlock(block);
    return this.#assembler.next;
  }

  #completeBlock(block: Buffer): void {
    const params = parseHeaderBlock(block, this.#maxParamCount);
    if (params instanceof ProtocolError) {
      this.#fail(params);
      return;
    }
    const contentLength = this.#contentLength(params);
    if (contentLength instanceof ProtocolError) {
      this.#fail(contentLength);
      return;
    }
    this.#head = { id: SCGI_REQUEST_ID, params, role: ROLE.RESPONDER, keepConn: false, contentLength };
    this.#state = COMMA;
  }

  #contentLength(params: string[]): number | ProtocolError {
    let text: string | undefined;
    for (let i = 0; i < params.length; i += 2) {
      if (params[i] !== SCGI_CONTENT_LENGTH) continue;
      const value = params[i + 1] ?? '';
      if (text === undefined) text = value;
      else if (value !== text) {
        return badContentLength(`SCGI request has two CONTENT_LENGTH headers that differ (${JSON.stringify(text)}, ${JSON.stringify(value)})`);
      }
    }
    if (text === undefined) return badContentLength('SCGI request has no CONTENT_LENGTH header (the spec requires it, even when "0")');
    const value = parseDecimal(text);
    if (value < 0) return badContentLength(`SCGI CONTENT_LENGTH ${JSON.stringify(text)} is not a decimal number`);
    if (this.#maxBodyBytes > 0 && value > this.#maxBodyBytes) {
      return new ProtocolError(COMMON_ERRORS.BODY_TOO_LARGE, `SCGI CONTENT_LENGTH ${text} is over maxBodyBytes (${String(this.#maxBodyBytes)})`, {
        httpStatus: 413,
        limit: 'maxBodyBytes',
      });
    }
    if (!Number.isSafeInteger(value)) return badContentLength(`SCGI CONTENT_LENGTH ${text} is too large to count`);
    return value;
  }

  #emitRequest(): void {
    const head = this.#head;
    if (head === undefined) return;
    this.#head = undefined;
    this.#remaining = head.contentLength;
    if (head.contentLength > 0) {
      this.#state = BODY;
      this.#sink.request(head);
      return;
    }
    this.#state = DONE;
    this.#sink.request(head);
    if (this.#state !== FAILED) this.#sink.bodyEnd(SCGI_REQUEST_ID);
  }

  #readBody(chunk: Buffer, pos: number): number {
    const avail = chunk.length - pos;
    if (avail < this.#remaining) {
      this.#remaining -= avail;
      this.#sink.body(SCGI_REQUEST_ID, pos === 0 ? chunk : chunk.subarray(pos));
      return chunk.length;
    }
    const n = this.#remaining;
    this.#remaining = 0;
    this.#state = DONE;
    this.#sink.body(SCGI_REQUEST_ID, pos === 0 && n === chunk.length ? chunk : chunk.subarray(pos, pos + n));
    if (this.#state !== FAILED) this.#sink.bodyEnd(SCGI_REQUEST_ID);
    return pos + n;
  }

  #fail(err: ProtocolError): void {
    this.#state = FAILED;
    this.#assembler.clear();
    this.#head = undefined;
    this.#sink.error(err);
  }
}

/** Names the wrong protocol when the first byte cannot start a netstring but starts something else. */
function sniff(first: number): ProtocolError | undefined {
  if (first >= 0x41 && first <= 0x5a) {
    return new ProtocolError(
      SCGI_ERRORS.HTTP_ON_SCGI_PORT,
      'received what looks like an HTTP request line: this port speaks SCGI; is the front server using proxy_pass instead of scgi_pass?',
      { httpStatus: 400 },
    );
  }
  if (first === 0x01) {
    return new ProtocolError(
      SCGI_ERRORS.FASTCGI_ON_SCGI_PORT,
      'received what looks like a FastCGI record: this port speaks SCGI; is the front server using fastcgi_pass instead of scgi_pass?',
    );
  }
  if (first === 0x16) {
    return new ProtocolError(SCGI_ERRORS.TLS_ON_SCGI_PORT, 'received what looks like a TLS handshake: this port speaks plain SCGI, without TLS');
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
