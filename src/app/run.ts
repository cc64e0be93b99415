// The native app runner, from the server's side: drives one `(environ, startResponse)` call to
// completion through a Responder — the WSGI flow (PEP 3333) with backpressure and abort.

import { STATUS_CODES } from 'node:http';
import type { AbortNotifier, AppBody, BodyChunk, Environ, HeaderList, NativeApp, Responder, StartResponse } from './types.ts';
import { isBuiltEnviron } from '../environ.ts';

export type { AbortNotifier } from './types.ts';

export interface RunOptions {
  /** Put the error's stack in 500 bodies (never in production: it leaks internals). */
  readonly debug?: boolean;
  /** Told about every app error (thrown, rejected, bad status, bad header); must not throw. */
  readonly onError?: (err: unknown, environ: Environ) => void;
}

/** FastCGI END_REQUEST appStatus values the runner passes to `responder.end`. */
export const APP_STATUS = {
  OK: 0,
  /** The app threw or rejected, or its response could not be framed. */
  ERROR: 1,
  /** The client or front server went away, or the deadline passed, before the body was complete. */
  ABORTED: 2,
} as const;

/** Codes on the errors the runner raises against an app that breaks the contract. */
export const RUN_ERRORS = {
  BAD_STATUS: 'POSTERN_ERR_APP_BAD_STATUS',
  NO_START_RESPONSE: 'POSTERN_ERR_APP_NO_START_RESPONSE',
  START_RESPONSE_TWICE: 'POSTERN_ERR_APP_START_RESPONSE_TWICE',
  BAD_BODY: 'POSTERN_ERR_APP_BAD_BODY',
} as const;

type RunErrorCode = (typeof RUN_ERRORS)[keyof typeof RUN_ERRORS];

export class AppContractError extends TypeError {
  readonly code: RunErrorCode;
  constructor(code: RunErrorCode, message: string) {
    super(message);
    this.name = 'AppContractError';
    this.code = code;
  }
}

function encode(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return chunk;
  throw new AppContractError(RUN_ERRORS.BAD_BODY, `body chunks must be strings or Uint8Arrays, got ${typeof chunk}`);
}

/** Whether `await v` would wait on `v`: an object or function with a `then` method. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** `'200 OK'` → `[200, 'OK']`; `'404'` → `[404, 'Not Found']`. Throws on anything else. */
export function parseStatus(status: string): [number, string] {
  const s = String(status);
  const c0 = s.charCodeAt(0) - 0x30;
  const c1 = s.charCodeAt(1) - 0x30;
  const c2 = s.charCodeAt(2) - 0x30;
  if (!(c0 >= 1 && c0 <= 9 && c1 >= 0 && c1 <= 9 && c2 >= 0 && c2 <= 9) || (s.length > 3 && s.charCodeAt(3) !== 0x20)) {
    throw new AppContractError(RUN_ERRORS.BAD_STATUS, `status ${JSON.stringify(s)} is not "NNN Reason"`);
  }
  const code = c0 * 100 + c1 * 10 + c2;
  const reason = s.length > 4 ? s.slice(4) : (STATUS_CODES[code] ?? '');
  return [code, reason];
}

/** Statuses that never carry a body (RFC 9110 §6.4.1). */
function bodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

function hasHeader(headers: HeaderList, lowerName: string): boolean {
  for (let i = 0; i < headers.length; i++) {
    const name = (headers[i] as readonly [string, string])[0];
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return true;
  }
  return false;
}

/**
 * Answers with a short `text/plain` body such as `Not Found\n` — used for the tree's 404, the
 * runner's 500 and dispatch errors, so they all look alike. Calls `end(appStatus)`.
 */
export function sendPlain(responder: Responder, environ: Environ, status: number, text: string, appStatus: number = APP_STATUS.OK): void {
  const body = Buffer.from(text, 'utf8');
  responder.head(status, STATUS_CODES[status] ?? '', [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(body.length)],
  ]);
  if (environ.REQUEST_METHOD !== 'HEAD' && body.length > 0) responder.write(body);
  responder.end(appStatus);
}

/**
 * Runs a native app for one request. Never rejects and calls `responder.end` exactly once:
 * an app error becomes a 500 (generic text; the stack only with `debug`) or, once the head is out,
 * an end with a non-zero appStatus. Strings are sent as UTF-8. Bodies that are a string, bytes or an
 * array of them get a Content-Length when the app set none.
 */
export function runNative(app: NativeApp, environ: Environ, responder: Responder, options: RunOptions = {}): Promise<void> {
  // RUN_SETTLED when the app answered without awaiting anything.
  return new Run(app, environ, responder, options).run();
}

class Run {
  readonly #app: NativeApp;
  readonly #environ: Environ;
  readonly #responder: Responder;
  readonly #options: RunOptions;
  #signal: AbortSignal | undefined;
  readonly #head: boolean;
  #status = 0;
  #reason = '';
  #headers: HeaderList = [];
  #noBody = false;
  #ended = false;
  #write: ((chunk: BodyChunk) => void) | undefined;
  #abortPromise: Promise<typeof ABORTED> | undefined;

