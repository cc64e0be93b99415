// The health probe, from a container runtime's or a service manager's side: one request to a running
// postern in the protocol it listens with, turned into healthy or not (`postern health`, HEALTHCHECK).

import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import {
  decodeNameValuePairs, encodeBeginRequest, encodeGetValues, encodeParams, encodeStdinEnd, FastCgiRecordAssembler,
  FastCgiRecordReader, FCGI_TYPE, FCGI_VALUE_NAME,
} from '../protocols/fastcgi/index.ts';
import { encodeScgiRequest, scgiParams } from '../protocols/scgi/index.ts';
import { encodeUwsgiRequest, UWSGI_MODIFIER1, UWSGI_PONG } from '../protocols/uwsgi/index.ts';
import { parseAddress } from './server/address.ts';
import type { Protocol } from './app/types.ts';

/** Where and how to probe: a listener postern serves, and optionally a URL path that must answer 2xx. */
export interface HealthTarget {
  readonly protocol: Protocol;
  /** A listen address as configured (`127.0.0.1:9000`, `:9000`, `[::]:9000`, `unix:/run/p.sock`). */
  readonly address: string;
  /**
   * A path that must answer 2xx (the `pingPath`). Without one the probe only proves that postern
   * speaks the protocol: FastCGI GET_VALUES, uwsgi PING, or any HTTP/SCGI response to `GET /`.
   */
  readonly path?: string;
}

export interface HealthResult {
  readonly ok: boolean;
  readonly target: HealthTarget;
  /** What was sent, for the report line (`GET_VALUES`, `GET /ping`, `PING`). */
  readonly probe: string;
  /** The response status, when there was one. */
  readonly status?: number;
  /** Set when not ok. */
  readonly code?: HealthErrorCode;
  readonly detail: string;
  readonly ms: number;
}

export const HEALTH_ERRORS = {
  /** No configured listener can be dialled (only `fd:N` or port 0 listeners). */
  NO_TARGET: 'POSTERN_ERR_HEALTH_NO_TARGET',
  /** The connection was refused or failed. */
  CONNECT: 'POSTERN_ERR_HEALTH_CONNECT',
  /** No complete answer within the timeout. */
  TIMEOUT: 'POSTERN_ERR_HEALTH_TIMEOUT',
  /** The answer was not what the protocol promises (wrong protocol on the port?). */
  BAD_REPLY: 'POSTERN_ERR_HEALTH_BAD_REPLY',
  /** The health path answered, but not 2xx. */
  STATUS: 'POSTERN_ERR_HEALTH_STATUS',
} as const;
export type HealthErrorCode = (typeof HEALTH_ERRORS)[keyof typeof HEALTH_ERRORS];

/** The part of the configuration a probe needs (a `PosternConfig` fits). */
export interface HealthConfig {
  readonly listeners: ReadonlyArray<{ readonly protocol: Protocol; readonly address: string }>;
  readonly pingPath?: string;
  readonly statusListen?: string;
}

export const DEFAULT_HEALTH_TIMEOUT_MS = 2000;

/** Where a client reaches a listen address: `net.connect` options, or undefined for `fd:N` and port 0. */
export function dialOptions(address: string): { host: string; port: number } | { path: string } | undefined {
  const a = parseAddress(address);
  if (a.kind === 'unix') return { path: a.path };
  if (a.kind === 'fd' || a.port === 0) return undefined;
  // A wildcard bind (`:9000`, `0.0.0.0`, `[::]`) is reached on loopback, from inside the same host or pod.
  if (a.host === undefined || a.host === '0.0.0.0') return { host: '127.0.0.1', port: a.port };
  if (a.host === '::') return { host: '::1', port: a.port };
  return { host: a.host, port: a.port };
}

/**
 * What `postern health` probes for a configuration. With a `pingPath`: the status listener if
 * there is one (that is where the path is served then), else an HTTP listener, else the first
 * dialable gateway listener, asking for the path. Without one: the first dialable listener,
 * FastCGI first (GET_VALUES involves no app).
 */
