// A pull-based body channel, from the adapter's side: the app's writes go in, the runner pulls
// chunks out as its Responder drains, and a writer past the high-water mark is told to wait.

import type { BodyChunk } from '../types.ts';

type Waiter = (result: IteratorResult<BodyChunk>) => void;

/**
 * Single-consumer async iterator. `push` returns false once more than `highWaterMarkBytes` are
 * queued; `onDrain` then fires when the consumer has taken the queue back under it. `return()`
 * (the runner stopping early, e.g. on abort) calls `onCancel` so the producer can stop.
 */
export class BodyQueue implements AsyncIterableIterator<BodyChunk> {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  #ended = false;
  #error: unknown = undefined;
  #failed = false;
  #cancelled = false;
  #waiter: Waiter | undefined;
  #rejecter: ((err: unknown) => void) | undefined;
  readonly #hwm: number;
  onDrain: (() => void) | undefined;
  onCancel: (() => void) | undefined;

  constructor(highWaterMarkBytes: number) {
    this.#hwm = highWaterMarkBytes;
  }

  get queuedBytes(): number {
    return this.#bytes;
  }

  get ended(): boolean {
    return this.#ended || this.#failed;
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** The queued chunks, taken out at once (for a response that is complete before anyone pulls). */
  drainAll(): Uint8Array[] {
    const out = this.#head === 0 ? this.#chunks : this.#chunks.slice(this.#head);
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
    return out;
  }

  push(chunk: Uint8Array): boolean {
    if (this.#ended || this.#failed || this.#cancelled) return true;
    if (chunk.length === 0) return this.#bytes <= this.#hwm;
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      this.#rejecter = undefined;
      w({ value: chunk, done: false });
      return true;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    return this.#bytes <= this.#hwm;
  }

  end(): void {
    if (this.#ended || this.#failed) return;
    this.#ended = true;
    this.#wake();
  }

  fail(err: unknown): void {
    if (this.#ended || this.#failed) return;
    this.#failed = true;
    this.#error = err;
    this.#wake();
  }

  #wake(): void {
    if (this.#head < this.#chunks.length) return;
    const w = this.#waiter;
    const r = this.#rejecter;
    this.#waiter = undefined;
    this.#rejecter = undefined;
    if (this.#failed) r?.(this.#error);
    else w?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<BodyChunk>> {
    if (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head] as Uint8Array;
      this.#chunks[this.#head++] = undefined as never;
      if (this.#head === this.#chunks.length) {
        this.#chunks = [];
        this.#head = 0;
      }
      const wasOver = this.#bytes > this.#hwm;
      this.#bytes -= chunk.length;
      if (wasOver && this.#bytes <= this.#hwm) this.onDrain?.();
      return Promise.resolve({ value: chunk, done: false });
    }
    // The app's own error, whatever it threw: the runner's onError must see that very value.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    if (this.#failed) return Promise.reject(this.#error);
    if (this.#ended || this.#cancelled) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#rejecter = reject;
      // An empty queue is under any mark: let a waiting writer go on.
      this.onDrain?.();
    });
  }

  return(): Promise<IteratorResult<BodyChunk>> {
    if (!this.#cancelled && !this.#ended && !this.#failed) {
      this.#cancelled = true;
      this.#chunks = [];
      this.#head = 0;
      this.#bytes = 0;
      this.onCancel?.();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
