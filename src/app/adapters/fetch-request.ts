// The `Request` a Fetch handler sees, built from the environ, from the Fetch bridge's side: eagerly
// (a real global Request per request, `fetchRequest: 'eager'`) or lazily (LazyRequest: method, URL,
// headers and body made only when the handler reads them; a real Request only when it needs one).

import type { Environ } from '../types.ts';
import { isBuiltEnviron } from '../../environ.ts';
import { requestTarget, type TargetPath } from './target.ts';
import { DemandStream, inputToWeb, readInputAll, readWebAll } from './web-body.ts';

export interface RequestOptions {
  readonly path?: TargetPath;
  readonly readAheadBytes?: number;
}

/** Request body bytes read ahead of the app when it reads the body as a stream. */
export const DEFAULT_READ_AHEAD_BYTES = 65536;

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

export function requestHeaders(environ: Environ): Array<[string, string]> {
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

/** The Request a Fetch handler sees for this environ. Throws a TypeError on unusable header values. */
export function toRequest(environ: Environ, options: RequestOptions = {}): Request {
  const target = requestTarget(environ, options.path ?? 'relative');
  const init: RequestInit & { duplex?: 'half' } = {
    method: environ.REQUEST_METHOD,
    headers: requestHeaders(environ),
  };
  const signal = environ['postern.signal'];
  if (signal instanceof AbortSignal) init.signal = signal;
  const input = environ['postern.input'];
  if (hasBody(environ) && typeof input === 'object' && input !== null) {
    init.body = inputToWeb(input, options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES);
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

// --- the lazy Request -----------------------------------------------------------------------

// Methods a Request keeps as they are; the Fetch standard upper-cases these six whatever their
// case, and refuses CONNECT, TRACE and TRACK (fetch.spec.whatwg.org, "normalize a method").
const PLAIN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The method as `new Request` would report it, or undefined where it would throw. */
function normalizeMethod(method: string): string | undefined {
  if (PLAIN_METHODS.has(method)) return method;
  if (!TOKEN.test(method)) return undefined;
  const upper = method.toUpperCase();
  if (FORBIDDEN_METHODS.has(upper)) return undefined;
  return NORMALIZED_METHODS.has(upper) ? upper : method;
}

/** The URL as `new Request` serialises it, with the same fallback from Host to SERVER_NAME. */
function requestUrl(environ: Environ, path: TargetPath): string {
  const target = requestTarget(environ, path);
  const viaHost = serializeUrl(origin(environ, true), target);
  if (viaHost !== undefined) return viaHost;
  const viaName = serializeUrl(origin(environ, false), target);
  if (viaName !== undefined) return viaName;
  throw lazyError(`no usable URL for this request (Host ${JSON.stringify(environ.HTTP_HOST)}, SERVER_NAME ${JSON.stringify(environ.SERVER_NAME)})`);
}

// A target the URL parser hands back as it is: '/' then only characters no percent-encode set
// holds (WHATWG URL, path and special-query sets; ' ^ | [ ] \ and the rest go the slow way), and
// no dot segment ('/.' or an escaped dot anywhere sends it the slow way too).
const PLAIN_TARGET = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@%/]*(?:\?[A-Za-z0-9\-._~!$&()*+,;=:@%/?]*)?$/;
const DOT_SEGMENT = /\/\.|%2e/i;

// The last origin parsed and what it serialises to ('' where it is refused, or has more than an
// authority): a server sees one Host for nearly every request, so the parse is made once.
// Measured (Node 24.22.3, Hono hello behind nginx, --cpu-prof of the worker): URL.canParse and
// new URL were 1.3 % of the worker's samples, about 2 µs a request, before this cache.
let lastOrigin = '';
let lastOriginHref = '';

function serializeUrl(origin: string, target: string): string | undefined {
  if (PLAIN_TARGET.test(target) && !DOT_SEGMENT.test(target)) {
    if (origin !== lastOrigin) {
      lastOrigin = origin;
      lastOriginHref = originHref(origin);
    }
    // The authority ends where the target's '/' begins, so the origin serialises alone.
    if (lastOriginHref !== '') return lastOriginHref + target;
  }
  return parseRequestUrl(origin + target);
}

/** `origin` serialised on its own ('' where it is refused or holds more than an authority). */
function originHref(origin: string): string {
  const url = URL.canParse(origin + '/') ? new URL(origin + '/') : undefined;
  if (url === undefined || url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') return '';
  return url.href.slice(0, -1);
}

// The Request constructor refuses what URL refuses and URLs with credentials.
function parseRequestUrl(s: string): string | undefined {
  if (!URL.canParse(s)) return undefined;
  const url = new URL(s);
  return url.username === '' && url.password === '' ? url.href : undefined;
}

const BAD_VALUE = /[\0\r\n]/;
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Whether the eager path would refuse this request before calling the handler (so the lazy one
 * answers 400 too): a method `new Request` throws on, or, on an environ not made by the server
 * (whose params check already refused NUL, CR and LF; src/server/params-check.ts), a header name
 * or value `Headers` throws on.
 */
export function refusedRequest(environ: Environ): boolean {
  const method = environ.REQUEST_METHOD;
  if (!PLAIN_METHODS.has(method) && normalizeMethod(method) === undefined) return true;
  if (isBuiltEnviron(environ)) return false;
  for (const key in environ) {
    if (key.charCodeAt(0) !== 0x48 || !key.startsWith('HTTP_')) continue;
    const value = environ[key];
    if (typeof value !== 'string') continue;
    if (BAD_VALUE.test(value) || !FIELD_NAME.test(fieldName(key))) return true;
  }
  const type = environ.CONTENT_TYPE;
  return typeof type === 'string' && BAD_VALUE.test(type);
}

/** `code` on errors the lazy Request raises itself. */
export const LAZY_REQUEST_ERROR = 'POSTERN_ERR_FETCH_REQUEST';

function lazyError(message: string): TypeError {
  const err = new TypeError(`postern: ${message}`);
  (err as TypeError & { code: string }).code = LAZY_REQUEST_ERROR;
  return err;
}

// The same error class and wording as undici's for a body read twice.
function unusable(): TypeError {
  return new TypeError('Body is unusable: Body has already been read');
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();

/**
 * A Request whose parts are made when first read. Its prototype chain runs through
 * `Request.prototype`, so `instanceof Request` holds; the members it does not implement itself
 * (`clone()`, `formData()`, `blob()`, inspection, any added in later Node versions) are forwarded
 * to a real Request made on first use from what this one holds. The global Request is untouched.
 *
 * What cannot work: passing it as the *first* argument of `new Request(req)` or `fetch(req)`,
 * because undici reads its own internal state from that argument (use `new Request(url, req)`,
 * `req.clone()`, or `fetchRequest: 'eager'`).
 */
export class LazyRequest {
  readonly #environ: Environ;
  readonly #path: TargetPath;
  readonly #readAhead: number;
  #method: string | undefined;
  #url: string | undefined;
  #headers: Headers | undefined;
  #signal: AbortSignal | undefined;
  #stream: DemandStream | undefined;
  #used = false;
  #real: Request | undefined;
  /** The real Request took the body stream: from then on the body is its (clone() tees it). */
  #realBody = false;

  constructor(environ: Environ, path: TargetPath, readAheadBytes: number) {
    this.#environ = environ;
    this.#path = path;
    this.#readAhead = readAheadBytes;
  }

  get method(): string {
    return (this.#method ??= normalizeMethod(this.#environ.REQUEST_METHOD) ?? this.#environ.REQUEST_METHOD);
  }

  get url(): string {
    return (this.#url ??= requestUrl(this.#environ, this.#path));
  }

  get headers(): Headers {
    return (this.#headers ??= new Headers(requestHeaders(this.#environ)));
  }

  /** The request's own abort signal (postern.signal): it aborts when the request is aborted. */
  get signal(): AbortSignal {
    if (this.#signal === undefined) {
      const signal = this.#environ['postern.signal'];
      this.#signal = signal instanceof AbortSignal ? signal : new AbortController().signal;
    }
    return this.#signal;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#realBody) return (this.#real as Request).body;
    return this.#hasBody ? this.#webStream() : null;
  }

  get bodyUsed(): boolean {
    if (this.#realBody) return (this.#real as Request).bodyUsed;
    if (!this.#hasBody) return false;
    return this.#used || this.#streamTaken;
  }

  get #streamTaken(): boolean {
    const s = this.#stream;
    return s !== undefined && (s.disturbed || s.stream.locked);
  }

  // What a Request made from (url, { method, headers, body, signal }) reports for the members
  // the environ cannot change (fetch.spec.whatwg.org, the Request constructor's defaults).
  get destination(): Request['destination'] {
    return '';
  }
  get referrer(): string {
    return 'about:client';
  }
  get referrerPolicy(): Request['referrerPolicy'] {
    return '';
  }
  get mode(): Request['mode'] {
    return 'cors';
  }
  get credentials(): Request['credentials'] {
    return 'same-origin';
  }
  get cache(): Request['cache'] {
    return 'default';
  }
  get redirect(): Request['redirect'] {
    return 'follow';
  }
  get integrity(): string {
    return '';
  }
  get keepalive(): boolean {
    return false;
  }
  get isReloadNavigation(): boolean {
    return false;
  }
  get isHistoryNavigation(): boolean {
    return false;
  }
  get duplex(): 'half' {
    return 'half';
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.#bytes()).buffer as ArrayBuffer;
  }

  bytes(): Promise<Uint8Array> {
    return this.#bytes();
  }

  async text(): Promise<string> {
    return utf8.decode(await this.#bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(utf8.decode(await this.#bytes())) as unknown;
  }

  get #hasBody(): boolean {
    return hasBody(this.#environ) && typeof this.#environ['postern.input'] === 'object';
  }

  #webStream(): ReadableStream<Uint8Array> {
    return (this.#stream ??= new DemandStream(inputToWeb(this.#environ['postern.input'], this.#readAhead))).stream;
  }

  // The whole body, read straight from postern.input unless the app already took the stream.
  async #bytes(): Promise<Uint8Array> {
    if (this.#realBody) return new Uint8Array(await (this.#real as Request).arrayBuffer());
    if (!this.#hasBody) return EMPTY;
    if (this.#used || this.#streamTaken) throw unusable();
    this.#used = true;
    const stream = this.#stream;
    return stream !== undefined ? readWebAll(stream.stream) : readInputAll(this.#environ['postern.input']);
  }

  /** The real Request behind the forwarded members, made once from what this one holds. */
  static real(lazy: LazyRequest): Request {
    if (lazy.#real !== undefined) return lazy.#real;
    const init: RequestInit & { duplex?: 'half' } = { method: lazy.method, headers: lazy.headers, signal: lazy.signal };
    if (lazy.#hasBody && !lazy.#used) {
      const stream = lazy.#webStream();
      if (lazy.#streamTaken) {
        lazy.#used = true;
      } else {
        init.body = stream;
        init.duplex = 'half';
      }
    }
    lazy.#real = new Request(lazy.url, init);
    lazy.#realBody = init.body !== undefined;
    return lazy.#real;
  }

  /** Body members forwarded to the real Request must fail as they would once the body was read. */
  static bodyRead(lazy: LazyRequest): boolean {
    if (lazy.#realBody) return false;
    return lazy.#hasBody && (lazy.#used || lazy.#streamTaken);
  }
}

// Forwarding: every member of Request.prototype this class does not define goes to the real one.
// Read from the running Node's Request, so members added in later versions are forwarded too.
const BODY_METHODS = new Set<PropertyKey>(['blob', 'formData', 'clone']);
for (const key of Reflect.ownKeys(Request.prototype)) {
  if (key === 'constructor' || key === Symbol.toStringTag || Object.hasOwn(LazyRequest.prototype, key)) continue;
  const d = Object.getOwnPropertyDescriptor(Request.prototype, key);
  if (d === undefined) continue;
  if (typeof d.get === 'function') {
    Object.defineProperty(LazyRequest.prototype, key, {
      configurable: true,
      enumerable: d.enumerable ?? false,
      get(this: LazyRequest): unknown {
        return Reflect.get(Request.prototype, key, LazyRequest.real(this));
      },
    });
  } else if (typeof d.value === 'function') {
    const method = d.value as (...args: unknown[]) => unknown;
    const body = BODY_METHODS.has(key);
    Object.defineProperty(LazyRequest.prototype, key, {
      configurable: true,
      enumerable: d.enumerable ?? false,
      writable: true,
      value(this: LazyRequest, ...args: unknown[]): unknown {
        if (body && LazyRequest.bodyRead(this)) {
          if (key === 'clone') throw unusable();
          return Promise.reject(unusable());
        }
        return method.apply(LazyRequest.real(this), args);
      },
    });
  }
}
Object.setPrototypeOf(LazyRequest.prototype, Request.prototype);