  constructor(app: NativeApp, environ: Environ, responder: Responder, options: RunOptions) {
    this.#app = app;
    this.#environ = environ;
    this.#responder = responder;
    this.#options = options;
    // An environ from buildEnviron makes its signal on first access (2.2 µs on Node 20): its
    // responder reports aborts, so the signal is only fetched to wait on (#raceAbort).
    this.#signal = isBuiltEnviron(environ) ? undefined : signalOf(environ);
    this.#head = environ.REQUEST_METHOD === 'HEAD';
  }

  // Not async: an app that answers at once (a string, bytes, an array, null) is run to the end
  // without a promise, and RUN_SETTLED is returned. With the tree and the FastCGI exchange doing
  // the same: 4.6 → 4.4 µs per request (bench/hot-path.ts, Node 20, interleaved A/B).
  run(): Promise<void> {
    try {
      const body: unknown = this.#app(this.#environ, this.#startResponse);
      if (isThenable(body)) return this.#settle(body);
      const sending = this.#send(body as AppBody);
      return sending === undefined ? RUN_SETTLED : sending.then(undefined, (err: unknown) => this.#fail(err));
    } catch (err) {
      this.#fail(err);
      return RUN_SETTLED;
    }
  }

  async #settle(promise: PromiseLike<unknown>): Promise<void> {
    try {
      const settled = await this.#raceAbort(promise);
      if (settled === ABORTED) {
        // The app may still produce a body later: close it then, so its resources are freed.
        Promise.resolve(promise).then(closeBody, () => undefined);
        this.#end(APP_STATUS.ABORTED);
        return;
      }
      await this.#send(settled as AppBody);
    } catch (err) {
      this.#fail(err);
    }
  }

