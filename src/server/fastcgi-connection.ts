// One FastCGI connection, from the application's side of the socket: decoder events in, one
// Responder per request out as STDOUT/END_REQUEST records. Thin glue (STYLE.md 15–17): the
// codec decides what the bytes mean, this file decides what the socket does.
//
// Flow control. Without multiplexing (the default; nginx never multiplexes) a request whose app
// stops reading its body pauses the socket at the input's high-water mark, so nothing buffers
// past 64 KiB plus one socket read. With multiplexing the socket is shared: pausing it for one
// slow reader stalls every other request on it, and not pausing it buffers without bound. The
// trade-off taken: each request may buffer up to MPX_INPUT_CAP unread bytes while its siblings
// keep flowing; past that the socket is paused anyway (head-of-line blocking, but bounded memory).

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ProtocolError } from '../../protocols/common/errors.ts';
import type { DecoderSink, RequestHead } from '../../protocols/common/events.ts';
import { encodeResponseHead, type HeaderList } from '../../protocols/common/head.ts';
import { FastCgiDecoder, encodeEndRequest, encodeResponseEnd, encodeStdout, encodeStdoutJoined, FCGI_MAX_CONTENT_LENGTH, FCGI_PROTOCOL_STATUS, FCGI_RESPONSE_END_LENGTH, FCGI_ROLE, writeResponseEnd } from '../../protocols/fastcgi/index.ts';
import { buildEnviron, type EnvironAddressing, type EnvironSource } from '../environ.ts';
import { APP_STATUS, RUN_SETTLED, type AbortNotifier } from '../app/run.ts';
import type { Environ, Responder } from '../app/types.ts';
import { afterPoll, isDisconnect, peerOf, type ServeContext, type Tracked, writeStallStart } from './context.ts';
import { handOff, stopReading } from './handoff.ts';
import { SERVER_ERRORS, serverError } from './errors.ts';
import { RequestInput, type InputOwner } from './request-input.ts';
import { RequestSource } from './request-source.ts';
import { asProtocolError, cannedAnswer, declaredLength, requestFinished, ROLE_NAMES } from './shared.ts';
import { dispatchWithStatus } from '../status/endpoint.ts';
import { fastcgiOverloaded } from './admission.ts';
import { checkParams } from './params-check.ts';
import { closeAfterWrites, listenToSocket, type SocketEvents } from './socket-events.ts';
import { IdSlots } from '../../protocols/common/id-slots.ts';

/** Unread body bytes one multiplexed request may hold before the shared socket is paused. */
export const MPX_INPUT_CAP = 1024 * 1024;

/** After closing our side, how long a peer that keeps sending is read (and discarded) before a reset. */
const LINGER_MS = 2000;


const IDLE = 0; // no request in flight; waiting for the next BEGIN_REQUEST (keep-alive or fresh)
const HEAD = 1; // bytes arrived while idle: a request's params must complete within headerTimeoutMs
const ACTIVE = 2; // at least one request in flight
const LINGER = 3; // our side ended; draining what the peer still sends

const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY: Buffer = Buffer.alloc(0);

// Small records written in one tick (a small response's head, body and END_REQUEST are 7
// buffers) are joined into one buffer and handed to the socket once. Measured on loopback, Node 20,
// 100k such responses: cork + 7 writes 0.84 µs user + 4.36 µs sys each, one joined write 0.71 +
// 4.14. Payloads of at least this many bytes go out as views, uncopied, corked with the rest.
const COALESCE_MAX = 16 * 1024;

/** Metrics reasons for the END_REQUEST protocolStatus values postern refuses with (§5.5). */
const REFUSALS: Readonly<Record<number, string>> = {
  [FCGI_PROTOCOL_STATUS.CANT_MPX_CONN]: 'cantMpx',
  [FCGI_PROTOCOL_STATUS.OVERLOADED]: 'overloaded',
  [FCGI_PROTOCOL_STATUS.UNKNOWN_ROLE]: 'unknownRole',
};

function flush(conn: FastCgiConnection): void {
  conn.flush();
}

function closeIfIdle(conn: FastCgiConnection): void {
  conn.closeIfIdle();
}

/** The connection a socket serves, for the listeners every connection shares (see "socket events"). */

