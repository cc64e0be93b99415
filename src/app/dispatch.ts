// CherryPy-style object dispatch, from the app author's side: a tree of plain objects whose
// exposed methods answer URLs (`/a/b` → `root.a.b`, `index` for a node's own path, `default`
// for the rest), as a native app.
//
// Handlers are called `handler.call(node, args, kwargs, ctx)`: `args` are the path segments left
// over (CherryPy's *args), `kwargs` the query string then form body (CherryPy's **kwargs; repeated
// names become arrays), `ctx.response` takes the status and headers (CherryPy's thread-local
// `cherrypy.response`, which an event loop cannot have).

import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import { ProtocolError } from '../../protocols/common/errors.ts';
import type { AppBody, BodyChunk, Environ, HeaderList, NativeApp, StartResponse } from './types.ts';
import { addKwarg, DEFAULT_MAX_FORM_BYTES, parseFormBody, parseQuery, type Kwargs } from './form.ts';
import { encodePath, fromByteString, joinPath } from './path.ts';
import { native } from './resolve.ts';
import { isThenable } from './run.ts';

export type { FilePart, FormValue, KwValue, Kwargs } from './form.ts';

/** What a handler may return: text (sent as UTF-8), bytes, a stream of either, or nothing. */
export type HandlerResult = AppBody;

export interface DispatchContext {
  readonly environ: Environ;
  readonly request: DispatchRequest;
  readonly response: DispatchResponse;
  /** Aborts when the client goes away or the deadline passes. */
  readonly signal: AbortSignal;
}

export interface DispatchRequest {
  readonly method: string;
  /** PATH_INFO decoded as UTF-8 (as latin1 when it is not UTF-8), like CherryPy's `path_info`. */
  readonly pathInfo: string;
  readonly queryString: string;
  /** The request body, unless a form body was parsed into kwargs. */
  readonly body: Readable;
}

export type Handler = (args: string[], kwargs: Kwargs, ctx: DispatchContext) => HandlerResult | Promise<HandlerResult>;

export interface ExposeOptions {
  /**
   * How many leftover path segments the handler takes. More is a 404 (CherryPy: a handler without
   * `*args`). Default: any number.
   */
  readonly maxArgs?: number;
  /**
   * The keyword names the handler takes. Another name is a 404 when it came in the query string,
   * a 400 when it came in the body (CherryPy: a handler without `**kwargs`). Default: any name.
   */
  readonly kwargs?: readonly string[];
}

/** What `expose()` recorded for a handler, in the form dispatch reads it per request. */
interface Exposed {
  readonly maxArgs: number | undefined;
  /** The keyword names allowed; undefined = any. */
  readonly allowed: ReadonlySet<string> | undefined;
}

const EXPOSED = new WeakMap<object, Exposed>();

/**
 * Marks a function as a page handler (CherryPy's `@cherrypy.expose`) and returns it. Works on a
 * method (`expose(Root.prototype.page)`) or a field (`page = expose((args, kwargs, ctx) => …)`).
 */
export function expose<F extends Handler>(fn: F, options: ExposeOptions = {}): F {
  if (typeof fn !== 'function') throw new TypeError('postern: expose() takes a function');
  // The allowed names as a set once, not one per request.
  EXPOSED.set(fn, Object.freeze({ maxArgs: options.maxArgs, allowed: options.kwargs === undefined ? undefined : new Set(options.kwargs) }));
  return fn;
}

export function isExposed(value: unknown): value is Handler {
  return typeof value === 'function' && EXPOSED.has(value);
}

/** Thrown by a handler (or by dispatch) to answer with a status and a short text body. */
export class HTTPError extends Error {
  readonly status: number;
  constructor(status: number, message?: string) {
    super(message ?? STATUS_CODES[status] ?? String(status));
    this.name = 'HTTPError';
    this.status = status;
  }
}

/** Response headers with case-insensitive names that keep the case they were first set with. */
export class ResponseHeaders {
  #list: Array<[string, string]> = [];

  constructor(init: ReadonlyArray<readonly [string, string]> = []) {
    for (const [n, v] of init) this.#list.push([n, v]);
  }

