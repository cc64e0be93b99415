// The FastCGI record layer (spec §3.3), for either direction: an incremental framer that reads
// 8-byte headers split anywhere, hands content on as ranges of the pushed chunks and skips
// padding; plus whole-record helpers for test clients and tools, and the record writer.

import { ProtocolError, COMMON_ERRORS } from '../common/errors.ts';
import { FCGI_ERRORS, FCGI_HEADER_LEN, FCGI_MAX_CONTENT_LENGTH, FCGI_MAX_PADDING_LENGTH, FCGI_VERSION_1 } from './constants.ts';

/**
 * Receives one record at a time from a `FastCgiRecordReader`, synchronously, in wire order:
 * `recordStart`, then `recordContent` for each piece of content (none when the content is
 * empty), then `recordEnd`. The handler may call `reader.stop()` from any of them.
 */
export interface FastCgiRecordHandler {
  recordStart(type: number, requestId: number, contentLength: number, paddingLength: number): void;
  /** Content bytes `buf[start, end)`, a range of the pushed chunk: nothing is copied. Never empty. */
  recordContent(buf: Buffer, start: number, end: number): void;
  /** The record's content is complete (its padding, if any, is skipped after). */
  recordEnd(): void;
  /** The stream is not FastCGI 1 (version byte ≠ 1). The reader has stopped. */
  recordError(err: ProtocolError): void;
}

const HEADER = 0;
const CONTENT = 1;
const PADDING = 2;

/**
 * The record framer. Bytes in, `FastCgiRecordHandler` calls out; state survives between pushes so
 * a header, content or padding may be split at any byte. Content is never buffered: each piece is
 * a range of the chunk it arrived in. Only a split header (8 bytes) is copied.
 */
export class FastCgiRecordReader {
  readonly #handler: FastCgiRecordHandler;
  /**
   * The split header's bytes so far: made when a header is split across chunks and dropped once
   * it is complete, so a reader at rest (an idle keep-alive connection) holds no Buffer (an
   * 8-byte `Buffer.alloc` is ~180 B of heap; BENCHMARKS.md "Memory").
   */
  #header: Buffer | null = null;
  #headerFill = 0;
  #state = HEADER;
  #content = 0;
  #padding = 0;
  #stopped = false;

  constructor(handler: FastCgiRecordHandler) {
    this.#handler = handler;
  }

