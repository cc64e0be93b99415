// The application contract, from the app's side: the environ it receives, the app shapes it may
// take, and the Responder through which a connection carries its answer back out.

import type { Readable } from 'node:stream';
import type { HeaderList } from '../../protocols/common/head.ts';

export type { HeaderList };

export type Protocol = 'fastcgi' | 'scgi' | 'uwsgi' | 'http';
/** What carried a request: a listener's protocol, or `cgi` for a plain CGI run (one request from the environment). */
export type EnvironProtocol = Protocol | 'cgi';
export type RoleName = 'responder' | 'authorizer' | 'filter';

/**
 * One request, in CGI/1.1 (RFC 3875) and WSGI (PEP 3333) names. Every protocol produces the same
 * environ; only the `postern.*` keys say which one carried it.
 *
 * On an environ the server (or `inject`) builds, `postern.input` and `postern.signal` are not own
 * properties. They are accessors on a shared prototype (PosternEnviron in src/environ.ts) that ask
 * the request for them only when read, so a connection makes the body stream and AbortController on
 * first use (most requests touch neither). Reading them works as usual and returns the same object
 * each time, and `'postern.input' in environ` is true; but `Object.hasOwn` is false and they stay out
 * of `Object.keys` / `Object.entries`, object spread, `Object.assign` and `JSON.stringify`, even
 * after they have been read. So a copy made with `{ ...environ }` has neither: pass the environ
 * itself on, or copy both keys explicitly. Assigning either key creates an ordinary own (enumerable)
 * property that hides the accessor, as on a plain object.
 */
export interface Environ {
  REQUEST_METHOD: string;
  SCRIPT_NAME: string;
  PATH_INFO: string;
  QUERY_STRING: string;
  SERVER_NAME: string;
  SERVER_PORT: string;
  SERVER_PROTOCOL: string;
  CONTENT_TYPE?: string;
  CONTENT_LENGTH?: string;
  REMOTE_ADDR?: string;
  REQUEST_URI?: string;
  /** Request headers, `HTTP_` + upper-case name with `-` as `_`. */
  [cgiName: `HTTP_${string}`]: string | undefined;
  /** Which listener protocol carried the request. */
  'postern.protocol': EnvironProtocol;
  /** `http` or `https`, from HTTPS / REQUEST_SCHEME (never from client headers unless configured). */
  'postern.url_scheme': 'http' | 'https';
  /** The FastCGI role; `responder` for every other protocol. */
  'postern.role': RoleName;
  /** The request body, streamed with backpressure. Ends early with an error if the body is truncated. */
  'postern.input': Readable;
  /** FastCGI FILTER role: the FCGI_DATA stream (the file to filter). Absent for other roles. */
  'postern.data'?: Readable;
  /** Fires when the client or front server goes away, or the request deadline passes. */
  'postern.signal': AbortSignal;
  /** Other CGI variables the front server sent (DOCUMENT_ROOT, HTTPS, REMOTE_PORT, …). */
  [name: string]: unknown;
}

/** WSGI `start_response`: status like `'200 OK'`, headers as pairs; returns a legacy `write`. */
export type StartResponse = (status: string, headers: HeaderList, excInfo?: unknown) => (chunk: string | Uint8Array) => void;

export type BodyChunk = string | Uint8Array;
export type AppBody = BodyChunk | Iterable<BodyChunk> | AsyncIterable<BodyChunk> | null | undefined;

/** The native app shape: the WSGI contract in TypeScript. */
export type NativeApp = (environ: Environ, startResponse: StartResponse) => AppBody | Promise<AppBody>;

/**
 * How an answer leaves postern. Each connection implements it once per protocol (FastCGI records,
 * SCGI/uwsgi stream, node:http); the tree and the adapters drive it and never see the wire.
 */
export interface Responder {
  /** Sends the response head. Called exactly once, before any `write`. Throws on invalid headers. */
  head(status: number, reason: string, headers: HeaderList): void;
  /** Sends body bytes. Returns false when the caller should wait for `drained()` before more. */
  write(chunk: Uint8Array): boolean;
  /** Resolves when the outgoing buffer has room again (or at once if it has). */
  drained(): Promise<void>;
  /** Completes the response. `appStatus` is the FastCGI END_REQUEST appStatus (0 = success). */
  end(appStatus?: number): void;
  /** True once the peer is gone or the request was aborted; further output is discarded. */
  readonly aborted: boolean;
  /** True once `head()` has been called. */
  readonly headSent: boolean;
}

/**
 * Optional on a Responder (and on an environ's source): calls `listener` once when the request is
 * aborted (at once if it was), so the runner can stop waiting on an app without making the
 * request's AbortSignal.
 */
export interface AbortNotifier {
  onAbort(listener: () => void): void;
}
