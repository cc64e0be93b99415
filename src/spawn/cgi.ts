// One CGI request, from the CGI program's side (RFC 3875): the request is the process environment
// (the meta-variables) and stdin (exactly CONTENT_LENGTH bytes, §4.2), the answer goes to stdout
// as a CGI response (`Status:` line, header fields, blank line, body, §6), and the process exits.
// The environment becomes the same flat params list a FastCGI PARAMS block gives, so the environ,
// the tree and the apps are the ones every listener uses.

import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { ROLE } from '../../protocols/common/events.ts';
import { encodeResponseHead, type HeaderList } from '../../protocols/common/head.ts';
import type { ProtocolError } from '../../protocols/common/errors.ts';
import type { Environ, Responder } from '../app/types.ts';
import { buildEnviron } from '../environ.ts';
import type { EventLog } from '../log/types.ts';
import { serverError, SERVER_ERRORS } from '../server/errors.ts';
import type { RequestInput, InputOwner } from '../server/request-input.ts';
import { RequestSource } from '../server/request-source.ts';

export const CGI_ERRORS = {
  /** CONTENT_LENGTH is not a decimal number (RFC 3875 §4.1.2): refused with 400. */
  BAD_CONTENT_LENGTH: 'POSTERN_ERR_CGI_CONTENT_LENGTH',
  /** CONTENT_LENGTH is above maxBodyBytes: refused with 413, the body unread. */
  BODY_TOO_LARGE: 'POSTERN_ERR_CGI_BODY_TOO_LARGE',
} as const;

/**
 * The environment as CGI params (flat `[name, value, …]`, latin1 byte strings like every
 * decoder's). On Linux /proc/self/environ holds the bytes the server passed; process.env has
 * decoded them as UTF-8 already (a PATH_INFO of raw non-UTF-8 bytes would be lost), so it is the
 * fallback. postern's own POSTERN_* settings are left out: they configure postern, not the request.
 */
export function cgiParams(env: Readonly<Record<string, string | undefined>>, procEnviron: string | undefined = '/proc/self/environ'): string[] {
  const out: string[] = [];
  let raw: string | undefined;
  if (procEnviron !== undefined) {
    try {
      raw = readFileSync(procEnviron, 'latin1');
    } catch {
      raw = undefined;
    }
  }
  if (raw !== undefined) {
    for (const entry of raw.split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const name = entry.slice(0, eq);
      if (!name.startsWith('POSTERN_')) out.push(name, entry.slice(eq + 1));
    }
    return out;
  }
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name.startsWith('POSTERN_')) continue;
    out.push(name, Buffer.from(value, 'utf8').toString('latin1'));
  }
  return out;
}

export interface CgiOptions {
  readonly params: string[];
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** The tree (or anything with its `handle`). */
  readonly tree: { handle(environ: Environ, responder: Responder): Promise<void> };
  readonly log: EventLog;
  /** 0 = unlimited. */
  readonly maxBodyBytes: number;
  readonly trustForwardedProto: boolean;
}

/** The value of a param (last wins, as in the environ). */
function param(params: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i + 1 < params.length; i += 2) if (params[i] === name) v = params[i + 1];
  return v;
}

/**
 * Answers the one request. Resolves once the response is written to `stdout` (or stdout failed):
 * 0, or 1 when the response could not be written (the server went away).
 */
export async function serveCgi(options: CgiOptions): Promise<number> {
  const { params, stdout, log } = options;
  const response = new CgiResponse(stdout);
  const lengthText = (param(params, 'CONTENT_LENGTH') ?? '').trim();
  if (lengthText !== '' && !/^[0-9]{1,15}$/.test(lengthText)) {
    log.warn('CGI request refused: CONTENT_LENGTH is not a number', { code: CGI_ERRORS.BAD_CONTENT_LENGTH, contentLength: lengthText });
    return response.plain(400, 'Bad Request');
  }
  const length = lengthText === '' ? 0 : Number(lengthText);
  if (options.maxBodyBytes > 0 && length > options.maxBodyBytes) {
    log.warn('CGI request refused: body larger than maxBodyBytes', { code: CGI_ERRORS.BODY_TOO_LARGE, limit: 'maxBodyBytes', maxBodyBytes: options.maxBodyBytes, contentLength: length });
    return response.plain(413, 'Content Too Large');
  }
  const body = new StdinBody(options.stdin, length);
  response.onGone = (err) => { body.source.abort(err); };
  const environ = buildEnviron(
    { id: 1, params, role: ROLE.RESPONDER, keepConn: false, contentLength: length },
    { protocol: 'cgi', trustForwardedProto: options.trustForwardedProto },
    body.source,
  );
  body.start();
  response.source = body.source;
  await options.tree.handle(environ, response);
  if (!response.ended) {
    // The tree always ends a response; a gap here is a bug, answered as the connections answer it.
    log.error('the app returned without ending its response', { code: SERVER_ERRORS.RESPONSE_STATE });
    if (!response.headSent) return response.plain(500, 'Internal Server Error');
    response.end(1);
  }
  body.stop();
  return response.flushed();
}

