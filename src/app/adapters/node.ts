// Node `(req, res)` handlers (Express, Koa's callback(), plain http handlers) as native apps, from
// the adapter's side: each request is replayed as HTTP/1.1 over an in-memory socket into a private,
// never-listening `http.Server`, and the response is read back — public Node APIs only.

import { createServer, METHODS, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Duplex, type Readable } from 'node:stream';
import type { AppBody, Environ, HeaderList, NativeApp, StartResponse } from '../types.ts';
import { isFieldValue, isToken } from '../../../protocols/common/head.ts';
import { BodyQueue } from './body-queue.ts';
import { ResponseReader, type ResponseSink } from './response-reader.ts';
import { mountPath, requestTarget, type TargetPath } from './target.ts';

export type NodeNext = (err?: unknown) => void;
export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: NodeNext) => unknown;

export interface NodeAdapterOptions {
  /**
   * What `req.url` holds: `relative` (default) is PATH_INFO + query, as a sub-app sees it under
   * Express `app.use(prefix, sub)`; `full` is SCRIPT_NAME + PATH_INFO + query.
   */
  readonly path?: TargetPath;
  /**
   * Response bytes held between the app and the gateway before `res.write()` returns false and the
   * app should wait for `'drain'` (default 65536).
   */
  readonly highWaterMarkBytes?: number;
  /**
   * Largest request head handed to node:http (default 1 MiB). The gateway's `maxParamsBytes` is
   * the real limit; this only keeps node:http's own 16 KiB default from cutting in first.
   */
  readonly maxHeadBytes?: number;
}

/** What the adapter adds to every `req` (read it with `environOf(req)` or a cast). */
export interface GatewayRequestInfo {
  /** The full environ of this request (CGI variables, `postern.*`). */
  environ: Environ;
  /** The mount prefix (SCRIPT_NAME, a byte string); '' at the root. */
  scriptName: string;
  /** The mount prefix as an escaped path, as Express's `req.baseUrl` (Express keeps it up to date). */
  baseUrl: string;
  /** The target as the client asked for it: SCRIPT_NAME + PATH_INFO + query, escaped. */
  originalUrl: string;
}

/** The environ behind a request served through the Node adapter, or undefined for any other request. */
export function environOf(req: IncomingMessage): Environ | undefined {
  const env = (req as Partial<GatewayRequestInfo>).environ;
  return typeof env === 'object' && env !== null ? env : undefined;
}

/** `code` on errors the Node adapter raises itself. */
export const NODE_ADAPTER_ERRORS = {
  /** node:http rejected the replayed request (a head over `maxHeadBytes`, a malformed value). */
  BAD_REQUEST: 'POSTERN_ERR_NODE_REQUEST',
  /** The app closed the connection (res.destroy(), socket.destroy()) before its response was complete. */
  CLOSED: 'POSTERN_ERR_NODE_CLOSED',
  /** The request body ended before CONTENT_LENGTH bytes. */
  TRUNCATED: 'POSTERN_ERR_NODE_BODY_TRUNCATED',
} as const;

function adapterError(code: string, message: string, cause?: unknown): Error {
  const err = new Error(`postern: ${message}`, cause === undefined ? undefined : { cause });
  (err as Error & { code: string }).code = code;
  return err;
}

const KNOWN_METHODS = new Set(METHODS);

// Request fields the replay sets itself (framing, host) or that belong to the hop between client
// and front server, which has already dealt with them (RFC 9110 §7.6.1; Expect: 100-continue).
const SKIP_REQUEST_FIELDS = new Set([
  'content-length', 'content-type', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection',
  'te', 'trailer', 'upgrade', 'expect', 'http2-settings',
]);

// `HTTP_X_FORWARDED_FOR` → `x-forwarded-for`. Real traffic repeats a few dozen names, so a
// bounded cache saves the toLowerCase + replace per field.
const FIELD_NAMES = new Map<string, string>();
function fieldName(cgiName: string): string {
  let name = FIELD_NAMES.get(cgiName);
  if (name === undefined) {
    name = cgiName.slice(5).toLowerCase().replaceAll('_', '-');
    if (FIELD_NAMES.size < 512) FIELD_NAMES.set(cgiName, name);
  }
  return name;
}