/** Serves one accepted socket as a FastCGI connection until it closes. */
export class FastCgiConnection implements SocketEvents, DecoderSink, Tracked, InputOwner {
  /** Its slot in the server's list of live connections (src/server/live-list.ts); -1 when in none. */
  liveSlot = -1;
  readonly #socket: Socket;
  readonly #ctx: ServeContext;
  readonly #decoder: FastCgiDecoder;
  readonly #requests = new IdSlots<FastCgiExchange>();
  readonly #pauseAt: number;
  readonly #envBase: EnvironBase;
  #blocked = 0;
  /** Small buffers waiting for the end of this tick (see COALESCE_MAX). */
  /**
   * `#out[0, #outN)`; slots past #outN hold EMPTY. Counted, never emptied with `length = 0`, which
   * gives up the array's storage and makes the next push allocate it again (150 B a request).
   */
  readonly #out: Buffer[] = [];
  #outN = 0;
  #outBytes = 0;
  /** The exchange holding a head until the end of this tick (see FastCgiExchange#pendingHead). */
  #held: FastCgiExchange | null = null;
  /** More of them, multiplexing only. */
  #heldMore: FastCgiExchange[] | null = null;
  #flushing = false;
  #corked = false;
  /** Close once no request is in flight (KEEP_CONN clear, an error, or a graceful stop). */
  #closing = false;
  /**
   * A BEGIN_REQUEST without FCGI_KEEP_CONN came: the connection closes after its answer. With
   * `#inputsOpen` it tells when the peer has sent everything it will (see #endSocket).
   */
  #oneShot = false;
  /** Requests begun whose FCGI_STDIN (and FCGI_DATA for a filter) has not ended yet. */
  #inputsOpen = 0;
  /** Inside the decoder's push(): closing the socket waits for the rest of the chunk. */
  #pushing = false;
  /** #endSocket ran inside push(); the socket is closed when push() returns. */
  #closeDeferred = false;
  /** A request answered inside push() whose id the decoder releases when push() returns; 0 = none. */
  #releaseAfterPush = 0;
  /** Our side has ended (socket.end()); nothing more is written. */
  #ended = false;
  /** The socket is gone. */
  #closed = false;
  #phase = IDLE;
  #phaseSince: number;
  #lastDataAt: number;
  #served = 0;
  #drainWaiters: Array<() => void> | null = null;
  /** Coarse time the sweep first saw our output stuck (writableNeedDrain); 0 = flowing. */
  #writeStuckSince = 0;

  /**
   * `adopted`: a keep-alive connection another worker handed over between requests (see
   * src/server/handoff.ts), with the bytes it had read and not yet decoded.
   */
  constructor(socket: Socket, ctx: ServeContext, adopted?: Buffer) {
    this.#socket = socket;
    this.#ctx = ctx;
    const l = ctx.limits;
    // Options made and checked once per server, not copied and checked per connection: 1,285k →
    // 1,205k instructions per connection without keep_conn on Node 20, 709k → 670k on Node 24
    // (bench/connection-cost.sh, both ends of the connection; BENCHMARKS.md "Per-connection cost").
    this.#decoder = new FastCgiDecoder(this, ctx.fastcgiDecoderOptions);
    this.#pauseAt = l.maxRequestsPerConnection > 1 ? MPX_INPUT_CAP : 0;
    this.#envBase = environBase(socket, ctx, 'fastcgi');
    this.#phaseSince = this.#lastDataAt = ctx.clientClock;
    if (adopted !== undefined) this.#served = 1;
    // Nagle holds the last small record of a response until the peer's delayed ACK: flup with
    // keep_conn served 114 req/s, 9,200 with TCP_NODELAY (PROTOCOLS.md "Measured pitfalls").
    socket.setNoDelay(true);
    listenToSocket(socket, this);
    ctx.metrics.connectionOpened('fastcgi');
    if (adopted !== undefined && adopted.length > 0) this.socketData(adopted);
  }

  get inFlight(): number {
    return this.#requests.size;
  }

  // ---- socket events (src/server/socket-events.ts) -------------------------------------------

