// What both Node `(req, res)` bridges share, from the adapter's side: the public types and errors,
// the request's header fields as node:http would present them, the socket facts, and the call
// into the handler with its `next`.

import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { Duplex, type DuplexOptions } from 'node:stream';
import type { AppBody, Environ, StartResponse } from '../types.ts';
import { isFieldValue, isToken } from '../../../protocols/common/head.ts';
import { decimalParam } from '../../environ.ts';
import type { TargetPath } from './target.ts';

export type NodeNext = (err?: unknown) => void;
export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: NodeNext) => unknown;

/**
 * How a request reaches a Node handler. `direct` (the default): genuine `IncomingMessage` and
 * `ServerResponse` objects built from the environ, the response head read off what
 * `ServerResponse` writes. `replay`: the request is written out as HTTP/1.1 text into a private
 * `http.Server` and the response parsed back (slower; kept as the escape hatch for an app the
 * direct bridge mishandles, and as the tests' oracle).
 */
export type NodeBridge = 'direct' | 'replay';

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
   * `replay` only: the largest request head handed to node:http (default 1 MiB). The gateway's
   * `maxParamsBytes` is the real limit; this only keeps node:http's own 16 KiB default from
   * cutting in first.
   */
  readonly maxHeadBytes?: number;
  /** `direct` (default) or `replay`; see NodeBridge. */
  readonly bridge?: NodeBridge;
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
  /** The request could not be presented to node:http (a head over `maxHeadBytes`, a malformed value). */
  BAD_REQUEST: 'POSTERN_ERR_NODE_REQUEST',
  /** The app closed the connection (res.destroy(), socket.destroy()) before its response was complete. */
  CLOSED: 'POSTERN_ERR_NODE_CLOSED',
  /** The request body ended before CONTENT_LENGTH bytes. */
  TRUNCATED: 'POSTERN_ERR_NODE_BODY_TRUNCATED',
} as const;

export function adapterError(code: string, message: string, cause?: unknown): Error {
  const err = new Error(`postern: ${message}`, cause === undefined ? undefined : { cause });
  (err as Error & { code: string }).code = code;
  return err;
}

// Request fields the bridges set themselves (framing, host) or that belong to the hop between
// client and front server, which has already dealt with them (RFC 9110 §7.6.1; Expect: 100-continue).
const SKIP_REQUEST_FIELDS = new Set([
  'content-length', 'content-type', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection',
  'te', 'trailer', 'upgrade', 'expect', 'http2-settings',
]);

// `HTTP_X_FORWARDED_FOR` → `x-forwarded-for`, or '' for a field to skip, or null for a name that is
// not a token. Real traffic repeats a few dozen names, so a bounded cache saves the toLowerCase +
// replace + checks per field.
const FIELD_NAMES = new Map<string, string | null>();
function fieldName(cgiName: string): string | null {
  let name = FIELD_NAMES.get(cgiName);
  if (name === undefined) {
    const lower = cgiName.slice(5).toLowerCase().replaceAll('_', '-');
    name = SKIP_REQUEST_FIELDS.has(lower) ? '' : isToken(lower) ? lower : null;
    if (FIELD_NAMES.size < 512) FIELD_NAMES.set(cgiName, name);
  }
  return name;
}

/** Body framing of the request as node:http presents it: none, exactly N bytes, or chunked (length unknown). */
export const FRAMING_NONE = 0;
export const FRAMING_FIXED = 1;
export const FRAMING_CHUNKED = 2;

/** The request's header fields as a flat `[name, value, …]` list (rawHeaders order), and its body framing. */
export interface RequestFields {
  readonly raw: string[];
  readonly framing: number;
  /** The CONTENT_LENGTH for FRAMING_FIXED, else 0. */
  readonly length: number;
}

/**
 * The header fields node:http would give the app for this environ: `HTTP_*` in environ order
 * (names lower-cased, hop-by-hop and framing fields left out), then a Host built from
 * SERVER_NAME/SERVER_PORT when none was sent, then Content-Type and the framing. A body of
 * unknown length is presented as chunked (SvelteKit's `get_raw_body` reads nothing otherwise).
 * Returns a status (400) when a name or value could not travel in an HTTP/1.1 head.
 */
