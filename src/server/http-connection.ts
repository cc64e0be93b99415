// The plain HTTP/1.1 listener's glue, from the server's side: node:http parses (llhttp: keep-alive,
// maxHeadersBytes, HEAD, chunked), and each request reaches the same tree through
// `environFromHttp`, answered through a Responder over `ServerResponse`. For development and for
// a front server that proxies HTTP; postern's own timeouts and counters apply as on the gateways.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ProtocolError } from '../../protocols/common/errors.ts';
import { HEAD_ERRORS, isFieldValue, isToken, type HeaderList } from '../../protocols/common/head.ts';
import { ProtocolError as PE } from '../../protocols/common/errors.ts';
import { environFromHttp, type HttpEnvironContext } from '../environ.ts';
import type { AbortNotifier } from '../app/run.ts';
import type { Environ, Responder } from '../app/types.ts';
import { LazyAbort } from './request-source.ts';
import { afterPoll, isDisconnect, peerOf, type ServeContext, type Tracked, writeStallStart } from './context.ts';
import { SERVER_ERRORS, serverError } from './errors.ts';
import { cannedAnswer, completeLength, incomplete, requestFinished } from './shared.ts';
import { handOff, stopReading } from './handoff.ts';
import { dispatchWithStatus } from '../status/endpoint.ts';

const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY: Buffer = Buffer.alloc(0);

const servers = new WeakMap<ServeContext, Server>();
/** The last context asked for (a process has one): its server without a WeakMap lookup per connection. */
let lastCtx: ServeContext | undefined;
let lastServer: Server | undefined;

// The connection a socket serves and the exchange a response belongs to, as properties the shared
// listeners read (`this` is the socket or the response): no WeakMap entry and no closure per
// connection or request. HTTP 1,835k → 1,677k instructions per connection on Node 20, 855k → 856k
// on Node 24 (bench/connection-cost.sh; BENCHMARKS.md "Per-connection cost").
const CONNECTION = Symbol('postern.httpConnection');
const EXCHANGE = Symbol('postern.httpExchange');
type ServedSocket = Socket & { [CONNECTION]?: HttpConnection };
type ServedResponse = ServerResponse & { [EXCHANGE]?: HttpExchange };

/**
 * The node:http server that parses every HTTP connection of a context. It never listens itself:
 * listeners (or a supervisor handing over sockets) pass accepted sockets in through
 * `serveHttpConnection`.
 */
export function httpServerFor(ctx: ServeContext): Server {
  if (ctx === lastCtx) return lastServer!;
  let server = servers.get(ctx);
  if (server !== undefined) {
    lastCtx = ctx;
    lastServer = server;
    return server;
  }
  const l = ctx.limits;
  server = createServer({
    maxHeaderSize: l.maxHeadersBytes,
    // postern's sweep owns the request deadline (requestTimeoutMs), so node's 300 s default is off.
    requestTimeout: 0,
    // And headerTimeoutMs too (HttpConnection.sweep): node's check runs in the timers phase, before
    // the I/O poll, so after a stall of this process it answered 408 to a request whose bytes sat
    // unread in the kernel (issue 15). The sweep measures the client's silence instead.
    headersTimeout: 0,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    noDelay: true,
  });
  server.on('request', onRequest.bind(undefined, ctx));
  server.on('clientError', onClientError.bind(undefined, ctx));
  // node:http starts its connection tracking (headersTimeout, closeIdleConnections) on
  // 'listening'; this server never listens, as sockets are handed to it, so start it here.
  server.emit('listening');
  servers.set(ctx, server);
  lastCtx = ctx;
  lastServer = server;
  return server;
}

/** Stops the context's HTTP parser server (its connection-checking interval). */
export function closeHttpServer(ctx: ServeContext): void {
  const server = servers.get(ctx);
  if (server === undefined) return;
  servers.delete(ctx);
  if (lastCtx === ctx) lastCtx = lastServer = undefined;
  server.close(() => undefined);
}

/**
 * Serves one accepted socket as HTTP/1.1 until it closes. `adopted`: a keep-alive connection
 * another worker handed over between requests (src/server/handoff.ts).
 */
