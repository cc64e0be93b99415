// One SCGI or uwsgi connection, from the application's side of the socket. Both protocols carry
// one request per connection and frame the response as a head plus raw bytes, closed by closing
// the connection, so one object is the decoder's sink, the request and its Responder at once.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ProtocolError } from '../../protocols/common/errors.ts';
import type { Decoder, DecoderSink, RequestHead } from '../../protocols/common/events.ts';
import { encodeResponseHead, type HeadForm, type HeaderList } from '../../protocols/common/head.ts';
import { HEAD_FORM as SCGI_HEAD_FORM, ScgiDecoder } from '../../protocols/scgi/index.ts';
import { HEAD_FORM as UWSGI_HEAD_FORM, UwsgiDecoder } from '../../protocols/uwsgi/index.ts';
import { buildEnviron } from '../environ.ts';
import type { Environ, Responder } from '../app/types.ts';
import { isDisconnect, peerOf, type ServeContext, type Tracked, writeStallStart } from './context.ts';
import { SERVER_ERRORS, serverError } from './errors.ts';
import { asBuildBase, environBase, protocolErrorMeta } from './fastcgi-connection.ts';
import type { RequestInput, InputOwner } from './request-input.ts';
import { RequestSource } from './request-source.ts';
import { checkParams } from './params-check.ts';
import { closeAfterWrites, listenToSocket, type SocketEvents } from './socket-events.ts';
import { RUN_SETTLED, type AbortNotifier } from '../app/run.ts';
import { asProtocolError, cannedAnswer, completeLength, incomplete, requestFinished } from './shared.ts';
import { dispatchWithStatus } from '../status/endpoint.ts';

const LINGER_MS = 2000;

const WAITING = 0; // accepted, no complete head yet (headerTimeoutMs)
const ACTIVE = 1; // the app has the request
const LINGER = 2; // response sent, our side ended; discarding what the peer still sends

const RESOLVED: Promise<void> = Promise.resolve();

/** A response head and first chunks shorter than this are joined into one socket write. */
const COALESCE_MAX = 16 * 1024;

export type StreamProtocol = 'scgi' | 'uwsgi';

function flushHeld(conn: StreamConnection): void {
  conn.flushHeld();
}

/** The connection a socket serves, for the listeners every connection shares (see "socket events"). */

/** Serves one accepted socket as an SCGI or uwsgi connection: one request, then close. */
export class StreamConnection implements SocketEvents, DecoderSink, Responder, Tracked, InputOwner, AbortNotifier {
  /** Its slot in the server's list of live connections (src/server/live-list.ts); -1 when in none. */
  liveSlot = -1;
  readonly #socket: Socket;
  readonly #ctx: ServeContext;
  readonly #protocol: StreamProtocol;
  readonly #form: HeadForm;
  readonly #decoder: Decoder;
  /** The request's body stream and signal, made on first use (see request-source.ts). */
  #source: RequestSource | undefined;
  #environ: Environ | undefined;
  #phase = WAITING;
  #phaseSince: number;
  #lastDataAt: number;
  #startedAt = 0;
  #startMs = 0;
  /** performance.now() at the start, for the metrics' latency and slowRequestMs. */
  #t0 = 0;
  #seq = 0;
  #started = false;
  #headSent = false;
  #done = false;
  #aborted = false;
  #ended = false;
  #closed = false;
  /** The request arrived whole (head and body): the peer has nothing more to send. */
  #inputDone = false;
  #isHead = false;
  #status = 0;
  #bytes = 0;
  #length = -1;
  #drainWaiters: Array<() => void> | null = null;
  /** Coarse time the sweep first saw our output stuck (writableNeedDrain); 0 = flowing. */
  #writeStuckSince = 0;
  /**
   * The response head (and small first chunks) not written yet: held while the app runs
   * synchronously, or until the end of the tick, so that a short answer leaves in one write with
   * the end of the connection, as the canned responder's does (see #hold).
   */
  #held: Buffer | undefined;
  /** The app is running synchronously inside request(): what it writes is flushed when it returns. */
  #dispatching = false;
  /** A nextTick flush of #held is scheduled. */
  #flushScheduled = false;

