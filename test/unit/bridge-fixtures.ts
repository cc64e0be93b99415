// Request/response fixtures for the Node bridges' differential suite, from the gateway's side:
// each fixture is a small `(req, res)` handler plus a request, run once through each bridge
// (`direct` and the `replay` oracle); what the client saw and what the app saw must be equal.

import { EventEmitter } from 'node:events';
import { Agent, createServer, IncomingMessage, request, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, pipeline, Readable } from 'node:stream';
import { Tree } from '../../src/app/tree.ts';
import { injectParams, type InjectRequest } from '../../src/app/inject.ts';
import { buildEnviron } from '../../src/environ.ts';
import type { NodeAdapterOptions, NodeHandler } from '../../src/app/adapters/node.ts';
import { nodeApp, type Bridge } from '../helpers/bridges.ts';
import { ROLE } from '../../protocols/common/events.ts';
import express from 'express';
import Koa from 'koa';
import Fastify, { type FastifyInstance } from 'fastify';
import { bytesOf, sha256, TestResponder, type SlowOptions } from './adapter-kit.ts';

export { BRIDGES, nodeApp, type Bridge } from '../helpers/bridges.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** How long a response may take before the gateway gives up on it (no fixture comes near it). */
const STALL_MS = 2000;

/** A responder that lets a test wait, without sleeping, for what the gateway has received. */
export class GatewayResponder extends TestResponder {
  #waiters: Array<() => void> = [];

  override head(status: number, reason: string, headers: Array<[string, string]>): void {
    super.head(status, reason, headers);
    this.#wake();
  }

  override write(chunk: Uint8Array): boolean {
    const more = super.write(chunk);
    this.#wake();
    return more;
  }

  override end(appStatus?: number): void {
    super.end(appStatus);
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves true once `cond` holds, false after `timeoutMs` (a stall is an outcome to compare, not a hang). */
  until(cond: () => boolean, timeoutMs = 2000): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve(true);
        } else this.#waiters.push(check);
      };
      this.#waiters.push(check);
    });
  }
}

/** What a fixture's handler and feeder can reach. */
export interface FixtureContext {
  /** Appends to the app-side event log (compared between bridges, in order). */
  log(entry: string): void;
  /** Records an app-side fact (compared between bridges). */
  fact(name: string, value: unknown): void;
  readonly responder: GatewayResponder;
  /** The request body as the gateway feeds it (a fixture with `feed` writes into it). */
  readonly input: PassThrough;
  abort(): void;
  readonly signal: AbortSignal;
  /** A handshake between the app and the feeder: `reach` marks a point, `reached` waits for it. */
  reach(mark: string): void;
  reached(mark: string, timeoutMs?: number): Promise<boolean>;
  /** Errors the tree reported (its onError), as codes or messages. */
  readonly errors: string[];
}

export interface FixtureRequest {
  readonly method?: string;
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent with CONTENT_LENGTH unless `chunked`. */
  readonly body?: Buffer;
  /** No CONTENT_LENGTH, `Transfer-Encoding: chunked` (a streamed upload behind nginx). */
  readonly chunked?: boolean;
  /** With `feed`: the CONTENT_LENGTH to announce. */
  readonly contentLength?: number;
  readonly params?: ReadonlyArray<readonly [string, string]>;
  readonly https?: boolean;
}

export interface ClientView {
  status: number;
  reason: string;
  /** Minus Date. */
  headers: Array<[string, string]>;
  hasDate: boolean;
  bytes: number;
  sha256: string;
  /** The body as latin1 when short (readable diffs); the hash covers it anyway. */
  text: string | undefined;
  appStatus: number;
  /** The response did not end within STALL_MS; the gateway aborted it. */
  stalled: boolean;
  errors: string[];
}

export interface AppView {
  facts: Record<string, unknown>;
  events: string[];
}

export interface Outcome {
  client: ClientView;
  app: AppView;
}

export interface Fixture {
  readonly name: string;
  readonly request: FixtureRequest;
  readonly handler: (ctx: FixtureContext) => NodeHandler;
  /** The gateway's pace: bytes it takes before write() says wait, and how long a drain takes. */
  readonly slow?: SlowOptions;
  /** Drives the request body (default: `request.body` whole, then end). */
  readonly feed?: (ctx: FixtureContext) => Promise<void>;
  /** Requests sent one after another to the same mounted app (default 1). */
  readonly repeat?: number;
  /** Where the app is mounted (default `/`); `request.url` is the full path. */
  readonly mount?: string;
  /**
   * `node`: the replay is known to present this case unlike node:http does, so the direct
   * bridge's events are held to a listening node:http server (runOnNodeServer) instead.
   */
  readonly eventsReference?: 'node';
  /** Compare the events of req, of res and the app's own each in order, not their interleaving (say why at the fixture). */
  readonly eventsPerEmitter?: boolean;
  /** Adapter options besides the bridge. */
  readonly options?: NodeAdapterOptions;
  /** Outcome checks that hold for the oracle too, so a fixture both paths get wrong still fails. */
  readonly expect?: (o: Outcome) => void;
}

// ---- the runner -----------------------------------------------------------------------------

function describeError(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (err instanceof Error) return `${err.name}: ${err.message}`;
  }
  return String(err);
}

/** What apps call on `req.socket` besides the stream methods (ADAPTERS.md checklist). */
export const SOCKET_METHODS = ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref', 'destroySoon', 'address', 'on', 'cork', 'uncork'];

function socketFacts(req: IncomingMessage): Record<string, unknown> {
  const s = req.socket as IncomingMessage['socket'] & { encrypted?: boolean };
  return {
    remoteAddress: s.remoteAddress,
    remotePort: s.remotePort,
    remoteFamily: s.remoteFamily,
    localAddress: s.localAddress,
    localPort: s.localPort,
    encrypted: s.encrypted,
    address: typeof s.address === 'function' ? s.address() : undefined,
    readable: s.readable,
    writable: s.writable,
    // Missing socket methods apps call. destroySoon is left out here: the replay's socket lacks it
    // (a net.Socket has it); SOCKET_METHODS checks the direct bridge for it on its own.
    missing: SOCKET_METHODS.filter((m) => m !== 'destroySoon' && typeof (s as unknown as Record<string, unknown>)[m] !== 'function'),
  };
}

