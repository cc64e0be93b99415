// An in-memory Responder for tests, from the connection's side: records every call, validates the
// head with the real encoder, and lets a test hold back `drained()` to prove backpressure is honoured.

import { encodeResponseHead, type HeaderList } from '../../protocols/common/head.ts';
import type { Responder } from '../../src/app/types.ts';

export type ResponderEvent =
  | { readonly type: 'head'; readonly status: number; readonly reason: string; readonly headers: Array<[string, string]> }
  | { readonly type: 'write'; readonly bytes: Buffer }
  | { readonly type: 'drained' }
  | { readonly type: 'end'; readonly appStatus: number };

export interface MemoryResponderOptions {
  /**
   * `write()` returns false once this many bytes were written since the last release (0: every
   * write returns false). Default Infinity: no backpressure.
   */
  readonly highWaterMark?: number;
}

export class MemoryResponder implements Responder {
  readonly events: ResponderEvent[] = [];
  status = 0;
  reason = '';
  headers: Array<[string, string]> = [];
  readonly chunks: Buffer[] = [];
  appStatus: number | undefined;
  /** How many times `drained()` was called. */
  drainedCalls = 0;
  /** `write()` calls made while a `drained()` promise was still pending: must stay 0. */
  writesWhileBlocked = 0;
  readonly finished: Promise<void>;

  #aborted = false;
  #headSent = false;
  #highWaterMark: number;
  #pending = 0;
  #blocked = false;
  #waiters: Array<() => void> = [];
  #finish!: () => void;

  constructor(options: MemoryResponderOptions = {}) {
    this.#highWaterMark = options.highWaterMark ?? Infinity;
    this.finished = new Promise((resolve) => {
      this.#finish = resolve;
    });
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get headSent(): boolean {
    return this.#headSent;
  }

  get ended(): boolean {
    return this.appStatus !== undefined;
  }

  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.body.toString('utf8');
  }

  /** True while a `drained()` promise is pending. */
  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
  }

  head(status: number, reason: string, headers: HeaderList): void {
    if (this.#headSent) throw new Error('head() called twice');
    if (this.ended) throw new Error('head() after end()');
    encodeResponseHead('cgi', status, reason, headers); // throws a ProtocolError, as the sockets do
    this.status = status;
    this.reason = reason;
    this.headers = headers.map(([n, v]) => [n, v]);
    this.#headSent = true;
    this.events.push({ type: 'head', status, reason, headers: this.headers });
  }

  write(chunk: Uint8Array): boolean {
    if (!this.#headSent) throw new Error('write() before head()');
    if (this.ended) throw new Error('write() after end()');
    if (this.#waiters.length > 0) this.writesWhileBlocked++;
    const bytes = Buffer.from(chunk);
    this.events.push({ type: 'write', bytes });
    if (this.#aborted) return true;
    this.chunks.push(bytes);
    this.#pending += bytes.length;
    if (this.#pending >= this.#highWaterMark) this.#blocked = true;
    return !this.#blocked;
  }

  drained(): Promise<void> {
    this.drainedCalls++;
    this.events.push({ type: 'drained' });
    if (!this.#blocked || this.#aborted) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Empties the pretend socket buffer: pending `drained()` promises resolve. */
  release(): void {
    this.#pending = 0;
    this.#blocked = false;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** The peer went away: further output is discarded and waiters are released. */
  abort(): void {
    this.#aborted = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  end(appStatus = 0): void {
    if (this.ended) throw new Error('end() called twice');
    this.appStatus = appStatus;
    this.events.push({ type: 'end', appStatus });
    this.#finish();
  }
}