  /** True while a record is unfinished: part of a header, content or padding is still to come. */
  get partial(): boolean {
    return this.#state !== HEADER || this.#headerFill !== 0;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops reading for good: the rest of the current chunk and later pushes are ignored. */
  stop(): void {
    this.#stopped = true;
  }

  push(chunk: Buffer): void {
    const handler = this.#handler;
    const len = chunk.length;
    let pos = 0;
    while (pos < len && !this.#stopped) {
      const state = this.#state;
      if (state === HEADER) {
        let b = chunk;
        let o = pos;
        if (this.#headerFill === 0 && len - pos >= FCGI_HEADER_LEN) {
          pos += FCGI_HEADER_LEN;
        } else {
          const header = (this.#header ??= Buffer.alloc(FCGI_HEADER_LEN));
          const n = Math.min(FCGI_HEADER_LEN - this.#headerFill, len - pos);
          chunk.copy(header, this.#headerFill, pos, pos + n);
          this.#headerFill += n;
          pos += n;
          if (this.#headerFill < FCGI_HEADER_LEN) return;
          this.#headerFill = 0;
          this.#header = null;
          b = header;
          o = 0;
        }
        if (b[o] !== FCGI_VERSION_1) {
          this.#stopped = true;
          handler.recordError(
            new ProtocolError(FCGI_ERRORS.BAD_VERSION, `FastCGI record version ${String(b[o])}; only version 1 exists`, { requestId: 0, httpStatus: 0 }),
          );
          return;
        }
        const type = b[o + 1]!;
        const requestId = (b[o + 2]! << 8) | b[o + 3]!;
        const contentLength = (b[o + 4]! << 8) | b[o + 5]!;
        const paddingLength = b[o + 6]!;
        this.#content = contentLength;
        this.#padding = paddingLength;
        this.#state = contentLength > 0 ? CONTENT : paddingLength > 0 ? PADDING : HEADER;
        handler.recordStart(type, requestId, contentLength, paddingLength);
        if (contentLength === 0 && !this.#stopped) handler.recordEnd();
      } else if (state === CONTENT) {
        const start = pos;
        const n = Math.min(this.#content, len - pos);
        pos += n;
        const left = (this.#content -= n);
        if (left === 0) this.#state = this.#padding > 0 ? PADDING : HEADER;
        handler.recordContent(chunk, start, pos);
        if (left === 0 && !this.#stopped) handler.recordEnd();
      } else {
        const n = Math.min(this.#padding, len - pos);
        pos += n;
        if ((this.#padding -= n) === 0) this.#state = HEADER;
      }
    }
  }
}

/** One whole record, for test clients and tools. */
export interface FastCgiRecord {
  readonly type: number;
  readonly requestId: number;
  /** A view into the pushed chunk when the content lay inside one chunk, else a copy. */
  readonly content: Buffer;
  readonly paddingLength: number;
}

/**
 * A `FastCgiRecordHandler` that assembles whole records: content is a view when it arrived in one
 * piece and is copied only when it crossed chunks. For clients and tools, not the server hot path.
 */
export class FastCgiRecordAssembler implements FastCgiRecordHandler {
  readonly #onRecord: (record: FastCgiRecord) => void;
  readonly #onError: (err: ProtocolError) => void;
  #type = 0;
  #requestId = 0;
  #contentLength = 0;
  #paddingLength = 0;
  #content: Buffer | null = null;
  #fill = 0;

  constructor(onRecord: (record: FastCgiRecord) => void, onError: (err: ProtocolError) => void = (err) => { throw err; }) {
    this.#onRecord = onRecord;
    this.#onError = onError;
  }

  recordStart(type: number, requestId: number, contentLength: number, paddingLength: number): void {
    this.#type = type;
    this.#requestId = requestId;
    this.#contentLength = contentLength;
    this.#paddingLength = paddingLength;
    this.#content = null;
    this.#fill = 0;
  }

  recordContent(buf: Buffer, start: number, end: number): void {
    if (this.#content === null && end - start === this.#contentLength) {
      this.#content = buf.subarray(start, end);
      this.#fill = this.#contentLength;
      return;
    }
    this.#content ??= Buffer.allocUnsafe(this.#contentLength);
    this.#fill += buf.copy(this.#content, this.#fill, start, end);
  }

  recordEnd(): void {
    const content = this.#content ?? EMPTY;
    this.#content = null;
    this.#onRecord({ type: this.#type, requestId: this.#requestId, content, paddingLength: this.#paddingLength });
  }

  recordError(err: ProtocolError): void {
    this.#onError(err);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Splits a complete byte string into records. Throws the reader's `ProtocolError` on a bad
 * version, and `POSTERN_ERR_TRUNCATED` when the bytes end inside a record.
 */
export function decodeRecords(bytes: Uint8Array): FastCgiRecord[] {
  const records: FastCgiRecord[] = [];
  const reader = new FastCgiRecordReader(new FastCgiRecordAssembler((r) => records.push(r)));
  reader.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  if (reader.partial) throw new ProtocolError(COMMON_ERRORS.TRUNCATED, 'bytes end inside a FastCGI record');
  return records;
}

/** Bytes of padding that bring `contentLength` to a multiple of 8 (§3.3 recommends 8-byte alignment). */
export function paddingFor(contentLength: number): number {
  return -contentLength & 7;
}

/** Writes an 8-byte record header at `buf[offset]`. */
export function writeHeader(buf: Buffer, offset: number, type: number, requestId: number, contentLength: number, paddingLength: number): void {
  buf[offset] = FCGI_VERSION_1;
  buf[offset + 1] = type;
  buf[offset + 2] = requestId >>> 8;
  buf[offset + 3] = requestId & 0xff;
  buf[offset + 4] = contentLength >>> 8;
  buf[offset + 5] = contentLength & 0xff;
  buf[offset + 6] = paddingLength;
  buf[offset + 7] = 0;
}

/** Throws a `RangeError` unless `requestId` fits the 16-bit field. */
export function assertRequestId(requestId: number): void {
  if (!Number.isInteger(requestId) || requestId < 0 || requestId > 0xffff) throw new RangeError(`FastCGI request id ${String(requestId)} is not 0..65535`);
}

/**
 * One record as a single buffer: header, a copy of `content` (at most 65535 bytes) and zero
 * padding, by default up to a multiple of 8, else exactly `padding` (0..255) bytes.
 */
export function encodeRecord(type: number, requestId: number, content: Uint8Array, padding: number = paddingFor(content.length)): Buffer {
  assertRequestId(requestId);
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw new RangeError(`FastCGI record type ${String(type)} is not 0..255`);
  if (content.length > FCGI_MAX_CONTENT_LENGTH) throw new RangeError(`FastCGI record content is at most ${FCGI_MAX_CONTENT_LENGTH} bytes`);
  if (!Number.isInteger(padding) || padding < 0 || padding > FCGI_MAX_PADDING_LENGTH) throw new RangeError(`FastCGI padding ${String(padding)} is not 0..255`);
  const buf = Buffer.alloc(FCGI_HEADER_LEN + content.length + padding);
  writeHeader(buf, 0, type, requestId, content.length, padding);
  buf.set(content, FCGI_HEADER_LEN);
  return buf;
}