/** Wraps a fixture's handler: records the request as presented and the events on req and res. */
function observed(ctx: FixtureContext, inner: NodeHandler): NodeHandler {
  return (req, res, next) => {
    ctx.fact('method', req.method);
    ctx.fact('url', req.url);
    ctx.fact('httpVersion', [req.httpVersion, req.httpVersionMajor, req.httpVersionMinor]);
    ctx.fact('headers', { ...req.headers });
    ctx.fact('rawHeaders', [...req.rawHeaders]);
    ctx.fact('completeAtStart', req.complete);
    ctx.fact('socket', socketFacts(req));
    ctx.fact('genuine', [req instanceof IncomingMessage, res instanceof ServerResponse, req.socket === res.socket]);
    ctx.fact('statusCodeAtStart', res.statusCode);
    ctx.fact('baseUrl', (req as IncomingMessage & { baseUrl?: unknown }).baseUrl);
    ctx.fact('originalUrl', (req as IncomingMessage & { originalUrl?: unknown }).originalUrl);
    req.on('aborted', () => ctx.log('req:aborted'));
    req.on('end', () => ctx.log(`req:end complete=${req.complete}`));
    req.on('close', () => ctx.log(`req:close complete=${req.complete}`));
    req.on('error', (err) => ctx.log(`req:error ${describeError(err)}`));
    res.on('finish', () => ctx.log('res:finish'));
    res.on('close', () => {
      ctx.log(`res:close writableFinished=${res.writableFinished}`);
      ctx.fact('contentLengthSetByApp', res.getHeader('content-length'));
    });
    res.on('error', (err) => ctx.log(`res:error ${describeError(err)}`));
    return inner(req, res, next);
  };
}

function bodyOf(request: FixtureRequest): Buffer | undefined {
  return request.body;
}

/** Runs a fixture through one bridge: one outcome per request (see `repeat`). */
export async function runFixture(fixture: Fixture, bridge: Bridge): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let current: FixtureContext | undefined;
  // One mounted app for every repeat, as a worker serves request after request.
  const app = nodeApp((req, res, next) => {
    const ctx = current;
    if (ctx === undefined) throw new Error('no fixture context');
    return observed(ctx, fixture.handler(ctx))(req, res, next);
  }, bridge, fixture.options);
  let errors: string[] = [];
  const tree = new Tree({ onError: (err) => errors.push(describeError(err)) }).mount(app, fixture.mount ?? '/', { kind: 'native' });
  for (let i = 0; i < (fixture.repeat ?? 1); i++) {
    errors = [];
    const facts: Record<string, unknown> = {};
    const events: string[] = [];
    const controller = new AbortController();
    const responder = new GatewayResponder({ ...fixture.slow, signal: controller.signal });
    const input = new PassThrough();
    const marks = new EventEmitter();
    const passed = new Set<string>();
    const ctx: FixtureContext = {
      log: (e) => events.push(e),
      fact: (n, v) => {
        facts[n] = v;
      },
      responder,
      input,
      abort: () => controller.abort(),
      signal: controller.signal,
      reach: (mark) => {
        passed.add(mark);
        marks.emit(mark);
      },
      reached: (mark, timeoutMs = 2000) => new Promise<boolean>((resolve) => {
        if (passed.has(mark)) return resolve(true);
        const timer = setTimeout(() => resolve(false), timeoutMs);
        marks.once(mark, () => {
          clearTimeout(timer);
          resolve(true);
        });
      }),
      errors,
    };
    current = ctx;
    const r = fixture.request;
    const body = bodyOf(r);
    const injectRequest: InjectRequest = {
      method: r.method ?? 'GET',
      url: r.https === true ? `https://example.test${r.url}` : r.url,
      ...(r.headers === undefined ? {} : { headers: r.headers }),
      ...(body === undefined ? {} : { body }),
    };
    const params = injectParams(injectRequest);
    const extra: Array<readonly [string, string]> = [];
    if (r.chunked === true) extra.push(['CONTENT_LENGTH', ''], ['HTTP_TRANSFER_ENCODING', 'chunked']);
    else if (r.contentLength !== undefined) extra.push(['CONTENT_LENGTH', String(r.contentLength)]);
    for (const [n, v] of [...extra, ...(r.params ?? [])]) params.push(n, v);
    const environ = buildEnviron(
      { id: 1, params, role: ROLE.RESPONDER, keepConn: false, contentLength: -1 },
      { protocol: 'fastcgi', input, signal: controller.signal },
    );
    const handled = tree.handle(environ, responder);
    const feeding = fixture.feed !== undefined ? fixture.feed(ctx) : Promise.resolve(void input.end(body));
    // A response that never ends is an outcome to compare, not a hung suite: after STALL_MS the
    // gateway gives up as a front server's read timeout would (the request is aborted).
    let stalled = false;
    const giveUp = setTimeout(() => {
      stalled = true;
      controller.abort();
    }, STALL_MS);
    const done = await Promise.race([
      Promise.all([handled, feeding]).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(resolve, 2 * STALL_MS, false).unref()),
    ]);
    clearTimeout(giveUp);
    if (!done) throw new Error(`${fixture.name} through ${bridge}: the request did not end, even aborted`);
    // Events that follow the gateway's end (a late 'close') belong to this request too.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const bytes = responder.body;
    // A Content-Length the app did not set is framing the gateway chose (the runner adds one when
    // the whole body is known before the head goes out), not the app's output: the direct bridge
    // knows it more often than the replay. Checked against the body instead of compared.
    const ownLength = facts.contentLengthSetByApp !== undefined;
    const framed = responder.headers.find(([n]) => n.toLowerCase() === 'content-length');
    if (!ownLength && framed !== undefined && environ.REQUEST_METHOD !== 'HEAD' && Number(framed[1]) !== bytes.length) {
      throw new Error(`${fixture.name}: the gateway's Content-Length ${framed[1]} for a body of ${bytes.length} bytes`);
    }
    outcomes.push({
      client: {
        status: responder.status,
        reason: responder.reason,
        headers: responder.headers.filter(([n]) => n.toLowerCase() !== 'date' && (ownLength || n.toLowerCase() !== 'content-length')),
        hasDate: responder.headers.some(([n]) => n.toLowerCase() === 'date'),
        bytes: bytes.length,
        sha256: sha256(bytes),
        text: bytes.length <= 256 ? bytes.toString('latin1') : undefined,
        appStatus: responder.appStatus,
        stalled,
        errors: [...errors],
      },
      app: { facts, events },
    });
  }
  return outcomes;
}