export function healthTarget(config: HealthConfig, path: string | undefined = config.pingPath): HealthTarget | undefined {
  const dialable = config.listeners.filter((l) => dialOptions(l.address) !== undefined);
  const withPath = (t: { protocol: Protocol; address: string }): HealthTarget => (path === undefined ? { protocol: t.protocol, address: t.address } : { protocol: t.protocol, address: t.address, path });
  if (path !== undefined) {
    if (config.statusListen !== undefined && dialOptions(config.statusListen) !== undefined) return { protocol: 'http', address: config.statusListen, path };
    const http = dialable.find((l) => l.protocol === 'http');
    const first = http ?? dialable[0];
    return first === undefined ? undefined : withPath(first);
  }
  const first = dialable.find((l) => l.protocol === 'fastcgi') ?? dialable[0];
  return first === undefined ? undefined : withPath(first);
}

/** Probes once. Never rejects: every failure is a result with a code. */
export async function probeHealth(target: HealthTarget, options: { readonly timeoutMs?: number } = {}): Promise<HealthResult> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  const probe = describeProbe(target);
  const done: Done = (ok, detail, extra = {}) => ({
    ok, target, probe, detail, ms: Math.round(performance.now() - started), ...extra,
  });
  const dial = dialOptions(target.address);
  if (dial === undefined) return done(false, `${target.address} cannot be dialled`, { code: HEALTH_ERRORS.NO_TARGET });
  try {
    return judge(target, await exchange(target, dial, timeoutMs), done);
  } catch (err) {
    if (err instanceof ProbeFailure) return done(false, err.message, { code: err.code });
    const code = (err as NodeJS.ErrnoException).code;
    return done(false, `cannot connect to ${target.address}: ${code ?? String(err)}`, { code: HEALTH_ERRORS.CONNECT });
  }
}

/** The report line `postern health` prints. */
export function formatHealth(r: HealthResult): string {
  const status = r.status === undefined ? '' : ` ${r.status}`;
  if (r.ok) return `ok: ${r.target.protocol} ${r.target.address} ${r.probe}${status} in ${r.ms} ms${r.status === undefined ? ` (${r.detail})` : ''}`;
  return `unhealthy: ${r.target.protocol} ${r.target.address} ${r.probe}: ${r.detail} [${r.code ?? HEALTH_ERRORS.BAD_REPLY}]`;
}

// ——— the exchange ———

