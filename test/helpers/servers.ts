// Test servers, from a test's side: postern started on loopback port 0 (one listener per protocol
// asked for), a recording EventLog, and the small native apps the socket tests mount.

import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { native } from '../../src/app/resolve.ts';
import { Tree } from '../../src/app/tree.ts';
import type { Environ, HeaderList, NativeApp, Protocol, Responder } from '../../src/app/types.ts';
import type { AccessLog, AccessRecord, EventLog } from '../../src/log/types.ts';
import { startServer, type PosternServer } from '../../src/server/server.ts';
import type { ServerLimits, ServerOptions } from '../../src/server/options.ts';
import type { Target } from './clients.ts';

export interface LogEntry {
  readonly level: 'error' | 'warn' | 'info' | 'debug';
  readonly message: string;
  readonly meta: Record<string, unknown>;
}

/** An EventLog that keeps every line, for assertions on codes and levels. */
export class RecordingLog implements EventLog {
  readonly entries: LogEntry[] = [];
  readonly debugEnabled: boolean;
  constructor(debugEnabled = true) {
    this.debugEnabled = debugEnabled;
  }
  error(message: string, meta: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'error', message, meta });
  }
  warn(message: string, meta: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'warn', message, meta });
  }
  info(message: string, meta: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'info', message, meta });
  }
  debug(message: string, meta: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'debug', message, meta });
  }
  /** Entries whose meta.code is `code`. */
  withCode(code: string): LogEntry[] {
    return this.entries.filter((e) => e.meta['code'] === code);
  }
}

export class RecordingAccessLog implements AccessLog {
  readonly records: AccessRecord[] = [];
  write(record: AccessRecord): void {
    this.records.push(record);
  }
}

export interface TestServer {
  readonly server: PosternServer;
  readonly log: RecordingLog;
  /** Where the listener for `protocol` is. */
  target(protocol: Protocol): Target;
  port(protocol: Protocol): number;
  close(): Promise<void>;
}

export interface TestServerOptions extends ServerLimits {
  readonly tree: Tree;
  readonly protocols?: readonly Protocol[];
  readonly accessLog?: AccessLog;
  readonly log?: RecordingLog;
}