/**
 * The events a fixture's handler sees on a listening node:http server, over a real keep-alive
 * connection: the reference the replay is held to. Only for fixtures that need nothing from the
 * gateway (no feed, no responder, no abort).
 */
export async function runOnNodeServer(fixture: Fixture): Promise<string[]> {
  const events: string[] = [];
  const unused = (): never => {
    throw new Error(`${fixture.name}: needs the gateway, not a node:http server`);
  };
  const ctx: FixtureContext = {
    log: (e) => events.push(e),
    fact: () => undefined,
    get responder(): GatewayResponder {
      return unused();
    },
    get input(): PassThrough {
      return unused();
    },
    abort: unused,
    signal: new AbortController().signal,
    reach: unused,
    reached: unused,
    errors: [],
  };
  let closed: Promise<void> = Promise.resolve();
  const server = createServer((req, res) => {
    // The request's 'close' too, briefly: an unread upload still arriving is dumped first. (A large
    // one may not end at all while the client holds the connection: node:http then emits nothing.)
    const reqClosed = new Promise<void>((resolve) => req.once('close', () => resolve()));
    closed = new Promise<void>((resolve) => res.once('close', () => resolve()))
      .then(() => Promise.race([reqClosed, new Promise<void>((resolve) => setTimeout(resolve, 100).unref())]));
    void observed(ctx, fixture.handler(ctx))(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new Agent({ keepAlive: true });
  try {
    const { port } = server.address() as AddressInfo;
    const r = fixture.request;
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: r.url, method: r.method ?? 'GET', headers: { ...r.headers }, agent }, (res) => {
        res.resume();
        // 'close' too: a handler that destroys its response mid-body leaves no 'end'.
        res.once('end', resolve);
        res.once('close', resolve);
        res.once('error', () => undefined);
      });
      // A handler that destroys the request resets the connection: an outcome, not a failure.
      req.once('error', (err: Error & { code?: string }) => (err.code === 'ECONNRESET' ? resolve() : reject(err)));
      req.end(r.body);
    });
    await closed;
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
  } finally {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
  return events;
}

// ---- fixtures ---------------------------------------------------------------------------------

function header(o: Outcome, name: string): string | undefined {
  const lower = name.toLowerCase();
  return o.client.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'trailer', 'upgrade', 'te'];

class ExpectError extends Error {}

function check(cond: boolean, what: string): void {
  if (!cond) throw new ExpectError(what);
}

function okBody(expected: Buffer): (o: Outcome) => void {
  return (o) => {
    check(o.client.status === 200, `status ${o.client.status}`);
    check(o.client.sha256 === sha256(expected), `body of ${o.client.bytes} bytes, expected ${expected.length}`);
    check(o.client.appStatus === 0 && !o.client.stalled, `appStatus ${o.client.appStatus}, stalled ${o.client.stalled}`);
    for (const [n] of o.client.headers) check(!HOP_BY_HOP.includes(n.toLowerCase()), `hop-by-hop ${n} leaked`);
  };
}

/** Writes `data` in `chunk`-byte writes, waiting for 'drain' whenever write() says so. */
function writePaced(ctx: FixtureContext, res: ServerResponse, data: Buffer, chunk: number, done: () => void): void {
  let pos = 0;
  let refusals = 0;
  let drains = 0;
  res.on('drain', () => drains++);
  const step = (): void => {
    while (pos < data.length) {
      const piece = data.subarray(pos, pos + chunk);
      pos += piece.length;
      if (!res.write(piece)) {
        refusals++;
        res.once('drain', step);
        return;
      }
    }
    ctx.fact('backpressure', { refused: refusals > 0, drainPerRefusal: drains === refusals });
    done();
  };
  step();
}

/** Reads the whole request body through 'data' events; records its size and hash. */
function readBody(ctx: FixtureContext, req: IncomingMessage, then: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    ctx.fact('requestBody', { bytes: body.length, sha256: sha256(body) });
    then(body);
  });
}

const SIZES = [0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, MiB];

const sized: Fixture[] = SIZES.flatMap((n): Fixture[] => {
  const data = bytesOf(n, n + 1);
  return [
    {
      name: `response of ${n} bytes with Content-Length`,
      request: { url: '/sized' },
      handler: () => (_req, res) => {
        res.setHeader('Content-Type', 'application/octet-stream');
        res.setHeader('Content-Length', String(n));
        res.end(data);
      },
      expect: (o) => {
        okBody(data)(o);
        check(header(o, 'content-length') === String(n), 'content-length');
      },
    },
    {
      name: `response of ${n} bytes in 16 KiB writes, length unknown`,
      request: { url: '/streamed' },
      handler: (ctx) => (_req, res) => {
        res.setHeader('Content-Type', 'application/octet-stream');
        writePaced(ctx, res, data, 16 * KiB, () => res.end());
      },
      expect: okBody(data),
    },
    {
      name: `request body of ${n} bytes with CONTENT_LENGTH, read by 'data'`,
      request: { method: 'POST', url: '/upload', headers: { 'Content-Type': 'application/octet-stream' }, body: data },
      handler: (ctx) => (req, res) => readBody(ctx, req, (body) => res.end(sha256(body))),
      expect: okBody(Buffer.from(sha256(data))),
    },
  ];
});

const CHUNKED_UPLOAD = bytesOf(100 * KiB + 7, 11);
const ECHO_PIECES = [bytesOf(16 * KiB, 21), bytesOf(16 * KiB, 22), bytesOf(16 * KiB, 23), bytesOf(5, 24)];

