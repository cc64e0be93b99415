// The direct bridge for Node `(req, res)` handlers, from the adapter's side: a genuine
// `http.IncomingMessage` and `http.ServerResponse` are built from the environ (no request text, no
// parser), delivered through a private `http.Server`'s `emit('request')`, and what the response
// writes onto its socket is read back: the head off the string node:http built, the body as it is
// written, with backpressure both ways. Public Node APIs, plus the internals named in
// node-internals.ts.

import { createServer, IncomingMessage, METHODS, ServerResponse, STATUS_CODES, type IncomingHttpHeaders, type Server } from 'node:http';
import { channel } from 'node:diagnostics_channel';
import type { Readable } from 'node:stream';
import type { AppBody, Environ, HeaderList, NativeApp, StartResponse } from '../types.ts';
import { onEnvironAbort } from '../../environ.ts';
import { BodyQueue } from './body-queue.ts';
import { parseResponseHead, RESPONSE_READER_ERROR, ResponseReader, type ParsedHead, type ResponseSink } from './response-reader.ts';
import { mountPath, requestTarget } from './target.ts';
import { dumpUnreadRequest, emitResponseDrain } from './node-internals.ts';
import {
  adapterError, callHandler, EnvironSocket, FRAMING_CHUNKED, FRAMING_FIXED, FRAMING_NONE, NODE_ADAPTER_ERRORS, plainAnswer, requestFields,
  type GatewayRequestInfo, type NodeAdapterOptions, type NodeHandler, type RequestFields,
} from './node-common.ts';

// A head Node concatenated with a UTF-8 body string went out as UTF-8: a field value with a
// byte over 0x7f must be read the way the wire would carry it.
const NON_ASCII = /[\u0080-\uffff]/;

const KNOWN_METHODS = new Set(METHODS);

// node:http's own diagnostics channels (doc/api/diagnostics_channel.md, "HTTP"): observers that
// subscribe to them instead of wrapping emit see bridged requests too.
const START_CHANNEL = channel('http.server.request.start');
const FINISH_CHANNEL = channel('http.server.response.finish');

// The last head read, and what it parsed to: an app answers most requests with the same head
// (Date changes once a second), so a string compare usually replaces the parse.
let lastHeadText = '';
let lastHead: ParsedHead | undefined;

function readHead(text: string, encoding: BufferEncoding): ParsedHead | string {
  if (text === lastHeadText && lastHead !== undefined) return lastHead;
  let latin1 = text;
  if (encoding !== 'latin1' && encoding !== 'binary' && encoding !== 'ascii' && NON_ASCII.test(text)) {
    latin1 = Buffer.from(text, encoding).toString('latin1');
  }
  const head = parseResponseHead(latin1);
  if (typeof head !== 'string') {
    lastHeadText = text;
    lastHead = head;
  }
  return head;
}

/**
 * The response's socket: a real Duplex (on-finished, `stream.finished` and Express need one), with
 * the socket facts apps read. Writes go to the exchange as node:http made them (strings are not
 * decoded, so the head is read without a round trip through bytes); the readable side carries
 * nothing, since the request body is pushed into the IncomingMessage itself.
 */
class BridgeSocket extends EnvironSocket {
  declare readonly exchange: Exchange;

  constructor(exchange: Exchange, environ: Environ, highWaterMark: number) {
    // 'close' is emitted by _destroy itself, when a TCP socket would emit it (see there).
    super(environ, { allowHalfOpen: true, decodeStrings: false, writableHighWaterMark: highWaterMark, emitClose: false });
    this.exchange = exchange;
  }

