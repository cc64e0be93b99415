// A small HTTP/1.1 response reader, from the Node adapter's side: it reads back what
// `http.ServerResponse` serialised onto the adapter's in-memory socket, so the head and the
// de-chunked body can go to the gateway, which frames HTTP itself. Bytes in, callbacks out.

import type { HeaderList } from '../types.ts';

export interface ResponseSink {
  head(status: number, reason: string, headers: HeaderList): void;
  /** A body view; valid only until `push()` returns unless the sink keeps the chunk it came from. */
  body(view: Uint8Array): void;
  end(): void;
  error(err: Error): void;
}

/** `code` on errors from the reader (the app's output was not HTTP/1.1 the reader understands). */
export const RESPONSE_READER_ERROR = 'POSTERN_ERR_NODE_RESPONSE';

// States of the reader (numeric, ws receiver style).
const HEAD = 0;
const FIXED = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_DATA_END = 4;
const TRAILERS = 5;
const UNTIL_CLOSE = 6;
const DONE = 7;
const FAILED = 8;

/** The longest head or chunk-size line accepted; Node never writes one near this. */
const MAX_HEAD_BYTES = 1 << 20;

// Hop-by-hop fields (RFC 9110 §7.6.1) and the HTTP/1.1 framing: the front server frames the
// response to its own client, so these must not leak into the gateway response.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade']);

// The lengths of the names above and of content-length: 2, 7, 10, 14, 16, 17.
const SPECIAL_LENGTHS = new Uint8Array(18);
for (const name of [...HOP_BY_HOP, 'content-length']) SPECIAL_LENGTHS[name.length] = 1;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