class ProbeFailure extends Error {
  readonly code: HealthErrorCode;
  constructor(code: HealthErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

type Reply =
  | { readonly kind: 'values'; readonly values: string }
  | { readonly kind: 'pong' }
  | { readonly kind: 'head'; readonly status: number };

function describeProbe(t: HealthTarget): string {
  if (t.path !== undefined) return `GET ${t.path}`;
  if (t.protocol === 'fastcgi') return 'GET_VALUES';
  if (t.protocol === 'uwsgi') return 'PING';
  return 'GET /';
}

type Done = (ok: boolean, detail: string, extra?: { status?: number; code?: HealthErrorCode }) => HealthResult;

function judge(t: HealthTarget, reply: Reply, done: Done): HealthResult {
  if (reply.kind === 'values') return done(true, reply.values);
  if (reply.kind === 'pong') return done(true, 'PONG');
  const status = reply.status;
  // Without a health path any well-formed answer (even a 404 or an app's 500) proves postern is up.
  if (t.path === undefined || (status >= 200 && status < 300)) return done(true, `answered ${status}`, { status });
  return done(false, `${t.path} answered ${status}, not 2xx`, { status, code: HEALTH_ERRORS.STATUS });
}

// The params an nginx `location` with the stock params files would send for `GET path`.
function cgiParams(path: string): Array<[string, string]> {
  return [
    ['REQUEST_METHOD', 'GET'], ['REQUEST_URI', path], ['DOCUMENT_URI', path], ['SCRIPT_NAME', path], ['QUERY_STRING', ''],
    ['SERVER_PROTOCOL', 'HTTP/1.1'], ['GATEWAY_INTERFACE', 'CGI/1.1'], ['SERVER_NAME', 'localhost'], ['SERVER_PORT', '80'],
    ['REMOTE_ADDR', '127.0.0.1'], ['HTTP_HOST', 'localhost'], ['HTTP_USER_AGENT', 'postern-health'],
  ];
}

type Dial = { host: string; port: number } | { path: string };
type Finish = (err: Error | undefined, reply?: Reply) => void;

interface Handler {
  readonly data: (chunk: Buffer) => void;
  readonly end: () => void;
}

/**
 * One exchange with its own deadline: whatever happens, the socket is destroyed before the promise
 * settles, so a `postern health` process never outlives its timeout.
 */
function exchange(t: HealthTarget, dial: Dial, timeoutMs: number): Promise<Reply> {
  if (t.protocol === 'http') return httpExchange(dial, t.path ?? '/', timeoutMs);
  return new Promise<Reply>((resolve, reject) => {
    const socket = connect(dial);
    let connected = false;
    let settled = false;
    const finish: Finish = (err, reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(reply as Reply);
    };
    const timer = setTimeout(() => { finish(new ProbeFailure(HEALTH_ERRORS.TIMEOUT, `no complete answer within ${timeoutMs} ms`)); }, timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      // Reset after connecting: the peer hung up on what we sent (another protocol on this port?).
      finish(connected ? new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, `the connection failed before an answer: ${err.code ?? err.message}`) : err);
    });
    socket.once('connect', () => {
      connected = true;
      socket.setNoDelay(true);
      const handle = t.protocol === 'fastcgi' ? fastcgiHandler(t, socket, finish) : streamHandler(t, socket, finish);
      socket.on('data', handle.data);
      socket.once('end', handle.end);
    });
  });
}

function fastcgiHandler(t: HealthTarget, socket: Socket, finish: Finish): Handler {
  const ID = 1;
  const stdout: Buffer[] = [];
  const reader = new FastCgiRecordReader(new FastCgiRecordAssembler((r) => {
    if (t.path === undefined) {
      const pairs = r.type === FCGI_TYPE.GET_VALUES_RESULT && r.requestId === 0 ? decodeNameValuePairs(r.content) : undefined;
      if (Array.isArray(pairs)) {
        const shown: string[] = [];
        for (let i = 0; i + 1 < pairs.length; i += 2) shown.push(`${pairs[i]}=${pairs[i + 1]}`);
        finish(undefined, { kind: 'values', values: shown.join(' ') });
      } else {
        finish(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, `expected a GET_VALUES_RESULT record, got type ${r.type}`));
      }
      return;
    }
    if (r.requestId !== ID) return;
    if (r.type === FCGI_TYPE.STDOUT) stdout.push(Buffer.from(r.content));
    else if (r.type === FCGI_TYPE.END_REQUEST) {
      const protocolStatus = r.content[4] ?? 0;
      if (protocolStatus !== 0) finish(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, `END_REQUEST with protocolStatus ${protocolStatus}`));
      else settleHead(t, Buffer.concat(stdout), finish);
    }
  }, (err) => { finish(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, `not a FastCGI answer (${err.code})`)); }));
  if (t.path === undefined) {
    socket.write(encodeGetValues([FCGI_VALUE_NAME.MAX_CONNS, FCGI_VALUE_NAME.MAX_REQS, FCGI_VALUE_NAME.MPXS_CONNS]));
  } else {
    socket.cork();
    socket.write(encodeBeginRequest(ID));
    for (const b of encodeParams(ID, cgiParams(t.path))) socket.write(b);
    socket.write(encodeStdinEnd(ID));
    socket.uncork();
  }
  return {
    data: (chunk) => { reader.push(chunk); },
    end: () => { finish(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, 'the connection closed before a complete FastCGI answer')); },
  };
}

