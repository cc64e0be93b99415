// Fetch `(request, environ) => Response` handlers (Hono's `app.fetch`, plain functions) as native
// apps, from the adapter's side: the environ becomes a `Request`, the `Response` streams back.

import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import type { AppBody, BodyChunk, Environ, NativeApp } from '../types.ts';
import { requestTarget, type TargetPath } from './target.ts';

/**
 * A Fetch handler. The environ comes second, where Hono takes its `env` (so `c.env.SCRIPT_NAME`,
 * `c.env.REMOTE_ADDR` work); handlers that take only the request ignore it.
 */
export type FetchHandler = (request: Request, environ: Environ, ...rest: never[]) => Response | PromiseLike<Response>;

export interface FetchAdapterOptions {
  /**
   * The path of `request.url`: `relative` (default) is PATH_INFO, as Hono's `app.mount(prefix, …)`
   * passes it; `full` is SCRIPT_NAME + PATH_INFO. The environ always carries both.
   */
  readonly path?: TargetPath;
  /** Request body bytes read ahead of the app (the body stream's high-water mark; default 65536). */
  readonly readAheadBytes?: number;
}

/** `code` on errors the Fetch adapter raises itself. */
export const FETCH_ADAPTER_ERRORS = {
  /** The handler resolved to something that is not a Response. */
  NOT_A_RESPONSE: 'POSTERN_ERR_FETCH_RESPONSE',
} as const;

// RFC 9110 §7.6.1 and HTTP/1.1 framing: the front server frames its own response.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade']);
// Request fields the front server already dealt with; a Request built with them would lie about
// the body it carries.
const SKIP_REQUEST_FIELDS = new Set(['content-length', 'content-type', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'http2-settings']);

const FIELD_NAMES = new Map<string, string>();
function fieldName(cgiName: string): string {
  let name = FIELD_NAMES.get(cgiName);
  if (name === undefined) {
    name = cgiName.slice(5).toLowerCase().replaceAll('_', '-');
    if (FIELD_NAMES.size < 512) FIELD_NAMES.set(cgiName, name);
  }
  return name;
}

function requestHeaders(environ: Environ): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const key in environ) {
    if (key.charCodeAt(0) !== 0x48 || !key.startsWith('HTTP_')) continue;
    const value = environ[key];
    if (typeof value !== 'string') continue;
    const name = fieldName(key);
    if (!SKIP_REQUEST_FIELDS.has(name)) out.push([name, value]);
  }
  const type = environ.CONTENT_TYPE;
  if (typeof type === 'string' && type !== '') out.push(['content-type', type]);
  const length = environ.CONTENT_LENGTH;
  if (typeof length === 'string' && length !== '') out.push(['content-length', length]);
  return out;
}

function origin(environ: Environ, useHostHeader: boolean): string {
  const scheme = environ['postern.url_scheme'] === 'https' ? 'https' : 'http';
  const host = environ.HTTP_HOST;
  if (useHostHeader && typeof host === 'string' && host !== '') return `${scheme}://${host}`;
  const port = environ.SERVER_PORT;
  const dflt = port === '' || port === undefined || (scheme === 'https' ? port === '443' : port === '80');
  const name = environ.SERVER_NAME === '' ? 'localhost' : environ.SERVER_NAME;
  return dflt ? `${scheme}://${name}` : `${scheme}://${name}:${port}`;
}

function hasBody(environ: Environ): boolean {
  const method = environ.REQUEST_METHOD;
  // Fetch forbids a body on GET and HEAD (the Request constructor throws).
  if (method === 'GET' || method === 'HEAD') return false;
  const length = environ.CONTENT_LENGTH;
  if (typeof length === 'string' && length !== '') return length !== '0';
  return typeof environ.HTTP_TRANSFER_ENCODING === 'string';
}

/**
 * postern.input as a byte ReadableStream that reads only as the app pulls: the Node stream is
 * paused whenever the web stream's queue is at its high-water mark.
 */
export function inputToWeb(input: Readable, highWaterMarkBytes: number): ReadableStream<Uint8Array> {
  let detach: (() => void) | undefined;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const onData = (chunk: Buffer | string): void => {
        controller.enqueue(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
        if ((controller.desiredSize ?? 0) <= 0) input.pause();
      };
      const onEnd = (): void => {
        detach?.();
        controller.close();
      };
      const onError = (err: unknown): void => {
        detach?.();
        controller.error(err);
      };
      detach = () => {
        input.removeListener('data', onData);
        input.removeListener('end', onEnd);
        input.removeListener('error', onError);
        detach = undefined;
      };
      input.on('data', onData);
      input.on('end', onEnd);
      input.on('error', onError);
      input.pause();
    },
    pull() {
      input.resume();
    },
    cancel() {
      detach?.();
      input.pause();
    },
  }, { highWaterMark: highWaterMarkBytes, size: (chunk) => chunk.byteLength });
}

