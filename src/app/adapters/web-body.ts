// Body pacing between Node streams and web streams, from the Fetch bridge's side: the request body
// (postern.input) as a ReadableStream read only as the app pulls, the whole body read at once for
// `text()`-style calls, and a Response body handed to the runner one chunk per pull.

import type { Readable } from 'node:stream';
import type { ReadableStreamReadResult } from 'node:stream/web';
import type { BodyChunk } from '../types.ts';

/**
 * postern.input as a byte ReadableStream that reads only as the app pulls: the Node stream is
 * paused whenever the web stream's queue is at its high-water mark.
 */
export function inputToWeb(input: Readable, highWaterMarkBytes: number): ReadableStream<Uint8Array> {
  let detach: (() => void) | undefined;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const onData = (chunk: Buffer | string): void => {
        controller.enqueue(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
        if ((controller.desiredSize ?? 0) <= 0) input.pause();
      };
      const onEnd = (): void => {
        detach?.();
        controller.close();
      };
      const onError = (err: unknown): void => {
        detach?.();
        controller.error(err);
      };
      detach = () => {
        input.removeListener('data', onData);
        input.removeListener('end', onEnd);
        input.removeListener('error', onError);
        detach = undefined;
      };
      input.on('data', onData);
      input.on('end', onEnd);
      input.on('error', onError);
      input.pause();
    },
    pull() {
      input.resume();
    },
    cancel() {
      detach?.();
      input.pause();
    },
  }, { highWaterMark: highWaterMarkBytes, size: (chunk) => chunk.byteLength });
}

/**
 * A web stream that reads `source` only when its consumer asks (high-water mark 0), and so can
 * say whether it was ever read or cancelled: the Fetch standard's "disturbed", which Request's
 * `bodyUsed` reports and which no public ReadableStream member tells once a reader is released.
 */
export class DemandStream {
  disturbed = false;
  readonly stream: ReadableStream<Uint8Array>;

  constructor(source: ReadableStream<Uint8Array>) {
    const reader = source.getReader();
    this.stream = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        this.disturbed = true;
        return reader.read().then((r) => {
          if (r.done === true) controller.close();
          else controller.enqueue(r.value);
        });
      },
      cancel: (reason) => {
        this.disturbed = true;
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }
}

/** Every byte of a Node stream, in one new (unpooled) Uint8Array; rejects with the stream's error. */
export function readInputAll(input: Readable): Promise<Uint8Array> {
  if (input.readableEnded) return Promise.resolve(new Uint8Array(0));
  const failed = input.errored;
  if (failed !== null) return Promise.reject(failed);
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      chunks.push(bytes);
      total += bytes.length;
    };
    const done = (err?: unknown): void => {
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', done);
      if (err !== undefined) reject(err instanceof Error ? err : new Error('postern: the request body failed', { cause: err }));
      else resolve(concat(chunks, total));
    };
    const onEnd = (): void => done();
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', done);
    input.resume();
  });
}

/** Every byte of a web stream, in one new Uint8Array. */
export async function readWebAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done === true) break;
    chunks.push(value);
    total += value.byteLength;
  }
  return concat(chunks, total);
}

// A fresh buffer even for one chunk: Buffer.concat and small Buffers share Node's pool, and an
// `arrayBuffer()` result must be the body alone.
function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * A Response body streamed out as the runner pulls (one read per `next()`, so the producer is
 * paced by the gateway); `return()` cancels the stream. `pending` are chunks already read.
 */
export class WebBody implements AsyncIterableIterator<BodyChunk> {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #pending: Uint8Array | undefined;
  #next: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>, first?: Uint8Array, next?: Promise<ReadableStreamReadResult<Uint8Array>>) {
    this.#reader = reader;
    this.#pending = first;
    this.#next = next;
  }

  next(): Promise<IteratorResult<BodyChunk>> {
    const first = this.#pending;
    if (first !== undefined) {
      this.#pending = undefined;
      return Promise.resolve({ value: first, done: false });
    }
    const read = this.#next ?? this.#reader.read();
    this.#next = undefined;
    return read.then(toIteratorResult);
  }

  async return(): Promise<IteratorResult<BodyChunk>> {
    this.#pending = undefined;
    await this.#reader.cancel().catch(() => undefined);
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

function toIteratorResult(r: ReadableStreamReadResult<Uint8Array>): IteratorResult<BodyChunk> {
  return r.done === true ? { value: undefined, done: true } : { value: r.value, done: false };
}