  get #aborted(): boolean {
    return this.#responder.aborted || this.#signal?.aborted === true;
  }

  readonly #startResponse: StartResponse = (status, headers, excInfo) => {
    if (this.#status !== 0 && excInfo === undefined) {
      throw new AppContractError(RUN_ERRORS.START_RESPONSE_TWICE, 'start_response called twice without exc_info');
    }
    // PEP 3333: with exc_info after the head went out, re-raise it; before, replace the head.
    if (excInfo !== undefined && this.#responder.headSent) {
      throw excInfo instanceof Error ? excInfo : new Error('start_response called with exc_info after the head was sent', { cause: excInfo });
    }
    const [code, reason] = parseStatus(status);
    if (!Array.isArray(headers)) throw new AppContractError(RUN_ERRORS.BAD_STATUS, 'headers must be an array of [name, value] pairs');
    this.#status = code;
    this.#reason = reason;
    this.#headers = headers;
    this.#noBody = this.#head || bodyless(code);
    return (this.#write ??= this.#legacyWrite.bind(this));
  };

  // The WSGI legacy write(): no backpressure can be honoured through a synchronous call, so the
  // responder buffers. Apps that stream should return an (async) iterable instead.
  #legacyWrite(chunk: BodyChunk): void {
    if (this.#ended || this.#aborted) return;
    const bytes = encode(chunk);
    if (!this.#responder.headSent) this.#sendHead(-1);
    if (!this.#noBody && bytes.length > 0) this.#responder.write(bytes);
  }

  #sendHead(length: number): void {
    if (this.#status === 0) {
      throw new AppContractError(RUN_ERRORS.NO_START_RESPONSE, 'the app produced a body without calling start_response');
    }
    let headers = this.#headers;
    // A known length costs nothing here and lets the front server keep its client connection
    // alive. Bodyless statuses get none: a 304's Content-Length would describe the 200.
    if (length >= 0 && !bodyless(this.#status) && !hasHeader(headers, 'content-length')) {
      headers = [...headers, ['Content-Length', String(length)]];
    }
    this.#responder.head(this.#status, this.#reason, headers);
  }

  /** Sends a body; a promise only while an iterable streams (undefined when all is sent). */
  #send(body: AppBody): Promise<void> | undefined {
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = encode(body);
      this.#sendWhole(bytes, bytes.length);
      return undefined;
    }
    if (body === null || body === undefined) {
      // HEAD with no body says nothing about the GET length: send no Content-Length then.
      this.#sendWhole(EMPTY, this.#head ? -1 : 0);
      return undefined;
    }
    if (Array.isArray(body)) {
      const chunks: Uint8Array[] = new Array<Uint8Array>(body.length);
      let total = 0;
      for (let i = 0; i < body.length; i++) {
        const bytes = encode(body[i]);
        chunks[i] = bytes;
        total += bytes.length;
      }
      this.#sendWhole(chunks, total);
      return undefined;
    }
    if (typeof body === 'object' && (Symbol.asyncIterator in body || Symbol.iterator in body)) {
      return this.#stream(body);
    }
    throw new AppContractError(RUN_ERRORS.BAD_BODY, `the app returned ${typeof body}; expected a string, bytes, an iterable or null`);
  }

  #sendWhole(chunks: Uint8Array | readonly Uint8Array[], length: number): void {
    if (this.#aborted) return this.#end(APP_STATUS.ABORTED);
    if (!this.#responder.headSent) this.#sendHead(length);
    if (!this.#noBody) {
      if (chunks instanceof Uint8Array) {
        if (chunks.length > 0) this.#responder.write(chunks);
      } else {
        for (const chunk of chunks) if (chunk.length > 0) this.#responder.write(chunk);
      }
    }
    this.#end(APP_STATUS.OK);
  }

  async #stream(body: Iterable<BodyChunk> | AsyncIterable<BodyChunk>): Promise<void> {
    const iterator: Iterator<BodyChunk> | AsyncIterator<BodyChunk> = Symbol.asyncIterator in body
      ? body[Symbol.asyncIterator]()
      : body[Symbol.iterator]();
    let done = false;
    try {
      for (;;) {
        if (this.#aborted) return this.#end(APP_STATUS.ABORTED);
        let step: IteratorResult<BodyChunk> | Promise<IteratorResult<BodyChunk>> | typeof ABORTED = iterator.next();
        if (isThenable(step)) {
          step = await this.#raceAbort(step);
          if (step === ABORTED) return this.#end(APP_STATUS.ABORTED);
        }
        if (step.done === true) {
          done = true;
          break;
        }
        const chunk = encode(step.value);
        if (chunk.length === 0) continue;
        if (!this.#responder.headSent) {
          this.#sendHead(-1);
          // HEAD, 204, 304: the head is all there is; stop the app producing more.
          if (this.#noBody) break;
        }
        if (this.#noBody) continue;
        if (!this.#responder.write(chunk)) {
          if ((await this.#raceAbort(this.#responder.drained())) === ABORTED || this.#responder.aborted) {
            return this.#end(APP_STATUS.ABORTED);
          }
        }
      }
      if (this.#aborted) return this.#end(APP_STATUS.ABORTED);
      // An empty stream still needs its head; its length is known to be zero.
      if (!this.#responder.headSent) this.#sendHead(this.#head ? -1 : 0);
      this.#end(APP_STATUS.OK);
    } finally {
      if (!done) closeIterator(iterator);
    }
  }

  /** Resolves with the promise's value, or ABORTED as soon as the request is aborted. */
  #raceAbort<T>(promise: PromiseLike<T>): Promise<T | typeof ABORTED> {
    if (this.#aborted) return Promise.resolve(ABORTED);
    if (this.#abortPromise === undefined) {
      const notifier = this.#responder as Partial<AbortNotifier>;
      if (this.#signal === undefined && typeof notifier.onAbort === 'function') {
        // No AbortSignal made for an async app either (bench/hot-path.ts --app hello-async).
        this.#abortPromise = new Promise((resolve) => notifier.onAbort!(() => resolve(ABORTED)));
      } else {
        const signal = (this.#signal ??= signalOf(this.#environ));
        if (signal === undefined) return Promise.resolve(promise);
        this.#abortPromise = new Promise((resolve) => {
          signal.addEventListener('abort', () => resolve(ABORTED), { once: true });
        });
      }
    }
    return Promise.race([promise, this.#abortPromise]);
  }

  #fail(err: unknown): void {
    const onError = this.#options.onError;
    if (onError !== undefined) {
      try {
        onError(err, this.#environ);
      } catch {
        // A broken error hook must not turn one failed request into a crashed worker.
      }
    }
    if (this.#ended) return;
    const responder = this.#responder;
    if (!responder.headSent && !this.#aborted) {
      const text = this.#options.debug === true ? `Internal Server Error\n\n${describeError(err)}\n` : 'Internal Server Error\n';
      try {
        this.#ended = true;
        sendPlain(responder, this.#environ, 500, text, APP_STATUS.ERROR);
        return;
      } catch {
        this.#ended = false;
      }
    }
    this.#end(this.#aborted ? APP_STATUS.ABORTED : APP_STATUS.ERROR);
  }

  #end(appStatus: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#responder.end(appStatus);
  }
}

const ABORTED: unique symbol = Symbol('aborted');
const EMPTY: readonly Uint8Array[] = [];

/** What `runNative` returns when the response was complete on return: callers may skip awaiting. */
export const RUN_SETTLED: Promise<void> = Promise.resolve();

function signalOf(environ: Environ): AbortSignal | undefined {
  const signal = environ['postern.signal'];
  return signal instanceof AbortSignal ? signal : undefined;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

// The iterator protocol's return() is how a generator's `finally` runs and a stream is released
// (WSGI's close()). Its own failure has nowhere useful to go.
function closeIterator(iterator: Iterator<unknown> | AsyncIterator<unknown>): void {
  try {
    const r = iterator.return?.();
    if (isThenable(r)) r.then(undefined, () => undefined);
  } catch {
    // ignored, see above
  }
}

function closeBody(body: unknown): void {
  if (typeof body !== 'object' || body === null) return;
  if (Symbol.asyncIterator in body) closeIterator((body as AsyncIterable<unknown>)[Symbol.asyncIterator]());
  else if (Symbol.iterator in body && !Array.isArray(body)) closeIterator((body as Iterable<unknown>)[Symbol.iterator]());
}
