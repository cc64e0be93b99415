// The status and ping endpoints, from the server's side: an exact-path check made before the
// application tree (so no mounted app can shadow or expose them), and the answers they give.

import { native } from '../app/adapters/marker.ts';
import { runNative } from '../app/run.ts';
import type { Environ, NativeApp, Responder } from '../app/types.ts';
import { JSON_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, renderJson, renderPrometheus } from './render.ts';
import type { StatusReport } from './report.ts';

export type StatusRoute = 'status' | 'ping';

export interface StatusHttpResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

export interface StatusRequest {
  readonly method: string;
  /** QUERY_STRING, without `?`. */
  readonly query: string;
  /** The Accept header (HTTP_ACCEPT), if any. */
  readonly accept?: string | undefined;
}

/** Which rendering a request asks for: `?format=` wins, then Accept, then JSON. */
export function statusFormat(query: string, accept: string | undefined): 'json' | 'prometheus' {
  if (query !== '') {
    for (const pair of query.split('&')) {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      if (key !== 'format') continue;
      const v = (eq === -1 ? '' : pair.slice(eq + 1)).toLowerCase();
      if (v === 'prometheus' || v === 'prom' || v === 'text' || v === 'openmetrics') return 'prometheus';
      if (v === 'json') return 'json';
    }
  }
  if (accept !== undefined) {
    const a = accept.toLowerCase();
    // Prometheus scrapers send `application/openmetrics-text;…,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`;
    // browsers and curl send neither text/plain nor openmetrics first-class, and get JSON.
    if (!a.includes('application/json') && (a.includes('text/plain') || a.includes('application/openmetrics-text'))) return 'prometheus';
  }
  return 'json';
}

const NO_STORE: readonly [string, string] = ['Cache-Control', 'no-store'];