/** The request body: exactly `length` bytes of stdin, paced by the app's reading (STYLE.md 15). */
class StdinBody implements InputOwner {
  readonly source: RequestSource;
  readonly #stdin: Readable;
  #remaining: number;
  #listening = false;

  constructor(stdin: Readable, length: number) {
    this.#stdin = stdin;
    this.#remaining = length;
    this.source = new RequestSource(this);
  }

  start(): void {
    if (this.#remaining === 0) {
      this.source.finish();
      return;
    }
    this.#listening = true;
    this.#stdin.on('data', this.#onData);
    this.#stdin.on('end', this.#onEnd);
    this.#stdin.on('error', this.#onError);
  }

  stop(): void {
    if (!this.#listening) return;
    this.#listening = false;
    this.#stdin.off('data', this.#onData);
    this.#stdin.off('end', this.#onEnd);
    this.#stdin.off('error', this.#onError);
    this.#stdin.pause();
    this.source.drop();
  }

  readonly #onData = (chunk: Buffer): void => {
    // RFC 3875 §4.2: "the script MUST NOT read more than CONTENT_LENGTH bytes"; the server may not
    // close stdin after them.
    const take = chunk.length > this.#remaining ? chunk.subarray(0, this.#remaining) : chunk;
    this.#remaining -= take.length;
    const input = this.source.input;
    if (input.feed(take, 0)) {
      input.blocked = true;
      this.#stdin.pause();
    }
    if (this.#remaining === 0) {
      this.source.finish();
      this.stop();
    }
  };

  readonly #onEnd = (): void => {
    if (this.#remaining > 0) {
      this.source.fail(serverError(SERVER_ERRORS.BODY_TRUNCATED, `stdin ended ${String(this.#remaining)} bytes short of CONTENT_LENGTH`, 400));
    }
    this.stop();
  };

  readonly #onError = (err: Error): void => {
    this.source.abort(serverError(SERVER_ERRORS.CONNECTION_CLOSED, `reading stdin failed: ${err.message}`));
    this.source.fail(serverError(SERVER_ERRORS.CONNECTION_CLOSED, `reading stdin failed: ${err.message}`));
    this.stop();
  };

  unblock(input: RequestInput): void {
    if (!input.blocked) return;
    input.blocked = false;
    if (this.#listening) this.#stdin.resume();
  }
}

/** The response on stdout: a CGI head (RFC 3875 §6.2, the `Status:` form) then the body as written. */
class CgiResponse implements Responder {
  headSent = false;
  ended = false;
  #aborted = false;
  readonly #out: Writable;
  #drainWaiters: Array<() => void> | undefined;
  onGone: ((err: ProtocolError) => void) | undefined;
  source: RequestSource | undefined;

  constructor(out: Writable) {
    this.#out = out;
    out.on('error', this.#onError);
    out.on('drain', this.#onDrain);
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  onAbort(listener: () => void): void {
    if (this.#aborted) listener();
    else this.source?.onAbort(listener);
  }

  readonly #onError = (err: NodeJS.ErrnoException): void => {
    if (this.#aborted) return;
    this.#aborted = true;
    this.onGone?.(serverError(SERVER_ERRORS.CONNECTION_CLOSED, `stdout failed: ${err.code ?? err.message}`));
    this.#onDrain();
  };

  readonly #onDrain = (): void => {
    const w = this.#drainWaiters;
    this.#drainWaiters = undefined;
    if (w !== undefined) for (const fn of w) fn();
  };

  head(status: number, reason: string, headers: HeaderList): void {
    if (this.headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'head() called twice', 500);
    const bytes = encodeResponseHead('cgi', status, reason, headers);
    this.headSent = true;
    if (!this.#aborted) this.#out.write(bytes);
  }

  write(chunk: Uint8Array): boolean {
    if (!this.headSent) throw serverError(SERVER_ERRORS.RESPONSE_STATE, 'write() before head()', 500);
    if (this.#aborted || chunk.length === 0) return true;
    return this.#out.write(chunk);
  }

  drained(): Promise<void> {
    if (this.#aborted || !this.#out.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => { (this.#drainWaiters ??= []).push(resolve); });
  }

  end(_appStatus?: number): void {
    this.ended = true;
  }

  /** A head and a short text body, for a request refused before the app ran. */
  plain(status: number, reason: string): Promise<number> {
    const text = `${String(status)} ${reason}\n`;
    this.head(status, reason, [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', String(Buffer.byteLength(text))]]);
    this.write(Buffer.from(text));
    this.end();
    return this.flushed();
  }

  /** Resolves once everything written has left (0), or stdout failed (1). */
  flushed(): Promise<number> {
    if (this.#aborted) return Promise.resolve(1);
    return new Promise((resolve) => {
      this.#out.write(Buffer.alloc(0), (err) => { resolve(err === undefined || err === null ? (this.#aborted ? 1 : 0) : 1); });
    });
  }
}