const framing: Fixture[] = [
  {
    name: 'chunked upload (no CONTENT_LENGTH), fed in pieces',
    request: { method: 'PUT', url: '/chunked', chunked: true },
    feed: async (ctx) => {
      for (let pos = 0; pos < CHUNKED_UPLOAD.length; pos += 30000) {
        ctx.input.write(CHUNKED_UPLOAD.subarray(pos, pos + 30000));
        await new Promise((r) => setImmediate(r));
      }
      ctx.input.end();
    },
    handler: (ctx) => (req, res) => readBody(ctx, req, (body) => res.end(sha256(body))),
    expect: okBody(Buffer.from(sha256(CHUNKED_UPLOAD))),
  },
  {
    name: 'HEAD: the app writes a body with Content-Length; none goes out',
    request: { method: 'HEAD', url: '/head' },
    handler: () => (_req, res) => {
      res.setHeader('Content-Length', '11');
      res.setHeader('Content-Type', 'text/plain');
      res.end('hello world');
    },
    expect: (o) => {
      check(o.client.status === 200 && o.client.bytes === 0, 'HEAD body');
      check(header(o, 'content-length') === '11', 'HEAD keeps the GET length');
    },
  },
  {
    name: 'HEAD: the app writes a body of unknown length',
    request: { method: 'HEAD', url: '/head-stream' },
    handler: () => (_req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.write('hello ');
      res.end('world');
    },
    expect: (o) => check(o.client.status === 200 && o.client.bytes === 0, 'HEAD body'),
  },
  {
    name: '204: the app tries to write a body',
    request: { method: 'DELETE', url: '/thing' },
    handler: () => (_req, res) => {
      res.statusCode = 204;
      res.end('ignored');
    },
    expect: (o) => check(o.client.status === 204 && o.client.bytes === 0 && header(o, 'content-length') === undefined, '204 bodiless'),
  },
  {
    name: '304 to If-None-Match',
    request: { url: '/etag', headers: { 'If-None-Match': '"v1"' } },
    handler: () => (req, res) => {
      res.setHeader('ETag', '"v1"');
      if (req.headers['if-none-match'] === '"v1"') {
        res.statusCode = 304;
        res.end();
      } else res.end('fresh');
    },
    expect: (o) => check(o.client.status === 304 && o.client.bytes === 0 && header(o, 'etag') === '"v1"', '304'),
  },
  {
    name: 'Transfer-Encoding: chunked set by the app',
    request: { url: '/te' },
    handler: () => (_req, res) => {
      res.setHeader('Transfer-Encoding', 'chunked');
      res.setHeader('Content-Type', 'text/plain');
      res.write('alpha\r\n');
      res.write('0\r\n\r\n');
      res.end('omega');
    },
    expect: okBody(Buffer.from('alpha\r\n0\r\n\r\nomega')),
  },
  {
    name: 'Connection, Keep-Alive, Upgrade and Proxy-Connection set by the app do not leak',
    request: { url: '/hop' },
    handler: () => (_req, res) => {
      res.setHeader('Connection', 'close');
      res.setHeader('Keep-Alive', 'timeout=5, max=100');
      res.setHeader('Proxy-Connection', 'keep-alive');
      res.setHeader('Upgrade', 'h2c');
      res.setHeader('X-Kept', 'yes');
      res.end('hop');
    },
    expect: (o) => {
      okBody(Buffer.from('hop'))(o);
      check(header(o, 'x-kept') === 'yes', 'end-to-end header kept');
    },
  },
  {
    name: 'HTTP/1.0 client: SERVER_PROTOCOL says so',
    request: { url: '/old', params: [['SERVER_PROTOCOL', 'HTTP/1.0']] },
    handler: () => (_req, res) => {
      res.write('one ');
      res.end('two');
    },
    expect: okBody(Buffer.from('one two')),
  },
];

const headers: Fixture[] = [
  {
    name: 'multiple Set-Cookie (array, then appendHeader)',
    request: { url: '/cookies', headers: { Cookie: 'a=1; b=2' } },
    handler: () => (_req, res) => {
      res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
      res.appendHeader('Set-Cookie', 'c=3; Secure');
      res.end('ok');
    },
    expect: (o) => {
      okBody(Buffer.from('ok'))(o);
      const cookies = o.client.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v);
      check(JSON.stringify(cookies) === JSON.stringify(['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']), `cookies ${JSON.stringify(cookies)}`);
    },
  },
  {
    name: 'latin1 header values both ways',
    // A param is bytes decoded as latin1: é is one byte 0xE9.
    request: { url: '/latin1', params: [['HTTP_X_LATIN', 'caf\u00e9 \u00ff']] },
    handler: (ctx) => (req, res) => {
      const v = req.headers['x-latin'];
      ctx.fact('x-latin codes', typeof v === 'string' ? [...v].map((c) => c.charCodeAt(0)) : v);
      res.setHeader('X-Latin-Out', '\u00e9t\u00e9');
      res.end(Buffer.from(String(v), 'latin1'));
    },
    expect: (o) => {
      check(header(o, 'x-latin-out') === '\u00e9t\u00e9', `x-latin-out ${JSON.stringify(header(o, 'x-latin-out'))}`);
      check(o.client.text === 'caf\u00e9 \u00ff', `echo ${JSON.stringify(o.client.text)}`);
    },
  },
  {
    name: 'writeHead with a flat array of headers and a custom reason',
    request: { url: '/array' },
    handler: () => (_req, res) => {
      res.writeHead(201, 'Made It', ['X-A', '1', 'X-B', '2', 'X-A', '3', 'Content-Type', 'text/plain']);
      res.end('made');
    },
    expect: (o) => {
      check(o.client.status === 201 && o.client.reason === 'Made It', `status ${o.client.status} ${o.client.reason}`);
      const xa = o.client.headers.filter(([n]) => n.toLowerCase() === 'x-a').map(([, v]) => v).join(',');
      check(xa === '1,3', `x-a ${xa}`);
    },
  },
  {
    name: 'statusMessage and setHeader with numbers and arrays',
    request: { url: '/misc' },
    handler: () => (_req, res) => {
      res.statusCode = 418;
      res.statusMessage = 'Short And Stout';
      res.setHeader('X-Number', 42);
      res.setHeader('Vary', ['Accept', 'Accept-Encoding']);
      res.end();
    },
    expect: (o) => check(o.client.status === 418 && o.client.reason === 'Short And Stout' && header(o, 'x-number') === '42', 'status/headers'),
  },
  {
    name: 'request headers, query and escapes as the app sees them',
    request: {
      url: '/a%20b/c?x=1&y=%2F',
      headers: { Accept: 'text/html', 'X-Forwarded-For': '203.0.113.9', Expect: '100-continue', Cookie: 'k=v' },
    },
    handler: () => (_req, res) => res.end('seen'),
    expect: okBody(Buffer.from('seen')),
  },
  {
    name: 'https request: socket.encrypted',
    request: { url: '/secure', https: true },
    handler: () => (_req, res) => res.end('secure'),
    expect: okBody(Buffer.from('secure')),
  },
  {
    name: 'a method node:http does not know',
    request: { method: 'BREW', url: '/pot' },
    handler: () => (req, res) => res.end(`method ${req.method}`),
  },
];

