// The one module that knows CGI semantics: it turns what a front server sent (FastCGI params,
// SCGI headers, uwsgi vars, or a node:http request) into the protocol-neutral Environ.
//
// Path rule (the same result for every front end, see PROTOCOLS.md "What the front servers send"):
//   PATH_INFO   = the path of REQUEST_URI, %XX-decoded to bytes, with `.`/`..` segments removed and
//                 runs of `/` merged (what nginx and Apache route on by default);
//                 without REQUEST_URI: SCRIPT_NAME + PATH_INFO as sent (already decoded by the
//                 front server), else DOCUMENT_URI, normalised the same way.
//   SCRIPT_NAME = "" (the tree adds the mount prefix).
// nginx FastCGI puts the whole path in SCRIPT_NAME, nginx uwsgi in PATH_INFO, nginx SCGI in neither,
// Apache mod_proxy_uwsgi splits at its ProxyPass prefix: only REQUEST_URI is sent alike by all six
// (and by the HTTP listener), so the split is the tree's alone. A rewrite inside the front server is
// not seen, since REQUEST_URI is the client's request target.
//
// PATH_INFO and SCRIPT_NAME are byte strings (one char per byte, latin1), like every other value:
// UTF-8 `é` arrives as `Ã©`, as PEP 3333 prescribes for WSGI. Decode with
// `Buffer.from(s, 'latin1').toString('utf8')` (or `fromByteString` in src/app/path.ts).
//
// Duplicate names: the last one wins (the spec is silent; Go and flup do the same), except repeated
// HTTP_* request headers, which are joined with ", " ("; " for HTTP_COOKIE) as HTTP joins them. Empty
// CONTENT_LENGTH and CONTENT_TYPE count as absent (nginx sends both empty when there is no body),
// and so does CONTENT_LENGTH "0", whatever the method: SCGI must send it on every request (nginx
// and Apache send "0" without a body) where FastCGI, uwsgi and HTTP leave it empty or out, so
// keeping it would tell the app which protocol carried the request. The body is empty either way,
// and WSGI apps read absent and "0" alike (PEP 3333: "may be empty or absent").
// HTTP_CONTENT_TYPE/HTTP_CONTENT_LENGTH (nginx forwards them as headers too) and HTTP_PROXY
// (httpoxy, CVE-2016-5385) are dropped. Params named `postern.*` are ignored: those keys are ours.

import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { RequestHead } from '../protocols/common/events.ts';
import { internalized } from '../protocols/common/latin1.ts';
import type { AbortNotifier, Environ, EnvironProtocol, RoleName } from './app/types.ts';
import { normalizePath, requestPath, requestQuery } from './app/path.ts';

/**
 * Where an environ's `postern.input` and `postern.signal` come from, read when an app first asks:
 * a connection can implement both as getters that make the stream or AbortController then.
 */
export interface EnvironSource {
  /** The request body stream. */
  readonly input: Readable;
  readonly signal: AbortSignal;
}

/** The connection-level facts `buildEnviron` falls back on, besides the params. */
export interface EnvironAddressing {
  readonly protocol: EnvironProtocol;
  /** The peer of our socket (the front server); used only when REMOTE_ADDR/REMOTE_PORT are not sent. */
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  /** Let HTTP_X_FORWARDED_PROTO decide the URL scheme (only behind a proxy you trust). */
  readonly trustForwardedProto?: boolean;
}

export interface EnvironContext extends EnvironSource, EnvironAddressing {
  /** FastCGI FILTER role: the FCGI_DATA stream. */
  readonly data?: Readable;
}

// Indexed by the FastCGI role number (spec §5.1); SCGI and uwsgi heads say RESPONDER.
const ROLE_NAMES: readonly RoleName[] = ['responder', 'responder', 'authorizer', 'filter'];

/**
 * The environ object. Its params are plain own properties; `postern.input` and `postern.signal`
 * are accessors on this shared prototype that read the request's context only when an app asks,
 * so a connection can make its AbortController and body stream on first use. Measured (Node 20,
 * bench/environ.ts): `new AbortController()` costs 2.2 µs, a body Readable made and ended about
 * 1 µs, while most apps answering a GET touch neither. Assigning either key makes it an own
 * property, as on a plain object. (A per-object accessor was slower than eager creation, 13 vs
 * 8.7 µs per request: it is the shared prototype that makes this cheap.)
 */
class PosternEnviron {
  readonly #source: EnvironSource;
  constructor(source: EnvironSource) {
    this.#source = source;
  }
  get 'postern.input'(): Readable {
    return this.#source.input;
  }
  set 'postern.input'(value: unknown) {
    own(this, 'postern.input', value);
  }
  get 'postern.signal'(): AbortSignal {
    return this.#source.signal;
  }
  set 'postern.signal'(value: unknown) {
    own(this, 'postern.signal', value);
  }
  /** The source's cheap abort notification, when it has one and the signal was not replaced. */
  static notifierOf(env: PosternEnviron): AbortNotifier | undefined {
    const source = env.#source as Partial<AbortNotifier>;
    return typeof source.onAbort === 'function' && !Object.hasOwn(env, 'postern.signal') ? (source as AbortNotifier) : undefined;
  }
}