  get(name: string): string | undefined {
    const lower = name.toLowerCase();
    for (const [n, v] of this.#list) if (n.toLowerCase() === lower) return v;
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replaces every header of that name with one. */
  set(name: string, value: string): this {
    const lower = name.toLowerCase();
    const i = this.#list.findIndex(([n]) => n.toLowerCase() === lower);
    if (i === -1) {
      this.#list.push([name, value]);
      return this;
    }
    (this.#list[i] as [string, string])[1] = value;
    for (let j = i + 1; j < this.#list.length; j++) {
      if ((this.#list[j] as [string, string])[0].toLowerCase() === lower) {
        this.#list = this.#list.filter(([n], k) => k <= i || n.toLowerCase() !== lower);
        break;
      }
    }
    return this;
  }

  /** Adds a header, keeping others of the same name (Set-Cookie). */
  append(name: string, value: string): this {
    this.#list.push([name, value]);
    return this;
  }

  delete(name: string): this {
    const lower = name.toLowerCase();
    this.#list = this.#list.filter(([n]) => n.toLowerCase() !== lower);
    return this;
  }

  entries(): Array<[string, string]> {
    return this.#list.map(([n, v]) => [n, v]);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries()[Symbol.iterator]();
  }
}

export class DispatchResponse {
  /** A number, or `"404 Custom reason"`. */
  status: number | string = 200;
  /** CherryPy's default is `text/html`; a `text/*` type without charset gains `;charset=utf-8` for text bodies. */
  readonly headers = new ResponseHeaders([['Content-Type', 'text/html']]);
}

export interface ObjectAppOptions {
  /** Largest urlencoded or multipart body parsed into kwargs; past it, 413. Default 1 MiB. */
  readonly maxFormBytes?: number;
}

// CherryPy maps every ASCII punctuation char of a segment to `_` before the attribute lookup, so
// `/page.html` finds `page_html`. (string.punctuation)
const PUNCT = new Uint8Array(128);
for (const c of '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~') PUNCT[c.charCodeAt(0)] = 1;

function attributeName(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    out += c < 128 && PUNCT[c] === 1 ? '_' : segment[i];
  }
  return out;
}

// Never reachable from a URL: the prototype machinery and everything every object inherits.
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype', 'caller', 'callee', 'arguments']);

/** `node[name]`, but only properties the app defined, never Object/Function built-ins. */
function lookup(node: unknown, name: string): unknown {
  if ((typeof node !== 'object' && typeof node !== 'function') || node === null || FORBIDDEN.has(name)) return undefined;
  for (let o: object | null = node; o !== null && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.hasOwn(o, name)) return Reflect.get(o, name, node);
  }
  return undefined;
}

interface Found {
  readonly handler: Handler;
  readonly self: unknown;
  readonly args: string[];
  /** Found as the `index` of the last node: CherryPy redirects `/dir` to `/dir/` then. */
  readonly isIndex: boolean;
}

/** The non-empty segments of `path` between slashes (`split('/')` without the empty ones). */
function pathSegments(path: string): string[] {
  const out: string[] = [];
  let from = 0;
  while (from <= path.length) {
    let to = path.indexOf('/', from);
    if (to === -1) to = path.length;
    if (to > from) out.push(path.slice(from, to));
    from = to + 1;
  }
  return out;
}

/** CherryPy 18 `Dispatcher.find_handler`, without `_cp_dispatch` and config. */
export function findHandler(root: object, pathInfo: string): Found | undefined {
  const fullpath = pathSegments(pathInfo);
  fullpath.push('index');
  // [parent, node, segments left after it]
  const trail: Array<[unknown, unknown, number]> = [[undefined, root, fullpath.length]];
  let node: unknown = root;
  for (let i = 0; i < fullpath.length; i++) {
    const parent = node;
    node = lookup(node, attributeName(fullpath[i] as string));
    trail.push([parent, node, fullpath.length - i - 1]);
  }
  const last = trail.length - 1;
  for (let i = last; i >= 0; i--) {
    const [parent, candidate, left] = trail[i] as [unknown, unknown, number];
    if (candidate === undefined || candidate === null) continue;
    const def = lookup(candidate, 'default');
    if (isExposed(def)) {
      return { handler: def, self: candidate, args: fullpath.slice(fullpath.length - left, -1), isIndex: false };
    }
    if (isExposed(candidate)) {
      return { handler: candidate, self: parent, args: fullpath.slice(fullpath.length - left, -1), isIndex: i === last };
    }
  }
  return undefined;
}

function plain(startResponse: StartResponse, status: number, text: string, extra: HeaderList = []): string {
  startResponse(`${status} ${STATUS_CODES[status] ?? ''}`, [['Content-Type', 'text/plain;charset=utf-8'], ...extra]);
  return text;
}

function statusLine(status: number | string): string {
  if (typeof status === 'number') return `${status} ${STATUS_CODES[status] ?? ''}`;
  return status.length === 3 ? `${status} ${STATUS_CODES[Number(status)] ?? ''}` : status;
}

function isText(v: unknown): v is string {
  return typeof v === 'string';
}

/**
 * A native app that dispatches on a tree of objects, CherryPy style:
 * - `/a/b` looks up `root.a.b`; segment punctuation is `_` for the lookup (`/a.html` → `a_html`);
 * - a node answers its own path with an exposed `index`, and `/node` then redirects (301) to `/node/`;
 * - an exposed `default` on the deepest node that has one takes the remaining segments as args;
 * - nothing found → 404; more args or other kwargs than `expose()` allowed → 404 (400 for body names);
 * - kwargs from the query string, then from an urlencoded or multipart body (POST, PUT, PATCH),
 *   bounded by `maxFormBytes` (413); text that is not valid in its charset → 404 (query) / 400 (body).
 * Handlers run with `this` = the node they belong to.
 */
export function objectApp(root: object, options: ObjectAppOptions = {}): NativeApp {
  const maxFormBytes = options.maxFormBytes ?? DEFAULT_MAX_FORM_BYTES;
  // Not async: a GET (no form body to read) to a handler that answers at once is dispatched and
  // answered without a promise, as the runner allows (RUN_SETTLED, src/app/run.ts); only reading a
  // form body or a handler's own promise takes one. The example tree's "Hello World" behind
  // nginx, one connection per request, had paid a promise, an await and a tick per request.
  const app: NativeApp = (environ, startResponse) => {
    const pathInfo = fromByteString(environ.PATH_INFO);
    const found = findHandler(root, pathInfo);
    if (found === undefined) return plain(startResponse, 404, 'Not Found\n');
    const spec = EXPOSED.get(found.handler);
    if (spec?.maxArgs !== undefined && found.args.length > spec.maxArgs) return plain(startResponse, 404, 'Not Found\n');
    if (found.isIndex && !pathInfo.endsWith('/')) {
      const qs = environ.QUERY_STRING;
      const location = encodePath(joinPath(environ.SCRIPT_NAME, environ.PATH_INFO) + '/') + (qs === '' ? '' : `?${qs}`);
      return plain(startResponse, 301, 'Moved Permanently\n', [['Location', location]]);
    }
    let kwargs: Kwargs;
    try {
      kwargs = parseQuery(environ.QUERY_STRING);
    } catch (err) {
      return refused(err, startResponse);
    }
    const method = environ.REQUEST_METHOD;
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') return withForm(found, spec, kwargs, environ, pathInfo, startResponse, maxFormBytes);
    return callHandler(found, spec, kwargs, EMPTY_SET, environ, pathInfo, startResponse);
  };
  return native(app);
}

/** A request's query or form that could not be read: its status, or rethrown. */
function refused(err: unknown, startResponse: StartResponse): string {
  if (err instanceof ProtocolError && err.httpStatus !== 0) return plain(startResponse, err.httpStatus, `${STATUS_CODES[err.httpStatus] ?? 'Error'}\n`);
  throw err;
}

/** POST, PUT, PATCH: the urlencoded or multipart body joins the query's kwargs, then the handler runs. */
async function withForm(found: Found, spec: Exposed | undefined, kwargs: Kwargs, environ: Environ, pathInfo: string, startResponse: StartResponse, maxFormBytes: number): Promise<AppBody | Iterable<BodyChunk>> {
  let bodyNames: ReadonlySet<string> = EMPTY_SET;
  try {
    const form = await parseFormBody(environ['postern.input'], environ.CONTENT_TYPE, environ.CONTENT_LENGTH, maxFormBytes);
    if (form !== undefined) {
      bodyNames = new Set(form.keys());
      for (const [k, v] of form) addKwarg(kwargs, k, v);
    }
  } catch (err) {
    return refused(err, startResponse);
  }
  return callHandler(found, spec, kwargs, bodyNames, environ, pathInfo, startResponse);
}

/** The kwargs checked against what the handler takes, then the handler called and its answer started. */
function callHandler(found: Found, spec: Exposed | undefined, kwargs: Kwargs, bodyNames: ReadonlySet<string>, environ: Environ, pathInfo: string, startResponse: StartResponse): AppBody | Iterable<BodyChunk> | Promise<AppBody | Iterable<BodyChunk>> {
  const allowed = spec?.allowed;
  if (allowed !== undefined && kwargs.size > 0) {
    let status = 0;
    for (const name of kwargs.keys()) {
      if (allowed.has(name)) continue;
      if (!bodyNames.has(name)) {
        status = 404;
        break;
      }
      status = 400;
    }
    if (status !== 0) return plain(startResponse, status, `${STATUS_CODES[status] ?? ''}\n`);
  }
  const response = new DispatchResponse();
  const ctx: DispatchContext = new Context(environ, new Request(environ, pathInfo), response);
  let result: HandlerResult | Promise<HandlerResult>;
  try {
    result = found.handler.call(found.self, found.args, kwargs, ctx);
  } catch (err) {
    return handlerFailed(err, startResponse);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then((settled) => answer(settled, response, startResponse), (err: unknown) => handlerFailed(err, startResponse));
  }
  return answer(result, response, startResponse);
}

/** An HTTPError a handler threw becomes its answer; anything else goes to the runner (a 500). */
function handlerFailed(err: unknown, startResponse: StartResponse): string {
  if (err instanceof HTTPError) return plain(startResponse, err.status, `${err.message}\n`);
  throw err;
}

/** Starts the handler's answer with the status and headers it set. */
function answer(result: HandlerResult, response: DispatchResponse, startResponse: StartResponse): AppBody | Iterable<BodyChunk> {
  const headers = response.headers;
  const textual = isText(result) || (typeof result === 'object' && result !== null && !(result instanceof Uint8Array));
  const type = headers.get('Content-Type');
  // CherryPy's encode tool: a text/* type of a text body gains its charset, with no space.
  if (textual && type !== undefined && type.toLowerCase().startsWith('text/') && !type.toLowerCase().includes('charset')) {
    headers.set('Content-Type', `${type};charset=utf-8`);
  }
  startResponse(statusLine(response.status), headers.entries());
  return result as AppBody | Iterable<BodyChunk>;
}

const EMPTY_SET: ReadonlySet<string> = new Set();

// The body and the signal are read from the environ when a handler asks: on a server-built environ
// reading either makes it (a stream, an AbortController: src/environ.ts), which most handlers never
// need. Getters on a class, not on each object (per-object accessors are what is slow). Measured
// (Node 20, bench/hot-path.ts --app object, tsc build): 7.7 → 4.6 µs per request.
class Request implements DispatchRequest {
  readonly method: string;
  readonly pathInfo: string;
  readonly queryString: string;
  readonly #environ: Environ;
  constructor(environ: Environ, pathInfo: string) {
    this.#environ = environ;
    this.method = environ.REQUEST_METHOD;
    this.pathInfo = pathInfo;
    this.queryString = environ.QUERY_STRING;
  }
  get body(): Readable {
    return this.#environ['postern.input'];
  }
}

class Context implements DispatchContext {
  readonly environ: Environ;
  readonly request: DispatchRequest;
  readonly response: DispatchResponse;
  constructor(environ: Environ, request: DispatchRequest, response: DispatchResponse) {
    this.environ = environ;
    this.request = request;
    this.response = response;
  }
  get signal(): AbortSignal {
    return this.environ['postern.signal'];
  }
}