const interim: Fixture[] = [
  {
    name: '1xx: writeContinue, writeProcessing and writeEarlyHints are not the final head',
    request: { method: 'POST', url: '/hints', body: Buffer.from('x'), headers: { Expect: '100-continue' } },
    handler: () => (_req, res) => {
      res.writeContinue();
      res.writeProcessing();
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.setHeader('Content-Type', 'text/plain');
      res.end('final');
    },
    expect: (o) => {
      okBody(Buffer.from('final'))(o);
      check(header(o, 'link') === undefined, 'early hint taken for the final head');
    },
  },
  {
    name: 'trailers: addTrailers on a chunked response',
    request: { url: '/trailers', headers: { TE: 'trailers' } },
    handler: () => (_req, res) => {
      res.setHeader('Trailer', 'X-Checksum');
      res.setHeader('Content-Type', 'text/plain');
      res.write('body ');
      res.addTrailers({ 'X-Checksum': 'abc123' });
      res.end('done');
    },
    expect: okBody(Buffer.from('body done')),
  },
  {
    name: 'flushHeaders, then the body later',
    request: { url: '/flush' },
    handler: (ctx) => (_req, res) => {
      res.setHeader('Content-Type', 'text/event-stream');
      res.flushHeaders();
      ctx.log(`headersSent=${res.headersSent}`);
      void ctx.responder.until(() => ctx.responder.headSent, 50).then((seen) => {
        ctx.fact('gateway had the head before the first byte', seen);
        res.write('data: 1\n\n');
        void ctx.responder.until(() => ctx.responder.bytes > 0).then((got) => {
          ctx.fact('first event reached the gateway before end', got);
          res.end('data: 2\n\n');
        });
      });
    },
    expect: okBody(Buffer.from('data: 1\n\ndata: 2\n\n')),
  },
];

const REQ_LATIN1 = Buffer.from([0x61, 0xe9, 0xff, 0x00, 0x80, 0x7a]);
const PIPED = bytesOf(200 * KiB + 3, 31);
const ITERATED = bytesOf(128 * KiB, 32);
const UNREAD = bytesOf(256 * KiB, 33);

const reading: Fixture[] = [
  {
    name: "req.setEncoding('latin1')",
    request: { method: 'POST', url: '/enc', body: REQ_LATIN1 },
    handler: (ctx) => (req, res) => {
      req.setEncoding('latin1');
      let text = '';
      req.on('data', (s: string) => {
        text += s;
      });
      req.on('end', () => {
        ctx.fact('decoded', [...text].map((c) => c.charCodeAt(0)));
        res.end(String(text.length));
      });
    },
    expect: okBody(Buffer.from('6')),
  },
  {
    name: 'req.pipe(res) echoes 200 KiB',
    request: { method: 'POST', url: '/pipe', body: PIPED },
    handler: () => (req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream');
      req.pipe(res);
    },
    expect: okBody(PIPED),
  },
  {
    name: 'for await (const chunk of req)',
    request: { method: 'POST', url: '/iter', body: ITERATED },
    handler: (ctx) => async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      ctx.fact('iterated', body.length);
      res.end(sha256(body));
    },
    expect: okBody(Buffer.from(sha256(ITERATED))),
  },
  {
    name: 'the request body left unread, twice on one app',
    request: { method: 'POST', url: '/unread', body: UNREAD },
    repeat: 2,
    handler: () => (_req, res) => res.end('not reading that'),
    expect: okBody(Buffer.from('not reading that')),
  },
  {
    name: 'streaming both ways: each piece echoed before the next is sent',
    request: { method: 'POST', url: '/echo', contentLength: ECHO_PIECES.reduce((n, p) => n + p.length, 0) },
    feed: async (ctx) => {
      let sent = 0;
      const seen: boolean[] = [];
      for (const piece of ECHO_PIECES) {
        ctx.input.write(piece);
        sent += piece.length;
        seen.push(await ctx.responder.until(() => ctx.responder.bytes >= sent));
      }
      ctx.fact('each piece echoed before the next', seen);
      ctx.input.end();
    },
    handler: () => (req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream');
      req.on('data', (c: Buffer) => res.write(c));
      req.on('end', () => res.end());
    },
    expect: okBody(Buffer.concat(ECHO_PIECES)),
  },
];

const SLOW_DOWNLOAD = bytesOf(MiB, 41);
const SLOW = { capacityBytes: 32 * KiB, drainMs: 1 } as const;

