// A request's body stream and AbortSignal as the connection glue holds them, from the server's
// side: both are made only when the app first asks for them (through the environ's
// `postern.input` / `postern.signal`, see src/environ.ts), in whatever state the request is in by
// then. Most apps answering a GET touch neither. Measured (Node 20, bench/environ.ts):
// `new AbortController()` 2.2 µs (26 ns on Node 24), a body stream made and ended 1.2 µs; in
// bench/hot-path.ts the hello app went from 8.3 to 4.1 µs of CPU per request (Node 20) with
// both deferred and the environ built onto an empty object.

import type { ProtocolError } from '../../protocols/common/errors.ts';
import type { EnvironSource } from '../environ.ts';
import type { AbortNotifier } from '../app/run.ts';
import { RequestInput, type InputOwner } from './request-input.ts';

// What became of the body before anyone asked for the stream.
const OPEN = 0;
const ENDED = 1;
const FAILED = 2;
const DROPPED = 3;

/** A request's AbortSignal, made on first access; and the runner's cheaper abort notification. */
export class LazyAbort implements AbortNotifier {
  #controller: AbortController | undefined;
  #reason: ProtocolError | undefined;
  #listeners: Array<() => void> | undefined;

  /** The request's signal: made on first access, already aborted if the request was. */
  get signal(): AbortSignal {
    let c = this.#controller;
    if (c === undefined) {
      c = this.#controller = new AbortController();
      if (this.#reason !== undefined) c.abort(this.#reason);
    }
    return c.signal;
  }

  /** Fires the signal (if made) and the abort listeners; the first reason is kept. */
  abort(reason: ProtocolError): void {
    const c = this.#controller;
    if (c === undefined) this.#reason ??= reason;
    else if (!c.signal.aborted) c.abort(reason);
    const listeners = this.#listeners;
    if (listeners !== undefined) {
      this.#listeners = undefined;
      for (const l of listeners) l();
    }
  }

  /**
   * The request is over: its abort listeners are let go. They close over the app's per-request
   * objects (the Node bridge's whole exchange: req, res, their socket, the framework's own), and an
   * exchange that outlived a young-generation GC while in flight (promoted, then dead) would
   * otherwise keep each newer request it points to alive through the next scavenges too.
   * Measured (bench/hot-path.ts --app node, Node 20, 32 connections, --trace-gc-nvp): promoted
   * bytes 182 → 50 MB for 40,000 requests, CPU per request 43 → 19–29 µs.
   */
  forget(): void {
    this.#listeners = undefined;
  }

  /** AbortNotifier (src/app/run.ts): lets the runner wait on an async app without the signal. */
  onAbort(listener: () => void): void {
    if (this.#reason !== undefined || this.#controller?.signal.aborted === true) listener();
    else (this.#listeners ??= []).push(listener);
  }
}

/** A request's body stream (made on first use, in the body's state by then) and its signal. */
export class RequestSource extends LazyAbort implements EnvironSource {
  readonly #owner: InputOwner;
  #input: RequestInput | undefined;
  #fate = OPEN;
  #error: ProtocolError | undefined;

  constructor(owner: InputOwner) {
    super();
    this.#owner = owner;
  }

  /** The body stream: made on first access (or when body bytes arrive), in the body's state. */
  get input(): RequestInput {
    let input = this.#input;
    if (input === undefined) {
      input = this.#input = new RequestInput(this.#owner);
      const fate = this.#fate;
      if (fate === ENDED) input.finish();
      else if (fate === FAILED) input.fail(this.#error!);
      else if (fate === DROPPED) input.destroy();
    }
    return input;
  }

  /** The stream if it was made, without making it. */
  get made(): RequestInput | undefined {
    return this.#input;
  }

  /** Body bytes delivered so far. */
  get received(): number {
    return this.#input === undefined ? 0 : this.#input.received;
  }

  /** More body bytes may arrive. */
  get open(): boolean {
    return this.#input === undefined ? this.#fate === OPEN : this.#input.open;
  }

  /** The app waits for body bytes that have not come (bodyIdleTimeoutMs): open, unread, not paused. */
  get waiting(): boolean {
    const input = this.#input;
    if (input === undefined) return this.#fate === OPEN;
    return input.open && !input.blocked && input.readableLength === 0;
  }

  /** The body is complete. */
  finish(): void {
    if (this.#input !== undefined) this.#input.finish();
    else if (this.#fate === OPEN) this.#fate = ENDED;
  }

  /** The body cannot complete: a read fails with `err` (see RequestInput.fail). */
  fail(err: ProtocolError): void {
    if (this.#input !== undefined) {
      this.#input.fail(err);
    } else if (this.#fate === OPEN) {
      this.#fate = FAILED;
      this.#error = err;
    }
  }

  /**
   * The request is over: an unfinished body is dropped so it cannot hold the socket paused, and
   * the abort listeners are let go (see forget).
   */
  drop(): void {
    this.forget();
    const input = this.#input;
    if (input === undefined) {
      if (this.#fate === OPEN) this.#fate = DROPPED;
    } else if (input.open) {
      input.destroy();
    }
  }
}