/** Starts postern on 127.0.0.1:0 for each protocol (default all four). */
export async function startTestServer(options: TestServerOptions): Promise<TestServer> {
  const log = options.log ?? new RecordingLog();
  const protocols = options.protocols ?? (['fastcgi', 'scgi', 'uwsgi', 'http'] as const);
  const { tree, protocols: _p, log: _l, accessLog, ...limits } = options;
  const serverOptions: ServerOptions = {
    ...limits,
    tree,
    log,
    listeners: protocols.map((protocol) => ({ protocol, address: '127.0.0.1:0' })),
    env: {},
  };
  if (accessLog !== undefined) serverOptions.accessLog = accessLog;
  const server = await startServer(serverOptions);
  const port = (protocol: Protocol): number => {
    const l = server.listeners.find((x) => x.protocol === protocol);
    if (l?.port === undefined) throw new Error(`no ${protocol} listener`);
    return l.port;
  };
  return {
    server,
    log,
    port,
    target: (protocol) => ({ port: port(protocol), host: '127.0.0.1' }),
    close: () => server.close(),
  };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A tree with one native app at `/`, errors kept quiet (tests look at responses, not stderr). */
export function treeOf(app: NativeApp, prefix = '/'): Tree {
  return new Tree({ onError: () => undefined }).mount(native(app), prefix);
}

/** Environ keys the conformance suite compares across protocols. */
export const ECHO_KEYS = [
  'REQUEST_METHOD',
  'SCRIPT_NAME',
  'PATH_INFO',
  'QUERY_STRING',
  'CONTENT_TYPE',
  'CONTENT_LENGTH',
  'SERVER_PROTOCOL',
  'HTTP_X_TEST',
  'HTTP_COOKIE',
  'postern.url_scheme',
  'postern.role',
] as const;

/** Echoes selected environ keys and the body it read, as JSON. */
export const echoApp: NativeApp = async (environ: Environ, start) => {
  const body = await readAll(environ['postern.input']);
  const out: Record<string, unknown> = {};
  for (const k of ECHO_KEYS) out[k] = environ[k] ?? null;
  out['protocol'] = environ['postern.protocol'];
  out['body'] = body.toString('latin1');
  start('200 OK', [['Content-Type', 'application/json']]);
  return JSON.stringify(out);
};

export function addressPort(a: AddressInfo | string | null): number {
  return typeof a === 'object' && a !== null ? a.port : 0;
}

/** What the control app saw, for assertions: abort reasons, input error codes. */
export interface ControlEvents {
  readonly aborts: Array<{ path: string; code: string }>;
  readonly inputErrors: Array<{ path: string; code: string }>;
  /** Resolvers waiting for the next abort. */
  onAbort?: () => void;
}

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : String(err);
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * One native app with a behaviour per path, for the socket tests:
 * `/echo` echoes selected environ keys and the body; `/body-error` reads the body and answers
 * with its error code; `/hang` never answers until aborted; `/stall` sends a head and a chunk,
 * then waits until aborted; `/sleep/N` answers after N ms.
 */
export function controlApp(events: ControlEvents): NativeApp {
  const noteAbort = (environ: Environ): void => {
    const signal = environ['postern.signal'];
    void untilAborted(signal).then(() => {
      events.aborts.push({ path: environ.PATH_INFO, code: codeOf(signal.reason) });
      events.onAbort?.();
    });
  };
  return async (environ, start) => {
    const path = environ.PATH_INFO;
    if (path === '/echo') return echoApp(environ, start);
    if (path === '/body-error') {
      try {
        const body = await readAll(environ['postern.input']);
        start('200 OK', [['Content-Type', 'text/plain']]);
        return `ok:${String(body.length)}`;
      } catch (err) {
        events.inputErrors.push({ path, code: codeOf(err) });
        start('200 OK', [['Content-Type', 'text/plain']]);
        return `error:${codeOf(err)}`;
      }
    }
    if (path === '/hang') {
      noteAbort(environ);
      await untilAborted(environ['postern.signal']);
      start('200 OK', []);
      return 'too late';
    }
    if (path === '/stall') {
      noteAbort(environ);
      const signal = environ['postern.signal'];
      start('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield 'partial';
        await untilAborted(signal);
      })();
    }
    if (path.startsWith('/sleep/')) {
      await new Promise((r) => setTimeout(r, Number(path.slice(7))));
      start('200 OK', [['Content-Type', 'text/plain']]);
      return 'slept';
    }
    start('404 Not Found', [['Content-Type', 'text/plain']]);
    return 'control: no such path';
  };
}