const pacing: Fixture[] = [
  {
    name: 'slow gateway: 1 MiB in 16 KiB writes waits on drain',
    request: { url: '/slow' },
    slow: SLOW,
    handler: (ctx) => (_req, res) => writePaced(ctx, res, SLOW_DOWNLOAD, 16 * KiB, () => res.end()),
    expect: (o) => {
      okBody(SLOW_DOWNLOAD)(o);
      check(JSON.stringify(o.app.facts.backpressure) === JSON.stringify({ refused: true, drainPerRefusal: true }), `backpressure ${JSON.stringify(o.app.facts.backpressure)}`);
    },
  },
  {
    name: 'slow gateway: stream.pipeline(readable, res)',
    eventsReference: 'node',
    // When pipeline's callback runs against the dumped request's 'end'/'close' depends on when the
    // socket's last write completes (a TCP write on a server, a gateway record here): req's and
    // res's own events are compared in order, the app's callback on its own.
    eventsPerEmitter: true,
    request: { url: '/pipeline' },
    slow: SLOW,
    handler: (ctx) => (_req, res) => {
      const pieces: Buffer[] = [];
      for (let pos = 0; pos < SLOW_DOWNLOAD.length; pos += 10000) pieces.push(SLOW_DOWNLOAD.subarray(pos, pos + 10000));
      pipeline(Readable.from(pieces), res, (err) => ctx.log(`pipeline ${err === undefined || err === null ? 'ok' : describeError(err)}`));
    },
    expect: okBody(SLOW_DOWNLOAD),
  },
  {
    name: "one write over the mark: false, then 'drain' before 'finish'",
    request: { url: '/big-write' },
    slow: SLOW,
    handler: (ctx) => (_req, res) => {
      const more = res.write(SLOW_DOWNLOAD.subarray(0, 200 * KiB));
      ctx.log(`write returned ${more}`);
      res.once('drain', () => {
        ctx.log('app:drain');
        res.end();
      });
    },
    expect: okBody(SLOW_DOWNLOAD.subarray(0, 200 * KiB)),
  },
];

const failing: Fixture[] = [
  {
    name: 'the handler throws before the head',
    request: { url: '/throw' },
    handler: () => () => {
      throw new Error('sync boom');
    },
    expect: (o) => check(o.client.status === 500 && o.client.appStatus === 1, `status ${o.client.status}`),
  },
  {
    name: 'the handler rejects before the head',
    request: { url: '/reject' },
    handler: () => async () => {
      await new Promise((r) => setImmediate(r));
      throw new Error('async boom');
    },
    expect: (o) => check(o.client.status === 500 && o.client.appStatus === 1, `status ${o.client.status}`),
  },
  {
    name: 'next(err) before the head',
    request: { url: '/next-err' },
    handler: () => (_req, _res, next) => next?.(new Error('passed on')),
    expect: (o) => check(o.client.status === 500, `status ${o.client.status}`),
  },
  {
    name: 'next() with nothing sent is a 404',
    request: { url: '/next' },
    handler: () => (_req, _res, next) => next?.(),
    expect: (o) => check(o.client.status === 404, `status ${o.client.status}`),
  },
  {
    name: 'res.destroy() after the head and part of the body',
    request: { url: '/destroy' },
    handler: (ctx) => (_req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.write('x'.repeat(1000));
      void ctx.responder.until(() => ctx.responder.bytes >= 1000).then((got) => {
        ctx.fact('partial body reached the gateway', got);
        res.destroy();
      });
    },
    expect: (o) => check(o.client.status === 200 && o.client.appStatus !== 0 && o.client.bytes === 1000, `status ${o.client.status} appStatus ${o.client.appStatus} bytes ${o.client.bytes}`),
  },
  {
    name: 'the handler throws after writing the head',
    request: { url: '/throw-late' },
    handler: () => (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('partial');
      throw new Error('late boom');
    },
    expect: (o) => check(o.client.appStatus !== 0, `appStatus ${o.client.appStatus}`),
  },
];

const HALF_UPLOAD = bytesOf(64 * KiB, 51);

const aborting: Fixture[] = [
  {
    name: 'client aborts while the app reads the body',
    request: { method: 'POST', url: '/abort-upload', contentLength: 2 * HALF_UPLOAD.length },
    feed: async (ctx) => {
      ctx.input.write(HALF_UPLOAD);
      const got = await ctx.reached('half read');
      ctx.fact('app read the first half before the abort', got);
      ctx.abort();
      ctx.input.destroy();
    },
    handler: (ctx) => (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes === HALF_UPLOAD.length) ctx.reach('half read');
      });
      res.on('close', () => ctx.fact('bytes read at res close', bytes));
    },
    expect: (o) => check(o.client.appStatus === 2, `appStatus ${o.client.appStatus}`),
  },
  {
    name: 'client aborts mid-response',
    request: { url: '/abort-download' },
    handler: (ctx) => (_req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.write('first ');
      void ctx.responder.until(() => ctx.responder.bytes > 0).then((got) => {
        ctx.fact('first bytes reached the gateway', got);
        ctx.abort();
      });
      res.on('close', () => ctx.fact('writableEnded at close', res.writableEnded));
    },
    expect: (o) => check(o.client.appStatus === 2, `appStatus ${o.client.appStatus}`),
  },
  {
    name: 'client aborts before the app answers',
    request: { url: '/abort-early' },
    handler: (ctx) => (_req, res) => {
      setImmediate(() => ctx.abort());
      res.on('close', () => {
        ctx.fact('headersSent at close', res.headersSent);
        // Writing after the close is what a slow app does; it must be harmless.
        res.end('too late');
      });
    },
    expect: (o) => check(o.client.appStatus === 2 && o.client.bytes === 0, `appStatus ${o.client.appStatus}`),
  },
];

const MANY_HEADERS: Array<readonly [string, string]> = Array.from({ length: 100 }, (_, i) => [`HTTP_X_H${i}`, `value ${i}`] as const);

