// Test helper, from the connection's side: an in-memory DecoderSink that logs a FastCGI decoder's
// events as plain data, and drivers that feed bytes whole, one byte at a time or split anywhere.

import type { DecoderSink, RequestHead } from '../../protocols/common/events.ts';
import type { ProtocolError } from '../../protocols/common/errors.ts';
import { FastCgiDecoder, type FastCgiDecoderOptions } from '../../protocols/fastcgi/index.ts';

export type FcgiEvent =
  | { type: 'request'; id: number; role: number; keepConn: boolean; params: string[] }
  /** Body and data text is latin1; consecutive pieces of one id's stream are merged. */
  | { type: 'body'; id: number; text: string }
  | { type: 'bodyEnd'; id: number }
  | { type: 'data'; id: number; text: string }
  | { type: 'dataEnd'; id: number }
  | { type: 'abort'; id: number }
  | { type: 'reply'; hex: string; close: boolean }
  | { type: 'error'; code: string; requestId: number; httpStatus: number; limit?: string };

/** Logs every event. `onRequest` etc. let a test act from inside a callback (e.g. `release`). */
export class EventLog implements DecoderSink {
  readonly events: FcgiEvent[] = [];
  /** Every body/data view as delivered, unmerged, for zero-copy checks. */
  readonly chunks: Buffer[] = [];
  readonly errors: ProtocolError[] = [];
  onRequest: ((head: RequestHead) => void) | undefined;
  onBodyEnd: ((id: number) => void) | undefined;
  onError: ((err: ProtocolError) => void) | undefined;
  onBody: ((id: number, chunk: Buffer) => void) | undefined;

  request(head: RequestHead): void {
    if (head.contentLength !== -1) throw new Error('FastCGI heads must carry contentLength -1');
    this.events.push({ type: 'request', id: head.id, role: head.role, keepConn: head.keepConn, params: [...head.params] });
    this.onRequest?.(head);
  }

  body(id: number, chunk: Buffer): void {
    this.#stream('body', id, chunk);
    this.onBody?.(id, chunk);
  }

  bodyEnd(id: number): void {
    this.events.push({ type: 'bodyEnd', id });
    this.onBodyEnd?.(id);
  }

  data(id: number, chunk: Buffer): void {
    this.#stream('data', id, chunk);
  }

  dataEnd(id: number): void {
    this.events.push({ type: 'dataEnd', id });
  }

  abort(id: number): void {
    this.events.push({ type: 'abort', id });
  }

  reply(bytes: Buffer, close: boolean): void {
    this.events.push({ type: 'reply', hex: bytes.toString('hex'), close });
  }

  error(err: ProtocolError): void {
    this.errors.push(err);
    const event: FcgiEvent = { type: 'error', code: err.code, requestId: err.requestId, httpStatus: err.httpStatus };
    if (err.limit !== undefined) event.limit = err.limit;
    this.events.push(event);
    this.onError?.(err);
  }

  #stream(type: 'body' | 'data', id: number, chunk: Buffer): void {
    if (chunk.length === 0) throw new Error(`empty ${type} piece`);
    this.chunks.push(chunk);
    const text = chunk.toString('latin1');
    const last = this.events.at(-1);
    if (last !== undefined && last.type === type && last.id === id) last.text += text;
    else this.events.push({ type, id, text });
  }
}

export type DecoderOptions = Partial<FastCgiDecoderOptions>;

/** Feeds `pieces` in order, then `end()` when asked; returns the log. */
export function feed(pieces: readonly Buffer[], options: DecoderOptions = {}, callEnd = true): EventLog {
  const log = new EventLog();
  const decoder = new FastCgiDecoder(log, options);
  for (const piece of pieces) decoder.push(piece);
  if (callEnd) decoder.end();
  return log;
}

export function feedWhole(bytes: Buffer, options: DecoderOptions = {}, callEnd = true): FcgiEvent[] {
  return feed([bytes], options, callEnd).events;
}

export function feedBytewise(bytes: Buffer, options: DecoderOptions = {}, callEnd = true): FcgiEvent[] {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) pieces.push(bytes.subarray(i, i + 1));
  return feed(pieces, options, callEnd).events;
}

export function feedSplitAt(bytes: Buffer, at: number, options: DecoderOptions = {}, callEnd = true): FcgiEvent[] {
  return feed([bytes.subarray(0, at), bytes.subarray(at)], options, callEnd).events;
}

/** Splits `bytes` at the given ascending offsets. */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let prev = 0;
  for (const at of offsets) {
    pieces.push(bytes.subarray(prev, at));
    prev = at;
  }
  pieces.push(bytes.subarray(prev));
  return pieces;
}

/** Bytes from a hex string that may hold spaces, newlines and `#`-comments up to the line end. */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');
}

/** Latin1 bytes of `text`, as hex. */
export function latin1Hex(text: string): string {
  return Buffer.from(text, 'latin1').toString('hex');
}