const DIGITS = /^[0-9]{1,15}$/;

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
  let head = method + ' ' + target + ' HTTP/1.1\r\n';
  let hasHost = false;
  for (const key in environ) {
    if (key.charCodeAt(0) !== 0x48 || !key.startsWith('HTTP_')) continue;
    const value = environ[key];
    if (typeof value !== 'string') continue;
    const name = fieldName(key);
    if (SKIP_REQUEST_FIELDS.has(name)) continue;
    // A gateway param may hold any byte: never let CR/LF reach the replayed head.
    if (!isToken(name) || !isFieldValue(value)) return 400;
    if (name === 'host') hasHost = true;
    head += name + ': ' + value + '\r\n';
  }
  if (!hasHost) {
    const port = environ.SERVER_PORT;
    const scheme = environ['postern.url_scheme'];
    const dflt = (scheme === 'https' && port === '443') || (scheme !== 'https' && port === '80') || port === '' || port === undefined;
    const host = dflt ? environ.SERVER_NAME : `${environ.SERVER_NAME}:${port}`;
    if (typeof host === 'string' && host !== '' && isFieldValue(host)) head += 'host: ' + host + '\r\n';
  }
  const type = environ.CONTENT_TYPE;
  if (typeof type === 'string' && type !== '') {
    if (!isFieldValue(type)) return 400;
    head += 'content-type: ' + type + '\r\n';
  }
  let framing: Framing = { kind: 'none' };
  const length = environ.CONTENT_LENGTH;
  if (typeof length === 'string' && length !== '') {
    if (!DIGITS.test(length)) return 400;
    const n = Number(length);
    head += 'content-length: ' + String(n) + '\r\n';
    if (n > 0) framing = { kind: 'fixed', length: n };
  } else if (typeof environ.HTTP_TRANSFER_ENCODING === 'string') {
    // A body of unknown length (an HTTP client's chunked upload passed through): replay it chunked.
    head += 'transfer-encoding: chunked\r\n';
    framing = { kind: 'chunked' };
  }
  return { bytes: Buffer.from(head + '\r\n', 'latin1'), framing };
}

function plainAnswer(startResponse: StartResponse, status: number, head: boolean): AppBody {
  const text = `${STATUS_CODES[status] ?? 'Error'}\n`;
  startResponse(`${status} ${STATUS_CODES[status] ?? 'Error'}`, [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(Buffer.byteLength(text))],
  ]);
  return head ? null : text;
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * The in-memory connection for one request: node:http reads the replayed request from it and
 * writes its response into it. Carries the socket facts apps read (`remoteAddress`, `encrypted`).
 */
class GatewaySocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Express `req.protocol` and Koa `ctx.protocol` read this for `https`. */
  readonly encrypted: true | undefined;
  readonly exchange: Exchange;

  constructor(exchange: Exchange, environ: Environ) {
    super({ allowHalfOpen: true, decodeStrings: true });
    this.exchange = exchange;
    const ra = environ.REMOTE_ADDR;
    this.remoteAddress = typeof ra === 'string' && ra !== '' ? ra : undefined;
    this.remoteFamily = this.remoteAddress === undefined ? undefined : this.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.remotePort = portOf(environ.REMOTE_PORT);
    const sa = environ.SERVER_ADDR;
    this.localAddress = typeof sa === 'string' && sa !== '' ? sa : undefined;
    this.localPort = portOf(environ.SERVER_PORT);
    this.encrypted = environ['postern.url_scheme'] === 'https' ? true : undefined;
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

  // Timeouts are the gateway's business (requestTimeoutMs); these keep apps that tune sockets working.
  setTimeout(_ms: number, callback?: () => void): this {
    if (callback !== undefined) this.once('timeout', callback);
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localAddress === undefined) return {};
    return { address: this.localAddress, family: this.localAddress.includes(':') ? 'IPv6' : 'IPv4', port: this.localPort ?? 0 };
  }
}

function portOf(v: unknown): number | undefined {
  if (typeof v !== 'string' || !DIGITS.test(v)) return undefined;
  return Number(v);
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

/**
 * Mounts a Node `(req, res[, next])` handler. `req.url` is mount-relative (see
 * NodeAdapterOptions.path); `req.environ`, `req.scriptName`, `req.baseUrl` and `req.originalUrl`
 * are set (GatewayRequestInfo). `next()` answers 404, `next(err)` fails the request (500 via the
 * runner); a handler that throws or rejects fails it too. Response bytes flow back with
 * backpressure: `res.write()` returns false and `'drain'` follows as the gateway drains.
 */
export function fromNodeHandler(handler: NodeHandler, options: NodeAdapterOptions = {}): NativeApp {
  if (typeof handler !== 'function') throw new TypeError('postern: fromNodeHandler needs a (req, res) function');
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
    const next: NodeNext = (err) => {
      if (err !== undefined && err !== null && err !== 'route' && err !== 'router') {
        exchange.appFailed(err);
      } else if (!res.headersSent) {
        res.statusCode = 404;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end('Not Found\n');
      } else if (!res.writableEnded) res.end();
    };
    try {
      const result = handler(req, res, next);
      if (typeof result === 'object' && result !== null && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, (err: unknown) => exchange.appFailed(err));
      }
    } catch (err) {
      exchange.appFailed(err);
    }
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