/**
 * Calls `listener` once when the request is aborted (at once if it was), without making the
 * request's AbortSignal when the connection can say so more cheaply (2.2 µs a request on Node 20,
 * see PosternEnviron). Returns a function that stops listening (a no-op where there is nothing to
 * remove).
 */
export function onEnvironAbort(environ: Environ, listener: () => void): () => void {
  const notifier = environ instanceof PosternEnviron ? PosternEnviron.notifierOf(environ) : undefined;
  if (notifier !== undefined) {
    notifier.onAbort(listener);
    return noop;
  }
  const signal = environ['postern.signal'] as unknown;
  if (!(signal instanceof AbortSignal)) return noop;
  if (signal.aborted) {
    listener();
    return noop;
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

function noop(): void {
  // nothing to undo
}

function own(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/**
 * A decimal param's value (CONTENT_LENGTH, REMOTE_PORT, SERVER_PORT): 1 to 15 ASCII digits, so
 * that the number is exact; -1 for anything else, an empty string or a non-string included. A loop,
 * not a regex test and Number(): these run for every request.
 */
export function decimalParam(v: unknown): number {
  if (typeof v !== 'string' || v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Whether `environ` was made by `buildEnviron` (its input and signal may not exist yet). */
export function isBuiltEnviron(environ: Environ): boolean {
  return environ instanceof PosternEnviron;
}

// Why params are stored through a function per name. `env[name] = value` is a keyed store, and
// V8 turns an object into a dictionary (slow properties) once it has more than 12 properties added
// that way beyond its in-object space (JSObject::TooManyFastProperties, StoreOrigin::kMaybeKeyed).
// nginx's 19 stock params plus a browser's 13 headers crossed it: every environ was then a hash
// table, each read of it a lookup, and every `for…in` over it (the Node bridge's header fields,
// the Fetch bridge's Headers) collected and sorted its keys anew. A named store (`o.NAME = v`)
// has V8's ordinary limit (128), so each param name gets a tiny compiled setter, made once; the
// environ then keeps fast properties and shares hidden classes with every request of that layout.
// Measured (Node 20.20.2, a class instance, 32 params added in turn; build, then one for…in):
// keyed 0.97 µs and 2.1 µs, named setters 0.40 µs and 0.66 µs. Node 24.22.3: 0.91/1.9 against
// 0.65/1.0. Names past MAX_SETTERS, or a process run with --disallow-code-generation-from-strings,
// fall back to the keyed store. The name enters the code only as a JSON string literal.
type ParamSetter = (env: Environ, value: string) => void;
const SETTERS = new Map<string, ParamSetter>();
const MAX_SETTERS = 512;
const MAX_SETTER_NAME = 128;
let setterCodegen = true;

function storeParam(env: Environ, name: string, value: string): void {
  const set = SETTERS.get(name) ?? makeSetter(name);
  if (set !== undefined) set(env, value);
  else env[name] = value;
}

/** The named setter for `name`, made and remembered; undefined where the keyed store must do. */
function makeSetter(name: string): ParamSetter | undefined {
  if (!setterCodegen || SETTERS.size >= MAX_SETTERS || name.length > MAX_SETTER_NAME) return undefined;
  let set: ParamSetter;
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- see the note above: a named store per param name.
    set = new Function('env', 'value', `env[${JSON.stringify(name)}] = value;`) as ParamSetter;
  } catch {
    setterCodegen = false;
    return undefined;
  }
  SETTERS.set(name, set);
  return set;
}

/**
 * Builds the environ from a request head's flat latin1 params list, in one pass over the params.
 * Never throws on odd input: missing WSGI keys get defaults (REQUEST_METHOD GET, SERVER_PROTOCOL
 * HTTP/1.1, QUERY_STRING from REQUEST_URI or "", SERVER_NAME/SERVER_PORT from HTTP_HOST, then the
 * local address, then `localhost` and the scheme's port). The body stream and the signal are
 * read from `source` (default `ctx`) when the app first reads `postern.input` / `postern.signal`,
 * not here (see PosternEnviron); a connection passes its per-connection `ctx` and the request.
 */
export function buildEnviron(head: RequestHead, ctx: EnvironContext): Environ;
export function buildEnviron(head: RequestHead, ctx: EnvironAddressing & { readonly data?: Readable }, source: EnvironSource): Environ;
export function buildEnviron(head: RequestHead, ctx: EnvironAddressing & { readonly data?: Readable }, source: EnvironSource = ctx as EnvironContext): Environ {
  const params = head.params;
  // Params are added in the order they arrive, onto an empty instance, and the required keys after
  // them: a front server sends the same names in the same order, so environs still share hidden
  // classes. Measured (Node 20, 24 nginx params, strings reused): 1.2 µs per environ when the
  // params were added to a 12-key literal, 0.3–0.5 µs added to an empty instance first.
  const env = new PosternEnviron(source) as unknown as Environ;
  let requestUri: string | undefined;
  let scriptName = '';
  let pathInfo = '';
  let documentUri: string | undefined;
  let query: string | undefined;
  let contentType = '';
  let contentLength = '';
  let https = '';
  let requestScheme = '';
  let host = '';
  let forwardedProto: string | undefined;
  const trustForwarded = ctx.trustForwardedProto === true;

  const n = params.length - 1;
  // Names arrive internalized (the decoders' KnownNames, appendHeaderParams), so the comparisons
  // below are pointer compares and each store needs no string-table lookup.
  for (let i = 0; i < n; i += 2) {
    const name = params[i] as string;
    const value = params[i + 1] as string;
    const c0 = name.charCodeAt(0);
    if (c0 === 0x48 /* H */) {
      if (name.startsWith('HTTP_')) {
        if (name === 'HTTP_HOST') host = value;
        else if (name === 'HTTP_CONTENT_TYPE' || name === 'HTTP_CONTENT_LENGTH' || name === 'HTTP_PROXY') continue;
        else if (trustForwarded && name === 'HTTP_X_FORWARDED_PROTO') forwardedProto = value;
        // A header sent twice arrives as two params (nginx 1.22 passes each Cookie line as its own
        // HTTP_COOKIE): join them as HTTP does (RFC 9110 §5.3; Cookie with "; ", RFC 6265 §5.4)
        // instead of keeping only the last. Host stays last-wins.
        if (name !== 'HTTP_HOST') {
          const prev = env[name as `HTTP_${string}`];
          if (prev !== undefined) {
            env[name as `HTTP_${string}`] = prev + (name === 'HTTP_COOKIE' ? '; ' : ', ') + value;
            continue;
          }
        }
      } else if (name === 'HTTPS') {
        https = value;
      }
    } else if (c0 === 0x70 /* p */ && name.startsWith('postern.')) {
      continue;
    } else {
      switch (name) {
        case 'REQUEST_URI':
          requestUri = value;
          break;
        case 'SCRIPT_NAME':
          scriptName = value;
          continue;
        case 'PATH_INFO':
          pathInfo = value;
          continue;
        case 'QUERY_STRING':
          query = value;
          continue;
        case 'DOCUMENT_URI':
          documentUri = value;
          break;
        case 'CONTENT_TYPE':
          contentType = value;
          continue;
        case 'CONTENT_LENGTH':
          contentLength = value;
          continue;
        case 'REQUEST_SCHEME':
          requestScheme = value;
          break;
      }
    }
    storeParam(env, name, value);
  }

  if (env.REQUEST_METHOD === undefined) env.REQUEST_METHOD = 'GET';
  env.SCRIPT_NAME = '';
  if (requestUri !== undefined) {
    env.PATH_INFO = requestPath(requestUri);
    env.QUERY_STRING = query ?? requestQuery(requestUri);
  } else {
    const joined = scriptName + pathInfo;
    env.PATH_INFO = normalizePath(joined === '' && documentUri !== undefined ? documentUri : joined);
    env.QUERY_STRING = query ?? '';
  }
  if (env.SERVER_PROTOCOL === undefined) env.SERVER_PROTOCOL = 'HTTP/1.1';
  if (contentType !== '') env.CONTENT_TYPE = contentType;
  if (contentLength !== '' && contentLength !== '0') env.CONTENT_LENGTH = contentLength;

  const serverName = env.SERVER_NAME ?? '';
  const serverPort = env.SERVER_PORT ?? '';
  let scheme: 'http' | 'https' = https === 'on' || https === '1' || https.toLowerCase() === 'on' || requestScheme.toLowerCase() === 'https' ? 'https' : 'http';
  if (forwardedProto !== undefined) scheme = schemeFromForwarded(forwardedProto, scheme);
  env['postern.protocol'] = ctx.protocol;
  env['postern.url_scheme'] = scheme;
  env['postern.role'] = ROLE_NAMES[head.role] ?? 'responder';

  if (serverName === '' || serverPort === '') {
    const colon = hostPortIndex(host);
    env.SERVER_NAME = serverName !== '' ? serverName : host !== '' ? (colon === -1 ? host : host.slice(0, colon)) : ctx.localAddress ?? 'localhost';
    env.SERVER_PORT = serverPort !== '' ? serverPort : colon !== -1 ? host.slice(colon + 1) : scheme === 'https' ? '443' : '80';
  }
  if (env.REMOTE_ADDR === undefined && ctx.remoteAddress !== undefined) env.REMOTE_ADDR = ctx.remoteAddress;
  if (env.REMOTE_PORT === undefined && ctx.remotePort !== undefined) env.REMOTE_PORT = String(ctx.remotePort);
  if (ctx.data !== undefined) env['postern.data'] = ctx.data;
  return env;
}

/** Index of the `:` before a port in a Host value (`[::1]:8080` aware), or -1. */
function hostPortIndex(host: string): number {
  const colon = host.lastIndexOf(':');
  if (colon === -1) return -1;
  const bracket = host.lastIndexOf(']');
  return bracket > colon ? -1 : colon;
}

/** The first hop's proto from `X-Forwarded-Proto: https, http`; anything else keeps `fallback`. */
function schemeFromForwarded(value: string, fallback: 'http' | 'https'): 'http' | 'https' {
  const comma = value.indexOf(',');
  const first = (comma === -1 ? value : value.slice(0, comma)).trim().toLowerCase();
  return first === 'https' ? 'https' : first === 'http' ? 'http' : fallback;
}

/**
 * The CGI name of a request header (`X-Foo` → `HTTP_X_FOO`), or undefined for a name holding `_`:
 * like nginx (`underscores_in_headers off`), so that `X_Foo` cannot pose as `X-Foo`.
 */
export function cgiHeaderName(name: string): string | undefined {
  let out = 'HTTP_';
  let plain = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5f) return undefined;
    if (c === 0x2d || (c >= 0x61 && c <= 0x7a)) plain = false;
  }
  if (plain) return out + name;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    out += c === 0x2d ? '_' : c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 0x20) : name[i];
  }
  return out;
}