export function serveHttpConnection(socket: Socket, ctx: ServeContext, adopted = false): void {
  const conn = new HttpConnection(socket, ctx, adopted);
  if (!ctx.admit(conn)) {
    socket.destroy();
    return;
  }
  (socket as ServedSocket)[CONNECTION] = conn;
  ctx.metrics.connectionOpened('http');
  socket.on('close', onSocketClose);
  socket.on('drain', onDrain);
  httpServerFor(ctx).emit('connection', socket);
  // Accepted (or adopted) while draining: served like the rest, then handed on or closed.
  if (ctx.draining) conn.drain();
}

function onDrain(this: ServedSocket): void {
  this[CONNECTION]?.drained();
}

function onSocketClose(this: ServedSocket): void {
  this[CONNECTION]?.closed();
}

function onResponseClose(this: ServedResponse): void {
  this[EXCHANGE]?.closed();
}

function onRequest(ctx: ServeContext, req: IncomingMessage, res: ServerResponse): void {
  if (ctx.refuseOverloaded('http', req.socket)) {
    const a = ctx.overloadedAnswer;
    res.writeHead(a.status, a.reason, a.headers.flat());
    res.end(a.body);
    return;
  }
  const conn = (req.socket as ServedSocket)[CONNECTION];
  const ex = new HttpExchange(ctx, conn, req, res);
  conn?.started(ex);
  ex.start();
}

function closeIfIdle(conn: HttpConnection): void {
  conn.closeIfIdle();
}