const edges: Fixture[] = [
  {
    name: 'mounted under /app with path: full; baseUrl, originalUrl',
    mount: '/app',
    options: { path: 'full' },
    request: { url: '/app/x%2Fy/z?q=%C3%A9' },
    handler: () => (req, res) => res.end(String(req.url)),
    expect: okBody(Buffer.from('/app/x%2Fy/z?q=%C3%A9')),
  },
  {
    name: 'mounted under /app, relative path',
    mount: '/app',
    request: { url: '/app/x/z?q=1' },
    handler: () => (req, res) => res.end(String(req.url)),
    expect: okBody(Buffer.from('/x/z?q=1')),
  },
  {
    name: 'a raw UTF-8 request target, an empty header, a hundred headers, no Host',
    request: { url: '/caf\u00c3\u00a9?n=\u00c3\u00a9', params: [['HTTP_X_EMPTY', ''], ['HTTP_HOST', ''], ...MANY_HEADERS] },
    handler: () => (req, res) => res.end(`${String(req.url)} ${Object.keys(req.headers).length}`),
  },
  {
    name: 'CONTENT_TYPE and a Cookie sent twice by the front server',
    request: { method: 'POST', url: '/ct', body: Buffer.from('{}'), params: [['CONTENT_TYPE', 'application/json; charset=utf-8'], ['HTTP_COOKIE', 'a=1'], ['HTTP_COOKIE', 'b=2']] },
    handler: (ctx) => (req, res) => readBody(ctx, req, () => res.end(`${String(req.headers['content-type'])} | ${String(req.headers.cookie)}`)),
    expect: okBody(Buffer.from('application/json; charset=utf-8 | a=1; b=2')),
  },
  {
    name: 'res.sendDate = false: no Date header',
    request: { url: '/nodate' },
    handler: () => (_req, res) => {
      res.sendDate = false;
      res.end('no date');
    },
    expect: (o) => check(!o.client.hasDate, 'a Date header was sent'),
  },
  {
    name: 'write and end callbacks, cork and uncork',
    request: { url: '/callbacks' },
    handler: (ctx) => (_req, res) => {
      res.cork();
      res.write('a', () => ctx.log('write cb a'));
      res.write('b', () => ctx.log('write cb b'));
      process.nextTick(() => {
        res.uncork();
        res.end('c', () => ctx.log('end cb'));
      });
    },
    expect: okBody(Buffer.from('abc')),
  },
  {
    name: 'res.setTimeout and req.setTimeout return the message; socket.setTimeout/setNoDelay/setKeepAlive',
    request: { url: '/timeouts' },
    handler: (ctx) => (req, res) => {
      ctx.fact('setTimeout returns', [res.setTimeout(60_000) === res, req.setTimeout(60_000) === req]);
      req.socket.setNoDelay(true);
      req.socket.setKeepAlive(true, 1000);
      res.end('ok');
    },
    expect: okBody(Buffer.from('ok')),
  },
  {
    name: 'write after end: an error on res, the response intact',
    request: { url: '/after-end' },
    handler: (ctx) => (_req, res) => {
      res.end('once');
      res.write('twice', (err) => ctx.log(`late write cb ${describeError(err)}`));
    },
    expect: okBody(Buffer.from('once')),
  },
  {
    name: 'Content-Length set by the app smaller than the body',
    request: { url: '/long' },
    handler: () => (_req, res) => {
      res.setHeader('Content-Length', '5');
      res.end('1234567890');
    },
    expect: (o) => check(o.client.bytes <= 10, `bytes ${o.client.bytes}`),
  },
  {
    name: 'an invalid header value set by the app: the handler throws, 500',
    request: { url: '/bad-header' },
    handler: () => (_req, res) => {
      res.setHeader('X-Bad', 'a\r\nInjected: yes');
      res.end('never');
    },
    expect: (o) => check(o.client.status === 500, `status ${o.client.status}`),
  },
  {
    name: 'the app ends the response from its first data event; the rest of a 1 MiB body is dropped',
    eventsReference: 'node',
    request: { method: 'POST', url: '/early-answer', body: bytesOf(MiB, 61) },
    repeat: 2,
    handler: (ctx) => (req, res) => {
      req.once('data', (c: Buffer) => {
        ctx.fact('first chunk seen', c.length > 0);
        res.end('enough');
      });
    },
    expect: okBody(Buffer.from('enough')),
  },
  {
    name: 'the app destroys the request it is reading',
    request: { method: 'POST', url: '/req-destroy', body: bytesOf(200 * KiB, 62) },
    // The replay then emits 'end' with complete=true on the destroyed request; node:http does not.
    eventsReference: 'node',
    handler: () => (req, res) => {
      req.once('data', () => {
        req.destroy();
        res.statusCode = 413;
        res.end('too big');
      });
    },
  },
  {
    name: 'an unread body is received all the same: req.complete and readableLength before the first read',
    request: { method: 'POST', url: '/unread-complete', body: bytesOf(100, 63) },
    handler: (ctx) => (req, res) => {
      setTimeout(() => {
        ctx.log(`complete=${req.complete} readableLength=${req.readableLength}`);
        res.end('ok');
      }, 10);
    },
  },
  {
    name: 'the app writes a head and a chunked body, then destroys the response in the same tick',
    request: { url: '/write-then-destroy' },
    slow: SLOW,
    handler: () => (_req, res) => {
      res.statusCode = 201;
      res.setHeader('Set-Cookie', 'a=1');
      res.setHeader('Transfer-Encoding', 'chunked');
      res.write(bytesOf(38229, 64));
      res.destroy();
    },
  },
  {
    name: 'the app writes its whole Content-Length body, then destroys the response in the same tick',
    request: { url: '/write-all-then-destroy' },
    slow: SLOW,
    handler: () => (_req, res) => {
      const body = bytesOf(38229, 65);
      res.setHeader('Content-Length', String(body.length));
      res.write(body);
      res.destroy();
    },
  },
  {
    name: 'the app ignores backpressure: 1 MiB in one go to a slow gateway',
    request: { url: '/ignore-pressure' },
    slow: SLOW,
    handler: (ctx) => (_req, res) => {
      ctx.log(`write returned ${res.write(SLOW_DOWNLOAD)}`);
      res.end();
    },
    expect: okBody(SLOW_DOWNLOAD),
  },
  {
    name: 'client aborts while the app waits for drain',
    request: { url: '/abort-on-drain' },
    slow: { capacityBytes: 16 * KiB, drainMs: 1 },
    handler: (ctx) => (_req, res) => {
      let writes = 0;
      const step = (): void => {
        while (res.write(SLOW_DOWNLOAD.subarray(0, 16 * KiB))) writes++;
        writes++;
        if (writes > 8) {
          void ctx.responder.until(() => ctx.responder.bytes >= 64 * KiB).then(() => ctx.abort());
          res.once('close', () => ctx.fact('writableFinished at close', res.writableFinished));
          return;
        }
        res.once('drain', step);
      };
      step();
    },
    expect: (o) => check(o.client.appStatus === 2, `appStatus ${o.client.appStatus}`),
  },
];

