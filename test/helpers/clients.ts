// Test clients, from the front server's side: FastCGI, SCGI, uwsgi and HTTP requests built with
// postern's own encoders, and responses read back with FastCgiRecordReader and a CGI/HTTP head
// parser. For tests only: they buffer whole responses.

import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import {
  encodeBeginRequest,
  encodeParams,
  encodeStdin,
  encodeStdinEnd,
  FastCgiRecordAssembler,
  FastCgiRecordReader,
  FCGI_TYPE,
  type FastCgiRecord,
} from '../../protocols/fastcgi/index.ts';
import { encodeScgiRequest, scgiParams } from '../../protocols/scgi/index.ts';
import { encodeUwsgiRequest } from '../../protocols/uwsgi/index.ts';

export type Target = { readonly port: number; readonly host?: string } | { readonly path: string };

export function dial(target: Target): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = 'path' in target ? connect({ path: target.path }) : connect({ port: target.port, host: target.host ?? '127.0.0.1' });
    s.once('connect', () => {
      s.off('error', reject);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', reject);
  });
}

// ---- response heads ----------------------------------------------------------------------------

export interface ParsedResponse {
  readonly status: number;
  readonly reason: string;
  /** In wire order, names as sent. */
  readonly headers: Array<[string, string]>;
  readonly body: Buffer;
  /** The first value of a header, case-insensitively. */
  header(name: string): string | undefined;
  /** Every value of a header, in order. */
  headerAll(name: string): string[];
  readonly text: string;
}

function makeResponse(status: number, reason: string, headers: Array<[string, string]>, body: Buffer): ParsedResponse {
  return {
    status,
    reason,
    headers,
    body,
    header: (name) => headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1],
    headerAll: (name) => headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v),
    get text() {
      return body.toString('utf8');
    },
  };
}

/**
 * Parses a CGI response (`Status: 200 OK` header, FastCGI and SCGI) or an HTTP-style one
 * (`HTTP/1.1 200 OK` status line, uwsgi). Throws when the head is incomplete or malformed.
 */
