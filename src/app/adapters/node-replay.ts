// The replay bridge for Node `(req, res)` handlers, from the adapter's side: each request is
// written out as HTTP/1.1 over an in-memory socket into a private, never-listening `http.Server`,
// and the response is read back. Public Node APIs only, and slow (about 30 µs a request): kept as
// the `bridge: 'replay'` escape hatch and as the oracle the direct bridge is tested against.

import { createServer, METHODS, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { AppBody, Environ, HeaderList, NativeApp, StartResponse } from '../types.ts';
import { BodyQueue } from './body-queue.ts';
import { ResponseReader, type ResponseSink } from './response-reader.ts';
import { mountPath, requestTarget } from './target.ts';
import {
  adapterError, callHandler, EnvironSocket, FRAMING_CHUNKED, FRAMING_FIXED, NODE_ADAPTER_ERRORS, plainAnswer, requestFields,
  type GatewayRequestInfo, type NodeAdapterOptions, type NodeHandler,
} from './node-common.ts';

const KNOWN_METHODS = new Set(METHODS);

/** Body framing of the replayed request: none, exactly N bytes, or chunked (length unknown). */
type Framing = { readonly kind: 'none' } | { readonly kind: 'fixed'; readonly length: number } | { readonly kind: 'chunked' };

interface ReplayHead {
  readonly bytes: Buffer;
  readonly framing: Framing;
}

/** The HTTP/1.1 request head for this environ, or a status to answer with when it cannot be built. */
function replayHead(environ: Environ, target: string): ReplayHead | number {
  const method = environ.REQUEST_METHOD;
  // node:http (llhttp) parses only the methods it knows; RFC 9110 §15.6.2 says 501 for the rest.
  if (!KNOWN_METHODS.has(method)) return 501;
  const fields = requestFields(environ);
  if (typeof fields === 'number') return fields;
  let head = method + ' ' + target + ' HTTP/1.1\r\n';
  const raw = fields.raw;
  for (let i = 0; i < raw.length; i += 2) head += raw[i] + ': ' + raw[i + 1] + '\r\n';
  const framing: Framing = fields.framing === FRAMING_FIXED ? { kind: 'fixed', length: fields.length }
    : fields.framing === FRAMING_CHUNKED ? { kind: 'chunked' } : { kind: 'none' };
  return { bytes: Buffer.from(head + '\r\n', 'latin1'), framing };
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * The in-memory connection for one request: node:http reads the replayed request from it and
 * writes its response into it. Carries the socket facts apps read (`remoteAddress`, `encrypted`).
 */
class GatewaySocket extends EnvironSocket {
  declare readonly exchange: Exchange;

  constructor(exchange: Exchange, environ: Environ) {
    super(environ, { allowHalfOpen: true, decodeStrings: true });
    this.exchange = exchange;
  }

  override _read(): void {
    this.exchange.resumeInput();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.exchange.output(chunk);
    this.exchange.flushed(callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    for (let i = 0; i < chunks.length; i++) this.exchange.output((chunks[i] as { chunk: Buffer }).chunk);
    this.exchange.flushed(callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.exchange.outputEnded();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.closed(error);
    callback(error);
  }

}

/** One request through the adapter: the replayed input, the app's output, and how they end. */
class Exchange implements ResponseSink {
  readonly environ: Environ;
  readonly socket: GatewaySocket;
  readonly #startResponse: StartResponse;
  readonly #queue: BodyQueue;
  readonly #reader: ResponseReader;
  readonly #isHead: boolean;
  readonly #hwm: number;
  readonly #signal: AbortSignal | undefined;
  readonly #input: Readable | undefined;
  #framing: Framing = { kind: 'none' };
  #remaining = 0;
  #inputPaused = false;
  #resolve: ((body: AppBody) => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  #head: [number, string, HeaderList] | undefined;
  #settled = false;
  #complete = false;
  #failed = false;
  #heldCallback: ((error?: Error | null) => void) | undefined;
  #overMark = false;

  constructor(environ: Environ, startResponse: StartResponse, highWaterMarkBytes: number) {
    this.environ = environ;
    this.#startResponse = startResponse;
    this.#isHead = environ.REQUEST_METHOD === 'HEAD';
    this.#hwm = highWaterMarkBytes;
    this.#queue = new BodyQueue(highWaterMarkBytes);
    this.#queue.onDrain = this.#release;
    this.#queue.onCancel = this.#cancel;
    this.#reader = new ResponseReader(this, this.#isHead);
    const signal = environ['postern.signal'];
    this.#signal = signal instanceof AbortSignal ? signal : undefined;
    const input = environ['postern.input'];
    // A hand-built environ may lack a body stream; a GET never needs one.
    this.#input = typeof (input as Partial<Readable> | undefined)?.on === 'function' ? input : undefined;
    this.socket = new GatewaySocket(this, environ);
  }

  start(server: Server, head: ReplayHead): Promise<AppBody> {
    const promise = new Promise<AppBody>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const signal = this.#signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#onAbort();
        return promise;
      }
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.#framing = head.framing;
    server.emit('connection', this.socket);
    this.socket.push(head.bytes);
    if (head.framing.kind !== 'none') this.#startInput(head.framing);
    return promise;
  }

  // ---- request body: postern.input → socket, paced by node:http's reads ----

  #startInput(framing: Framing): void {
    const input = this.#input;
    if (input === undefined) {
      if (framing.kind === 'chunked') this.socket.push(LAST_CHUNK);
      else this.socket.destroy(adapterError(NODE_ADAPTER_ERRORS.TRUNCATED, 'no postern.input to read the request body from'));
      return;
    }
    this.#remaining = framing.kind === 'fixed' ? framing.length : 0;
    input.on('data', this.#onInputData);
    input.on('end', this.#onInputEnd);
    input.on('error', this.#onInputError);
  }

  #stopInput(): void {
    const input = this.#input;
    if (input === undefined) return;
    input.removeListener('data', this.#onInputData);
    input.removeListener('end', this.#onInputEnd);
    input.removeListener('error', this.#onInputError);
    // Leave the stream paused: whoever owns it decides whether to drain or discard the rest.
    if (this.#framing.kind !== 'none') input.pause();
  }

  resumeInput(): void {
    if (this.#inputPaused) {
      this.#inputPaused = false;
      this.#input?.resume();
    }
  }

  readonly #onInputData = (data: Buffer | string): void => {
    let chunk = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (chunk.length === 0) return;
    let more: boolean;
    if (this.#framing.kind === 'fixed') {
      // Bytes past CONTENT_LENGTH would be read by node:http as a pipelined second request.
      if (this.#remaining === 0) return;
      if (chunk.length > this.#remaining) chunk = chunk.subarray(0, this.#remaining);
      this.#remaining -= chunk.length;
      more = this.socket.push(chunk);
    } else {
      this.socket.push(Buffer.from(chunk.length.toString(16) + '\r\n', 'latin1'));
      this.socket.push(chunk);
      more = this.socket.push(CRLF);
    }
    if (!more && !this.#inputPaused) {
      this.#inputPaused = true;
      this.#input?.pause();
    }
  };

  readonly #onInputEnd = (): void => {
    if (this.#framing.kind === 'chunked') this.socket.push(LAST_CHUNK);
    else if (this.#remaining > 0) {
      this.socket.destroy(adapterError(NODE_ADAPTER_ERRORS.TRUNCATED, `request body ended ${this.#remaining} bytes short of CONTENT_LENGTH`));
    }
  };

  readonly #onInputError = (err: unknown): void => {
    this.#fail(err);
  };

  // ---- response: socket → ResponseReader → head / BodyQueue ----

  output(chunk: Buffer): void {
    if (this.#failed || this.#queue.cancelled) return;
    this.#reader.push(chunk);
  }

  /** After a write batch: answer the runner once a head is known, and pace the app's writes. */
  flushed(callback: (error?: Error | null) => void): void {
    if (this.#head !== undefined && !this.#settled) this.#settle();
    // Holding the callback is what makes socket.write(), and so res.write(), return false.
    if (this.#overMark && !this.#queue.ended) this.#heldCallback = callback;
    else callback();
  }

  outputEnded(): void {
    this.#reader.end();
  }

  head(status: number, reason: string, headers: HeaderList): void {
    this.#head = [status, reason, headers];
  }

  body(view: Uint8Array): void {
    this.#overMark = !this.#queue.push(view);
  }

  end(): void {
    this.#complete = true;
    this.#queue.end();
    this.#finished();
  }

  error(err: Error): void {
    this.#fail(err);
  }

  readonly #release = (): void => {
    this.#overMark = false;
    const cb = this.#heldCallback;
    if (cb !== undefined) {
      this.#heldCallback = undefined;
      cb();
    }
  };

  /** Calls startResponse and hands the runner the body: whole when complete, else the queue. */
  #settle(): void {
    const resolve = this.#resolve;
    if (resolve === undefined || this.#head === undefined) return;
    this.#settled = true;
    const [status, reason, headers] = this.#head;
    try {
      this.#startResponse(`${status} ${reason === '' ? (STATUS_CODES[status] ?? '') : reason}`.trimEnd(), headers);
    } catch (err) {
      this.#settled = false;
      this.#fail(err);
      return;
    }
    this.#resolve = undefined;
    this.#reject = undefined;
    // A complete response that fits under the mark goes whole: the runner then adds a
    // Content-Length (a chunked Node response gets one for free) and skips the async iteration.
    if (this.#complete && this.#queue.queuedBytes <= this.#hwm) {
      const chunks = this.#queue.drainAll();
      // HEAD: null keeps the runner from adding a Content-Length of 0 that would describe the GET.
      resolve(this.#isHead ? null : chunks.length === 1 ? (chunks[0] as Uint8Array) : chunks);
    } else resolve(this.#queue);
  }

  #finished(): void {
    // The response is all read: release the socket once node:http has seen its last write succeed,
    // so 'finish' fires on res before 'close' (loggers such as on-finished rely on that order).
    this.#stopInput();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    setImmediate(this.#destroySocket);
  }

  readonly #destroySocket = (): void => {
    this.#release();
    this.socket.destroy();
  };

  /** The socket closed: an app that destroyed it mid-response failed the request. */
  closed(error: Error | null): void {
    this.#stopInput();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#complete || this.#failed) return;
    if (this.#head !== undefined && !this.#settled) this.#settle();
    this.#fail(error ?? adapterError(NODE_ADAPTER_ERRORS.CLOSED, 'the app closed the connection before its response was complete'));
  }

  /** node:http could not parse the replayed request. */
  clientError(err: Error): void {
    this.#fail(adapterError(NODE_ADAPTER_ERRORS.BAD_REQUEST, 'node:http rejected the request', err));
  }

  /** The handler threw, rejected, or called next(err). */
  appFailed(err: unknown): void {
    this.#fail(err);
  }

  #fail(err: unknown): void {
    if (this.#complete || this.#failed) return;
    this.#failed = true;
    const reject = this.#reject;
    this.#resolve = undefined;
    this.#reject = undefined;
    if (reject !== undefined) reject(err);
    else this.#queue.fail(err);
    this.#release();
    this.#stopInput();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (!this.socket.destroyed) this.socket.destroy();
  }

  readonly #onAbort = (): void => {
    if (this.#complete || this.#failed) return;
    // The runner stops on the signal by itself; closing the socket is what tells the app
    // (req 'aborted'/'close', res 'close'). Nothing rejects, so an abort is never an app error:
    // an unanswered request resolves to no body (the runner sees the abort first) and a
    // streaming one just ends.
    this.#failed = true;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#reject = undefined;
    resolve?.(null);
    this.#queue.end();
    this.#release();
    this.#stopInput();
    this.socket.destroy();
  };

  readonly #cancel = (): void => {
    // The runner stopped pulling (its responder went away): stop the app the same way.
    if (this.#complete || this.#failed) return;
    this.#failed = true;
    this.#release();
    this.#stopInput();
    this.socket.destroy();
  };
}

/** `fromNodeHandler` with `bridge: 'replay'` (see src/app/adapters/node.ts). */
export function replayNodeHandler(handler: NodeHandler, options: NodeAdapterOptions = {}): NativeApp {
  const pathMode = options.path ?? 'relative';
  const hwm = options.highWaterMarkBytes ?? 65536;
  const server = createServer({
    maxHeaderSize: options.maxHeadBytes ?? 1 << 20,
    // The gateway owns deadlines (requestTimeoutMs); node:http's would only fire on a listening server anyway.
    requestTimeout: 0,
    keepAliveTimeout: 0,
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const exchange = (req.socket as unknown as GatewaySocket).exchange;
    const env = exchange.environ;
    const info = req as IncomingMessage & GatewayRequestInfo;
    info.environ = env;
    info.scriptName = env.SCRIPT_NAME;
    info.baseUrl = mountPath(env);
    info.originalUrl = pathMode === 'full' ? (req.url ?? '/') : requestTarget(env, 'full');
    callHandler(handler, req, res, exchange);
  });
  server.on('clientError', (err: Error, socket: Duplex) => {
    if (socket instanceof GatewaySocket) socket.exchange.clientError(err);
    else socket.destroy();
  });
  return (environ, startResponse) => {
    const target = requestTarget(environ, pathMode);
    const head = replayHead(environ, target);
    if (typeof head === 'number') return plainAnswer(startResponse, head, environ.REQUEST_METHOD === 'HEAD');
    return new Exchange(environ, startResponse, hwm).start(server, head);
  };
}