  socketData(chunk: Buffer): void {
    if (this.#ended) return;
    this.#lastDataAt = this.#ctx.clientClock;
    if (this.#phase === IDLE) this.#setPhase(HEAD);
    this.#pushing = true;
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.#internalError(err);
    } finally {
      this.#pushing = false;
    }
    const answered = this.#releaseAfterPush;
    if (answered !== 0) {
      this.#releaseAfterPush = 0;
      this.#decoder.release(answered);
    }
    // An app that answered inside push() ended the connection before the decoder reached the
    // rest of the chunk (nginx sends BEGIN_REQUEST, the params and the empty STDIN in one write):
    // its socket is closed now that the chunk is read (see #endSocket).
    if (this.#closeDeferred) {
      this.#closeDeferred = false;
      this.#closeSocket();
    }
  }

  socketEnd(): void {
    try {
      this.#decoder.end();
    } catch (err) {
      this.#internalError(err);
      return;
    }
    if (this.#requests.size === 0) this.#endSocket();
    else this.#closing = true;
  }

  socketError(err: Error): void {
    const log = this.#ctx.log;
    if (isDisconnect(err)) {
      if (log.debugEnabled) log.debug('fastcgi peer disconnected', { code: (err as NodeJS.ErrnoException).code, peer: peerOf(this.#socket) });
    } else {
      log.warn('fastcgi socket error', { code: (err as NodeJS.ErrnoException).code, peer: peerOf(this.#socket), error: err.message });
    }
  }

  socketClose(): void {
    this.#closed = true;
    this.#ended = true;
    if (this.#requests.size > 0) {
      const reason = serverError(SERVER_ERRORS.CONNECTION_CLOSED, 'the FastCGI connection closed before the request finished');
      for (const ex of this.#requests.values()) ex.abort(reason, false);
    }
    this.socketDrain();
    this.#ctx.metrics.connectionClosed('fastcgi');
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
    this.#inputsOpen += head.role === FCGI_ROLE.FILTER ? 2 : 1;
    const bad = checkParams(head.params, head.id, true);
    if (bad !== undefined) {
      this.error(bad);
      return;
    }
    const ctx = this.#ctx;
    const role = ROLE_NAMES[head.role];
    if (head.keepConn === false) this.#closing = this.#oneShot = true;
    if (role === undefined || !ctx.tree.hasRole(role)) {
      // §5.5: a role this tree has no app for is refused; the id never becomes active for the app.
      this.write(encodeEndRequest(head.id, 0, FCGI_PROTOCOL_STATUS.UNKNOWN_ROLE));
      ctx.metrics.rejected('unknownRole');
      this.#decoder.release(head.id);
      if (this.#requests.size === 0) this.#idle();
      return;
    }
    if (ctx.refuseOverloaded('fastcgi', this.#socket)) {
      for (const b of fastcgiOverloaded(head.id, ctx.overloadedAnswer)) this.write(b);
      this.#decoder.release(head.id);
      if (this.#requests.size === 0) this.#idle();
      return;
    }
    const ex = new FastCgiExchange(this, ctx, head.id, head.role === FCGI_ROLE.FILTER);
    this.#requests.set(head.id, ex);
    this.#phase = ACTIVE;
    let environ: Environ;
    try {
      // The connection's addresses, and the exchange for the input and signal, made on first use.
      environ = buildEnviron(head, asBuildBase(this.#envBase), ex);
      if (ex.data !== undefined) environ['postern.data'] = ex.data;
    } catch (err) {
      ctx.log.warn('fastcgi request refused', { peer: peerOf(this.#socket), requestId: head.id, error: err instanceof Error ? err.message : String(err) });
      ex.fail(asProtocolError(err, head.id));
      return;
    }
    ex.start(environ);
  }

  body(id: number, chunk: Buffer): void {
    const ex = this.#requests.get(id);
    if (ex === undefined) return;
    if (ex.overLength(chunk.length)) {
      // §6.2: the bytes on FCGI_STDIN must match CONTENT_LENGTH; past it the request is refused
      // before the app sees a byte more than it was promised.
      this.#closing = true;
      this.#ctx.protocolErrors++;
      this.#ctx.log.warn('fastcgi protocol error', { code: SERVER_ERRORS.BODY_TOO_LONG, peer: peerOf(this.#socket), requestId: id, status: 400 });
      ex.fail(serverError(SERVER_ERRORS.BODY_TOO_LONG, 'FCGI_STDIN carries more bytes than CONTENT_LENGTH', 400, id));
      return;
    }
    this.#feed(ex.input, chunk);
  }

  bodyEnd(id: number): void {
    this.#inputsOpen--;
    this.#requests.get(id)?.bodyEnded();
  }

  data(id: number, chunk: Buffer): void {
    const ex = this.#requests.get(id);
    if (ex?.data !== undefined) this.#feed(ex.data, chunk);
  }

  dataEnd(id: number): void {
    this.#inputsOpen--;
    this.#requests.get(id)?.data?.finish();
  }

  abort(id: number): void {
    // FCGI_ABORT_REQUEST on a live connection is answered (§5.4); after end() the peer is gone.
    const live = !this.#closed && this.#socket.readable;
    this.#requests.get(id)?.abort(
      live ? serverError(SERVER_ERRORS.ABORTED, 'the web server aborted the request (FCGI_ABORT_REQUEST)', 0, id)
        : serverError(SERVER_ERRORS.CONNECTION_CLOSED, 'the FastCGI connection closed before the request finished', 0, id),
      live,
    );
  }

  reply(bytes: Buffer, close: boolean): void {
    // A refusal is one END_REQUEST record (type 3) whose protocolStatus (byte 12) is not REQUEST_COMPLETE.
    if (bytes.length === 16 && bytes[1] === 3 && bytes[12] !== 0) this.#ctx.metrics.rejected(REFUSALS[bytes[12]!] ?? 'other');
    this.write(bytes);
    if (close) {
      this.#closing = true;
      if (this.#requests.size === 0) this.#endSocket();
    }
  }

  error(err: ProtocolError): void {
    // Records of a request already answered are ignored, as they are once its id is released
    // (§3.3), even while the release waits for the end of push() (see finished()).
    if (err.requestId !== 0 && err.requestId === this.#releaseAfterPush) return;
    const ctx = this.#ctx;
    ctx.protocolErrors++;
    ctx.metrics.rejected('protocolError');
    ctx.log.warn('fastcgi protocol error', protocolErrorMeta(err, this.#socket));
    if (err.requestId === 0) {
      // The decoder has stopped: nothing on this connection can be trusted any more.
      const reason = serverError(SERVER_ERRORS.CONNECTION_CLOSED, `FastCGI connection failed: ${err.code}`);
      for (const ex of this.#requests.values()) ex.abort(reason, false);
      this.#endSocket();
      return;
    }
    this.#closing = true;
    const ex = this.#requests.get(err.requestId);
    if (ex !== undefined) {
      ex.fail(err);
      return;
    }
    // The request never reached the app (params too large or malformed): answer for it.
    const a = cannedAnswer(err.httpStatus > 0 ? err.httpStatus : 400);
    this.stdout(err.requestId, encodeResponseHead('cgi', a.status, a.reason, a.headers));
    this.stdout(err.requestId, a.body);
    this.write(encodeResponseEnd(err.requestId, 0));
    this.#decoder.release(err.requestId);
    if (this.#requests.size === 0) this.#endSocket();
  }

  // ---- InputOwner ------------------------------------------------------------------------------

  unblock(input: RequestInput): void {
    if (!input.blocked) return;
    input.blocked = false;
    if (--this.#blocked === 0 && !this.#closed) this.#socket.resume();
  }

  #feed(input: RequestInput, chunk: Buffer): void {
    if (input.feed(chunk, this.#pauseAt)) {
      input.blocked = true;
      if (this.#blocked++ === 0) this.#socket.pause();
    }
  }

  // ---- output (used by the exchanges) ---------------------------------------------------------

  /**
   * Queues one buffer for the socket: small ones are joined with the rest of this tick's output,
   * large ones go out as they are, in order, corked with the rest. False when the socket asks the
   * writer to wait for 'drain'.
   */
  write(buf: Buffer): boolean {
    if (this.#ended) return true;
    if (!this.#flushing) {
      this.#flushing = true;
      process.nextTick(flush, this);
    }
    if (buf.length < COALESCE_MAX) {
      this.#out[this.#outN++] = buf;
      if ((this.#outBytes += buf.length) >= COALESCE_MAX) this.#writeOut();
      return !this.#socket.writableNeedDrain;
    }
    this.#writeOut();
    if (!this.#corked) {
      // Several large payloads in one tick leave in one writev.
      this.#corked = true;
      this.#socket.cork();
    }
    return this.#socket.write(buf);
  }

  stdout(id: number, data: Uint8Array): boolean {
    const records = encodeStdout(id, data);
    let ok = true;
    for (let i = 0; i < records.length; i++) ok = this.write(records[i]!);
    return ok;
  }

  /** Holds `ex`'s head until the end of this tick: one nextTick per connection, not one per head. */
  holdHead(ex: FastCgiExchange): void {
    if (this.#held === null) this.#held = ex;
    else (this.#heldMore ??= []).push(ex);
    if (!this.#flushing) {
      this.#flushing = true;
      process.nextTick(flush, this);
    }
  }

  /** End of the tick: held heads, then everything queued, go to the socket. */
  flush(): void {
    // Still #flushing: what these write joins this flush instead of scheduling another.
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      held.flushHead();
      const more = this.#heldMore;
      if (more !== null) {
        this.#heldMore = null;
        for (let i = 0; i < more.length; i++) more[i]!.flushHead();
      }
    }
    this.#flushing = false;
    if (this.#ended && this.#closed) return;
    this.#writeOut();
    if (this.#corked) {
      this.#corked = false;
      this.#socket.uncork();
    }
  }

  #writeOut(): void {
    const n = this.#outN;
    if (n === 0) return;
    const out = this.#out;
    const bytes = n === 1 ? out[0]! : Buffer.concat(n === out.length ? out : out.slice(0, n), this.#outBytes);
    for (let i = 0; i < n; i++) out[i] = EMPTY;
    this.#outN = 0;
    this.#outBytes = 0;
    this.#socket.write(bytes);
  }

  /** Whether the socket asks writers to wait for 'drain'. */
  get needsDrain(): boolean {
    return !this.#ended && this.#socket.writableNeedDrain;
  }

  drained(): Promise<void> {
    if (this.#ended || !this.#socket.writableNeedDrain) return RESOLVED;
    return new Promise((resolve) => (this.#drainWaiters ??= []).push(resolve));
  }

  /** A request left: END_REQUEST is written (or the peer is gone); its id may be reused. */
  finished(ex: FastCgiExchange, wroteEnd: boolean): void {
    if (this.#requests.get(ex.id) !== ex) return;
    this.#requests.delete(ex.id);
    this.#ctx.inFlight--;
    this.#served++;
    if (wroteEnd) {
      if (this.#pushing && this.#oneShot) {
        // Answered inside push(), on a connection without KEEP_CONN: the id stays known to the
        // decoder until push() returns, so that the rest of the chunk (nginx's empty STDIN comes
        // in the same write) still reports the input's end (#inputsOpen, see #closeSocket).
        if (this.#releaseAfterPush !== 0) this.#decoder.release(this.#releaseAfterPush);
        this.#releaseAfterPush = ex.id;
      } else {
        this.#decoder.release(ex.id);
      }
    }
    if (this.#requests.size === 0) this.#idle();
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  #idle(): void {
    if (this.#closing) {
      this.#endSocket();
      return;
    }
    this.#setPhase(IDLE);
    if (this.#ctx.draining) this.#leave();
  }

  /**
   * Draining and idle (no request in flight, no record begun): hand the connection to the
   * successor if there is one, so the front server's pooled connection lives on; else close it.
   */
  #leave(): void {
    const sink = this.#ctx.handoff;
    if (sink === undefined || this.#decoder.partial || this.#blocked > 0) {
      this.#endSocket();
      return;
    }
    this.flush();
    // From here the bytes the peer sends stay in the kernel for the successor to read.
    if (!stopReading(this.#socket)) {
      this.#endSocket();
      return;
    }
    this.#ended = true;
    this.#setPhase(LINGER);
    const socket = this.#socket;
    void handOff(sink, 'fastcgi', socket, EMPTY).then((ok) => {
      // One that could not be sent closes here (reading is stopped, so it cannot linger).
      if (!ok && !socket.destroyed) socket.destroy();
    });
  }

  #setPhase(phase: number): void {
    this.#phase = phase;
    this.#phaseSince = this.#ctx.clientClock;
  }

  /** Ends our side once everything written has been flushed; the peer's leftovers are discarded. */
  #endSocket(): void {
    if (this.#ended) return;
    this.flush();
    this.#ended = true;
    this.#setPhase(LINGER);
    if (this.#pushing) {
      this.#closeDeferred = true;
      return;
    }
    this.#closeSocket();
  }

  #closeSocket(): void {
    const s = this.#socket;
    if (s.destroyed) return;
    if (this.#oneShot && this.#inputsOpen === 0 && this.#blocked === 0 && !this.#decoder.partial) {
      // Without KEEP_CONN, every request's input complete and no record begun: the peer has sent
      // all it will, so the socket is closed behind the answer without waiting for its FIN (see
      // closeAfterWrites). Idle keep-alive connections closed by a timeout or a stop keep reading
      // instead: a request may be on its way.
      closeAfterWrites(s);
      return;
    }
    s.end();
    // Keep reading what the peer still sends so a close with unread data does not turn into an
    // RST that truncates the response we just wrote (Go child.go, issue 4183).
    if (this.#blocked > 0) {
      this.#blocked = 0;
      s.resume();
    }
  }

  /**
   * Graceful stop: what is in flight finishes, then the connection closes. A connection that has
   * served nothing yet was accepted moments ago and its BEGIN_REQUEST is on the way (nginx
   * connects to send one): it is served within headerTimeoutMs of accept (see sweep), then closed.
   * So is a request already arriving (HEAD). An idle KEEP_CONN connection closes after one more
   * I/O poll, so that a request nginx wrote into it from its pool just now, already in the kernel,
   * is served instead of dropped (a later one meets our FIN, and nginx retries a failed cached
   * connection on a fresh one). With a successor (ServeContext.handoff: a reload, a recycled
   * worker) every one of these goes to it at its next idle point instead of closing.
   */
  drain(): void {
    if (this.#requests.size === 0 && this.#served > 0 && this.#phase === IDLE) afterPoll(closeIfIdle, this);
  }

  /** Draining: hands over (or ends) the connection if no request has started arriving since drain(). */
  closeIfIdle(): void {
    if (this.#requests.size === 0 && this.#phase === IDLE && !this.#ended) this.#leave();
  }

  destroy(): void {
    if (this.#closed) return;
    const reason = serverError(SERVER_ERRORS.SHUTDOWN, 'the server is shutting down');
    for (const ex of this.#requests.values()) ex.abort(reason, false);
    this.#socket.destroy();
  }

  sweep(now: number): void {
    const l = this.#ctx.limits;
    if (l.writeTimeoutMs > 0 && this.#writeStuck(now, l.writeTimeoutMs)) return;
    // The client's silence is measured on the stall-aware clock; requestTimeoutMs on the wall clock.
    const quiet = this.#ctx.clientClock;
    switch (this.#phase) {
      case IDLE: {
        const limit = this.#served === 0 ? l.headerTimeoutMs : l.keepAliveTimeoutMs;
        if (limit > 0 && quiet - this.#phaseSince >= limit) {
          if (this.#ctx.log.debugEnabled) this.#ctx.log.debug('fastcgi idle connection closed', { peer: peerOf(this.#socket), idleMs: limit });
          this.#socket.destroy();
        }
        return;
      }
      case HEAD:
        if (l.headerTimeoutMs > 0 && quiet - this.#phaseSince >= l.headerTimeoutMs) {
          this.#ctx.log.info('fastcgi params not complete in time', { code: SERVER_ERRORS.HEADER_TIMEOUT, peer: peerOf(this.#socket), limit: 'headerTimeoutMs' });
          this.#ctx.metrics.rejected('timeout');
          this.#socket.destroy();
        }
        return;
      case ACTIVE: {
        const bodyIdle = l.bodyIdleTimeoutMs > 0 && quiet - this.#lastDataAt >= l.bodyIdleTimeoutMs;
        const deadline = l.requestTimeoutMs;
        if (!bodyIdle && deadline === 0) return;
        for (const ex of this.#requests.values()) {
          if (deadline > 0 && now - ex.startedAt >= deadline) ex.timeout();
          else if (bodyIdle && ex.waitingForBody()) {
            this.#closing = true;
            this.#ctx.metrics.rejected('timeout');
            ex.fail(serverError(SERVER_ERRORS.BODY_TIMEOUT, `no body bytes for bodyIdleTimeoutMs (${String(l.bodyIdleTimeoutMs)})`, 408, ex.id));
          }
        }
        return;
      }
      default:
        if (quiet - this.#phaseSince >= LINGER_MS) this.#socket.destroy();
    }
  }

  /** writeTimeoutMs: true (the connection is destroyed, its requests aborted) once the peer has read nothing that long. */
  #writeStuck(now: number, limit: number): boolean {
    const since = (this.#writeStuckSince = writeStallStart(this.#socket, this.#writeStuckSince, now));
    if (since === 0 || now - since < limit) return false;
    this.#ctx.writeTimedOut('fastcgi', peerOf(this.#socket));
    const reason = serverError(SERVER_ERRORS.WRITE_TIMEOUT, `the web server read nothing for writeTimeoutMs (${String(limit)})`);
    for (const ex of this.#requests.values()) ex.abort(reason, false);
    this.#socket.destroy();
    return true;
  }

  #internalError(err: unknown): void {
    this.#ctx.log.error('fastcgi connection failed', { peer: peerOf(this.#socket), error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    this.destroy();
  }

  /** For the exchanges' log lines. */
  get peer(): string {
    return peerOf(this.#socket);
  }

  get ended(): boolean {
    return this.#ended;
  }
}

/** One FastCGI request, and the Responder its app answers through. */
export class FastCgiExchange implements Responder, EnvironSource, AbortNotifier {
  readonly id: number;
  readonly data: RequestInput | undefined;
  readonly #conn: FastCgiConnection;
  readonly #ctx: ServeContext;
  /** The body stream and signal, made on first use (see request-source.ts for the figures). */
  readonly #source: RequestSource;
  /** Coarse start time, for requestTimeoutMs. */
  readonly startedAt: number;
  #environ: Environ | undefined;
  #headSent = false;
  /**
   * The encoded head, held until the first body bytes, the end, or the end of this tick, so that a
   * short answer leaves in one FCGI_STDOUT record: httpd's mod_authnz_fcgi passes on only the body
   * bytes of the record that completes an Authorizer's head (mod_authnz_fcgi.c handle_response).
   */
  #pendingHead: Buffer | undefined;
  /**
   * Or the head and a small first chunk, framed as one STDOUT record with room after it for the
   * end records: a response that ends in the same tick leaves as one buffer, one write and no
   * join (bench/hot-path.ts, Node 20, tsc build: 3.2 → 2.9 µs per request).
   */
  #pendingRecord: Buffer | undefined;
  #pendingRecordLength = 0;
  #done = false;
  #aborted = false;
  #isHead = false;
  #expected = -1;
  #status = 0;
  #bytes = 0;
  #startMs = 0;
  /** performance.now() at the start, for the metrics' latency and slowRequestMs. */
  readonly #t0: number;
  readonly #seq: number;

  constructor(conn: FastCgiConnection, ctx: ServeContext, id: number, filter: boolean) {
    this.id = id;
    this.#conn = conn;
    this.#ctx = ctx;
    this.#source = new RequestSource(conn);
    this.data = filter ? new RequestInput(conn) : undefined;
    this.startedAt = ctx.now;
    this.#seq = ++ctx.requests;
    ctx.inFlight++;
    ctx.metrics.requestStarted();
    this.#t0 = performance.now();
    if (ctx.accessLog !== undefined) this.#startMs = Date.now();
  }

  get signal(): AbortSignal {
    return this.#source.signal;
  }

  get input(): RequestInput {
    return this.#source.input;
  }

  onAbort(listener: () => void): void {
    this.#source.onAbort(listener);
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get headSent(): boolean {
    return this.#headSent;
  }

  start(environ: Environ): void {
    this.#environ = environ;
    // RFC 3875 §4.3.2: the script MUST NOT send a body for HEAD; nginx would discard it anyway.
    this.#isHead = environ.REQUEST_METHOD === 'HEAD';
    this.#expected = declaredLength(environ);
    const running = dispatchWithStatus(this.#ctx.statusRoutes, this.#ctx.tree, environ, this);
    // An app that answered at once (RUN_SETTLED) needs no promise turn (see src/app/run.ts).
    if (running === RUN_SETTLED) this.#ran();
    else void running.then(() => this.#ran());
  }

  #ran(): void {
    // The tree always ends the response; this covers a tree that returned without doing so.
    if (!this.#done) this.fail(serverError(SERVER_ERRORS.RESPONSE_STATE, 'the app returned without ending its response', 500, this.id));
  }

  head(status: number, reason: string, headers: HeaderList): void {
    if (this.#headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'response head already sent', 500, this.id);
    const bytes = encodeResponseHead('cgi', status, reason, headers);
    this.#headSent = true;
    this.#status = status;
    if (this.#aborted || this.#done) return;
    this.#pendingHead = bytes;
    this.#conn.holdHead(this);
  }

  /** Sends the held head (or head and first chunk), if any (see #pendingHead). */
  flushHead(): void {
    const head = this.#pendingHead;
    if (head !== undefined) {
      this.#pendingHead = undefined;
      if (!this.#aborted && !this.#done) this.#conn.stdout(this.id, head);
      return;
    }
    const record = this.#pendingRecord;
    if (record !== undefined) {
      this.#pendingRecord = undefined;
      if (!this.#aborted && !this.#done) this.#conn.write(record.subarray(0, this.#pendingRecordLength));
    }
  }

  write(chunk: Uint8Array): boolean {
    if (this.#aborted || this.#done || chunk.length === 0) return true;
    if (!this.#headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'write() before head()', 500, this.id);
    this.#bytes += chunk.length;
    if (this.#isHead) return true;
    const head = this.#pendingHead;
    if (head !== undefined) {
      this.#pendingHead = undefined;
      // A small first chunk joins the head in one record, framed in one buffer (copied, as the
      // connection would join them anyway), still held (see #pendingRecord).
      if (chunk.length < COALESCE_MAX && head.length + chunk.length <= FCGI_MAX_CONTENT_LENGTH) {
        const record = encodeStdoutJoined(this.id, head, chunk, FCGI_RESPONSE_END_LENGTH);
        this.#pendingRecord = record;
        this.#pendingRecordLength = record.length - FCGI_RESPONSE_END_LENGTH;
        return !this.#conn.needsDrain;
      }
      this.#conn.stdout(this.id, head);
    } else if (this.#pendingRecord !== undefined) {
      this.flushHead();
    }
    return this.#conn.stdout(this.id, chunk);
  }

  drained(): Promise<void> {
    return this.#aborted || this.#done ? RESOLVED : this.#conn.drained();
  }

  end(appStatus = 0): void {
    if (this.#done) return;
    if (this.#aborted) {
      this.#finish(false);
      return;
    }
    const record = this.#pendingRecord;
    if (record !== undefined) {
      this.#pendingRecord = undefined;
      writeResponseEnd(record, this.#pendingRecordLength, this.id, appStatus);
      this.#conn.write(record);
    } else {
      this.flushHead();
      this.#conn.write(encodeResponseEnd(this.id, appStatus));
    }
    this.#finish(true);
  }

  bodyEnded(): void {
    const source = this.#source;
    if (this.#expected >= 0 && source.received < this.#expected) {
      // §6.2: "compare the number of bytes received on FCGI_STDIN with CONTENT_LENGTH".
      source.fail(serverError(SERVER_ERRORS.BODY_TRUNCATED, `the body ended after ${String(source.received)} of ${String(this.#expected)} bytes`, 400, this.id));
    } else {
      source.finish();
    }
  }

  /** The app is waiting for body bytes that are not coming (the bodyIdleTimeoutMs test). */
  waitingForBody(): boolean {
    return this.#source.waiting;
  }

  /** `n` more body bytes would pass the CONTENT_LENGTH the request declared. */
  overLength(n: number): boolean {
    return this.#expected >= 0 && this.#source.received + n > this.#expected;
  }

  /**
   * The request is over without the app's say: FCGI_ABORT_REQUEST (answered with one END_REQUEST
   * when `answer`), or the connection went away (nothing can be written).
   */
  abort(reason: ProtocolError, answer: boolean): void {
    if (this.#done) return;
    this.#ctx.aborted++;
    this.#stop(reason);
    if (answer) this.#conn.write(encodeResponseEnd(this.id, APP_STATUS.ABORTED));
    this.#finish(answer);
  }

  /** requestTimeoutMs passed: abort the app, answer 504 if the head is not out yet. */
  timeout(): void {
    if (this.#done) return;
    this.#ctx.timedOut++;
    this.#ctx.metrics.rejected('timeout');
    this.#ctx.log.warn('request timed out', { code: SERVER_ERRORS.REQUEST_TIMEOUT, protocol: 'fastcgi', uri: this.#environ?.REQUEST_URI, limit: 'requestTimeoutMs' });
    this.fail(serverError(SERVER_ERRORS.REQUEST_TIMEOUT, `the request ran past requestTimeoutMs (${String(this.#ctx.limits.requestTimeoutMs)})`, 504, this.id));
  }

  /**
   * Ends the request with an error postern answers itself: the app's signal aborts, its input
   * fails, and the status goes out if the head has not; otherwise END_REQUEST carries a failure
   * appStatus.
   */
  fail(err: ProtocolError): void {
    if (this.#done) return;
    const headWasSent = this.#headSent;
    if (headWasSent) this.flushHead();
    this.#stop(err);
    if (!this.#conn.ended) {
      if (!headWasSent) {
        const a = cannedAnswer(err.httpStatus > 0 ? err.httpStatus : 500);
        this.#status = a.status;
        this.#headSent = true;
        this.#conn.stdout(this.id, encodeResponseHead('cgi', a.status, a.reason, a.headers));
        if (!this.#isHead) this.#conn.stdout(this.id, a.body);
        this.#bytes += a.body.length;
        this.#conn.write(encodeResponseEnd(this.id, 0));
      } else {
        this.#conn.write(encodeResponseEnd(this.id, err.code === SERVER_ERRORS.REQUEST_TIMEOUT ? APP_STATUS.ABORTED : APP_STATUS.ERROR));
      }
    }
    this.#finish(!this.#conn.ended);
  }

  #stop(reason: ProtocolError): void {
    this.#aborted = true;
    this.#source.fail(reason);
    this.data?.fail(reason);
    this.#source.abort(reason);
  }

  #finish(wroteEnd: boolean): void {
    this.#done = true;
    // The app no longer wants the rest of the body: drop it so the socket is not held paused.
    this.#source.drop();
    if (this.data?.open === true) this.data.destroy();
    requestFinished(this.#ctx, 'fastcgi', this.#environ, this.#aborted && !this.#headSent ? 499 : this.#status, this.#bytes, this.#t0, this.#startMs, this.#seq);
    this.#conn.finished(this, wroteEnd);
  }
}

/** The per-connection part of what `buildEnviron` needs besides the head. */
export interface EnvironBase {
  protocol: 'fastcgi' | 'scgi' | 'uwsgi';
  trustForwardedProto: boolean;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
}
/**
 * buildEnviron skips absent (undefined) fields at run time; its optional properties are not typed
 * `| undefined` under exactOptionalPropertyTypes, hence this one cast. The request itself is passed
 * as the EnvironSource (its input and signal are made on first use).
 */
export function asBuildBase(c: EnvironBase): EnvironAddressing {
  return c as EnvironAddressing;
}

/**
 * One per connection. The addresses are read from the socket only if buildEnviron needs them
 * (REMOTE_ADDR, SERVER_NAME/HTTP_HOST missing), which nginx and Apache never leave it to: each is
 * a getpeername/getsockname syscall, two per connection, so once per request without keep_conn.
 */
export function environBase(socket: Socket, ctx: ServeContext, protocol: EnvironBase['protocol']): EnvironBase {
  return new SocketAddressing(socket, protocol, ctx.limits.trustForwardedProto);
}

class SocketAddressing implements EnvironBase {
  readonly protocol: EnvironBase['protocol'];
  readonly trustForwardedProto: boolean;
  readonly #socket: Socket;
  constructor(socket: Socket, protocol: EnvironBase['protocol'], trustForwardedProto: boolean) {
    this.#socket = socket;
    this.protocol = protocol;
    this.trustForwardedProto = trustForwardedProto;
  }
  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }
  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.#socket.localPort;
  }
}

export function protocolErrorMeta(err: ProtocolError, socket: Socket): Record<string, unknown> {
  const meta: Record<string, unknown> = { code: err.code, peer: peerOf(socket), error: err.message };
  if (err.requestId !== 0) meta['requestId'] = err.requestId;
  if (err.httpStatus !== 0) meta['status'] = err.httpStatus;
  if (err.limit !== undefined) meta['limit'] = err.limit;
  return meta;
}