function expressInfo(): NodeHandler {
  const app = express();
  app.use(express.json());
  app.get('/info', (req, res) => {
    res.vary('Accept').append('X-Multi', ['1', '2']).location('/elsewhere').links({ next: '/page/2' });
    res.json({
      ip: req.ip, protocol: req.protocol, secure: req.secure, hostname: req.hostname, host: req.get('host'),
      baseUrl: req.baseUrl, originalUrl: req.originalUrl, path: req.path, query: req.query, xhr: req.xhr, fresh: req.fresh,
    });
  });
  app.post('/json', (req, res) => {
    res.status(201).json({ got: req.body as unknown });
  });
  app.get('/attachment', (_req, res) => {
    res.attachment('r\u00e9sum\u00e9.pdf').type('application/pdf').send(Buffer.from('%PDF-1.4'));
  });
  app.get('/redirect', (_req, res) => {
    res.redirect(301, '/moved');
  });
  app.get('/fails', () => {
    throw Object.assign(new Error('teapot'), { status: 418 });
  });
  app.use((err: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(err.status ?? 500).send(`handled: ${err.message}`);
  });
  return app;
}

function koaInfo(): NodeHandler {
  const app = new Koa();
  app.silent = true;
  app.use(async (ctx) => {
    if (ctx.path === '/stream') {
      ctx.type = 'text/plain';
      ctx.body = Readable.from(['one ', 'two ', 'three']);
      return;
    }
    if (ctx.path === '/empty') {
      ctx.status = 204;
      return;
    }
    await Promise.resolve();
    ctx.set('X-Koa', 'yes');
    ctx.body = { ip: ctx.ip, protocol: ctx.protocol, host: ctx.host, href: ctx.href, secure: ctx.secure, query: ctx.query };
  });
  return app.callback();
}

let fastifyReady: Promise<FastifyInstance> | undefined;
function fastifyInfo(): NodeHandler {
  fastifyReady ??= (async () => {
    const app = Fastify();
    app.get('/info', (request, reply) => reply.send({ ip: request.ip, hostname: request.hostname, protocol: request.protocol, url: request.url, query: request.query }));
    app.post('/created', (request, reply) => reply.code(201).header('X-Fastify', 'yes').send({ body: request.body }));
    app.get('/stream', (_request, reply) => reply.type('text/plain').send(Readable.from(['a', 'b', 'c'])));
    await app.ready();
    return app;
  })();
  const ready = fastifyReady;
  return (req, res) => ready.then((app) => app.routing(req, res));
}

const frameworks: Fixture[] = [
  {
    name: 'Express: request getters and response helpers over https',
    request: { url: '/info?a=1&b=x%20y', https: true, headers: { 'X-Requested-With': 'XMLHttpRequest' } },
    handler: () => expressInfo(),
    expect: (o) => check(o.client.status === 200 && header(o, 'location') === '/elsewhere', `status ${o.client.status}`),
  },
  {
    name: 'Express: express.json body, 201',
    request: { method: 'POST', url: '/json', headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{"a":[1,2,{"b":"\u00e9"}]}') },
    handler: () => expressInfo(),
    expect: (o) => check(o.client.status === 201 && o.client.text === '{"got":{"a":[1,2,{"b":"\u00c3\u00a9"}]}}', `status ${o.client.status} ${String(o.client.text)}`),
  },
  {
    name: 'Express: res.attachment with a non-ASCII name',
    request: { url: '/attachment' },
    handler: () => expressInfo(),
    expect: (o) => check(String(header(o, 'content-disposition')).startsWith('attachment;'), 'content-disposition'),
  },
  {
    name: 'Express: redirect',
    request: { url: '/redirect', headers: { Accept: 'text/html' } },
    handler: () => expressInfo(),
    expect: (o) => check(o.client.status === 301 && header(o, 'location') === '/moved', `status ${o.client.status}`),
  },
  {
    name: 'Express: an error handler answers a thrown error',
    request: { url: '/fails' },
    handler: () => expressInfo(),
    expect: (o) => check(o.client.status === 418 && o.client.text === 'handled: teapot', `status ${o.client.status}`),
  },
  {
    name: 'Koa: ctx getters, an async middleware',
    request: { url: '/info?x=1', https: true },
    handler: () => koaInfo(),
    expect: (o) => check(o.client.status === 200 && header(o, 'x-koa') === 'yes', `status ${o.client.status}`),
  },
  {
    name: 'Koa: a Readable body',
    request: { url: '/stream' },
    handler: () => koaInfo(),
    expect: okBody(Buffer.from('one two three')),
  },
  {
    name: 'Koa: 204',
    request: { url: '/empty' },
    handler: () => koaInfo(),
    expect: (o) => check(o.client.status === 204 && o.client.bytes === 0, `status ${o.client.status}`),
  },
  {
    name: 'Fastify (routing after ready): request getters',
    request: { url: '/info?q=1' },
    handler: () => fastifyInfo(),
    expect: (o) => check(o.client.status === 200, `status ${o.client.status}`),
  },
  {
    name: 'Fastify: JSON body, 201 and a header',
    request: { method: 'POST', url: '/created', headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{"k":"v"}') },
    handler: () => fastifyInfo(),
    expect: (o) => check(o.client.status === 201 && o.client.text === '{"body":{"k":"v"}}', `status ${o.client.status} ${String(o.client.text)}`),
  },
  {
    name: 'Fastify: a stream reply',
    request: { url: '/stream' },
    handler: () => fastifyInfo(),
    expect: okBody(Buffer.from('abc')),
  },
  {
    name: 'Fastify: its own 404',
    request: { url: '/nowhere' },
    handler: () => fastifyInfo(),
    expect: (o) => check(o.client.status === 404, `status ${o.client.status}`),
  },
  {
    name: 'writeHead with an array of [name, value] pairs',
    request: { url: '/pairs' },
    handler: () => (_req, res) => {
      res.writeHead(200, [['X-P', '1'], ['X-P', '2'], ['Content-Type', 'text/plain']] as unknown as string[]);
      res.end('pairs');
    },
    expect: okBody(Buffer.from('pairs')),
  },
];

export const FIXTURES: readonly Fixture[] = [...sized, ...framing, ...headers, ...interim, ...reading, ...pacing, ...failing, ...aborting, ...edges, ...frameworks];