  constructor(socket: Socket, ctx: ServeContext, protocol: StreamProtocol) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#protocol = protocol;
    this.#form = protocol === 'scgi' ? SCGI_HEAD_FORM : UWSGI_HEAD_FORM;
    // The resolved limits carry the decoder's three fields: no options object per connection.
    this.#decoder = protocol === 'scgi' ? new ScgiDecoder(this, ctx.limits) : new UwsgiDecoder(this, ctx.limits);
    this.#phaseSince = this.#lastDataAt = ctx.clientClock;
    socket.setNoDelay(true);
    listenToSocket(socket, this);
    ctx.metrics.connectionOpened(protocol);
  }

  get inFlight(): number {
    return this.#started && !this.#done ? 1 : 0;
  }

  // ---- socket events (src/server/socket-events.ts) -------------------------------------------

  socketData(chunk: Buffer): void {
    if (this.#ended) return;
    this.#lastDataAt = this.#ctx.clientClock;
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.#internalError(err);
    }
  }

  socketEnd(): void {
    try {
      this.#decoder.end();
    } catch (err) {
      this.#internalError(err);
      return;
    }
    // A client that half-closed after its request still gets the answer (allowHalfOpen).
    if (!this.#started || this.#done) this.#endSocket();
  }

  socketError(err: Error): void {
    const log = this.#ctx.log;
    const code = (err as NodeJS.ErrnoException).code;
    if (isDisconnect(err)) {
      if (log.debugEnabled) log.debug(`${this.#protocol} peer disconnected`, { code, peer: peerOf(this.#socket) });
    } else {
      log.warn(`${this.#protocol} socket error`, { code, peer: peerOf(this.#socket), error: err.message });
    }
  }

  socketClose(): void {
    this.#closed = true;
    this.#ended = true;
    if (this.#started && !this.#done) {
      this.#abortRequest(serverError(SERVER_ERRORS.CONNECTION_CLOSED, `the ${this.#protocol} connection closed before the response was complete`));
    }
    this.socketDrain();
    this.#ctx.metrics.connectionClosed(this.#protocol);
    this.#ctx.release(this);
  }

  socketDrain(): void {
    this.#writeStuckSince = 0;
    const waiters = this.#drainWaiters;
    if (waiters === null) return;
    this.#drainWaiters = null;
    for (const w of waiters) w();
  }

  // ---- DecoderSink ---------------------------------------------------------------------------

  request(head: RequestHead): void {
    // No body follows (CONTENT_LENGTH 0): the peer has sent everything, even if the app answers
    // before the decoder reports the body's end (see #endSocket).
    if (head.contentLength === 0) this.#inputDone = true;
    const bad = checkParams(head.params, 0, this.#protocol === 'scgi');
    if (bad !== undefined) {
      this.error(bad);
      return;
    }
    const ctx = this.#ctx;
    if (ctx.refuseOverloaded(this.#protocol, this.#socket)) {
      const a = ctx.overloadedAnswer;
      this.#write(Buffer.concat([encodeResponseHead(this.#form, a.status, a.reason, a.headers), a.body]));
      this.#endSocket();
      return;
    }
    this.#started = true;
    this.#phase = ACTIVE;
    this.#startedAt = ctx.now;
    if (ctx.accessLog !== undefined) this.#startMs = Date.now();
    this.#seq = ++ctx.requests;
    ctx.inFlight++;
    ctx.metrics.requestStarted();
    this.#t0 = performance.now();
    const source = (this.#source ??= new RequestSource(this));
    let environ: Environ;
    try {
      environ = buildEnviron(head, asBuildBase(environBase(this.#socket, ctx, this.#protocol)), source);
    } catch (err) {
      this.#ctx.log.warn(`${this.#protocol} request refused`, { peer: peerOf(this.#socket), error: err instanceof Error ? err.message : String(err) });
      this.#fail(asProtocolError(err, 0));
      return;
    }
    this.#environ = environ;
    this.#isHead = environ.REQUEST_METHOD === 'HEAD';
    // Not awaited: an app that answered at once (RUN_SETTLED) needs no promise turn, and what it
    // wrote leaves in one write (see #hold). An async one gets what it wrote so far now.
    let running: Promise<void>;
    this.#dispatching = true;
    try {
      running = dispatchWithStatus(ctx.statusRoutes, ctx.tree, environ, this);
    } finally {
      this.#dispatching = false;
    }
    if (running === RUN_SETTLED) {
      this.#ran();
      return;
    }
    this.flushHeld();
    void running.then(() => this.#ran());
  }

  #ran(): void {
    if (!this.#done) this.#fail(serverError(SERVER_ERRORS.RESPONSE_STATE, 'the app returned without ending its response', 500));
  }

  body(_id: number, chunk: Buffer): void {
    const input = this.#source?.input;
    if (input !== undefined && input.feed(chunk, 0)) {
      input.blocked = true;
      this.#socket.pause();
    }
  }

  bodyEnd(): void {
    this.#inputDone = true;
    this.#source?.finish();
  }

  data(): void {}

  dataEnd(): void {}

  abort(): void {
    this.#abortRequest(serverError(SERVER_ERRORS.CONNECTION_CLOSED, `the ${this.#protocol} peer closed the connection before sending the whole body`));
  }

  reply(bytes: Buffer, close: boolean): void {
    this.#write(bytes);
    if (close) this.#endSocket();
  }

  error(err: ProtocolError): void {
    const ctx = this.#ctx;
    ctx.protocolErrors++;
    ctx.metrics.rejected('protocolError');
    ctx.log.warn(`${this.#protocol} protocol error`, protocolErrorMeta(err, this.#socket));
    if (this.#started) {
      // httpStatus 0: the framing is lost (bytes past the body), so only closing is safe.
      if (err.httpStatus === 0 || this.#done) {
        this.#abortRequest(err);
        this.#socket.destroy();
        return;
      }
      this.#fail(err);
      return;
    }
    if (err.httpStatus > 0) this.#answer(err.httpStatus);
    this.#endSocket();
  }

  // ---- InputOwner ------------------------------------------------------------------------------

  unblock(input: RequestInput): void {
    if (!input.blocked) return;
    input.blocked = false;
    if (!this.#closed) this.#socket.resume();
  }

  // ---- Responder -------------------------------------------------------------------------------

  get aborted(): boolean {
    return this.#aborted;
  }

  onAbort(listener: () => void): void {
    (this.#source ??= new RequestSource(this)).onAbort(listener);
  }

  get headSent(): boolean {
    return this.#headSent;
  }

  head(status: number, reason: string, headers: HeaderList): void {
    if (this.#headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'response head already sent', 500);
    const bytes = encodeResponseHead(this.#form, status, reason, headers);
    this.#headSent = true;
    this.#status = status;
    this.#length = completeLength(headers);
    if (!this.#aborted && !this.#done && !this.#ended) this.#hold(bytes);
  }

  write(chunk: Uint8Array): boolean {
    if (this.#aborted || this.#done || chunk.length === 0) return true;
    if (!this.#headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'write() before head()', 500);
    this.#bytes += chunk.length;
    if (this.#isHead) return true;
    const held = this.#held;
    if (held !== undefined) {
      if (held.length + chunk.length <= COALESCE_MAX) {
        // Copied, as the kernel would copy it anyway; the app may reuse its buffer once write() returns.
        this.#held = Buffer.concat([held, chunk], held.length + chunk.length);
        return !this.#socket.writableNeedDrain;
      }
      this.flushHeld();
    }
    return this.#write(chunk);
  }

  drained(): Promise<void> {
    if (this.#aborted || this.#done || this.#ended || !this.#socket.writableNeedDrain) return RESOLVED;
    return new Promise((resolve) => (this.#drainWaiters ??= []).push(resolve));
  }

  end(appStatus = 0): void {
    if (this.#done) return;
    if (appStatus !== 0 && !this.#aborted && incomplete(this.#length, this.#bytes, this.#isHead)) {
      // The response is incomplete (the app failed mid-body): closing abruptly is the only way
      // SCGI/uwsgi can tell the front server, which then reports an upstream error.
      this.flushHeld();
      this.#finish();
      this.#socket.destroy();
      return;
    }
    this.#finish();
    this.#endSocket();
  }

  // ---- Tracked ---------------------------------------------------------------------------------

  drain(): void {
    // One request per connection, so nothing to close early: a busy one finishes and closes. One
    // with no request yet was accepted moments ago and its request is on the way (front servers
    // connect to send one): it is served, with headerTimeoutMs from accept to arrive (see sweep).
  }

  destroy(): void {
    if (this.#closed) return;
    if (this.#started && !this.#done) this.#abortRequest(serverError(SERVER_ERRORS.SHUTDOWN, 'the server is shutting down'));
    this.#socket.destroy();
  }

  sweep(now: number): void {
    const l = this.#ctx.limits;
    if (l.writeTimeoutMs > 0 && this.#writeStuck(now, l.writeTimeoutMs)) return;
    // The client's silence is measured on the stall-aware clock; requestTimeoutMs on the wall clock.
    const quiet = this.#ctx.clientClock;
    switch (this.#phase) {
      case WAITING:
        if (l.headerTimeoutMs > 0 && quiet - this.#phaseSince >= l.headerTimeoutMs) {
          this.#ctx.log.info(`${this.#protocol} request head not complete in time`, { code: SERVER_ERRORS.HEADER_TIMEOUT, peer: peerOf(this.#socket), limit: 'headerTimeoutMs' });
          this.#ctx.metrics.rejected('timeout');
          this.#socket.destroy();
        }
        return;
      case ACTIVE: {
        if (this.#done) return;
        if (l.requestTimeoutMs > 0 && now - this.#startedAt >= l.requestTimeoutMs) {
          this.#ctx.timedOut++;
          this.#ctx.metrics.rejected('timeout');
          this.#ctx.log.warn('request timed out', { code: SERVER_ERRORS.REQUEST_TIMEOUT, protocol: this.#protocol, uri: this.#environ?.REQUEST_URI, limit: 'requestTimeoutMs' });
          this.#fail(serverError(SERVER_ERRORS.REQUEST_TIMEOUT, `the request ran past requestTimeoutMs (${String(l.requestTimeoutMs)})`, 504));
          return;
        }
        if (l.bodyIdleTimeoutMs > 0 && this.#source?.waiting === true && quiet - this.#lastDataAt >= l.bodyIdleTimeoutMs) {
          this.#ctx.metrics.rejected('timeout');
          this.#fail(serverError(SERVER_ERRORS.BODY_TIMEOUT, `no body bytes for bodyIdleTimeoutMs (${String(l.bodyIdleTimeoutMs)})`, 408));
        }
        return;
      }
      default:
        if (quiet - this.#phaseSince >= LINGER_MS) this.#socket.destroy();
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  #write(buf: Uint8Array): boolean {
    if (this.#ended) return true;
    return this.#socket.write(buf);
  }

  /**
   * Holds the head until the app's synchronous run returns (request() flushes it then, or the end
   * of the response takes it along) or, written from an async app, until the end of this tick.
   * A hello answer was three socket calls (head, body, end); now it is one write and the end,
   * like the canned responder's. With the shared listeners and the unawaited run: SCGI 1,276k →
   * 1,170k instructions per connection on Node 20, uwsgi 1,256k → 1,160k; unchanged on Node 24
   * (809k) (bench/connection-cost.sh; BENCHMARKS.md "Per-connection cost").
   */
  #hold(bytes: Buffer): void {
    this.#held = bytes;
    if (!this.#dispatching && !this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(flushHeld, this);
    }
  }

  /** Writes the held head and first chunks, if any (see #hold). */
  flushHeld(): void {
    this.#flushScheduled = false;
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    if (!this.#aborted) this.#write(held);
  }

  /** Postern answers by itself with `status` (the head is not out yet) and closes. */
  #answer(status: number): void {
    const a = cannedAnswer(status);
    this.#status = status;
    this.#headSent = true;
    this.#socket.cork();
    this.#write(encodeResponseHead(this.#form, a.status, a.reason, a.headers));
    if (!this.#isHead) this.#write(a.body);
    this.#bytes += a.body.length;
    this.#socket.uncork();
  }

  /** Ends the request with an error postern answers itself when it still can, then closes. */
  #fail(err: ProtocolError): void {
    if (this.#done) return;
    const headWasSent = this.#headSent;
    this.flushHeld();
    this.#stop(err);
    if (headWasSent || this.#ended) {
      this.#finish();
      this.#socket.destroy();
      return;
    }
    this.#answer(err.httpStatus > 0 ? err.httpStatus : 500);
    this.#finish();
    this.#endSocket();
  }

  #abortRequest(reason: ProtocolError): void {
    if (this.#done || !this.#started) return;
    this.#ctx.aborted++;
    this.#stop(reason);
    this.#finish();
  }

  #stop(reason: ProtocolError): void {
    this.#aborted = true;
    this.#source?.fail(reason);
    this.#source?.abort(reason);
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    const ctx = this.#ctx;
    ctx.inFlight--;
    this.#source?.drop();
    requestFinished(ctx, this.#protocol, this.#environ, this.#aborted && !this.#headSent ? 499 : this.#status, this.#bytes, this.#t0, this.#startMs, this.#seq);
  }

  #endSocket(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#phase = LINGER;
    this.#phaseSince = this.#ctx.clientClock;
    const s = this.#socket;
    const held = this.#held;
    this.#held = undefined;
    if (this.#inputDone) {
      // The whole request was read and the peer sends nothing after it: the answer is written
      // and the socket closed behind it (closeAfterWrites), without waiting for the peer's FIN.
      if (held !== undefined && !this.#aborted) s.write(held);
      closeAfterWrites(s);
      return;
    }
    // The held answer goes out with the end: one write, then the FIN.
    if (held !== undefined && !this.#aborted) s.end(held);
    else s.end();
    // Read and drop what the peer still sends (an unread body) so closing does not reset the
    // connection under the response (Go child.go, issue 4183).
    const input = this.#source?.made;
    if (input?.blocked === true) input.blocked = false;
    s.resume();
  }

  /** writeTimeoutMs: true (the request aborted, the socket destroyed) once the peer has read nothing that long. */
  #writeStuck(now: number, limit: number): boolean {
    const since = (this.#writeStuckSince = writeStallStart(this.#socket, this.#writeStuckSince, now));
    if (since === 0 || now - since < limit) return false;
    this.#ctx.writeTimedOut(this.#protocol, peerOf(this.#socket));
    this.#abortRequest(serverError(SERVER_ERRORS.WRITE_TIMEOUT, `the ${this.#protocol} peer read nothing for writeTimeoutMs (${String(limit)})`));
    this.#socket.destroy();
    return true;
  }

  #internalError(err: unknown): void {
    this.#ctx.log.error(`${this.#protocol} connection failed`, { peer: peerOf(this.#socket), error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    this.destroy();
  }
}