export function parseResponse(bytes: Buffer): ParsedResponse {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no end of head in ${JSON.stringify(bytes.subarray(0, 200).toString('latin1'))}`);
  const lines = bytes.subarray(0, end).toString('latin1').split('\r\n');
  let status = 200;
  let reason = 'OK';
  const headers: Array<[string, string]> = [];
  let first = 0;
  const statusLine = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
  if (statusLine !== null) {
    status = Number(statusLine[1]);
    reason = statusLine[2] ?? '';
    first = 1;
  }
  for (let i = first; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (statusLine === null && name.toLowerCase() === 'status') {
      const m = /^(\d{3}) ?(.*)$/.exec(value);
      if (m === null) throw new Error(`malformed Status header ${JSON.stringify(value)}`);
      status = Number(m[1]);
      reason = m[2] ?? '';
      continue;
    }
    headers.push([name, value]);
  }
  return makeResponse(status, reason, headers, bytes.subarray(end + 4));
}

// ---- FastCGI -------------------------------------------------------------------------------------

export interface FcgiResult {
  readonly id: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  readonly appStatus: number;
  readonly protocolStatus: number;
  /** Every record for this id, in order (STDOUT, STDERR, END_REQUEST). */
  readonly records: FastCgiRecord[];
}

export interface FcgiRequestSpec {
  readonly id?: number;
  readonly params: ReadonlyArray<readonly [string, string]>;
  readonly body?: Uint8Array | string;
  readonly keepConn?: boolean;
  readonly role?: number;
  /** Leave the body open (no empty STDIN): the test sends the rest itself. */
  readonly openBody?: boolean;
  /** Max content bytes per PARAMS record (splits pairs across records when small). */
  readonly paramsRecordBytes?: number;
}

/**
 * One FastCGI connection as a web server drives it: send records, collect the replies per
 * request id, wait for END_REQUEST or for the application to close the connection.
 */
export class FcgiClient {
  readonly socket: Socket;
  /** Every record received, in order. */
  readonly records: FastCgiRecord[] = [];
  readonly closed: Promise<void>;
  /** Set once the application ended its side (FIN) or the socket closed. */
  ended = false;
  readonly #reader: FastCgiRecordReader;
  readonly #waiters = new Map<number, Array<(r: FcgiResult) => void>>();
  readonly #done = new Map<number, FcgiResult>();
  #recordWaiters: Array<() => void> = [];
  error: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#reader = new FastCgiRecordReader(
      new FastCgiRecordAssembler(
        (r) => this.#onRecord(r),
        (err) => {
          this.error = err;
        },
      ),
    );
    socket.on('data', (chunk: Buffer) => this.#reader.push(chunk));
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('end', () => {
      this.ended = true;
    });
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.ended = true;
      for (const w of this.#recordWaiters) w();
      this.#recordWaiters = [];
      resolve();
    }));
  }

  static async connect(target: Target): Promise<FcgiClient> {
    return new FcgiClient(await dial(target));
  }

  send(bytes: Buffer | readonly Buffer[]): boolean {
    if (Buffer.isBuffer(bytes)) return this.socket.write(bytes);
    let ok = true;
    for (const b of bytes) ok = this.socket.write(b);
    return ok;
  }

  /** Writes BEGIN_REQUEST, the PARAMS stream and the body (with its terminator unless `openBody`). */
  begin(spec: FcgiRequestSpec): number {
    const id = spec.id ?? 1;
    const body = typeof spec.body === 'string' ? Buffer.from(spec.body, 'latin1') : spec.body;
    const out: Buffer[] = [encodeBeginRequest(id, spec.role ?? 1, spec.keepConn ?? false), ...encodeParams(id, spec.params, spec.paramsRecordBytes)];
    if (body !== undefined && body.length > 0) out.push(...encodeStdin(id, body));
    if (spec.openBody !== true) out.push(encodeStdinEnd(id));
    this.socket.cork();
    this.send(out);
    this.socket.uncork();
    return id;
  }

  /** Resolves with the request's records once its END_REQUEST arrives. */
  result(id = 1): Promise<FcgiResult> {
    const done = this.#done.get(id);
    if (done !== undefined) {
      this.#done.delete(id);
      return Promise.resolve(done);
    }
    return new Promise((resolve, reject) => {
      const list = this.#waiters.get(id) ?? [];
      list.push(resolve);
      this.#waiters.set(id, list);
      void this.closed.then(() => {
        if (list.includes(resolve)) reject(new Error(`connection closed before END_REQUEST for id ${String(id)}`));
      });
    });
  }

  /** Sends a request and waits for its END_REQUEST. */
  async request(spec: FcgiRequestSpec): Promise<FcgiResult> {
    const id = this.begin(spec);
    return this.result(id);
  }

  /** Resolves once `predicate` holds over the records received (or the connection closed). */
  async until(predicate: (records: readonly FastCgiRecord[]) => boolean): Promise<void> {
    while (!predicate(this.records)) {
      if (this.ended && this.socket.destroyed) return;
      await new Promise<void>((resolve) => this.#recordWaiters.push(resolve));
    }
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #pending = new Map<number, FastCgiRecord[]>();

  #onRecord(r: FastCgiRecord): void {
    // Copy: the assembler hands out views of socket chunks.
    const rec: FastCgiRecord = { type: r.type, requestId: r.requestId, content: Buffer.from(r.content), paddingLength: r.paddingLength };
    this.records.push(rec);
    const waiters = this.#recordWaiters;
    this.#recordWaiters = [];
    for (const w of waiters) w();
    if (rec.requestId === 0) return;
    const list = this.#pending.get(rec.requestId) ?? [];
    list.push(rec);
    this.#pending.set(rec.requestId, list);
    if (rec.type !== FCGI_TYPE.END_REQUEST) return;
    this.#pending.delete(rec.requestId);
    const result: FcgiResult = {
      id: rec.requestId,
      stdout: Buffer.concat(list.filter((x) => x.type === FCGI_TYPE.STDOUT).map((x) => x.content)),
      stderr: Buffer.concat(list.filter((x) => x.type === FCGI_TYPE.STDERR).map((x) => x.content)),
      appStatus: rec.content.readUInt32BE(0),
      protocolStatus: rec.content[4] ?? -1,
      records: list,
    };
    const waiting = this.#waiters.get(rec.requestId);
    const w = waiting?.shift();
    if (w !== undefined) w(result);
    else this.#done.set(rec.requestId, result);
  }
}

/** One FastCGI request on a fresh connection; the response parsed. */
export async function fcgiRequest(target: Target, spec: FcgiRequestSpec): Promise<ParsedResponse & { fcgi: FcgiResult }> {
  const client = await FcgiClient.connect(target);
  try {
    const r = await client.request(spec);
    return Object.assign(parseResponse(r.stdout), { fcgi: r });
  } finally {
    client.destroy();
  }
}

// ---- streaming (large bodies) ------------------------------------------------------------------

export interface StreamedResponse {
  /** The head, with an empty body (the body went to `onBody`). */
  readonly head: ParsedResponse;
  readonly bodyBytes: number;
  /** FastCGI only: END_REQUEST's fields. */
  readonly appStatus?: number;
  readonly protocolStatus?: number;
}

/** Collects a response head from the first body pieces, then passes the rest through. */
class HeadSplitter {
  #buf: Buffer[] = [];
  #head: ParsedResponse | undefined;
  bodyBytes = 0;
  readonly #onBody: (chunk: Buffer) => void;
  constructor(onBody: (chunk: Buffer) => void) {
    this.#onBody = onBody;
  }
  get head(): ParsedResponse | undefined {
    return this.#head;
  }
  push(chunk: Buffer): void {
    if (this.#head !== undefined) {
      this.bodyBytes += chunk.length;
      this.#onBody(chunk);
      return;
    }
    this.#buf.push(Buffer.from(chunk));
    const all = Buffer.concat(this.#buf);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      this.#buf = [all];
      return;
    }
    this.#head = parseResponse(all.subarray(0, end + 4));
    this.#buf = [];
    const rest = all.subarray(end + 4);
    if (rest.length > 0) {
      this.bodyBytes += rest.length;
      this.#onBody(rest);
    }
  }
}

async function writeAll(socket: Socket, pieces: Iterable<Buffer>): Promise<void> {
  for (const p of pieces) {
    if (!socket.write(p)) await new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        socket.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        socket.off('drain', onDrain);
        reject(new Error('socket closed while writing'));
      };
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
  }
}

export interface FcgiStreamSpec {
  readonly params: ReadonlyArray<readonly [string, string]>;
  /** The body, produced lazily; written with backpressure, in STDIN records. */
  readonly body?: Iterable<Buffer> | AsyncIterable<Buffer>;
  /** Called with the connected socket before anything is sent (e.g. to pause reading). */
  readonly onSocket?: (socket: Socket) => void;
}

/** One FastCGI request whose body and response stream through without being buffered. */
export async function fcgiStream(target: Target, spec: FcgiStreamSpec, onBody: (chunk: Buffer) => void): Promise<StreamedResponse> {
  const socket = await dial(target);
  const splitter = new HeadSplitter(onBody);
  let appStatus = -1;
  let protocolStatus = -1;
  let type = 0;
  const endBody = Buffer.alloc(8);
  let endFill = 0;
  const done = new Promise<void>((resolve, reject) => {
    const reader = new FastCgiRecordReader({
      recordStart(t) {
        type = t;
        endFill = 0;
      },
      recordContent(buf, start, end) {
        if (type === FCGI_TYPE.STDOUT) splitter.push(buf.subarray(start, end));
        else if (type === FCGI_TYPE.END_REQUEST) endFill += buf.copy(endBody, endFill, start, end);
      },
      recordEnd() {
        if (type !== FCGI_TYPE.END_REQUEST) return;
        appStatus = endBody.readUInt32BE(0);
        protocolStatus = endBody[4] ?? -1;
        resolve();
      },
      recordError: reject,
    });
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed before END_REQUEST')));
  });
  spec.onSocket?.(socket);
  try {
    socket.write(Buffer.concat([encodeBeginRequest(1, 1, false), ...encodeParams(1, spec.params)]));
    if (spec.body !== undefined) {
      for await (const chunk of spec.body) await writeAll(socket, encodeStdin(1, chunk));
    }
    socket.write(encodeStdinEnd(1));
    await done;
  } finally {
    socket.destroy();
  }
  const head = splitter.head;
  if (head === undefined) throw new Error('no response head');
  return { head, bodyBytes: splitter.bodyBytes, appStatus, protocolStatus };
}

export interface HttpStreamSpec {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Iterable<Buffer> | AsyncIterable<Buffer>;
}

/** One HTTP request whose body and response stream through without being buffered. */
export function httpStream(target: Target, spec: HttpStreamSpec, onBody: (chunk: Buffer) => void): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    const base = 'path' in target ? { socketPath: target.path } : { host: target.host ?? '127.0.0.1', port: target.port };
    const req = httpRequest({ ...base, method: spec.method ?? 'GET', path: spec.path, headers: spec.headers ?? {}, agent: false }, (res) => {
      let bodyBytes = 0;
      res.on('data', (c: Buffer) => {
        bodyBytes += c.length;
        onBody(c);
      });
      res.on('end', () => {
        const headers: Array<[string, string]> = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '']);
        resolve({ head: makeResponse(res.statusCode ?? 0, res.statusMessage ?? '', headers, Buffer.alloc(0)), bodyBytes });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = spec.body;
    if (body === undefined) {
      req.end();
      return;
    }
    void (async () => {
      for await (const chunk of body) {
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(reject);
  });
}

// ---- SCGI and uwsgi ------------------------------------------------------------------------------

/** Sends `bytes` on a fresh connection (half-closing it when asked) and returns all it gets back until close. */
export async function exchangeRaw(target: Target, bytes: Buffer, options: { halfClose?: boolean } = {}): Promise<Buffer> {
  const s = await dial(target);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    s.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the answer arrived still leaves the answer to check.
      if (chunks.length > 0 && err.code === 'ECONNRESET') return;
      reject(err);
    });
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.write(bytes);
    if (options.halfClose === true) s.end();
  });
}

export async function scgiRequest(target: Target, params: ReadonlyArray<readonly [string, string]>, body?: Uint8Array | string, halfClose = false): Promise<ParsedResponse> {
  const b = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const raw = await exchangeRaw(target, encodeScgiRequest(scgiParams(params, b?.length ?? 0), b), { halfClose });
  return parseResponse(raw);
}

export async function uwsgiRequest(target: Target, params: ReadonlyArray<readonly [string, string]>, body?: Uint8Array | string, halfClose = false): Promise<ParsedResponse> {
  const b = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const withLength = b === undefined || params.some(([n]) => n === 'CONTENT_LENGTH') ? params : [...params, ['CONTENT_LENGTH', String(b.length)] as const];
  const raw = await exchangeRaw(target, encodeUwsgiRequest(withLength, b), { halfClose });
  return parseResponse(raw);
}

// ---- HTTP ------------------------------------------------------------------------------------------

export interface HttpSpec {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
}

export function httpFetch(target: Target, spec: HttpSpec): Promise<ParsedResponse> {
  return new Promise((resolve, reject) => {
    const base = 'path' in target ? { socketPath: target.path } : { host: target.host ?? '127.0.0.1', port: target.port };
    const req = httpRequest({ ...base, method: spec.method ?? 'GET', path: spec.path, headers: spec.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers: Array<[string, string]> = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '']);
        resolve(makeResponse(res.statusCode ?? 0, res.statusMessage ?? '', headers, Buffer.concat(chunks)));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (spec.body !== undefined) req.end(typeof spec.body === 'string' ? Buffer.from(spec.body, 'latin1') : spec.body);
    else req.end();
  });
}

// ---- one logical request, as each front server would send it ----------------------------------

export interface LogicalRequest {
  readonly method: string;
  /** Request target as the client sent it: `/path?query`, escapes kept. */
  readonly uri: string;
  /** Header names as a client writes them (`Content-Type`, `X-Test`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

function cgiName(header: string): string {
  const upper = header.toUpperCase().replace(/-/g, '_');
  return upper === 'CONTENT_TYPE' || upper === 'CONTENT_LENGTH' ? upper : `HTTP_${upper}`;
}

/**
 * The params nginx would send for `req` with its stock params file for `protocol`
 * (fastcgi_params: whole path in SCRIPT_NAME; uwsgi_params: decoded path in PATH_INFO;
 * scgi_params: neither), with the headers as HTTP_* params.
 */
export function nginxParams(protocol: 'fastcgi' | 'scgi' | 'uwsgi', req: LogicalRequest, serverPort: number): Array<[string, string]> {
  const q = req.uri.indexOf('?');
  const path = q < 0 ? req.uri : req.uri.slice(0, q);
  const query = q < 0 ? '' : req.uri.slice(q + 1);
  const body = req.body ?? '';
  const headers = req.headers ?? {};
  const contentType = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '';
  const decoded = decodeURIComponent(path);
  const p: Array<[string, string]> = [
    ['QUERY_STRING', query],
    ['REQUEST_METHOD', req.method],
    ['CONTENT_TYPE', contentType],
  ];
  // nginx's $content_length: the client's Content-Length header as sent, else empty (a chunked
  // body is sent with the length nginx counted; the scgi module always sends the body's length).
  const declared = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-length')?.[1];
  if (protocol !== 'scgi') p.push(['CONTENT_LENGTH', declared ?? (body.length > 0 ? String(body.length) : '')]);
  if (protocol === 'fastcgi') p.push(['SCRIPT_NAME', decoded]);
  p.push(['REQUEST_URI', req.uri]);
  if (protocol === 'uwsgi') p.push(['PATH_INFO', decoded]);
  p.push(['DOCUMENT_URI', decoded], ['DOCUMENT_ROOT', '/var/www'], ['SERVER_PROTOCOL', 'HTTP/1.1'], ['REQUEST_SCHEME', 'http']);
  if (protocol === 'fastcgi') p.push(['GATEWAY_INTERFACE', 'CGI/1.1'], ['SERVER_SOFTWARE', 'nginx/1.22.1']);
  p.push(['REMOTE_ADDR', '127.0.0.1'], ['REMOTE_PORT', '50000'], ['SERVER_ADDR', '127.0.0.1'], ['SERVER_PORT', String(serverPort)], ['SERVER_NAME', 'example.test']);
  if (protocol === 'fastcgi') p.push(['REDIRECT_STATUS', '200']);
  for (const [k, v] of Object.entries(headers)) {
    const name = cgiName(k);
    if (name !== 'CONTENT_TYPE' && name !== 'CONTENT_LENGTH') p.push([name, v]);
  }
  return p;
}