  override _read(): void {
    // The body goes to the IncomingMessage directly (Exchange.readBody).
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.exchange.output(chunk, encoding);
    this.exchange.flushed(callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, callback: (error?: Error | null) => void): void {
    const exchange = this.exchange;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i] as { chunk: Buffer | string; encoding: BufferEncoding };
      exchange.output(c.chunk, c.encoding);
    }
    exchange.flushed(callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const here = this.exchange.closingHere;
    this.exchange.closed(error);
    callback(error);
    // A TCP socket the app destroys emits 'close' only when its handle is closed, a turn of the
    // event loop later: a request the app destroyed closes before its response then, as on a
    // server. When the bridge closes it (on an abort or a failure) 'close' comes a tick later, as
    // a peer's reset is seen by node:http; after 'finish' the destroy itself was put off by a tick
    // (Exchange.finished), so 'close' comes now, where resOnFinish's emitCloseNT puts it.
    if (here === CLOSING_AFTER_FINISH) this.emit('close');
    else if (here === CLOSING_NOW) process.nextTick(emitSocketClose, this);
    else setImmediate(emitSocketClose, this);
  }

  destroySoon(): void {
    if (this.writableLength === 0) this.destroy();
    else this.end(() => this.destroy());
  }
}

/**
 * The request body, from `postern.input` into `req` as the app reads: made on the app's first
 * read, so a request whose body is never read touches neither this nor the environ's stream.
 */
class BodyFeed {
  readonly #exchange: Exchange;
  readonly #req: IncomingMessage;
  readonly #input: Readable;
  readonly #fixed: boolean;
  #remaining: number;
  #paused = false;
  #done = false;