function onClientError(ctx: ServeContext, err: NodeJS.ErrnoException, socket: Socket): void {
  const code = err.code ?? 'HPE_UNKNOWN';
  if (isDisconnect(err)) {
    if (ctx.log.debugEnabled) ctx.log.debug('http peer disconnected', { code, peer: peerOf(socket) });
    socket.destroy();
    return;
  }
  ctx.protocolErrors++;
  ctx.metrics.rejected(code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout' : 'protocolError');
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  ctx.log.info('http request refused', status === 431 ? { code, peer: peerOf(socket), status, limit: 'maxHeadersBytes' } : { code, peer: peerOf(socket), status });
  if (socket.writable) {
    const a = cannedAnswer(status);
    socket.end(`HTTP/1.1 ${String(status)} ${a.reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${String(a.body.length)}\r\nConnection: close\r\n\r\n${a.body.toString('latin1')}`);
  } else {
    socket.destroy();
  }
}

/** One HTTP connection as the registry sees it. */
export class HttpConnection implements Tracked {
  /** Its slot in the server's list of live connections (src/server/live-list.ts); -1 when in none. */
  liveSlot = -1;
  readonly socket: Socket;
  readonly exchanges = new Set<HttpExchange>();
  readonly #ctx: ServeContext;
  #bytesRead = 0;
  #readChangedAt: number;
  /** Requests this connection has carried. */
  #served = 0;
  /** When the connection last had nothing in flight (accepted, or its last response done). */
  #idleSince: number;
  /** socket.bytesRead then: more since means a request is arriving. */
  #idleBytes = 0;
  /** clientClock when the sweep first saw a request head arriving while idle; 0 = none seen. */
  #headSince = 0;
  /** Handed over (or closing): nothing more is done here. */
  #leaving = false;
  /** Coarse time the sweep first saw our output stuck (writableNeedDrain); 0 = flowing. */
  #writeStuckSince = 0;

  constructor(socket: Socket, ctx: ServeContext, adopted: boolean) {
    this.socket = socket;
    this.#ctx = ctx;
    this.#readChangedAt = this.#idleSince = ctx.clientClock;
    if (adopted) this.#served = 1;
  }

  get inFlight(): number {
    return this.exchanges.size;
  }

  started(ex: HttpExchange): void {
    this.#served++;
    this.#headSince = 0;
    this.exchanges.add(ex);
  }

  /** The socket closed. */
  closed(): void {
    if (this.exchanges.size > 0) {
      const reason = serverError(SERVER_ERRORS.CONNECTION_CLOSED, 'the HTTP connection closed before the response was complete');
      for (const ex of [...this.exchanges]) ex.abort(reason);
    }
    this.#ctx.metrics.connectionClosed('http');
    this.#ctx.release(this);
  }

  finished(ex: HttpExchange): void {
    this.exchanges.delete(ex);
    if (this.exchanges.size !== 0) return;
    this.#idleSince = this.#ctx.clientClock;
    this.#idleBytes = this.socket.bytesRead;
    if (this.#ctx.draining) {
      // Handed on only at a message boundary: node has parsed the whole request (body included).
      if (this.#ctx.handoff !== undefined && ex.requestComplete) this.#leave();
      else if (!this.socket.destroyed) this.socket.end();
    }
  }

  /**
   * A connection with a request in flight finishes it (`Connection: close` on the response). One
   * that never carried a request was accepted moments ago and its request is on the way (a front
   * server connects only to send one): it gets headerTimeoutMs to arrive and is answered. An idle
   * keep-alive connection closes, unless bytes arrived since its last response (a request under way).
   */
  drain(): void {
    if (this.exchanges.size > 0 || this.#served === 0) return;
    afterPoll(closeIfIdle, this);
  }

  /** Draining and idle: hands over (or closes) the connection unless a request has started arriving. */
  closeIfIdle(): void {
    if (this.exchanges.size === 0 && this.socket.bytesRead === this.#idleBytes) this.#leave();
  }

  /** Idle while draining: to the successor if there is one (the client never sees a close), else closed. */
  #leave(): void {
    if (this.#leaving || this.socket.destroyed) return;
    this.#leaving = true;
    const sink = this.#ctx.handoff;
    const socket = this.socket;
    // From the readStop on, the client's next request stays in the kernel for the successor.
    if (sink === undefined || !stopReading(socket) || socket.bytesRead !== this.#idleBytes) {
      socket.destroy();
      return;
    }
    void handOff(sink, 'http', socket, EMPTY).then((ok) => {
      if (!ok && !socket.destroyed) socket.destroy();
    });
  }

  destroy(): void {
    const reason = serverError(SERVER_ERRORS.SHUTDOWN, 'the server is shutting down');
    for (const ex of [...this.exchanges]) ex.abort(reason);
    this.socket.destroy();
  }

  /** headerTimeoutMs passed with no complete request head: 408, then close. */
  #headerTimeout(): void {
    const ctx = this.#ctx;
    this.#leaving = true;
    ctx.protocolErrors++;
    ctx.metrics.rejected('timeout');
    ctx.log.info('http request head not complete in time', { code: SERVER_ERRORS.HEADER_TIMEOUT, peer: peerOf(this.socket), status: 408, limit: 'headerTimeoutMs' });
    const socket = this.socket;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const a = cannedAnswer(408);
    socket.end(`HTTP/1.1 408 ${a.reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${String(a.body.length)}\r\nConnection: close\r\n\r\n${a.body.toString('latin1')}`, () => socket.destroy());
  }

  /** The socket drained: the peer is reading. */
  drained(): void {
    this.#writeStuckSince = 0;
  }

  /** writeTimeoutMs: true (requests aborted, socket destroyed) once the client has read nothing that long. */
  #writeStuck(now: number, limit: number): boolean {
    const since = (this.#writeStuckSince = writeStallStart(this.socket, this.#writeStuckSince, now));
    if (since === 0 || now - since < limit) return false;
    this.#ctx.writeTimedOut('http', peerOf(this.socket));
    const reason = serverError(SERVER_ERRORS.WRITE_TIMEOUT, `the client read nothing for writeTimeoutMs (${String(limit)})`);
    for (const ex of [...this.exchanges]) ex.abort(reason);
    this.socket.destroy();
    return true;
  }

  sweep(now: number): void {
    const l = this.#ctx.limits;
    if (l.writeTimeoutMs > 0 && this.#writeStuck(now, l.writeTimeoutMs)) return;
    if (this.#leaving) return;
    // The client's silence is measured on the stall-aware clock; requestTimeoutMs on the wall clock.
    const quiet = this.#ctx.clientClock;
    const read = this.socket.bytesRead;
    if (this.exchanges.size === 0) {
      if (this.#served > 0 && read === this.#idleBytes) {
        // Idle keep-alive: node's keepAliveTimeout closes it after a response; this covers an adopted one too.
        if (l.keepAliveTimeoutMs > 0 && quiet - this.#idleSince >= l.keepAliveTimeoutMs) this.socket.destroy();
        return;
      }
      // A request is owed (a fresh connection) or arriving: headerTimeoutMs from accept or its first byte.
      if (this.#headSince === 0) this.#headSince = this.#served === 0 ? this.#idleSince : quiet;
      if (l.headerTimeoutMs > 0 && quiet - this.#headSince >= l.headerTimeoutMs) this.#headerTimeout();
      return;
    }
    if (read !== this.#bytesRead) {
      this.#bytesRead = read;
      this.#readChangedAt = quiet;
    }
    const bodyIdle = l.bodyIdleTimeoutMs > 0 && quiet - this.#readChangedAt >= l.bodyIdleTimeoutMs;
    for (const ex of [...this.exchanges]) {
      if (l.requestTimeoutMs > 0 && now - ex.startedAt >= l.requestTimeoutMs) ex.timeout();
      else if (bodyIdle && ex.waitingForBody()) {
        this.#ctx.metrics.rejected('timeout');
        ex.fail(serverError(SERVER_ERRORS.BODY_TIMEOUT, `no body bytes for bodyIdleTimeoutMs (${String(l.bodyIdleTimeoutMs)})`, 408));
      }
    }
  }
}

/** One HTTP request, and the Responder its app answers through. */
export class HttpExchange implements Responder, HttpEnvironContext, AbortNotifier {
  readonly startedAt: number;
  readonly #ctx: ServeContext;
  readonly #conn: HttpConnection | undefined;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  /** The signal, made only if the app asks for it (see request-source.ts). */
  readonly #abort = new LazyAbort();
  #environ: Environ | undefined;
  #headSent = false;
  #done = false;
  #aborted = false;
  #status = 0;
  #bytes = 0;
  #length = -1;
  #startMs = 0;
  /** performance.now() at the start, for the metrics' latency and slowRequestMs. */
  readonly #t0: number;
  readonly #seq: number;

  constructor(ctx: ServeContext, conn: HttpConnection | undefined, req: IncomingMessage, res: ServerResponse) {
    this.#ctx = ctx;
    this.#conn = conn;
    this.#req = req;
    this.#res = res;
    this.startedAt = ctx.now;
    if (ctx.accessLog !== undefined) this.#startMs = Date.now();
    this.#seq = ++ctx.requests;
    ctx.inFlight++;
    ctx.metrics.requestStarted();
    this.#t0 = performance.now();
    (res as ServedResponse)[EXCHANGE] = this;
    res.on('close', onResponseClose);
  }

  start(): void {
    const ctx = this.#ctx;
    const req = this.#req;
    let environ: Environ;
    try {
      environ = environFromHttp(req, this);
    } catch (err) {
      ctx.log.warn('http request refused', { peer: peerOf(req.socket), error: err instanceof Error ? err.message : String(err) });
      this.fail(serverError(SERVER_ERRORS.RESPONSE_STATE, 'could not build the environ', 500));
      return;
    }
    this.#environ = environ;
    void this.#run(environ);
  }

  async #run(environ: Environ): Promise<void> {
    await dispatchWithStatus(this.#ctx.statusRoutes, this.#ctx.tree, environ, this);
    if (!this.#done && !this.#res.writableEnded) this.fail(serverError(SERVER_ERRORS.RESPONSE_STATE, 'the app returned without ending its response', 500));
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  // HttpEnvironContext: the environ reads these when the app first asks.
  get input(): IncomingMessage {
    return this.#req;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get trustForwardedProto(): boolean {
    return this.#ctx.limits.trustForwardedProto;
  }

  onAbort(listener: () => void): void {
    this.#abort.onAbort(listener);
  }

  get headSent(): boolean {
    return this.#headSent;
  }

  head(status: number, reason: string, headers: HeaderList): void {
    if (this.#headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'response head already sent', 500);
    // The same checks (and codes) as the gateways' encodeResponseHead, so an app sees one behaviour.
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new PE(HEAD_ERRORS.BAD_STATUS, `status ${String(status)} is not a three-digit code`, { httpStatus: 500 });
    if (!isFieldValue(reason)) throw new PE(HEAD_ERRORS.BAD_STATUS, 'reason phrase holds a forbidden character', { httpStatus: 500 });
    const flat: string[] = [];
    for (const [name, value] of headers) {
      if (!isToken(name)) throw new PE(HEAD_ERRORS.BAD_HEADER_NAME, `header name ${JSON.stringify(name)} is not a token`, { httpStatus: 500 });
      if (!isFieldValue(value)) throw new PE(HEAD_ERRORS.BAD_HEADER_VALUE, `header ${name} has a forbidden character in its value`, { httpStatus: 500 });
      flat.push(name, value);
    }
    // Draining with a successor, the connection is handed over after this response instead.
    if (this.#ctx.draining && this.#ctx.handoff === undefined) flat.push('Connection', 'close');
    this.#headSent = true;
    this.#status = status;
    this.#length = completeLength(headers);
    if (this.#aborted || this.#done) return;
    this.#res.writeHead(status, reason, flat);
  }

  write(chunk: Uint8Array): boolean {
    if (this.#aborted || this.#done || chunk.length === 0) return true;
    if (!this.#headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'write() before head()', 500);
    this.#bytes += chunk.length;
    return this.#res.write(chunk);
  }

  drained(): Promise<void> {
    const res = this.#res;
    if (this.#aborted || this.#done || !res.writableNeedDrain) return RESOLVED;
    return new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  end(appStatus = 0): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#aborted) return;
    // A failed app mid-body: an abrupt close is the only way to tell the client it is incomplete.
    if (appStatus !== 0 && incomplete(this.#length, this.#bytes, this.#req.method === 'HEAD')) this.#res.destroy();
    else this.#res.end();
  }

  /** node has parsed the whole request, body included. */
  get requestComplete(): boolean {
    return this.#req.complete;
  }

  waitingForBody(): boolean {
    const req = this.#req;
    return !req.complete && !req.destroyed && req.readableLength === 0;
  }

  abort(reason: ProtocolError): void {
    if (this.#aborted) return;
    if (!this.#done) this.#ctx.aborted++;
    this.#stop(reason);
    this.#finish();
  }

  timeout(): void {
    if (this.#done || this.#aborted) return;
    this.#ctx.timedOut++;
    this.#ctx.metrics.rejected('timeout');
    this.#ctx.log.warn('request timed out', { code: SERVER_ERRORS.REQUEST_TIMEOUT, protocol: 'http', uri: this.#req.url, limit: 'requestTimeoutMs' });
    this.fail(serverError(SERVER_ERRORS.REQUEST_TIMEOUT, `the request ran past requestTimeoutMs (${String(this.#ctx.limits.requestTimeoutMs)})`, 504));
  }

  /** Ends the request with an answer postern gives itself (or a reset once the head is out). */
  fail(err: ProtocolError): void {
    if (this.#aborted || (this.#done && this.#res.writableEnded)) return;
    const headWasSent = this.#headSent;
    this.#stop(err);
    const res = this.#res;
    this.#done = true;
    if (headWasSent || res.headersSent) {
      res.destroy();
      return;
    }
    const a = cannedAnswer(err.httpStatus > 0 ? err.httpStatus : 500);
    this.#status = a.status;
    this.#headSent = true;
    this.#bytes = a.body.length;
    // The request body may still be arriving; ask node to close rather than parse what follows.
    res.writeHead(a.status, a.reason, [...a.headers.flat(), 'Connection', 'close']);
    res.end(a.body);
  }

  #stop(reason: ProtocolError): void {
    // The request stream is left to node: destroying an unfinished IncomingMessage destroys the
    // socket, and the answer postern is about to give would be lost with it.
    this.#aborted = true;
    this.#abort.abort(reason);
  }

  /** The response closed (finished, or the connection went first). */
  closed(): void {
    if (!this.#res.writableFinished && !this.#aborted) {
      this.#ctx.aborted++;
      this.#stop(serverError(SERVER_ERRORS.CONNECTION_CLOSED, 'the client closed the connection before the response was complete'));
    }
    this.#finish();
  }

  #finishedOnce = false;

  #finish(): void {
    if (this.#finishedOnce) return;
    this.#finishedOnce = true;
    // The request is over: let its abort listeners go (see LazyAbort.forget).
    this.#abort.forget();
    const ctx = this.#ctx;
    ctx.inFlight--;
    requestFinished(ctx, 'http', this.#environ, this.#aborted && !this.#headSent ? 499 : this.#status, this.#bytes, this.#t0, this.#startMs, this.#seq);
    this.#conn?.finished(this);
  }
}