/** `input` and `signal` are read when the app first asks (see PosternEnviron): they may be getters. */
export interface HttpEnvironContext extends EnvironSource {
  readonly trustForwardedProto?: boolean;
}

/**
 * The environ for a request on the node:http development listener (protocol `http`). It is built
 * from the same params nginx's fastcgi_params would send, through `buildEnviron`, so the two
 * paths cannot drift. Repeated headers are joined with `, ` (`; ` for Cookie), as nginx does.
 */
export function environFromHttp(req: IncomingMessage, ctx: HttpEnvironContext): Environ {
  const socket = req.socket;
  const url = req.url ?? '/';
  const tls = (socket as { encrypted?: boolean }).encrypted === true;
  const params: string[] = [
    'REQUEST_METHOD', req.method ?? 'GET',
    'REQUEST_URI', url,
    'QUERY_STRING', requestQuery(url),
    'SERVER_PROTOCOL', `HTTP/${req.httpVersion}`,
    'REQUEST_SCHEME', tls ? 'https' : 'http',
    'GATEWAY_INTERFACE', 'CGI/1.1',
  ];
  if (tls) params.push('HTTPS', 'on');
  if (socket.remoteAddress !== undefined) params.push('REMOTE_ADDR', socket.remoteAddress);
  if (socket.remotePort !== undefined) params.push('REMOTE_PORT', String(socket.remotePort));
  if (socket.localAddress !== undefined) params.push('SERVER_ADDR', socket.localAddress);
  if (socket.localPort !== undefined) params.push('SERVER_PORT', String(socket.localPort));
  appendHeaderParams(params, req.rawHeaders);
  const head: RequestHead = { id: 1, params, role: 1, keepConn: false, contentLength: -1 };
  return buildEnviron(head, ctx.trustForwardedProto === true ? HTTP_TRUSTING : HTTP, ctx);
}

/**
 * Appends request headers (a flat `[name, value, …]` list like `rawHeaders`) to a params list the
 * way a front server does: Content-Type/Content-Length without the `HTTP_` prefix, repeats joined.
 */
const HTTP: EnvironAddressing = { protocol: 'http' };
const HTTP_TRUSTING: EnvironAddressing = { protocol: 'http', trustForwardedProto: true };

export function appendHeaderParams(params: string[], rawHeaders: readonly string[]): void {
  let seen: Map<string, number> | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const rawName = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    const lower = rawName.toLowerCase();
    let name: string | undefined;
    if (lower === 'content-type') name = 'CONTENT_TYPE';
    else if (lower === 'content-length') name = 'CONTENT_LENGTH';
    else {
      const cgi = cgiHeaderName(rawName);
      name = cgi === undefined ? undefined : internalized(cgi);
    }
    if (name === undefined) continue;
    seen ??= new Map();
    const at = seen.get(name);
    if (at === undefined) {
      seen.set(name, params.length + 1);
      params.push(name, value);
    } else {
      params[at] += (name === 'HTTP_COOKIE' ? '; ' : ', ') + value;
    }
  }
}