  constructor(exchange: Exchange, req: IncomingMessage, input: Readable, fixed: boolean, length: number) {
    this.#exchange = exchange;
    this.#req = req;
    this.#input = input;
    this.#fixed = fixed;
    this.#remaining = length;
    input.on('data', this.#onData);
    input.on('end', this.#onEnd);
    input.on('error', this.#onError);
  }

  resume(): void {
    if (this.#paused && !this.#done) {
      this.#paused = false;
      this.#input.resume();
    }
  }

  stop(): void {
    if (this.#done) return;
    this.#done = true;
    const input = this.#input;
    input.removeListener('data', this.#onData);
    input.removeListener('end', this.#onEnd);
    input.removeListener('error', this.#onError);
    // Left paused: whoever owns the stream decides whether to drain or discard the rest.
    input.pause();
  }

  readonly #onData = (data: Buffer | string): void => {
    let chunk = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (chunk.length === 0 || this.#done) return;
    if (this.#fixed) {
      // Bytes past CONTENT_LENGTH are not this request's body.
      if (this.#remaining === 0) return;
      if (chunk.length > this.#remaining) chunk = chunk.subarray(0, this.#remaining);
      this.#remaining -= chunk.length;
    }
    if (!this.#req.push(chunk) && !this.#paused) {
      this.#paused = true;
      this.#input.pause();
    }
  };

  readonly #onEnd = (): void => {
    if (this.#fixed && this.#remaining > 0) {
      this.#exchange.appFailed(adapterError(NODE_ADAPTER_ERRORS.TRUNCATED, `request body ended ${this.#remaining} bytes short of CONTENT_LENGTH`));
      return;
    }
    this.stop();
    endRequest(this.#req);
  };

  readonly #onError = (err: unknown): void => {
    this.#exchange.appFailed(err);
  };
}

/** As node:http's parser ends a message: complete, then the end of the stream. */
function endRequest(req: IncomingMessage): void {
  if (req.destroyed) return;
  req.complete = true;
  req.push(null);
}

/** One request through the bridge: the request pushed into `req`, the response read off `res`'s socket. */
class Exchange implements ResponseSink {
  readonly environ: Environ;
  readonly socket: BridgeSocket;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly #startResponse: StartResponse;
  readonly #reader: ResponseReader;
  readonly #isHead: boolean;
  readonly #hwm: number;
  readonly #fields: RequestFields;
  #queue: BodyQueue | undefined;
  #feed: BodyFeed | undefined | null;
  #unlistenAbort: (() => void) | undefined;
  #resolve: ((body: AppBody) => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  #head: [number, string, HeaderList] | undefined;
  #settled = false;
  #settleQueued = false;
  #complete = false;
  #failed = false;
  #error: unknown = undefined;
  #aborted = false;
  #heldCallback: ((error?: Error | null) => void) | undefined;
  #overMark = false;
  #server: Server | undefined;
  #flushHead: ((chunk: Uint8Array) => void) | undefined;
  /** Whether and how the bridge itself is closing the socket (BridgeSocket._destroy reads it). */
  closingHere = CLOSING_NO;

  constructor(environ: Environ, startResponse: StartResponse, highWaterMarkBytes: number, fields: RequestFields, url: string) {
    this.environ = environ;
    this.#startResponse = startResponse;
    const method = environ.REQUEST_METHOD;
    this.#isHead = method === 'HEAD';
    this.#hwm = highWaterMarkBytes;
    this.#fields = fields;
    this.#reader = new ResponseReader(this, this.#isHead);
    const socket = (this.socket = new BridgeSocket(this, environ, highWaterMarkBytes));
    // Before the response's own 'close' listener (assignSocket), as node:http's socketOnClose is.
    socket.on('close', onSocketClose);

    const req = (this.req = new IncomingMessage(socket as never));
    req.method = method;
    req.url = url;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = '1.1';
    const raw = fields.raw;
    const headers: IncomingHttpHeaders = {};
    for (let i = 0; i < raw.length; i += 2) headers[raw[i] as string] = raw[i + 1];
    req.headers = headers;
    req.rawHeaders = raw;
    // An own property, as Readable's `read` option makes it: Express re-parents req's prototype,
    // so behaviour on a subclass would be lost.
    req._read = readRequestBody;

    const res = (this.res = new ServerResponse(req));
    res.assignSocket(socket as never);
    res.on('finish', onResponseFinish);
    socket.on('drain', onSocketDrain);
  }

  /** Emits the request and answers the runner: at once when the response is already complete. */
  run(server: Server): AppBody | Promise<AppBody> {
    this.#unlistenAbort = onEnvironAbort(this.environ, this.#onAbort);
    if (this.#aborted) return null;
    this.#server = server;
    if (START_CHANNEL.hasSubscribers) START_CHANNEL.publish({ request: this.req, response: this.res, socket: this.socket, server });
    // A taken-over server's own 'request' listeners run here (src/app/takeover.ts); what they throw
    // fails this request, where node:http would let it escape as an uncaught exception.
    try {
      server.emit('request', this.req, this.res);
    } catch (err) {
      this.appFailed(err);
    }
    // As node:http's parser does: a request with no body completes right after the 'request'
    // handlers return; a body is pushed as it arrives, up to the stream's high-water mark,
    // whether or not the app reads yet.
    if (this.#fields.framing === FRAMING_NONE) endRequest(this.req);
    else if (this.#feed === undefined && !this.#failed) this.readBody();
    if (this.#failed) {
      if (this.#aborted) return null;
      // The app destroyed its response after writing a head: what it wrote still goes out,
      // then the request ends in error (as the replay and a real socket deliver it).
      if (this.#head !== undefined && !this.#settled) {
        this.#settled = true;
        this.#callStartResponse();
        const queue = this.#bodyQueue();
        queue.fail(this.#error);
        return queue;
      }
      throw this.#error;
    }
    if (this.#complete && this.#head !== undefined) {
      this.#settled = true;
      this.#callStartResponse();
      // Over the mark (an app that ignored backpressure), the runner paces it out of the queue.
      const queue = this.#queue;
      return queue === undefined || queue.queuedBytes <= this.#hwm ? this.#wholeBody() : queue;
    }
    return new Promise<AppBody>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  // ---- request body: postern.input → req, paced by the app's reads ----

  readBody(): void {
    const feed = this.#feed;
    if (feed !== undefined) {
      feed?.resume();
      return;
    }
    this.#feed = null;
    const framing = this.#fields.framing;
    if (framing === FRAMING_NONE || this.#failed) return;
    const input = this.environ['postern.input'] as Partial<Readable> | undefined;
    // A hand-built environ may lack a body stream.
    if (typeof input?.on !== 'function') {
      if (framing === FRAMING_CHUNKED) endRequest(this.req);
      else this.#fail(adapterError(NODE_ADAPTER_ERRORS.TRUNCATED, 'no postern.input to read the request body from'));
      return;
    }
    this.#feed = new BodyFeed(this, this.req, input as Readable, framing === FRAMING_FIXED, this.#fields.length);
  }

  // ---- response: socket writes → head / ResponseReader → BodyQueue ----

  output(chunk: Buffer | string, encoding: BufferEncoding): void {
    if (this.#failed || this.#queue?.cancelled === true) return;
    const reader = this.#reader;
    if (typeof chunk === 'string') {
      // The head node:http stored is the start of a string write: read it there, as a string.
      let text = chunk;
      while (!reader.headDone && !reader.failed) {
        const end = text.indexOf('\r\n\r\n');
        if (end === -1 || !text.startsWith('HTTP/')) break;
        const head = readHead(text.slice(0, end), encoding);
        if (typeof head === 'string') {
          this.#fail(adapterError(RESPONSE_READER_ERROR, `the response head could not be read: ${head}`));
          return;
        }
        reader.acceptHead(head);
        text = text.slice(end + 4);
      }
      if (text.length > 0 && !reader.failed) reader.push(Buffer.from(text, encoding));
      return;
    }
    if (chunk.length > 0) reader.push(chunk);
  }

  /** After a write batch: answer the runner once a head is known, and pace the app's writes. */
  flushed(callback: (error?: Error | null) => void): void {
    if (this.#head !== undefined && !this.#settled && !this.#settleQueued && this.#resolve !== undefined) {
      // A microtask lets `write(); end()` in one tick go out whole.
      this.#settleQueued = true;
      queueMicrotask(() => {
        this.#settleQueued = false;
        if (!this.#settled && !this.#failed) this.#settle();
      });
    }
    // Holding the callback is what makes socket.write(), and so res.write(), return false.
    if (this.#overMark && this.#queue?.ended === false) this.#heldCallback = callback;
    else callback();
  }

  head(status: number, reason: string, headers: HeaderList): void {
    this.#head = [status, reason, headers];
  }

  body(view: Uint8Array): void {
    this.#overMark = !this.#bodyQueue().push(view);
  }

  end(): void {
    this.#complete = true;
    this.#queue?.end();
    this.#stopListening();
    if (!this.#settled && this.#resolve !== undefined) this.#settle();
  }

  error(err: Error): void {
    this.#fail(err);
  }

  #bodyQueue(): BodyQueue {
    let queue = this.#queue;
    if (queue === undefined) {
      queue = this.#queue = new BodyQueue(this.#hwm);
      queue.onDrain = () => this.#release();
      queue.onCancel = () => this.#cancel();
      if (this.#complete || this.#aborted) queue.end();
    }
    return queue;
  }

  #release(): void {
    this.#overMark = false;
    const cb = this.#heldCallback;
    if (cb !== undefined) {
      this.#heldCallback = undefined;
      cb();
    }
  }

  #callStartResponse(): void {
    const [status, reason, headers] = this.#head as [number, string, HeaderList];
    this.#flushHead = this.#startResponse(`${status} ${reason === '' ? (STATUS_CODES[status] ?? '') : reason}`.trimEnd(), headers);
  }

  #wholeBody(): AppBody {
    const queue = this.#queue;
    // HEAD: null keeps the runner from adding a Content-Length of 0 that would describe the GET.
    if (queue === undefined || this.#isHead) return this.#isHead ? null : EMPTY;
    const chunks = queue.drainAll();
    return chunks.length === 1 ? (chunks[0] as Uint8Array) : chunks;
  }

  /** Calls startResponse and hands the runner the body: whole when complete, else the queue. */
  #settle(): void {
    const resolve = this.#resolve;
    if (resolve === undefined || this.#head === undefined) return;
    this.#settled = true;
    try {
      this.#callStartResponse();
    } catch (err) {
      this.#settled = false;
      this.#fail(err);
      return;
    }
    this.#resolve = undefined;
    this.#reject = undefined;
    // A complete response that fits under the mark goes whole: the runner then adds a
    // Content-Length (a chunked Node response gets one for free) and skips the async iteration.
    if (this.#complete && (this.#queue === undefined || this.#queue.queuedBytes <= this.#hwm)) {
      resolve(this.#wholeBody());
      return;
    }
    resolve(this.#bodyQueue());
    // A streaming response's head goes out now, not with its first body byte: `flushHeaders()`
    // and a long poll or a quiet event stream must reach the client (WSGI's legacy write of
    // nothing sends just the head).
    if (!this.#complete) this.#flushHead?.(EMPTY_BYTES);
  }

  finished(): void {
    // A close-delimited response (no Content-Length, not chunked) ends with the message.
    if (!this.#reader.done && !this.#reader.failed) this.#reader.end();
    // As node:http's resOnFinish: a body the app never read is read and dropped.
    const req = this.req;
    if (!req.readableDidRead && req.readableFlowing !== true && !req.readableEnded && !req.destroyed) dumpUnreadRequest(req);
    if (FINISH_CHANNEL.hasSubscribers) FINISH_CHANNEL.publish({ request: req, response: this.res, socket: this.socket, server: this.#server });
    // The response's 'close' (writableFinished true) follows 'finish' one tick later, as
    // resOnFinish's nextTick(emitCloseNT) makes it on a server: the socket's own 'close' (a tick
    // after destroy) is what emits it, through the listener assignSocket added.
    this.#release();
    // 'finish' is emitted from inside the socket's write callback (Writable's afterWrite): a
    // Writable destroyed there builds an ERR_STREAM_DESTROYED, stack trace and all, for its
    // finished-callbacks whether it has any or not. A tick later it does not.
    if (!this.socket.destroyed) process.nextTick(destroyAfterFinish, this.socket);
  }

  /** Closes the connection from the bridge's side (BridgeSocket._destroy times its 'close' by it). */
  #closeSocket(): void {
    if (this.socket.destroyed) return;
    this.closingHere = CLOSING_NOW;
    this.socket.destroy();
  }

  /** The socket was destroyed (by us after 'finish', by the app, or on abort). */
  closed(error: Error | null): void {
    if (this.#complete || this.#failed) return;
    if (this.#head !== undefined && !this.#settled) this.#settle();
    this.#fail(error ?? adapterError(NODE_ADAPTER_ERRORS.CLOSED, 'the app closed the connection before its response was complete'));
  }

  socketClosed(): void {
    if (!this.#complete) this.#abortIncoming();
  }

  /** node:http's abortIncoming: a request whose response did not finish is destroyed as aborted. */
  #abortIncoming(): void {
    const req = this.req;
    if (req.destroyed) return;
    const err = new Error('aborted') as Error & { code: string };
    err.code = 'ECONNRESET';
    req.destroy(err);
  }

  /** The handler threw, rejected, or called next(err); or the request body failed. */
  appFailed(err: unknown): void {
    this.#fail(err);
  }

  #fail(err: unknown): void {
    if (this.#complete || this.#failed) return;
    this.#failed = true;
    this.#error = err;
    const reject = this.#reject;
    this.#resolve = undefined;
    this.#reject = undefined;
    if (reject !== undefined) reject(err);
    else if (this.#settled) this.#bodyQueue().fail(err);
    this.#release();
    this.#feed?.stop();
    this.#stopListening();
    this.#closeSocket();
  }

  #stopListening(): void {
    const unlisten = this.#unlistenAbort;
    if (unlisten !== undefined) {
      this.#unlistenAbort = undefined;
      unlisten();
    }
  }

  readonly #onAbort = (): void => {
    if (this.#complete || this.#failed) return;
    // The runner stops on the abort by itself; closing the socket is what tells the app
    // (req 'aborted'/'close', res 'close'). Nothing rejects, so an abort is never an app error:
    // an unanswered request resolves to no body and a streaming one just ends.
    this.#failed = true;
    this.#aborted = true;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#reject = undefined;
    resolve?.(null);
    this.#queue?.end();
    this.#release();
    this.#feed?.stop();
    this.#closeSocket();
  };

  #cancel(): void {
    // The runner stopped pulling (its responder went away): stop the app the same way.
    if (this.#complete || this.#failed) return;
    this.#failed = true;
    this.#aborted = true;
    this.#release();
    this.#feed?.stop();
    this.#closeSocket();
  }
}

// Exchange.closingHere: the app (or nothing) closes the socket; the bridge closes it now (abort,
// failure); the bridge closes it a tick after the response's 'finish'.
const CLOSING_NO = 0;
const CLOSING_NOW = 1;
const CLOSING_AFTER_FINISH = 2;

const EMPTY: readonly Uint8Array[] = [];
const EMPTY_BYTES = new Uint8Array(0);

// Listeners shared by every exchange (no closures per request); each finds its exchange through
// the socket. Measured with the per-exchange arrow functions they replace: see bench/adapters.ts.
function readRequestBody(this: IncomingMessage): void {
  (this.socket as unknown as BridgeSocket).exchange.readBody();
}
function onResponseFinish(this: ServerResponse): void {
  (this.req.socket as unknown as BridgeSocket).exchange.finished();
}
function onSocketDrain(this: BridgeSocket): void {
  emitResponseDrain(this.exchange.res);
}
function destroyAfterFinish(socket: BridgeSocket): void {
  if (socket.destroyed) return;
  socket.exchange.closingHere = CLOSING_AFTER_FINISH;
  socket.destroy();
}
function emitSocketClose(socket: BridgeSocket): void {
  socket.emit('close');
}
function onSocketClose(this: BridgeSocket): void {
  this.exchange.socketClosed();
}

/** `fromNodeHandler` with `bridge: 'direct'` (see src/app/adapters/node.ts). */
export function bridgeNodeHandler(handler: NodeHandler, options: NodeAdapterOptions = {}): NativeApp {
  // Never listens: it is here so that each request is emitted as 'request' on an http.Server,
  // where APM and tracing agents that wrap `http.Server.prototype.emit` see it.
  const server = createServer({ requestTimeout: 0, keepAliveTimeout: 0 });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    callHandler(handler, req, res, (req.socket as unknown as BridgeSocket).exchange);
  });
  return bridgeNodeServer(server, options);
}

/**
 * Serves requests by emitting them as 'request' on `server`: the bridge's private server, or an
 * app's own server taken over at its listen() (src/app/takeover.ts), whose listeners then answer.
 * `req.environ`, `scriptName`, `baseUrl` and `originalUrl` are set before the listeners run.
 */
export function bridgeNodeServer(server: Server, options: NodeAdapterOptions = {}): NativeApp {
  const pathMode = options.path ?? 'relative';
  const hwm = options.highWaterMarkBytes ?? 65536;
  return (environ, startResponse) => {
    // node:http never hands an app a method its parser does not know; RFC 9110 §15.6.2 says 501.
    if (!KNOWN_METHODS.has(environ.REQUEST_METHOD)) return plainAnswer(startResponse, 501, false);
    const fields = requestFields(environ);
    if (typeof fields === 'number') return plainAnswer(startResponse, fields, environ.REQUEST_METHOD === 'HEAD');
    const url = requestTarget(environ, pathMode);
    const exchange = new Exchange(environ, startResponse, hwm, fields, url);
    const info = exchange.req as IncomingMessage & GatewayRequestInfo;
    const scriptName = environ.SCRIPT_NAME;
    info.environ = environ;
    info.scriptName = scriptName;
    info.baseUrl = mountPath(environ);
    // At the root (SCRIPT_NAME '') the relative and the full target are the same string.
    info.originalUrl = pathMode === 'full' || scriptName === '' ? url : requestTarget(environ, 'full');
    return exchange.run(server);
  };
}
