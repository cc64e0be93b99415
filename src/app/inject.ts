// Drives a Tree without a socket, from a test's side (fastify's light-my-request, hono's
// `app.request`): a request made of plain values in, the whole response out.

import { Readable } from 'node:stream';
import { encodeResponseHead, type HeaderList } from '../../protocols/common/head.ts';
import { ROLE, type Role } from '../../protocols/common/events.ts';
import { appendHeaderParams, buildEnviron, type EnvironContext } from '../environ.ts';
import type { Tree } from './tree.ts';
import { requestPath } from './path.ts';
import type { Protocol, Responder, RoleName } from './types.ts';

export interface InjectRequest {
  /** Default `GET`. */
  readonly method?: string;
  /** Origin-form `/path?query` as a client sends it (escapes kept), or an absolute URL. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Default `http`. Only `postern.protocol` changes: the params are always nginx-like. */
  readonly protocol?: Protocol;
  /** Default `responder`. */
  readonly role?: RoleName;
  /** FastCGI FILTER role: the FCGI_DATA stream's bytes. */
  readonly data?: string | Uint8Array;
  /** Default `127.0.0.1`. */
  readonly remoteAddress?: string;
  /** Extra params appended after the nginx-like ones (last wins), to play a particular front end. */
  readonly params?: ReadonlyArray<readonly [string, string]>;
  /** Set SCRIPT_NAME/PATH_INFO after the environ is built (the tree then splits PATH_INFO). */
  readonly scriptName?: string;
  readonly pathInfo?: string;
  /** Abort the request (the app sees `postern.signal`; the response ends aborted). */
  readonly signal?: AbortSignal;
  readonly trustForwardedProto?: boolean;
}

export interface InjectResponse {
  /** 0 when no head was sent (the request was aborted first). */
  readonly status: number;
  readonly reason: string;
  readonly headers: Array<[string, string]>;
  /** The first header of that name, case-insensitively. */
  header(name: string): string | undefined;
  readonly body: Buffer;
  /** The body decoded as UTF-8. */
  readonly text: string;
  /** The appStatus `end()` was called with (0 = success). */
  readonly appStatus: number;
}

const ROLE_NUMBER: Record<RoleName, Role> = { responder: ROLE.RESPONDER, authorizer: ROLE.AUTHORIZER, filter: ROLE.FILTER };

function bytes(v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** A finished byte stream (not object mode), like the body stream a connection hands over. */
function byteStream(data: string | Uint8Array | undefined): Readable {
  const stream = new Readable({ read: () => undefined });
  if (data !== undefined && data.length > 0) stream.push(bytes(data));
  stream.push(null);
  return stream;
}

/** Splits `http://h:1/p?q` into host, scheme and origin-form target; anything else (`/p?q`, `*`) passes through. */
function target(url: string): { requestUri: string; host: string | undefined; https: boolean } {
  if (!url.includes('://')) return { requestUri: url, host: undefined, https: false };
  const u = new URL(url);
  return { requestUri: `${u.pathname}${u.search}`, host: u.host, https: u.protocol === 'https:' };
}

/** The params nginx's default fastcgi_params would send for this request. */
export function injectParams(request: InjectRequest): string[] {
  const { requestUri, host, https } = target(request.url);
  const q = requestUri.indexOf('?');
  const path = requestPath(requestUri);
  const params: string[] = [
    'QUERY_STRING', q === -1 ? '' : requestUri.slice(q + 1),
    'REQUEST_METHOD', request.method ?? 'GET',
    'CONTENT_TYPE', '',
    'CONTENT_LENGTH', request.body === undefined ? '' : String(bytes(request.body).length),
    'SCRIPT_NAME', path,
    'REQUEST_URI', requestUri,
    'DOCUMENT_URI', path,
    'SERVER_PROTOCOL', 'HTTP/1.1',
    'REQUEST_SCHEME', https ? 'https' : 'http',
    'GATEWAY_INTERFACE', 'CGI/1.1',
    'REMOTE_ADDR', request.remoteAddress ?? '127.0.0.1',
    'REMOTE_PORT', '40000',
    'SERVER_ADDR', '127.0.0.1',
    'SERVER_PORT', https ? '443' : '80',
    'SERVER_NAME', 'localhost',
  ];
  if (https) params.push('HTTPS', 'on');
  const raw: string[] = [];
  if (host !== undefined) raw.push('Host', host);
  for (const [name, value] of Object.entries(request.headers ?? {})) raw.push(name, value);
  if (host === undefined && !raw.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'host')) raw.push('Host', 'localhost');
  appendHeaderParams(params, raw);
  for (const [name, value] of request.params ?? []) params.push(name, value);
  return params;
}

// Collects what the runner sends. It validates the head with the same encoder the sockets use, so
// an app that puts CR/LF in a header fails here exactly as it would behind nginx.
class CollectingResponder implements Responder {
  status = 0;
  reason = '';
  headers: Array<[string, string]> = [];
  chunks: Buffer[] = [];
  appStatus = -1;
  headSent = false;
  readonly #signal: AbortSignal | undefined;

  constructor(signal: AbortSignal | undefined) {
    this.#signal = signal;
  }

  get aborted(): boolean {
    return this.#signal?.aborted === true;
  }

  head(status: number, reason: string, headers: HeaderList): void {
    if (this.headSent) throw new Error('postern inject: head() called twice');
    encodeResponseHead('cgi', status, reason, headers);
    this.status = status;
    this.reason = reason;
    this.headers = headers.map(([n, v]) => [n, v]);
    this.headSent = true;
  }

  write(chunk: Uint8Array): boolean {
    if (!this.headSent) throw new Error('postern inject: write() before head()');
    if (!this.aborted) this.chunks.push(Buffer.from(chunk));
    return true;
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  end(appStatus = 0): void {
    if (this.appStatus !== -1) throw new Error('postern inject: end() called twice');
    this.appStatus = appStatus;
  }
}

/**
 * Sends one request through the tree, with the environ built by `buildEnviron` from nginx-like
 * params (so inject and the sockets share every line of environ code), and collects the response.
 */
export async function inject(tree: Tree, request: InjectRequest): Promise<InjectResponse> {
  const role = request.role ?? 'responder';
  const params = injectParams(request);
  const signal = request.signal ?? new AbortController().signal;
  const base: EnvironContext = {
    protocol: request.protocol ?? 'http',
    input: byteStream(request.body),
    signal,
    trustForwardedProto: request.trustForwardedProto === true,
  };
  const ctx: EnvironContext = request.data === undefined ? base : { ...base, data: byteStream(request.data) };
  const environ = buildEnviron({ id: 1, params, role: ROLE_NUMBER[role], keepConn: false, contentLength: -1 }, ctx);
  if (request.scriptName !== undefined) environ.SCRIPT_NAME = request.scriptName;
  if (request.pathInfo !== undefined) environ.PATH_INFO = request.pathInfo;

  const responder = new CollectingResponder(request.signal);
  await tree.handle(environ, responder);
  if (responder.appStatus === -1) throw new Error('postern inject: the tree returned without ending the response');
  const out = Buffer.concat(responder.chunks);
  const headers = responder.headers;
  return {
    status: responder.status,
    reason: responder.reason,
    headers,
    header(name: string): string | undefined {
      const lower = name.toLowerCase();
      return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
    },
    body: out,
    text: out.toString('utf8'),
    appStatus: responder.appStatus,
  };
}
