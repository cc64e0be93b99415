// Fetch `(request, environ) => Response` handlers (Hono's `app.fetch`, plain functions) as native
// apps, from the adapter's side: the environ becomes a `Request` (lazy by default,
// fetch-request.ts), the `Response` streams back (fetch-response.ts).

import type { AppBody, Environ, NativeApp, StartResponse } from '../types.ts';
import type { TargetPath } from './target.ts';
import { DEFAULT_READ_AHEAD_BYTES, LazyRequest, refusedRequest, toRequest } from './fetch-request.ts';
import { isResponse, sendResponse } from './fetch-response.ts';

export { toRequest, LazyRequest, LAZY_REQUEST_ERROR } from './fetch-request.ts';
export { inputToWeb } from './web-body.ts';

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
  /**
   * `lazy` (default): the handler gets a Request whose method, URL, headers and body are made as
   * it reads them (see LazyRequest; `instanceof Request` holds). `eager`: a real global Request per
   * request, as before; for code that passes the request itself to `new Request(req)` / `fetch(req)`.
   */
  readonly fetchRequest?: 'lazy' | 'eager';
}

/** `code` on errors the Fetch adapter raises itself. */
export const FETCH_ADAPTER_ERRORS = {
  /** The handler resolved to something that is not a Response. */
  NOT_A_RESPONSE: 'POSTERN_ERR_FETCH_RESPONSE',
} as const;

function badRequest(startResponse: StartResponse, head: boolean): AppBody {
  startResponse('400 Bad Request', [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', '12']]);
  return head ? null : 'Bad Request\n';
}

function notAResponse(response: unknown): TypeError {
  const err = new TypeError(`postern: the fetch handler resolved to ${response === null ? 'null' : typeof response}, not a Response`);
  (err as TypeError & { code: string }).code = FETCH_ADAPTER_ERRORS.NOT_A_RESPONSE;
  return err;
}

/**
 * Mounts a Fetch handler. It is called as `handler(request, environ)`; `request.url` is
 * scheme://Host + mount-relative path (see FetchAdapterOptions.path) + query; `request.signal`
 * aborts with the request; a request body streams from postern.input as the app reads it.
 * Set-Cookie fields are kept apart. A handler that throws or rejects fails the request (500).
 */
export function fromFetchHandler(handler: FetchHandler, options: FetchAdapterOptions = {}): NativeApp {
  if (typeof handler !== 'function') throw new TypeError('postern: fromFetchHandler needs a (request) => Response function');
  const mode = options.fetchRequest ?? 'lazy';
  if (mode !== 'lazy' && mode !== 'eager') throw new TypeError(`postern: fetchRequest must be 'lazy' or 'eager', got ${JSON.stringify(mode)}`);
  const path = options.path ?? 'relative';
  const readAhead = options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
  const finish = (response: unknown, startResponse: StartResponse, isHead: boolean): AppBody | Promise<AppBody> => {
    if (!isResponse(response)) throw notAResponse(response);
    return sendResponse(response, startResponse, isHead);
  };
  return (environ, startResponse) => {
    const isHead = environ.REQUEST_METHOD === 'HEAD';
    let request: Request;
    if (mode === 'lazy') {
      if (refusedRequest(environ)) return badRequest(startResponse, isHead);
      request = new LazyRequest(environ, path, readAhead) as unknown as Request;
    } else {
      try {
        request = toRequest(environ, options);
      } catch {
        return badRequest(startResponse, isHead);
      }
    }
    const response = handler(request, environ);
    if (response instanceof Response) return sendResponse(response, startResponse, isHead);
    return Promise.resolve(response).then((r) => finish(r, startResponse, isHead));
  };
}