function readerError(message: string): Error {
  const err = new Error(`postern: ${message}`);
  (err as Error & { code: string }).code = RESPONSE_READER_ERROR;
  return err;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

export class ResponseReader {
  #state = HEAD;
  #sink: ResponseSink;
  #noBody: boolean;
  #pending: Buffer = EMPTY;
  #remaining = 0;
  #chunkLine = '';

  /** `noBody`: the request was HEAD, so the response carries no body whatever its headers say. */
  constructor(sink: ResponseSink, noBody: boolean) {
    this.#sink = sink;
    this.#noBody = noBody;
  }

  get done(): boolean {
    return this.#state === DONE;
  }

  get failed(): boolean {
    return this.#state === FAILED;
  }

  get headDone(): boolean {
    return this.#state !== HEAD && this.#state !== FAILED;
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    while (pos < buf.length) {
      switch (this.#state) {
        case HEAD: {
          if (this.#pending.length > 0) {
            buf = Buffer.concat([this.#pending, pos === 0 ? buf : buf.subarray(pos)]);
            this.#pending = EMPTY;
            pos = 0;
          }
          const end = buf.indexOf(CRLFCRLF, pos);
          if (end === -1) {
            if (buf.length - pos > MAX_HEAD_BYTES) return this.#fail('response head too large');
            this.#pending = Buffer.from(buf.subarray(pos));
            return;
          }
          const text = buf.toString('latin1', pos, end);
          pos = end + 4;
          this.#parseHead(text);
          break;
        }
        case FIXED: {
          const take = Math.min(this.#remaining, buf.length - pos);
          this.#sink.body(buf.subarray(pos, pos + take));
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#finish();
          break;
        }
        case UNTIL_CLOSE:
          this.#sink.body(pos === 0 ? buf : buf.subarray(pos));
          return;
        case CHUNK_SIZE: {
          const lf = buf.indexOf(0x0a, pos);
          const upto = lf === -1 ? buf.length : lf;
          this.#chunkLine += buf.toString('latin1', pos, upto);
          if (this.#chunkLine.length > MAX_HEAD_BYTES) return this.#fail('chunk-size line too long');
          if (lf === -1) return;
          pos = lf + 1;
          const size = parseChunkSize(this.#chunkLine);
          this.#chunkLine = '';
          if (size < 0) return this.#fail('bad chunk size');
          if (size === 0) {
            this.#state = TRAILERS;
          } else {
            this.#remaining = size;
            this.#state = CHUNK_DATA;
          }
          break;
        }
        case CHUNK_DATA: {
          const take = Math.min(this.#remaining, buf.length - pos);
          this.#sink.body(buf.subarray(pos, pos + take));
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            this.#state = CHUNK_DATA_END;
            this.#remaining = 2;
          }
          break;
        }
        case CHUNK_DATA_END: {
          // CRLF after chunk data.
          while (this.#remaining > 0 && pos < buf.length) {
            const c = buf[pos++];
            if ((this.#remaining === 2 && c !== 0x0d) || (this.#remaining === 1 && c !== 0x0a)) return this.#fail('chunk not followed by CRLF');
            this.#remaining--;
          }
          if (this.#remaining === 0) this.#state = CHUNK_SIZE;
          break;
        }
        case TRAILERS: {
          // Trailer fields cannot travel over CGI-style gateways; read up to the empty line.
          const lf = buf.indexOf(0x0a, pos);
          const upto = lf === -1 ? buf.length : lf;
          this.#chunkLine += buf.toString('latin1', pos, upto);
          if (this.#chunkLine.length > MAX_HEAD_BYTES) return this.#fail('trailer section too long');
          if (lf === -1) return;
          pos = lf + 1;
          const line = this.#chunkLine;
          this.#chunkLine = '';
          if (line === '' || line === '\r') this.#finish();
          break;
        }
        default:
          // DONE or FAILED: nothing more belongs to this response.
          return;
      }
    }
  }

  /** The connection ended: completes a close-delimited body, or reports a truncated response. */
  end(): void {
    if (this.#state === UNTIL_CLOSE) this.#finish();
    else if (this.#state !== DONE && this.#state !== FAILED) this.#fail('response ended before it was complete');
  }

  #finish(): void {
    this.#state = DONE;
    this.#sink.end();
  }

  #fail(message: string): void {
    this.#state = FAILED;
    this.#sink.error(readerError(message));
  }

  #parseHead(text: string): void {
    const head = parseResponseHead(text);
    if (typeof head === 'string') return this.#fail(head);
    this.acceptHead(head);
  }

  /**
   * Takes a head parsed elsewhere (the direct bridge reads it off a string) and goes on to its
   * body, as if the head had come through `push`. An interim (1xx) head is passed over.
   */
  acceptHead(head: ParsedHead): void {
    if (this.#state !== HEAD) return;
    const status = head.status;
    // Interim response (100 Continue, 103 Early Hints): the gateway answers those itself.
    if (head.interim) return;
    this.#sink.head(status, head.reason, head.headers);
    if ((this.#state as number) === FAILED) return; // the sink may fail the reader
    if (this.#noBody || status === 204 || status === 304 || (status >= 100 && status < 200)) this.#finish();
    else if (head.chunked) this.#state = CHUNK_SIZE;
    else if (head.length === -2) this.#fail('bad Content-Length');
    else if (head.length >= 0) {
      this.#remaining = head.length;
      this.#state = FIXED;
      if (head.length === 0) this.#finish();
    } else this.#state = UNTIL_CLOSE;
  }
}

/** A response head as `ServerResponse` wrote it, with the hop-by-hop fields taken out. */
export interface ParsedHead {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  /** 1xx other than 101: an interim head before the real one. */
  readonly interim: boolean;
  readonly chunked: boolean;
  /** Content-Length, -1 when absent, -2 when malformed. */
  readonly length: number;
}

/** Parses a head's text (up to, not including, the empty line); a message on malformed input. */
export function parseResponseHead(text: string): ParsedHead | string {
  // Status line: HTTP/1.x SP 3DIGIT SP reason
  const sp = text.indexOf(' ');
  const status = Number(text.slice(sp + 1, sp + 4));
  if (sp === -1 || !text.startsWith('HTTP/1.') || !Number.isInteger(status) || status < 100 || status > 999) {
    return 'bad status line';
  }
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) lineEnd = text.length;
  const reason = text.slice(Math.min(sp + 5, lineEnd), lineEnd);
  if (status >= 100 && status < 200 && status !== 101) {
    return { status, reason, headers: [], interim: true, chunked: false, length: -1 };
  }
  const headers: Array<[string, string]> = [];
  let chunked = false;
  let length = -1;
  let hop: Set<string> | undefined;
  let pos = lineEnd + 2;
  while (pos < text.length) {
    let next = text.indexOf('\r\n', pos);
    if (next === -1) next = text.length;
    const colon = text.indexOf(':', pos);
    if (colon === -1 || colon > next) return 'bad header line';
    const name = text.slice(pos, colon);
    let vs = colon + 1;
    let ve = next;
    while (vs < ve && isSpace(text.charCodeAt(vs))) vs++;
    while (ve > vs && isSpace(text.charCodeAt(ve - 1))) ve--;
    const value = text.slice(vs, ve);
    pos = next + 2;
    // Most names are neither framing nor hop-by-hop: only those of such a name's length are
    // lower-cased and looked up (Date, Content-Type, ETag, X-Powered-By never are).
    if (name.length < SPECIAL_LENGTHS.length && SPECIAL_LENGTHS[name.length] === 1) {
      const lower = name.toLowerCase();
      if (lower === 'transfer-encoding') {
        chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
        continue;
      }
      if (lower === 'content-length') {
        length = /^\d+$/.test(value) ? Number(value) : -2;
      } else if (lower === 'connection') {
        for (const token of value.split(',')) {
          const t = token.trim().toLowerCase();
          if (t !== '' && t !== 'close' && t !== 'keep-alive') (hop ??= new Set()).add(t);
        }
        continue;
      }
      if (HOP_BY_HOP.has(lower) && !(lower === 'upgrade' && status === 101)) continue;
    }
    headers.push([name, value]);
  }
  if (hop !== undefined) {
    for (let i = headers.length - 1; i >= 0; i--) {
      if (hop.has((headers[i] as [string, string])[0].toLowerCase())) headers.splice(i, 1);
    }
  }
  return { status, reason, headers, interim: false, chunked, length };
}

/** Hex chunk size, extensions ignored (RFC 9112 §7.1.1); -1 when malformed. */
function parseChunkSize(line: string): number {
  let end = line.length;
  if (line.charCodeAt(end - 1) === 0x0d) end--;
  const semi = line.indexOf(';');
  if (semi !== -1 && semi < end) end = semi;
  while (end > 0 && isSpace(line.charCodeAt(end - 1))) end--;
  if (end === 0 || end > 12) return -1;
  let n = 0;
  for (let i = 0; i < end; i++) {
    const c = line.charCodeAt(i);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    n = n * 16 + d;
  }
  return n;
}