function text(status: number, reason: string, body: string, extra: ReadonlyArray<readonly [string, string]> = []): StatusHttpResponse {
  return {
    status,
    reason,
    headers: [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', String(Buffer.byteLength(body))], NO_STORE, ...extra],
    body,
  };
}

/**
 * The answer to a status or ping request. Pure: the caller gathers the report (and the health).
 * Status: JSON by default, Prometheus text on `?format=prometheus` or `Accept: text/plain`. Ping:
 * `pong` (200), or `draining` (503) when not healthy, so a load balancer stops sending.
 * Anything but GET and HEAD is 405.
 */
export function statusResponse(route: StatusRoute, request: StatusRequest, report?: StatusReport, healthy = true): StatusHttpResponse {
  if (request.method !== 'GET' && request.method !== 'HEAD') return text(405, 'Method Not Allowed', 'Method Not Allowed\n', [['Allow', 'GET, HEAD']]);
  if (route === 'ping') return healthy ? text(200, 'OK', 'pong\n') : text(503, 'Service Unavailable', 'draining\n');
  if (report === undefined) return text(503, 'Service Unavailable', 'status unavailable\n');
  const prom = statusFormat(request.query, request.accept) === 'prometheus';
  const body = prom ? renderPrometheus(report) : renderJson(report);
  return {
    status: 200,
    reason: 'OK',
    headers: [['Content-Type', prom ? PROMETHEUS_CONTENT_TYPE : JSON_CONTENT_TYPE], ['Content-Length', String(Buffer.byteLength(body))], NO_STORE],
    body,
  };
}

export interface StatusRoutesOptions {
  /** Exact path of the status endpoint (`/postern/status`); unset = off. */
  readonly statusPath?: string | undefined;
  /** Exact path of the ping endpoint (`/ping`); unset = off. */
  readonly pingPath?: string | undefined;
  /** Gathers the report per status request (a metrics snapshot, or the supervisor's pool snapshot). */
  readonly report: () => StatusReport | Promise<StatusReport>;
  /** False while draining: ping answers 503. Default: always healthy. */
  readonly healthy?: () => boolean;
  /** Told when gathering the report fails (the request then gets a 503). */
  readonly onError?: (err: unknown) => void;
}

/** Error code of the TypeError thrown for a statusPath/pingPath that is not an absolute path. */
export const STATUS_PATH_ERROR = 'POSTERN_ERR_STATUS_PATH';

function checkPath(name: string, p: string | undefined): string | undefined {
  if (p === undefined || p === '') return undefined;
  if (p.charCodeAt(0) !== 0x2f || p.includes('?') || p.includes('#')) {
    const err = new TypeError(`${name} must be an absolute URL path like /status, got ${JSON.stringify(p)}`) as TypeError & { code: string };
    err.code = STATUS_PATH_ERROR;
    throw err;
  }
  return p;
}

/**
 * The status and ping routes of one listener set. `match(environ)` is the server's check before
 * the tree: two string comparisons against PATH_INFO (the path the tree would route on), exact
 * match only, so `/status/x` and `/statusx` still go to the apps.
 */
export class StatusRoutes {
  readonly statusPath: string | undefined;
  readonly pingPath: string | undefined;
  readonly #report: () => StatusReport | Promise<StatusReport>;
  readonly #healthy: () => boolean;
  readonly #onError: ((err: unknown) => void) | undefined;

  constructor(options: StatusRoutesOptions) {
    this.statusPath = checkPath('statusPath', options.statusPath);
    this.pingPath = checkPath('pingPath', options.pingPath);
    if (this.statusPath !== undefined && this.statusPath === this.pingPath) {
      const err = new TypeError('statusPath and pingPath must differ') as TypeError & { code: string };
      err.code = STATUS_PATH_ERROR;
      throw err;
    }
    this.#report = options.report;
    this.#healthy = options.healthy ?? (() => true);
    this.#onError = options.onError;
  }

  /** False when neither path is configured: the server may skip the check entirely. */
  get enabled(): boolean {
    return this.statusPath !== undefined || this.pingPath !== undefined;
  }

  route(path: string): StatusRoute | undefined {
    if (path === this.pingPath) return 'ping';
    if (path === this.statusPath) return 'status';
    return undefined;
  }

  /** The app that answers this request when it is a status or ping request; undefined otherwise. */
  match(environ: Environ): NativeApp | undefined {
    const r = this.route(environ.PATH_INFO);
    if (r === undefined) return undefined;
    return r === 'ping' ? this.#ping : this.#status;
  }

  /**
   * Answers status and ping, and 404 for every other path: the whole tree of a dedicated
   * `statusListen` listener (`new Tree().mount(routes.app)`; marked native, so no kind is needed).
   */
  readonly app: NativeApp = native((environ, startResponse) => {
    const r = this.route(`${environ.SCRIPT_NAME}${environ.PATH_INFO}`);
    if (r === undefined) {
      startResponse('404 Not Found', [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', '10'], ['Cache-Control', 'no-store']]);
      return 'Not Found\n';
    }
    return r === 'ping' ? this.#ping(environ, startResponse) : this.#status(environ, startResponse);
  });

  // The route's own path as `postern.mount`, so metrics and the access log name probe and scrape
  // traffic apart from the apps' (the tree never saw these requests).
  readonly #ping: NativeApp = (environ, startResponse) => {
    environ['postern.mount'] = this.pingPath;
    return send(statusResponse('ping', requestOf(environ), undefined, this.#healthy()), startResponse);
  };

  readonly #status: NativeApp = async (environ, startResponse) => {
    environ['postern.mount'] = this.statusPath;
    const request = requestOf(environ);
    let report: StatusReport | undefined;
    if (request.method === 'GET' || request.method === 'HEAD') {
      try {
        report = await this.#report();
      } catch (err) {
        this.#onError?.(err);
      }
    }
    return send(statusResponse('status', request, report), startResponse);
  };
}

function requestOf(environ: Environ): StatusRequest {
  const accept = environ['HTTP_ACCEPT'];
  return { method: environ.REQUEST_METHOD, query: environ.QUERY_STRING, accept: typeof accept === 'string' ? accept : undefined };
}

function send(r: StatusHttpResponse, startResponse: Parameters<NativeApp>[1]): string {
  startResponse(`${String(r.status)} ${r.reason}`, r.headers);
  return r.body;
}

/**
 * What a connection calls in place of `tree.handle(environ, responder)`: status and ping first (only
 * when configured), the tree otherwise. Never rejects (runNative and Tree.handle never do).
 */
export function dispatchWithStatus(
  routes: StatusRoutes | undefined,
  tree: { handle(environ: Environ, responder: Responder): Promise<void> },
  environ: Environ,
  responder: Responder,
): Promise<void> {
  const app = routes?.match(environ);
  return app === undefined ? tree.handle(environ, responder) : runNative(app, environ, responder);
}