export function requestFields(environ: Environ): RequestFields | number {
  const raw: string[] = [];
  let hasHost = false;
  for (const key in environ) {
    if (key.charCodeAt(0) !== 0x48 || !key.startsWith('HTTP_')) continue;
    const value = environ[key];
    if (typeof value !== 'string') continue;
    const name = fieldName(key);
    if (name === '') continue;
    // A gateway param may hold any byte: never present CR/LF or a non-token name as a header.
    if (name === null || !isFieldValue(value)) return 400;
    if (name === 'host') hasHost = true;
    raw.push(name, value);
  }
  if (!hasHost) {
    const port = environ.SERVER_PORT;
    const scheme = environ['postern.url_scheme'];
    const dflt = (scheme === 'https' && port === '443') || (scheme !== 'https' && port === '80') || port === '' || port === undefined;
    const host = dflt ? environ.SERVER_NAME : `${environ.SERVER_NAME}:${port}`;
    if (typeof host === 'string' && host !== '' && isFieldValue(host)) raw.push('host', host);
  }
  const type = environ.CONTENT_TYPE;
  if (typeof type === 'string' && type !== '') {
    if (!isFieldValue(type)) return 400;
    raw.push('content-type', type);
  }
  const length = environ.CONTENT_LENGTH;
  if (typeof length === 'string' && length !== '') {
    const n = decimalParam(length);
    if (n < 0) return 400;
    raw.push('content-length', String(n));
    return { raw, framing: n > 0 ? FRAMING_FIXED : FRAMING_NONE, length: n };
  }
  if (typeof environ.HTTP_TRANSFER_ENCODING === 'string') {
    raw.push('transfer-encoding', 'chunked');
    return { raw, framing: FRAMING_CHUNKED, length: 0 };
  }
  return { raw, framing: FRAMING_NONE, length: 0 };
}

/** A port param as a number: 1 to 15 decimal digits, else undefined. */
export function portOf(v: unknown): number | undefined {
  const n = decimalParam(v);
  return n < 0 ? undefined : n;
}

/** The socket facts apps read (`req.ip`, `req.protocol`, `ctx.ip`), from the environ. */
export interface SocketFacts {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  remoteFamily: string | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  /** Express `req.protocol` and Koa `ctx.protocol` read this for `https`. */
  encrypted: true | undefined;
}

/**
 * What both Node bridges' in-memory sockets share: the socket facts from the environ, and the
 * net.Socket methods apps and frameworks call on `req.socket`. Timeouts are the gateway's business
 * (requestTimeoutMs); these keep apps that tune sockets working.
 */
export abstract class EnvironSocket extends Duplex implements SocketFacts {
  // `declare`: made by setSocketFacts' stores, in its order. As class fields they were each first
  // defined as undefined on every socket (a define per field, through an inline cache that Node's
  // many stream classes keep megamorphic in a real server), then stored again.
  declare remoteAddress: string | undefined;
  declare remotePort: number | undefined;
  declare remoteFamily: string | undefined;
  declare localAddress: string | undefined;
  declare localPort: number | undefined;
  declare encrypted: true | undefined;

  constructor(environ: Environ, options: DuplexOptions) {
    super(options);
    setSocketFacts(this, environ);
  }

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
    return socketAddress(this);
  }
}

export function setSocketFacts(target: SocketFacts, environ: Environ): void {
  const ra = environ.REMOTE_ADDR;
  const remote = typeof ra === 'string' && ra !== '' ? ra : undefined;
  target.remoteAddress = remote;
  target.remoteFamily = remote === undefined ? undefined : remote.includes(':') ? 'IPv6' : 'IPv4';
  target.remotePort = portOf(environ.REMOTE_PORT);
  const sa = environ.SERVER_ADDR;
  target.localAddress = typeof sa === 'string' && sa !== '' ? sa : undefined;
  target.localPort = portOf(environ.SERVER_PORT);
  target.encrypted = environ['postern.url_scheme'] === 'https' ? true : undefined;
}

/** `socket.address()` as net.Socket answers it, from the socket facts. */
export function socketAddress(facts: SocketFacts): { address: string; family: string; port: number } | Record<string, never> {
  const local = facts.localAddress;
  if (local === undefined) return {};
  return { address: local, family: local.includes(':') ? 'IPv6' : 'IPv4', port: facts.localPort ?? 0 };
}

/**
 * Calls the handler as a server's 'request' listener would: `next()` answers 404, `next(err)`
 * fails the request; a handler that throws or rejects fails it too.
 */
export function callHandler(handler: NodeHandler, req: IncomingMessage, res: ServerResponse, target: { appFailed(err: unknown): void }): void {
  const next: NodeNext = (err) => {
    if (err !== undefined && err !== null && err !== 'route' && err !== 'router') {
      target.appFailed(err);
    } else if (!res.headersSent) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('Not Found\n');
    } else if (!res.writableEnded) res.end();
  };
  try {
    const result = handler(req, res, next);
    if (typeof result === 'object' && result !== null && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (err: unknown) => target.appFailed(err));
    }
  } catch (err) {
    target.appFailed(err);
  }
}

/** A short text/plain answer for a request the bridge cannot present to the app. */
export function plainAnswer(startResponse: StartResponse, status: number, head: boolean): AppBody {
  const text = `${STATUS_CODES[status] ?? 'Error'}\n`;
  startResponse(`${status} ${STATUS_CODES[status] ?? 'Error'}`, [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(Buffer.byteLength(text))],
  ]);
  return head ? null : text;
}