// SCGI and uwsgi answer with a head and a body, then close the connection.
function streamHandler(t: HealthTarget, socket: Socket, finish: Finish): Handler {
  const chunks: Buffer[] = [];
  let size = 0;
  const ping = t.protocol === 'uwsgi' && t.path === undefined;
  if (ping) socket.write(encodeUwsgiRequest([], undefined, UWSGI_MODIFIER1.PING));
  else if (t.protocol === 'uwsgi') socket.write(encodeUwsgiRequest([['CONTENT_LENGTH', '0'], ...cgiParams(t.path ?? '/')]));
  else socket.write(encodeScgiRequest(scgiParams(cgiParams(t.path ?? '/'), 0)));
  const settle = (): void => {
    const all = Buffer.concat(chunks);
    if (!ping) settleHead(t, all, finish);
    else if (all.equals(UWSGI_PONG)) finish(undefined, { kind: 'pong' });
    else finish(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, `expected a uwsgi PONG, got ${all.length} other bytes`));
  };
  return {
    data: (chunk) => {
      chunks.push(chunk);
      size += chunk.length;
      // The head is all a probe needs; a large body need not be read to the end.
      if (!ping && size >= 16384) settle();
    },
    end: settle,
  };
}

/**
 * The status and form of a response head: `http` for a status line (`HTTP/1.1 200 OK`, uwsgi),
 * `cgi` for headers with an optional `Status:` (200 without one; FastCGI and SCGI).
 */
export function responseHead(bytes: Buffer): { readonly status: number; readonly form: 'cgi' | 'http' } | undefined {
  const text = bytes.subarray(0, 16384).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  if (end < 0) return undefined;
  const lines = text.slice(0, end).split(/\r?\n/);
  const statusLine = /^HTTP\/1\.[01] ([0-9]{3})(?: |$)/.exec(lines[0] ?? '');
  if (statusLine !== null) return { status: Number(statusLine[1]), form: 'http' };
  let status = 200;
  for (const line of lines) {
    const m = /^status:[ \t]*([0-9]{3})(?:[ \t]|$)/i.exec(line);
    if (m !== null) status = Number(m[1]);
    else if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:/.test(line)) return undefined;
  }
  return { status, form: 'cgi' };
}

// postern answers FastCGI and SCGI with a CGI head and uwsgi with a status line (PROTOCOLS.md §B):
// the other form means another server, or another protocol's listener, is on that port.
function settleHead(t: HealthTarget, bytes: Buffer, finish: Finish): void {
  const head = responseHead(bytes);
  const expected = t.protocol === 'uwsgi' ? 'http' : 'cgi';
  if (head === undefined) finish(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, bytes.length === 0 ? 'an empty answer' : 'no response head in the answer'));
  else if (head.form !== expected) finish(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, `a ${head.form === 'http' ? 'status-line' : 'CGI'} head, not what postern sends over ${t.protocol} (another protocol on this port?)`));
  else finish(undefined, { kind: 'head', status: head.status });
}

function httpExchange(dial: Dial, path: string, timeoutMs: number): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const where = 'path' in dial ? { socketPath: dial.path } : { host: dial.host, port: dial.port };
    let connected = false;
    const req = httpRequest({ ...where, path, method: 'GET', agent: false, headers: { 'user-agent': 'postern-health', connection: 'close' } }, (res) => {
      clearTimeout(timer);
      res.destroy();
      resolve({ kind: 'head', status: res.statusCode ?? 0 });
    });
    const timer = setTimeout(() => { req.destroy(new ProbeFailure(HEALTH_ERRORS.TIMEOUT, `no answer within ${timeoutMs} ms`)); }, timeoutMs);
    req.once('socket', (s) => { s.once('connect', () => { connected = true; }); });
    req.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err instanceof ProbeFailure || !connected) reject(err);
      // node:http could not parse the answer, or the peer hung up: not HTTP on this port?
      else reject(new ProbeFailure(HEALTH_ERRORS.BAD_REPLY, `not an HTTP answer (${err.code ?? err.message})`));
    });
    req.end();
  });
}
