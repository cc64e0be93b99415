// A request body (or FastCGI FILTER data stream) as the app reads it, from the connection's side:
// a Readable the connection feeds, which reports when the app falls behind and when it reads again,
// so the connection can pause and resume its socket (STYLE.md 15).

import { Readable } from 'node:stream';

/** The connection that feeds an input and owns the socket it may pause. */
export interface InputOwner {
  /** The app read again (or dropped the stream): the input no longer holds the socket paused. */
  unblock(input: RequestInput): void;
}

// Same on Node 20 (16 KiB default) and Node 24 (64 KiB default), so behaviour does not depend on the runtime.
export const INPUT_HIGH_WATER_MARK = 64 * 1024;

function ignoreUnheard(): void {}

export class RequestInput extends Readable {
  readonly #owner: InputOwner;
  /** Body bytes delivered so far. */
  received = 0;
  /** Set by the owner while this input holds the socket paused. */
  blocked = false;
  /** False once the body ended (or failed); true while more bytes may arrive. */
  open = true;

  constructor(owner: InputOwner) {
    super({ highWaterMark: INPUT_HIGH_WATER_MARK });
    this.#owner = owner;
    // A body that fails (the front server hung up, a body timeout) must not crash the process
    // when no one is listening any more: an app, or the Node bridge, may stop listening to a body
    // it will never finish reading, even in the tick between the failure and its 'error' event
    // (node:http's IncomingMessage guards the same case). The stream stays errored, so a later
    // read, pipe or iteration still fails with the error and its code; the request's signal has
    // already told the app.
    this.on('error', ignoreUnheard);
  }

  /**
   * Feeds one chunk; returns true when the caller should pause the socket for this input: the app
   * has `pauseAt` bytes or more unread. `pauseAt` is the high-water mark without multiplexing and
   * a larger per-request cap with it (see FastCgiConnection).
   */
  feed(chunk: Buffer, pauseAt: number): boolean {
    if (this.destroyed || !this.open) return false;
    this.received += chunk.length;
    return !this.push(chunk) && !this.blocked && this.readableLength >= pauseAt;
  }

  /** The body is complete. */
  finish(): void {
    if (!this.open) return;
    this.open = false;
    if (!this.destroyed) this.push(null);
  }

  /**
   * The body cannot complete: the app's next read fails with `err` (which carries a code). A body
   * that already ended stays readable; the request's signal tells the app about the abort.
   */
  fail(err: Error): void {
    if (!this.open) return;
    this.open = false;
    if (!this.destroyed) this.destroy(err);
  }

  override _read(): void {
    if (this.blocked) this.#owner.unblock(this);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.open = false;
    if (this.blocked) this.#owner.unblock(this);
    callback(err);
  }
}