/** The Request a Fetch handler sees for this environ. Throws a TypeError on unusable header values. */
export function toRequest(environ: Environ, options: FetchAdapterOptions = {}): Request {
  const target = requestTarget(environ, options.path ?? 'relative');
  const init: RequestInit & { duplex?: 'half' } = {
    method: environ.REQUEST_METHOD,
    headers: requestHeaders(environ),
  };
  const signal = environ['postern.signal'];
  if (signal instanceof AbortSignal) init.signal = signal;
  const input = environ['postern.input'];
  if (hasBody(environ) && typeof input === 'object' && input !== null) {
    init.body = inputToWeb(input, options.readAheadBytes ?? 65536);
    init.duplex = 'half';
  }
  try {
    return new Request(origin(environ, true) + target, init);
  } catch (err) {
    // A Host header that is not a valid authority: fall back to SERVER_NAME, which the front
    // server configured; anything else (a bad header value) is the caller's 400.
    if (typeof environ.HTTP_HOST !== 'string') throw err;
    return new Request(origin(environ, false) + target, init);
  }
}

/** Streams a web ReadableStream out as the runner pulls; `return()` cancels it. */
class WebBody implements AsyncIterableIterator<BodyChunk> {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async next(): Promise<IteratorResult<BodyChunk>> {
    const { done, value } = await this.#reader.read();
    if (done === true) return { value: undefined, done: true };
    return { value, done: false };
  }

  async return(): Promise<IteratorResult<BodyChunk>> {
    await this.#reader.cancel().catch(() => undefined);
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

function isResponse(v: unknown): v is Response {
  if (v instanceof Response) return true;
  // A Response from another copy of undici (a bundled polyfill) still has this shape.
  return typeof v === 'object' && v !== null && typeof (v as Response).status === 'number' &&
    typeof (v as Response).headers?.forEach === 'function';
}

function badRequest(startResponse: Parameters<NativeApp>[1], head: boolean): AppBody {
  startResponse('400 Bad Request', [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', '12']]);
  return head ? null : 'Bad Request\n';
}

/**
 * Mounts a Fetch handler. It is called as `handler(request, environ)`; `request.url` is
 * scheme://Host + mount-relative path (see FetchAdapterOptions.path) + query; `request.signal`
 * aborts with the request; a request body streams from postern.input as the app reads it.
 * Set-Cookie fields are kept apart. A handler that throws or rejects fails the request (500).
 */
export function fromFetchHandler(handler: FetchHandler, options: FetchAdapterOptions = {}): NativeApp {
  if (typeof handler !== 'function') throw new TypeError('postern: fromFetchHandler needs a (request) => Response function');
  return async (environ, startResponse) => {
    const isHead = environ.REQUEST_METHOD === 'HEAD';
    let request: Request;
    try {
      request = toRequest(environ, options);
    } catch {
      return badRequest(startResponse, isHead);
    }
    const response: unknown = await handler(request, environ);
    if (!isResponse(response)) {
      const err = new TypeError(`postern: the fetch handler resolved to ${response === null ? 'null' : typeof response}, not a Response`);
      (err as TypeError & { code: string }).code = FETCH_ADAPTER_ERRORS.NOT_A_RESPONSE;
      throw err;
    }
    const headers: Array<[string, string]> = [];
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie' && !HOP_BY_HOP.has(name)) headers.push([name, value]);
    });
    // Headers joins repeated fields with ", ", which breaks Set-Cookie (RFC 6265 §3): keep each.
    const cookies = typeof response.headers.getSetCookie === 'function' ? response.headers.getSetCookie() : [];
    for (const cookie of cookies) headers.push(['set-cookie', cookie]);
    const status = response.status;
    const reason = response.statusText !== '' ? response.statusText : (STATUS_CODES[status] ?? '');
    startResponse(reason === '' ? String(status) : `${status} ${reason}`, headers);
    const body = response.body;
    if (body === null) return null;
    if (isHead || status === 204 || status === 304) {
      body.cancel().catch(() => undefined);
      return null;
    }
    return new WebBody(body);
  };
}
