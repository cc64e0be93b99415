// Test kit for the app adapter tests, from the gateway's side: a hand-built environ and a
// Responder that can be slow (write() false until drained) and records how the app was paced.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Environ, HeaderList, Responder } from '../../src/app/types.ts';

export interface EnvironSpec {
  method?: string;
  scriptName?: string;
  pathInfo?: string;
  query?: string;
  requestUri?: string;
  headers?: Record<string, string>;
  contentType?: string;
  /** The request body; a Readable is used as it is (set contentLength yourself then). */
  body?: string | Uint8Array | Readable;
  contentLength?: string;
  https?: boolean;
  signal?: AbortSignal;
  extra?: Record<string, string>;
}

/** An environ as the tree hands it to a mounted app (SCRIPT_NAME already holds the mount). */
export function makeEnviron(spec: EnvironSpec = {}): Environ {
  const body = spec.body;
  const input = body instanceof Readable ? body : Readable.from(body === undefined ? [] : [typeof body === 'string' ? Buffer.from(body) : Buffer.from(body)]);
  const env: Environ = {
    REQUEST_METHOD: spec.method ?? 'GET',
    SCRIPT_NAME: spec.scriptName ?? '',
    PATH_INFO: spec.pathInfo ?? '/',
    QUERY_STRING: spec.query ?? '',
    SERVER_NAME: 'localhost',
    SERVER_PORT: spec.https === true ? '443' : '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REMOTE_ADDR: '192.0.2.7',
    REMOTE_PORT: '51515',
    'postern.protocol': 'fastcgi',
    'postern.url_scheme': spec.https === true ? 'https' : 'http',
    'postern.role': 'responder',
    'postern.input': input,
    'postern.signal': spec.signal ?? new AbortController().signal,
  };
  if (spec.requestUri !== undefined) env.REQUEST_URI = spec.requestUri;
  if (spec.contentType !== undefined) env.CONTENT_TYPE = spec.contentType;
  if (spec.contentLength !== undefined) env.CONTENT_LENGTH = spec.contentLength;
  else if (body !== undefined && !(body instanceof Readable)) env.CONTENT_LENGTH = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  env.HTTP_HOST = 'example.test';
  for (const [name, value] of Object.entries(spec.headers ?? {})) env[`HTTP_${name.toUpperCase().replaceAll('-', '_')}`] = value;
  for (const [name, value] of Object.entries(spec.extra ?? {})) env[name] = value;
  return env;
}

export interface SlowOptions {
  /** Bytes the responder takes before write() returns false (default: unlimited). */
  capacityBytes?: number;
  /** How long a drain takes (ms; 0 = next macrotask). */
  drainMs?: number;
  signal?: AbortSignal;
}

/** Records the response; with a capacity it applies backpressure like a slow socket. */
export class TestResponder implements Responder {
  status = 0;
  reason = '';
  headers: Array<[string, string]> = [];
  chunks: Buffer[] = [];
  bytes = 0;
  appStatus = -1;
  headSent = false;
  /** How many times write() returned false. */
  refusals = 0;
  /** How many times write() was called while the responder had said to wait. */
  writesWhileFull = 0;
  readonly #capacity: number;
  readonly #drainMs: number;
  readonly #signal: AbortSignal | undefined;
  #buffered = 0;
  #full = false;
  readonly #ended: Promise<void>;
  #resolveEnded!: () => void;

  constructor(options: SlowOptions = {}) {
    this.#capacity = options.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.#drainMs = options.drainMs ?? 0;
    this.#signal = options.signal;
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get aborted(): boolean {
    return this.#signal?.aborted === true;
  }

  head(status: number, reason: string, headers: HeaderList): void {
    if (this.headSent) throw new Error('head twice');
    this.status = status;
    this.reason = reason;
    this.headers = headers.map(([n, v]) => [n, v]);
    this.headSent = true;
  }

  write(chunk: Uint8Array): boolean {
    if (!this.headSent) throw new Error('write before head');
    if (this.#full) this.writesWhileFull++;
    this.chunks.push(Buffer.from(chunk));
    this.bytes += chunk.length;
    this.#buffered += chunk.length;
    if (this.#buffered >= this.#capacity) {
      this.#full = true;
      this.refusals++;
      return false;
    }
    return true;
  }

  drained(): Promise<void> {
    if (!this.#full) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#buffered = 0;
        this.#full = false;
        resolve();
      };
      if (this.#drainMs > 0) setTimeout(done, this.#drainMs);
      else setImmediate(done);
    });
  }

  end(appStatus = 0): void {
    if (this.appStatus !== -1) throw new Error('end twice');
    this.appStatus = appStatus;
    this.#resolveEnded();
  }

  get ended(): Promise<void> {
    return this.#ended;
  }

  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
  }

  headerAll(name: string): string[] {
    const lower = name.toLowerCase();
    return this.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
  }

  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.body.toString('utf8');
  }
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic pseudo-random bytes (so a failure can be replayed). */
export function bytesOf(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * A request body that is produced only as it is read, counting what was pulled — so a test can
 * prove the adapter does not read the body ahead of the app.
 */
export class CountingInput extends Readable {
  pulled = 0;
  readonly #data: Buffer;
  readonly #chunk: number;
  #pos = 0;

  constructor(data: Buffer, chunkBytes = 16384) {
    super({ highWaterMark: chunkBytes });
    this.#data = data;
    this.#chunk = chunkBytes;
  }

  override _read(): void {
    if (this.#pos >= this.#data.length) {
      this.push(null);
      return;
    }
    const end = Math.min(this.#pos + this.#chunk, this.#data.length);
    const piece = this.#data.subarray(this.#pos, end);
    this.#pos = end;
    this.pulled += piece.length;
    this.push(piece);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