/** Minimal FastCGI params for `path` on the control app (nginx-like, whole path in SCRIPT_NAME). */
export function fcgiParams(path: string, extra: ReadonlyArray<readonly [string, string]> = []): Array<readonly [string, string]> {
  return [
    ['REQUEST_METHOD', 'GET'],
    ['SCRIPT_NAME', path],
    ['REQUEST_URI', path],
    ['QUERY_STRING', ''],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['SERVER_NAME', 'example.test'],
    ['SERVER_PORT', '80'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ...extra,
  ];
}

/** Waits until `check` holds, polling; fails after `ms`. */
export async function eventually(check: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---- bulk data and backpressure ------------------------------------------------------------------

export const MIB = 1024 * 1024;

let baseBlock: Buffer | undefined;

/** A fixed pseudo-random MiB (xorshift32, seed fixed), so both ends can make the same bytes. */
function base(): Buffer {
  if (baseBlock !== undefined) return baseBlock;
  const b = Buffer.allocUnsafe(MIB);
  let x = 0x9e3779b9;
  for (let i = 0; i < MIB; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  baseBlock = b;
  return b;
}

/** `mib` MiB of deterministic bytes, one fresh 1 MiB buffer per block (each stamped with its index). */
export function* blocks(mib: number): Generator<Buffer> {
  const b = base();
  for (let i = 0; i < mib; i++) {
    const out = Buffer.allocUnsafe(MIB);
    b.copy(out);
    out.writeUInt32LE(i, 0);
    yield out;
  }
}

/** The sha256 of `blocks(mib)`. */
export function blocksDigest(mib: number): string {
  const h = createHash('sha256');
  for (const b of blocks(mib)) h.update(b);
  return h.digest('hex');
}

/**
 * `/sink?delay=MS`: waits MS ms before reading, notes how many body bytes were already buffered
 * in its input, then hashes the whole body: `{"bytes":N,"sha256":"…","bufferedAtWake":N}`.
 * `/source?mib=N`: answers `blocks(N)` with a Content-Length.
 */
export const bulkApp: NativeApp = async (environ, start) => {
  const url = new URL(`http://x${String(environ.REQUEST_URI ?? environ.PATH_INFO)}`);
  if (environ.PATH_INFO === '/sink') {
    const input = environ['postern.input'];
    const delay = Number(url.searchParams.get('delay') ?? '0');
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const bufferedAtWake = input.readableLength;
    const h = createHash('sha256');
    let bytes = 0;
    for await (const c of input) {
      h.update(c as Buffer);
      bytes += (c as Buffer).length;
    }
    start('200 OK', [['Content-Type', 'application/json']]);
    return JSON.stringify({ bytes, sha256: h.digest('hex'), bufferedAtWake });
  }
  if (environ.PATH_INFO === '/source') {
    const mib = Number(url.searchParams.get('mib') ?? '1');
    start('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', String(mib * MIB)]]);
    return blocks(mib);
  }
  start('404 Not Found', []);
  return null;
};

/** What a SpyTree saw of each response: how often write() said "wait", bytes handed over. */
export interface WriteStats {
  writes: number;
  refused: number;
  bytes: number;
}

/** A Tree that counts what its apps' responses do with Responder.write, to observe backpressure. */
export class SpyTree extends Tree {
  readonly responses: WriteStats[] = [];

  override handle(environ: Environ, responder: Responder): Promise<void> {
    const stats: WriteStats = { writes: 0, refused: 0, bytes: 0 };
    this.responses.push(stats);
    const spy: Responder = {
      head: (status: number, reason: string, headers: HeaderList) => responder.head(status, reason, headers),
      write: (chunk: Uint8Array) => {
        stats.writes++;
        stats.bytes += chunk.length;
        const ok = responder.write(chunk);
        if (!ok) stats.refused++;
        return ok;
      },
      drained: () => responder.drained(),
      end: (appStatus?: number) => responder.end(appStatus),
      get aborted() {
        return responder.aborted;
      },
      get headSent() {
        return responder.headSent;
      },
    };
    return super.handle(environ, spy);
  }
}

/** Samples RSS while `run` goes; resolves with its result and the largest growth seen. */
export async function withRssSampling<T>(run: () => Promise<T>, everyMs = 25): Promise<{ result: T; growth: number }> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, everyMs);
  try {
    const result = await run();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growth: peak - baseline };
  } finally {
    clearInterval(timer);
  }
}

// ---- a postern in a child process (inherited sockets) ---------------------------------------------

/** What `runChild` reads from POSTERN_TEST_CHILD. */
export interface ChildConfig {
  readonly listeners: ServerOptions['listeners'];
}

/**
 * Entry point of a child process: starts postern with the listeners in POSTERN_TEST_CHILD (JSON)
 * and `process.env` (so LISTEN_FDS applies), prints `READY <listeners JSON>` on stdout, answers
 * `/` with its pid and whether LISTEN_FDS is still set, and stops on SIGTERM.
 */
export async function runChild(): Promise<void> {
  const config = JSON.parse(process.env['POSTERN_TEST_CHILD'] ?? '{}') as ChildConfig;
  const app: NativeApp = (environ, start) => {
    start('200 OK', [['Content-Type', 'application/json']]);
    return JSON.stringify({ pid: process.pid, protocol: environ['postern.protocol'], listenFds: process.env['LISTEN_FDS'] ?? null });
  };
  const server = await startServer({ tree: treeOf(app), listeners: config.listeners });
  process.stdout.write(`READY ${JSON.stringify(server.listeners)}\n`);
  process.once('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
}

/** The command that runs `runChild` in a fresh node (under tsx when the tests run from sources). */
export function childCommand(): { command: string; args: string[] } {
  const self = import.meta.url;
  const loader = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return { command: process.execPath, args: [...loader, '--input-type=module', '-e', `import(${JSON.stringify(self)}).then((m) => m.runChild())`] };
}
