// The fuzzing oracle, from the fuzzer's side: runs one input through a protocol decoder whole and
// split, under each fuzz configuration, and says what, if anything, broke an invariant.
//
// Invariants (the decoders' contract, protocols/common/events.ts, plus STYLE.md §5 and §26; the
// full list is in fuzz/README.md): push()/end() never throw; nothing after a connection-level
// error and at most one of them; buffers, params, bodies and live requests within the limits, and
// limit errors only past them; a per-request lifecycle; heads and bodies equal to what wire.ts
// reads from the input; replies well-formed and truthful; and whole and split logs equal.

import type { ProtocolError } from '../protocols/common/errors.ts';
import type { Decoder, DecoderSink, RequestHead } from '../protocols/common/events.ts';
import { FastCgiDecoder } from '../protocols/fastcgi/index.ts';
import { ScgiDecoder } from '../protocols/scgi/index.ts';
import { UwsgiDecoder } from '../protocols/uwsgi/index.ts';
import { parseNv, parseUwsgiVars, splitFcgiRecords, splitScgi, splitScgiBlock, splitUwsgi, type RawRecord } from './wire.ts';

export type Protocol = 'fastcgi' | 'scgi' | 'uwsgi';
export const PROTOCOLS: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi'];

/** Decoder options a campaign runs every input under. */
export interface FuzzConfig {
  readonly name: string;
  readonly maxParamsBytes: number;
  readonly maxParamCount: number;
  /** 0 = unlimited. */
  readonly maxBodyBytes: number;
  /** FastCGI only. */
  readonly maxRequestsPerConnection: number;
  /** FastCGI only (FCGI_MAX_CONNS). */
  readonly maxConns: number;
  /**
   * FastCGI only: when the simulated app calls release(id). `complete`: once the request is over
   * for it (body and FILTER data ended, aborted or failed). `onRequest`: as soon as it has the
   * head, as an app that answers without reading the body does.
   */
  readonly release: 'complete' | 'onRequest';
}

/**
 * Defaults as shipped, and tight limits that small inputs can reach (so the limit paths are
 * fuzzed without 64 KiB inputs) with FastCGI multiplexing on.
 */
export const CONFIGS: readonly FuzzConfig[] = [
  { name: 'default', maxParamsBytes: 65536, maxParamCount: 1000, maxBodyBytes: 0, maxRequestsPerConnection: 1, maxConns: 1024, release: 'complete' },
  { name: 'tight', maxParamsBytes: 200, maxParamCount: 6, maxBodyBytes: 64, maxRequestsPerConnection: 3, maxConns: 7, release: 'complete' },
  { name: 'early-release', maxParamsBytes: 65536, maxParamCount: 1000, maxBodyBytes: 0, maxRequestsPerConnection: 2, maxConns: 1024, release: 'onRequest' },
];

/** The configurations that differ for a protocol (release policies mean nothing to SCGI and uwsgi). */
export function configsFor(protocol: Protocol): readonly FuzzConfig[] {
  return protocol === 'fastcgi' ? CONFIGS : CONFIGS.filter((c) => c.release === 'complete');
}

/** A broken invariant: `kind` is stable (it deduplicates findings), `detail` says what happened. */
export interface Problem {
  readonly kind: string;
  readonly detail: string;
  readonly config: string;
  /** How the input was fed: `whole`, `bytewise` or `split@a,b,c`. */
  readonly feed: string;
}

export interface Verdict {
  readonly problem: Problem | undefined;
  /** Hashes of what the logs showed (error codes, event transitions, reply kinds): extra guidance. */
  readonly features: number[];
}

// ---- the event log ---------------------------------------------------------------------------

export type Ev =
  | { readonly t: 'request'; readonly id: number; readonly role: number; readonly keepConn: boolean; readonly contentLength: number; readonly params: readonly string[] }
  | { readonly t: 'body' | 'data'; readonly id: number; bytes: Buffer }
  | { readonly t: 'bodyEnd' | 'dataEnd' | 'abort'; readonly id: number }
  | { readonly t: 'reply'; readonly bytes: Buffer; readonly close: boolean }
  | { readonly t: 'error'; readonly code: string; readonly requestId: number; readonly httpStatus: number; readonly limit: string | undefined };

const ROLE_FILTER = 3;

/**
 * Records events (stream pieces of one request merged, since their cut depends on the feed) and
 * plays a synchronous app for FastCGI: it releases a request id as soon as the request is over
 * for it (body and, for FILTER, data ended; aborted; or failed), as the connection layer does
 * once it has written END_REQUEST. `checkLog` mirrors this model.
 */
/** What the simulated app calls on a FastCGI decoder (the connection layer's side of it). */
interface Releasable {
  release(id: number): void;
  keepConn(id: number): boolean | undefined;
}

function releasable(d: Decoder): Releasable | undefined {
  const r = d as Partial<Releasable>;
  return typeof r.release === 'function' && typeof r.keepConn === 'function' ? (d as Decoder & Releasable) : undefined;
}

class RecordingSink implements DecoderSink {
  readonly events: Ev[] = [];
  decoder: Releasable | undefined;
  readonly #early: boolean;

  constructor(early: boolean) {
    this.#early = early;
  }

  /** FastCGI roles and stream ends of requests the app holds. */
  readonly #held = new Map<number, { role: number; body: boolean; data: boolean }>();
  /** An exception thrown by release(), which the sink must not swallow silently. */
  releaseError: unknown;
  /** A request-level error whose id keepConn() did not know (> 0), or still knew after release() (< 0). */
  keepConnMissing: number | undefined;

  #event(e: Ev): void {
    this.flush();
    this.events.push(e);
  }

  request(head: RequestHead): void {
    this.#event({ t: 'request', id: head.id, role: head.role, keepConn: head.keepConn, contentLength: head.contentLength, params: [...head.params] });
    if (this.decoder === undefined) return;
    this.#held.set(head.id, { role: head.role, body: false, data: false });
    if (this.#early) this.#release(head.id);
  }
  body(id: number, chunk: Buffer): void {
    this.#stream('body', id, chunk);
  }
  bodyEnd(id: number): void {
    this.#event({ t: 'bodyEnd', id });
    const h = this.#held.get(id);
    if (h === undefined) return;
    h.body = true;
    if (h.role !== ROLE_FILTER || h.data) this.#release(id);
  }
  data(id: number, chunk: Buffer): void {
    this.#stream('data', id, chunk);
  }
  dataEnd(id: number): void {
    this.#event({ t: 'dataEnd', id });
    const h = this.#held.get(id);
    if (h === undefined) return;
    h.data = true;
    if (h.body) this.#release(id);
  }
  abort(id: number): void {
    this.#event({ t: 'abort', id });
    this.#release(id);
  }
  reply(bytes: Buffer, close: boolean): void {
    this.#event({ t: 'reply', bytes: Buffer.from(bytes), close });
  }
  error(err: ProtocolError): void {
    this.#event({ t: 'error', code: err.code, requestId: err.requestId, httpStatus: err.httpStatus, limit: err.limit });
    if (err.requestId === 0 || this.decoder === undefined) return;
    // The connection layer answers a request-level error with END_REQUEST, and asks keepConn()
    // whether to close after it: the id must still be known when the error is reported.
    if (typeof this.decoder.keepConn(err.requestId) !== 'boolean') this.keepConnMissing ??= err.requestId;
    this.#release(err.requestId);
    if (this.decoder.keepConn(err.requestId) !== undefined) this.keepConnMissing ??= -err.requestId;
  }

  #release(id: number): void {
    if (this.decoder === undefined) return;
    this.#held.delete(id);
    try {
      this.decoder.release(id);
    } catch (e) {
      this.releaseError ??= e;
    }
  }

  /** Copies of the pieces of the last event when it is a stream event, joined by `flush()`. */
  #pieces: Buffer[] = [];

  #stream(t: 'body' | 'data', id: number, chunk: Buffer): void {
    const last = this.events.at(-1);
    if (last !== undefined && last.t === t && last.id === id && this.#pieces.length > 0) {
      this.#pieces.push(Buffer.from(chunk));
      return;
    }
    this.flush();
    const piece = Buffer.from(chunk);
    this.events.push({ t, id, bytes: piece });
    this.#pieces.push(piece);
  }

  /** Joins the pending pieces of the last stream event (call before reading `events`). */
  flush(): void {
    if (this.#pieces.length > 1) {
      const last = this.events.at(-1) as { bytes: Buffer };
      last.bytes = Buffer.concat(this.#pieces);
    }
    this.#pieces = [];
  }
}

/** Builds the decoder under test; tests pass their own to prove the oracle catches broken ones. */
export type DecoderFactory = (protocol: Protocol, sink: DecoderSink, config: FuzzConfig) => Decoder;

export function makeDecoder(protocol: Protocol, sink: DecoderSink, config: FuzzConfig): Decoder {
  const limits = { maxParamsBytes: config.maxParamsBytes, maxParamCount: config.maxParamCount, maxBodyBytes: config.maxBodyBytes };
  switch (protocol) {
    case 'fastcgi':
      return new FastCgiDecoder(sink, { ...limits, maxRequestsPerConnection: config.maxRequestsPerConnection, maxConns: config.maxConns });
    case 'scgi':
      return new ScgiDecoder(sink, limits);
    case 'uwsgi':
      return new UwsgiDecoder(sink, limits);
  }
}

// ---- running ---------------------------------------------------------------------------------

interface Run {
  events: Ev[];
  /** Index in `events` where the events emitted by end() start. */
  endAt: number;
  /** Events from pushing after end() (whole feed only). */
  probe: Ev[];
  problem: { kind: string; detail: string } | undefined;
}

function bufferedBytes(decoder: Decoder): number | undefined {
  const d = decoder as Partial<{ bufferedBytes: number }>;
  return typeof d.bufferedBytes === 'number' ? d.bufferedBytes : undefined;
}

function describeThrow(e: unknown): { kind: string; detail: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  const stack = err.stack ?? '';
  // The first frame inside protocols/ makes the kind stable across inputs.
  const frame = /protocols\/[\w/-]+\.[jt]s:\d+/.exec(stack)?.[0] ?? 'unknown';
  return { kind: `threw ${err.name} at ${frame}`, detail: stack };
}

/**
 * Feeds pieces to a fresh decoder. With `scribble`, each piece is a private copy that is
 * overwritten as soon as push() returns, as a caller reusing its read buffer would: a decoder
 * that kept a view of pushed bytes past push() then reports different events.
 */
function feedOnce(make: DecoderFactory, protocol: Protocol, config: FuzzConfig, pieces: readonly Buffer[], probeAfterEnd: boolean, scribble = false): Run {
  // Capturing a stack for every ProtocolError was a fifth of the fuzzer's time (CPU profile of
  // the corpus replay); stacks matter only when something throws, so that run is repeated.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let run: Run;
  try {
    run = feedRun(make, protocol, config, pieces, probeAfterEnd, scribble);
  } finally {
    Error.stackTraceLimit = limit;
  }
  return run.problem?.kind.startsWith('threw') === true ? feedRun(make, protocol, config, pieces, probeAfterEnd, scribble) : run;
}

function feedRun(make: DecoderFactory, protocol: Protocol, config: FuzzConfig, pieces: readonly Buffer[], probeAfterEnd: boolean, scribble: boolean): Run {
  const sink = new RecordingSink(config.release === 'onRequest');
  let problem: { kind: string; detail: string } | undefined;
  let endAt = 0;
  let probe: Ev[] = [];
  let decoder: Decoder;
  try {
    decoder = make(protocol, sink, config);
  } catch (e) {
    return { events: [], endAt: 0, probe: [], problem: describeThrow(e) };
  }
  sink.decoder = releasable(decoder);
  const checkBuffered = (when: string): void => {
    const held = bufferedBytes(decoder);
    if (held !== undefined && held > config.maxParamsBytes && problem === undefined) {
      problem = { kind: 'buffered over maxParamsBytes', detail: `bufferedBytes ${String(held)} > ${String(config.maxParamsBytes)} ${when}` };
    }
  };
  try {
    for (let i = 0; i < pieces.length; i++) {
      const piece = scribble ? Buffer.from(pieces[i]!) : pieces[i]!;
      decoder.push(piece);
      if (scribble) piece.fill(0xa5);
      checkBuffered(`after piece ${String(i)}`);
    }
    sink.flush();
    endAt = sink.events.length;
    decoder.end();
    checkBuffered('after end()');
    if (probeAfterEnd) {
      sink.flush();
      const n = sink.events.length;
      decoder.end();
      decoder.push(Buffer.from([1, 1, 0, 1, 0, 8, 0, 0]));
      decoder.push(Buffer.from([0]));
      decoder.end();
      sink.flush();
      probe = sink.events.splice(n);
    }
  } catch (e) {
    problem = describeThrow(e);
  }
  if (problem === undefined && sink.releaseError !== undefined) problem = describeThrow(sink.releaseError);
  if (problem === undefined && sink.keepConnMissing !== undefined) {
    const id = sink.keepConnMissing;
    problem =
      id > 0
        ? { kind: 'keepConn() unknown at a request-level error', detail: `keepConn(${String(id)}) is undefined when the error naming request ${String(id)} is reported` }
        : { kind: 'keepConn() known after release()', detail: `keepConn(${String(-id)}) is still defined after release(${String(-id)})` };
  }
  sink.flush();
  return { events: sink.events, endAt, probe, problem };
}

// ---- invariants over a log ----------------------------------------------------------------------

const LIMIT_OF: Readonly<Record<string, string>> = {
  POSTERN_ERR_PARAMS_TOO_LARGE: 'maxParamsBytes',
  POSTERN_ERR_TOO_MANY_PARAMS: 'maxParamCount',
  POSTERN_ERR_BODY_TOO_LARGE: 'maxBodyBytes',
};

const CODE_RE = /^POSTERN_ERR_[A-Z0-9_]+$/;

/** Params wire size at its smallest: FastCGI sends 1-byte lengths below 128. */
function paramsWireSize(protocol: Protocol, params: readonly string[]): number {
  let size = 0;
  for (const s of params) {
    if (protocol === 'fastcgi') size += (s.length > 127 ? 4 : 1) + s.length;
    else if (protocol === 'uwsgi') size += 2 + s.length;
    else size += 1 + s.length;
  }
  return size;
}

interface Live {
  role: number;
  contentLength: number;
  body: number;
  data: number;
  /** Wire streams this request's body (data) can still be a prefix of; undefined = unchecked. */
  bodyWire: readonly Buffer[] | undefined;
  dataWire: readonly Buffer[] | undefined;
  bodyEnded: boolean;
  dataEnded: boolean;
}

const FCGI_END_REQUEST = 3;
const FCGI_GET_VALUES_RESULT = 10;
const FCGI_UNKNOWN_TYPE = 11;
/** Application record types the decoder handles, so never the subject of an UNKNOWN_TYPE reply (GET_VALUES on a request id may be). */
const FCGI_HANDLED = new Set([1, 2, 4, 5, 8]);

function fcgiReplyProblem(bytes: Buffer, config: FuzzConfig, live: ReadonlyMap<number, Live>): string | undefined {
  if (bytes.length === 0) return 'empty reply';
  let p = 0;
  while (p < bytes.length) {
    if (bytes.length - p < 8) return `reply ends ${String(bytes.length - p)} bytes into a record header`;
    const [version, type, idHi, idLo, clHi, clLo, pad, reserved] = bytes.subarray(p, p + 8);
    const id = (idHi! << 8) | idLo!;
    const cl = (clHi! << 8) | clLo!;
    if (version !== 1) return `reply record version ${String(version)}`;
    if (reserved !== 0) return 'reply record reserved byte not 0';
    if (bytes.length - p - 8 < cl + pad!) return 'reply record shorter than its header says';
    const content = bytes.subarray(p + 8, p + 8 + cl);
    const padding = bytes.subarray(p + 8 + cl, p + 8 + cl + pad!);
    if (padding.some((b) => b !== 0)) return 'reply padding is not zeros (uninitialised memory?)';
    p += 8 + cl + pad!;
    switch (type) {
      case FCGI_END_REQUEST: {
        if (id === 0) return 'END_REQUEST for the null request id';
        if (cl !== 8) return `END_REQUEST body of ${String(cl)} bytes`;
        const status = content[4]!;
        if (status > 3) return `END_REQUEST protocolStatus ${String(status)}`;
        if (content[5] !== 0 || content[6] !== 0 || content[7] !== 0) return 'END_REQUEST reserved bytes not 0';
        if (status === 1 && config.maxRequestsPerConnection > 1) return 'CANT_MPX_CONN while multiplexing is on';
        if (status === 2 && config.maxRequestsPerConnection === 1) return 'OVERLOADED while multiplexing is off (expected CANT_MPX_CONN)';
        if (live.has(id)) return `decoder sent END_REQUEST for request ${String(id)}, which the app holds`;
        break;
      }
      case FCGI_GET_VALUES_RESULT: {
        if (id !== 0) return 'GET_VALUES_RESULT on a request id';
        const pairs = parseNv(content);
        if (pairs === undefined) return 'GET_VALUES_RESULT body is not name-value pairs';
        const truth: Record<string, string> = {
          FCGI_MAX_CONNS: String(config.maxConns),
          FCGI_MAX_REQS: String(config.maxConns * config.maxRequestsPerConnection),
          FCGI_MPXS_CONNS: config.maxRequestsPerConnection > 1 ? '1' : '0',
        };
        const seen = new Set<string>();
        for (const [n, v] of pairs) {
          const name = n.toString('latin1');
          if (seen.has(name)) return `GET_VALUES_RESULT answers ${name} twice`;
          seen.add(name);
          if (truth[name] === undefined) return `GET_VALUES_RESULT answers unknown name ${JSON.stringify(name)}`;
          if (truth[name] !== v.toString('latin1')) return `GET_VALUES_RESULT ${name}=${v.toString('latin1')}, configured ${truth[name]}`;
        }
        break;
      }
      case FCGI_UNKNOWN_TYPE:
        if (id !== 0) return 'UNKNOWN_TYPE on a request id';
        if (cl !== 8) return `UNKNOWN_TYPE body of ${String(cl)} bytes`;
        if (content.subarray(1).some((b) => b !== 0)) return 'UNKNOWN_TYPE reserved bytes not 0';
        if (FCGI_HANDLED.has(content[0]!)) return `UNKNOWN_TYPE for type ${String(content[0])}, which the decoder handles`;
        break;
      default:
        return `reply record of type ${String(type)}`;
    }
  }
  return undefined;
}

// ---- what the input says, by the fuzzer's own framing -----------------------------------------

/**
 * The params and stream bytes an input carries, parsed by wire.ts rather than the decoder: a
 * head's params must be one of `params` for its id, and its body (and FILTER data) a prefix of
 * one of `bodies` (`data`). Keys join a list with U+0100, which no latin1 string holds.
 */
export interface Expect {
  readonly params: Map<number, Set<string>>;
  readonly bodies: Map<number, Buffer[]>;
  readonly data: Map<number, Buffer[]>;
  /** A well-formed first request: the decoder must surface it first when it fits the limits. */
  readonly first: FirstRequest | undefined;
  /** uwsgi: the input opens with a complete PING, so the first event must be PONG. */
  readonly ping: boolean;
  /** FastCGI: complete management records (id 0) by type, and the ids that had a BEGIN_REQUEST. */
  readonly mgmt: Map<number, number>;
  readonly begins: Set<number>;
  /** FastCGI: per id, `role:keepConn` of each of its BEGIN_REQUEST records. */
  readonly beginFlags: Map<number, Set<string>>;
  /**
   * FastCGI: per id, the biggest declared stream sizes and params of any of its requests, so a
   * limit error can be checked against the wire: PARAMS stream bytes and pair count (Infinity when
   * a stream does not parse or never ends, which any limit error may explain), STDIN and DATA bytes.
   * SCGI/uwsgi: id 1, with the largest CONTENT_LENGTH value declared as `body`.
   */
  readonly sizes: Map<number, { paramsBytes: number; count: number; body: number }>;
  /** FastCGI: per id, whether its latest request's STDIN / DATA terminator is on the wire (and no ABORT_REQUEST). */
  readonly ended: Map<number, { stdin: boolean; data: boolean }>;
}

interface FirstRequest {
  readonly id: number;
  readonly key: string;
  /** Wire bytes the limit applies to (netstring length, datasize, PARAMS stream bytes). */
  readonly paramsBytes: number;
  readonly count: number;
  /** The body length it declares (0 for FastCGI, whose body length is not declared). */
  readonly contentLength: number;
}

/** CONTENT_LENGTH values → the body length, or undefined when the decoder must refuse them. */
function declaredLength(values: readonly string[], emptyIsZero: boolean): number | undefined {
  if (values.length === 0) return emptyIsZero ? 0 : undefined;
  if (values.some((v) => v !== values[0])) return undefined;
  const v = values[0]!;
  if (v === '' && emptyIsZero) return 0;
  if (!/^[0-9]+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

function firstScgi(input: Buffer): FirstRequest | undefined {
  const s = splitScgi(input);
  if (s === undefined || !/^[1-9][0-9]*$/.test(s.digits.toString('latin1')) || Number(s.digits.toString('latin1')) !== s.block.length || s.comma !== 0x2c) return undefined;
  const { pairs, tail } = splitScgiBlock(s.block);
  if (tail.length > 0 || pairs.some(([n]) => n.length === 0)) return undefined;
  const cl = declaredLength(pairs.filter(([n]) => n.toString('latin1') === 'CONTENT_LENGTH').map(([, v]) => v.toString('latin1')), false);
  if (cl === undefined) return undefined;
  return { id: 1, key: latin1List(pairs), paramsBytes: s.block.length, count: pairs.length, contentLength: cl };
}

function firstUwsgi(input: Buffer): FirstRequest | undefined {
  const u = splitUwsgi(input);
  if (u === undefined || u.modifier1 !== 0 || u.vars.length !== u.datasize) return undefined;
  const vars = parseUwsgiVars(u.vars);
  if (vars === undefined || vars.some(([k]) => k.length === 0)) return undefined;
  const cl = declaredLength(vars.filter(([k]) => k.toString('latin1') === 'CONTENT_LENGTH').map(([, v]) => v.toString('latin1')), true);
  if (cl === undefined) return undefined;
  return { id: 1, key: latin1List(vars), paramsBytes: u.datasize, count: vars.length, contentLength: cl };
}

/** BEGIN_REQUEST (role 1–3), PARAMS records, the empty PARAMS: nothing else, all of one id. */
function firstFastCgi(records: readonly RawRecord[]): FirstRequest | undefined {
  const begin = records[0];
  if (begin === undefined || begin.version !== 1 || begin.type !== 1 || begin.id === 0 || begin.contentLength !== 8 || begin.content.length !== 8) return undefined;
  const role = (begin.content[0]! << 8) | begin.content[1]!;
  if (role < 1 || role > 3) return undefined;
  const stream: Buffer[] = [];
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    if (r.version !== 1 || r.type !== 4 || r.id !== begin.id || r.content.length !== r.contentLength) return undefined;
    if (r.contentLength > 0) {
      stream.push(r.content);
      continue;
    }
    const bytes = Buffer.concat(stream);
    const pairs = parseNv(bytes);
    if (pairs === undefined || pairs.some(([n, v]) => n.includes(0) || v.includes(0))) return undefined;
    return { id: begin.id, key: latin1List(pairs), paramsBytes: bytes.length, count: pairs.length, contentLength: 0 };
  }
  return undefined;
}

const JOIN = '\u0100';

function add<T>(m: Map<number, T[]>, id: number, v: T): void {
  const list = m.get(id);
  if (list === undefined) m.set(id, [v]);
  else list.push(v);
}

function latin1List(pairs: ReadonlyArray<readonly [Buffer, Buffer]>): string {
  return pairs.map(([n, v]) => `${n.toString('latin1')}${JOIN}${v.toString('latin1')}`).join(JOIN);
}

export function expectOf(protocol: Protocol, input: Buffer): Expect {
  const params = new Map<number, Set<string>>();
  const bodies = new Map<number, Buffer[]>();
  const data = new Map<number, Buffer[]>();
  const mgmt = new Map<number, number>();
  const begins = new Set<number>();
  const beginFlags = new Map<number, Set<string>>();
  const sizes = new Map<number, { paramsBytes: number; count: number; body: number }>();
  const ended = new Map<number, { stdin: boolean; data: boolean }>();
  let first: FirstRequest | undefined;
  let ping = false;
  if (protocol === 'scgi') {
    first = firstScgi(input);
    const s = splitScgi(input);
    if (s !== undefined) {
      const { pairs, tail } = splitScgiBlock(s.block);
      if (tail.length === 0) params.set(1, new Set([latin1List(pairs)]));
      bodies.set(1, [s.body]);
    }
  } else if (protocol === 'uwsgi') {
    first = firstUwsgi(input);
    const u = splitUwsgi(input);
    ping = u !== undefined && u.modifier1 === 100 && u.vars.length === u.datasize;
    if (u !== undefined) {
      const vars = parseUwsgiVars(u.vars);
      if (vars !== undefined) params.set(1, new Set([latin1List(vars)]));
      bodies.set(1, [u.body]);
    }
  } else {
    // Per id, the streams since its latest BEGIN_REQUEST.
    interface Open {
      params: Buffer[];
      paramsDone: boolean;
      stdin: Buffer[];
      data: Buffer[];
      paramsBytes: number;
      count: number;
      /** Declared (header) lengths: the decoder checks maxBodyBytes against these. */
      stdinDeclared: number;
      dataDeclared: number;
      body: number;
      stdinEnded: boolean;
      dataEnded: boolean;
      aborted: boolean;
    }
    const open = new Map<number, Open>();
    const close = (id: number): void => {
      const o = open.get(id);
      if (o === undefined) return;
      add(bodies, id, Buffer.concat(o.stdin));
      add(data, id, Buffer.concat(o.data));
      const was = sizes.get(id) ?? { paramsBytes: 0, count: 0, body: 0 };
      const done = o.paramsDone ? o : { ...o, count: Infinity, paramsBytes: Infinity };
      sizes.set(id, { paramsBytes: Math.max(was.paramsBytes, done.paramsBytes), count: Math.max(was.count, done.count), body: Math.max(was.body, o.body) });
      ended.set(id, { stdin: o.stdinEnded && !o.aborted, data: o.dataEnded && !o.aborted });
    };
    const { records } = splitFcgiRecords(input);
    first = firstFastCgi(records);
    for (const r of records) {
      if (r.id === 0 && r.content.length === r.contentLength) mgmt.set(r.type, (mgmt.get(r.type) ?? 0) + 1);
      if (r.type === 1) {
        begins.add(r.id);
        if (r.content.length >= 3) {
          let set = beginFlags.get(r.id);
          if (set === undefined) beginFlags.set(r.id, (set = new Set()));
          set.add(`${String((r.content[0]! << 8) | r.content[1]!)}:${String((r.content[2]! & 1) === 1)}`);
        }
        close(r.id);
        open.set(r.id, { params: [], paramsDone: false, stdin: [], data: [], paramsBytes: 0, count: 0, stdinDeclared: 0, dataDeclared: 0, body: 0, stdinEnded: false, dataEnded: false, aborted: false });
        continue;
      }
      const o = open.get(r.id);
      if (o === undefined) continue;
      if (r.type === 4 && !o.paramsDone) {
        o.paramsBytes += r.contentLength;
        if (r.contentLength > 0) o.params.push(r.content);
        else {
          o.paramsDone = true;
          const pairs = parseNv(Buffer.concat(o.params));
          if (pairs !== undefined) {
            let set = params.get(r.id);
            if (set === undefined) params.set(r.id, (set = new Set()));
            set.add(latin1List(pairs));
            o.count = pairs.length;
          } else {
            o.count = Infinity;
            o.paramsBytes = Infinity;
          }
        }
      } else if (r.type === 2) {
        o.aborted = true;
      } else if (r.type === 5) {
        if (r.contentLength === 0) o.stdinEnded = true;
        o.stdin.push(r.content);
        o.stdinDeclared += r.contentLength;
        o.body = Math.max(o.body, o.stdinDeclared);
      } else if (r.type === 8) {
        if (r.contentLength === 0) o.dataEnded = true;
        o.data.push(r.content);
        o.dataDeclared += r.contentLength;
        o.body = Math.max(o.body, o.dataDeclared);
      }
    }
    for (const id of open.keys()) close(id);
  }
  if (protocol !== 'fastcgi') sizes.set(1, { paramsBytes: Infinity, count: Infinity, body: maxDeclaredLength(input, protocol) });
  return { params, bodies, data, first, ping, mgmt, begins, beginFlags, sizes, ended };
}

/** SCGI/uwsgi: the largest CONTENT_LENGTH the input declares (Infinity when unreadable). */
function maxDeclaredLength(input: Buffer, protocol: Protocol): number {
  let pairs: Array<[Buffer, Buffer]> | undefined;
  if (protocol === 'scgi') {
    const s = splitScgi(input);
    pairs = s === undefined ? undefined : splitScgiBlock(s.block).pairs;
  } else {
    const u = splitUwsgi(input);
    pairs = u === undefined ? undefined : parseUwsgiVars(u.vars);
  }
  if (pairs === undefined) return Infinity;
  let max = 0;
  for (const [n, v] of pairs) {
    if (n.toString('latin1') !== 'CONTENT_LENGTH') continue;
    const text = v.toString('latin1');
    max = Math.max(max, /^[0-9]+$/.test(text) ? Number(text) : Infinity);
  }
  return max;
}

/** The candidates that hold `piece` at `offset` (checked piece by piece, so linear overall). */
function continuing(candidates: readonly Buffer[], offset: number, piece: Buffer): Buffer[] {
  return candidates.filter((c) => c.length >= offset + piece.length && c.subarray(offset, offset + piece.length).equals(piece));
}

/** A limit error the wire does not explain: every request of that id is within the limit. */
function limitErrorProblem(protocol: Protocol, config: FuzzConfig, code: string, id: number, expect: Expect): string | undefined {
  const size = expect.sizes.get(id);
  if (size === undefined) return undefined;
  if (code === 'POSTERN_ERR_BODY_TOO_LARGE' && (config.maxBodyBytes === 0 || size.body <= config.maxBodyBytes)) {
    return `BODY_TOO_LARGE for request ${String(id)}, whose body is at most ${String(size.body)} bytes (maxBodyBytes ${String(config.maxBodyBytes)})`;
  }
  if (protocol !== 'fastcgi') return undefined;
  if (code === 'POSTERN_ERR_PARAMS_TOO_LARGE' && size.paramsBytes <= config.maxParamsBytes) {
    return `PARAMS_TOO_LARGE for request ${String(id)}, whose params are at most ${String(size.paramsBytes)} bytes (maxParamsBytes ${String(config.maxParamsBytes)})`;
  }
  if (code === 'POSTERN_ERR_TOO_MANY_PARAMS' && size.count <= config.maxParamCount) {
    return `TOO_MANY_PARAMS for request ${String(id)}, which has at most ${String(size.count)} params (maxParamCount ${String(config.maxParamCount)})`;
  }
  return undefined;
}

/** What the input obliges the decoder to say, whatever else it says. */
function expectProblem(protocol: Protocol, config: FuzzConfig, events: readonly Ev[], noConnError: boolean, expect: Expect): string | undefined {
  const f = expect.first;
  if (f !== undefined && f.paramsBytes <= config.maxParamsBytes && f.count <= config.maxParamCount && (config.maxBodyBytes === 0 || f.contentLength <= config.maxBodyBytes)) {
    const e = events[0];
    if (e?.t !== 'request' || e.id !== f.id || e.params.join(JOIN) !== f.key) {
      return `a well-formed request within the limits (${String(f.count)} params, ${String(f.paramsBytes)} bytes) was not surfaced first: got ${describeEvent(e)}`;
    }
  }
  if (expect.ping && (events[0]?.t !== 'reply')) return `a complete uwsgi PING got ${describeEvent(events[0])}, not PONG`;
  if (protocol !== 'fastcgi') return undefined;
  const replies = new Map<string, number>();
  for (const e of events) {
    if (e.t !== 'reply') continue;
    for (let p = 0; p + 8 <= e.bytes.length; p += 8 + e.bytes.readUInt16BE(p + 4) + e.bytes[p + 6]!) {
      const type = e.bytes[p + 1]!;
      const id = e.bytes.readUInt16BE(p + 2);
      if (type === FCGI_END_REQUEST && !expect.begins.has(id)) return `END_REQUEST for request ${String(id)}, which never began`;
      // §5.1: without FCGI_KEEP_CONN the application closes the connection after its answer.
      if (type === FCGI_END_REQUEST && ![...(expect.beginFlags.get(id) ?? [])].some((f) => f.endsWith(String(!e.close)))) {
        return `END_REQUEST for request ${String(id)} with close=${String(e.close)}, but no BEGIN_REQUEST for it has keepConn=${String(!e.close)}`;
      }
      const key = type === FCGI_UNKNOWN_TYPE ? `11:${String(e.bytes[p + 8])}` : String(type);
      replies.set(key, (replies.get(key) ?? 0) + 1);
    }
  }
  if (!noConnError) return undefined;
  // §4.1/§4.2: every management record gets its answer.
  for (const [type, n] of expect.mgmt) {
    if (type === 9) {
      if ((replies.get('10') ?? 0) !== n) return `${String(n)} GET_VALUES record(s), ${String(replies.get('10') ?? 0)} GET_VALUES_RESULT`;
    } else if (!FCGI_HANDLED.has(type) && (replies.get(`11:${String(type)}`) ?? 0) < n) {
      return `${String(n)} management record(s) of unknown type ${String(type)}, ${String(replies.get(`11:${String(type)}`) ?? 0)} UNKNOWN_TYPE`;
    }
  }
  return undefined;
}

/**
 * Checks one log against the invariants. `endAt` is where end()'s events begin; `partialInput`
 * says the input stops inside a frame by the fuzzer's own framing (FastCGI only).
 */
export function checkLog(protocol: Protocol, config: FuzzConfig, events: readonly Ev[], endAt: number, inputLength: number, partialInput: boolean, expect?: Expect): string | undefined {
  const connErr = events.findIndex((e) => e.t === 'error' && e.requestId === 0);
  if (connErr !== -1 && connErr !== events.length - 1) {
    const e = events[connErr] as { code: string };
    return `${String(events.length - 1 - connErr)} event(s) after connection-level error ${e.code}: ${events[connErr + 1]!.t}`;
  }
  if (expect !== undefined) {
    const bad = expectProblem(protocol, config, events, connErr === -1, expect);
    if (bad !== undefined) return bad;
  }
  const live = new Map<number, Live>();
  let requests = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    switch (e.t) {
      case 'error': {
        if (!CODE_RE.test(e.code)) return `error code ${e.code} is not a POSTERN_ERR_ code`;
        if (e.httpStatus !== 0 && (e.httpStatus < 400 || e.httpStatus > 599)) return `${e.code} has httpStatus ${String(e.httpStatus)}`;
        if ((LIMIT_OF[e.code] ?? undefined) !== e.limit) return `${e.code} names limit ${String(e.limit)}`;
        if (expect !== undefined) {
          const falseLimit = limitErrorProblem(protocol, config, e.code, protocol === 'fastcgi' ? e.requestId : 1, expect);
          if (falseLimit !== undefined) return falseLimit;
        }
        if (e.requestId !== 0) {
          if (protocol !== 'fastcgi') return `${protocol} error names request ${String(e.requestId)}`;
          live.delete(e.requestId);
        }
        break;
      }
      case 'request': {
        requests++;
        if (live.has(e.id)) return `request ${String(e.id)} began again while the app holds it`;
        if (e.params.length % 2 !== 0) return 'odd params list';
        if (e.params.length / 2 > config.maxParamCount) return `${String(e.params.length / 2)} params > maxParamCount ${String(config.maxParamCount)}`;
        const size = paramsWireSize(protocol, e.params);
        if (size > config.maxParamsBytes) return `params of ${String(size)} wire bytes > maxParamsBytes ${String(config.maxParamsBytes)}`;
        if (e.role < 1 || e.role > 3) return `role ${String(e.role)}`;
        if (protocol === 'fastcgi') {
          if (e.id < 1 || e.id > 0xffff) return `request id ${String(e.id)}`;
          if (e.contentLength !== -1) return `FastCGI head contentLength ${String(e.contentLength)}`;
          if (expect !== undefined && !(expect.beginFlags.get(e.id)?.has(`${String(e.role)}:${String(e.keepConn)}`) ?? false)) {
            return `request ${String(e.id)} head says role ${String(e.role)}, keepConn ${String(e.keepConn)}: no BEGIN_REQUEST for it says so`;
          }
          for (const s of e.params) if (s.includes('\0')) return 'a FastCGI param holds NUL';
        } else {
          if (requests > 1) return `second request on a ${protocol} connection`;
          if (i !== 0) return 'events before the request';
          if (e.id !== 1 || e.role !== 1 || e.keepConn) return 'SCGI/uwsgi head with id/role/keepConn not 1/1/false';
          if (!Number.isSafeInteger(e.contentLength) || e.contentLength < 0) return `contentLength ${String(e.contentLength)}`;
          if (config.maxBodyBytes > 0 && e.contentLength > config.maxBodyBytes) return `contentLength ${String(e.contentLength)} > maxBodyBytes`;
          let declared = false;
          for (let k = 0; k < e.params.length; k += 2) {
            const name = e.params[k]!;
            const value = e.params[k + 1]!;
            if (name.length === 0) return 'empty param name';
            if (protocol === 'scgi' && (name.includes('\0') || value.includes('\0'))) return 'an SCGI header holds NUL';
            if (name !== 'CONTENT_LENGTH') continue;
            declared = true;
            if (value === '' && protocol === 'uwsgi' && e.contentLength === 0) continue;
            if (!/^[0-9]+$/.test(value) || Number(value) !== e.contentLength) return `CONTENT_LENGTH ${JSON.stringify(value)} but head.contentLength ${String(e.contentLength)}`;
          }
          if (!declared && protocol === 'scgi') return 'SCGI request without CONTENT_LENGTH accepted';
          if (!declared && e.contentLength !== 0) return `no CONTENT_LENGTH but head.contentLength ${String(e.contentLength)}`;
        }
        if (expect !== undefined && !(expect.params.get(e.id)?.has(e.params.join(JOIN)) ?? false)) {
          return `request ${String(e.id)} params are not the ones on the wire (${String(e.params.length / 2)} params: ${JSON.stringify(e.params.slice(0, 6))}…)`;
        }
        // An app that released the request at once must hear nothing more about it.
        if (protocol === 'fastcgi' && config.release === 'onRequest') break;
        live.set(e.id, {
          role: e.role,
          contentLength: e.contentLength,
          body: 0,
          data: 0,
          bodyWire: expect === undefined ? undefined : (expect.bodies.get(e.id) ?? []),
          dataWire: expect === undefined ? undefined : (expect.data.get(e.id) ?? []),
          bodyEnded: false,
          dataEnded: false,
        });
        if (protocol === 'fastcgi' && live.size > config.maxRequestsPerConnection) {
          return `${String(live.size)} requests live at once, over maxRequestsPerConnection ${String(config.maxRequestsPerConnection)}`;
        }
        break;
      }
      case 'body':
      case 'data': {
        const r = live.get(e.id);
        if (r === undefined) return `${e.t} for request ${String(e.id)}, which is not live`;
        if (e.t === 'body') {
          if (r.bodyEnded) return `body after bodyEnd for request ${String(e.id)}`;
          if (r.bodyWire !== undefined) {
            r.bodyWire = continuing(r.bodyWire, r.body, e.bytes);
            if (r.bodyWire.length === 0) return `body of request ${String(e.id)} differs from the bytes on the wire`;
          }
          r.body += e.bytes.length;
          if (r.contentLength >= 0 && r.body > r.contentLength) return `body of ${String(r.body)} bytes > CONTENT_LENGTH ${String(r.contentLength)}`;
          if (config.maxBodyBytes > 0 && r.body > config.maxBodyBytes) return `body of ${String(r.body)} bytes > maxBodyBytes ${String(config.maxBodyBytes)}`;
        } else {
          if (r.role !== ROLE_FILTER) return `data for a role ${String(r.role)} request`;
          if (r.dataEnded) return `data after dataEnd for request ${String(e.id)}`;
          if (r.dataWire !== undefined) {
            r.dataWire = continuing(r.dataWire, r.data, e.bytes);
            if (r.dataWire.length === 0) return `data of request ${String(e.id)} differs from the bytes on the wire`;
          }
          r.data += e.bytes.length;
          if (config.maxBodyBytes > 0 && r.data > config.maxBodyBytes) return `data of ${String(r.data)} bytes > maxBodyBytes ${String(config.maxBodyBytes)}`;
        }
        break;
      }
      case 'bodyEnd': {
        const r = live.get(e.id);
        if (r === undefined) return `bodyEnd for request ${String(e.id)}, which is not live`;
        if (r.bodyEnded) return `second bodyEnd for request ${String(e.id)}`;
        if (r.contentLength >= 0 && r.body !== r.contentLength) return `bodyEnd after ${String(r.body)} of ${String(r.contentLength)} bytes`;
        r.bodyEnded = true;
        if (protocol === 'fastcgi' && (r.role !== ROLE_FILTER || r.dataEnded)) live.delete(e.id);
        break;
      }
      case 'dataEnd': {
        const r = live.get(e.id);
        if (r === undefined) return `dataEnd for request ${String(e.id)}, which is not live`;
        if (r.role !== ROLE_FILTER) return `dataEnd for a role ${String(r.role)} request`;
        if (r.dataEnded) return `second dataEnd for request ${String(e.id)}`;
        r.dataEnded = true;
        if (r.bodyEnded) live.delete(e.id);
        break;
      }
      case 'abort': {
        const r = live.get(e.id);
        if (r === undefined) return `abort for request ${String(e.id)}, which is not live`;
        if (protocol !== 'fastcgi' && r.bodyEnded) return 'abort after the body ended';
        // A stream whose end is on the wire must end, not be aborted when the connection closes.
        if (protocol !== 'fastcgi' && r.body === r.contentLength) return `abort of a request whose ${String(r.body)}-byte body is complete (no bodyEnd)`;
        if (protocol === 'fastcgi' && i >= endAt && expect !== undefined) {
          const wire = expect.ended.get(e.id);
          if (wire?.stdin === true && !r.bodyEnded) return `request ${String(e.id)} aborted at end() although its STDIN terminator arrived (no bodyEnd)`;
          if (wire?.data === true && r.role === ROLE_FILTER && !r.dataEnded) return `request ${String(e.id)} aborted at end() although its DATA terminator arrived (no dataEnd)`;
        }
        live.delete(e.id);
        break;
      }
      case 'reply': {
        if (protocol === 'scgi') return 'SCGI decoder sent a reply';
        if (protocol === 'uwsgi') {
          if (!e.bytes.equals(UWSGI_PONG) || !e.close) return `uwsgi reply ${e.bytes.toString('hex')} close=${String(e.close)} is not PONG+close`;
          break;
        }
        const bad = fcgiReplyProblem(e.bytes, config, live);
        if (bad !== undefined) return bad;
        break;
      }
    }
  }
  // SCGI/uwsgi: a finished request stays in `live` after bodyEnd; only unfinished ones count.
  const hanging = [...live.entries()].filter(([, r]) => !r.bodyEnded || (protocol === 'fastcgi' && r.role === ROLE_FILTER && !r.dataEnded));
  if (connErr === -1 && hanging.length > 0) return `after end(), request ${String(hanging[0]![0])} was neither finished, aborted nor failed`;
  if (protocol !== 'fastcgi' && inputLength > 0 && events.length === 0) return `${String(inputLength)} bytes and end() gave no event`;
  if (protocol === 'fastcgi' && partialInput && connErr === -1 && endAt === events.length) return 'input ended inside a record and end() reported nothing';
  return undefined;
}

const UWSGI_PONG = Buffer.from([100, 0, 0, 1]);

function probeProblem(events: readonly Ev[], probe: readonly Ev[]): string | undefined {
  if (probe.length === 0) return undefined;
  const hadConnErr = events.some((e) => e.t === 'error' && e.requestId === 0);
  const first = probe[0]!;
  if (probe.length > 1) return `${String(probe.length)} events from bytes pushed after end()`;
  if (hadConnErr) return `event ${first.t} after end() following a connection-level error`;
  if (first.t !== 'error' || first.code !== 'POSTERN_ERR_AFTER_END' || first.requestId !== 0) return `bytes after end() gave ${first.t}${first.t === 'error' ? ` ${first.code}` : ''}, not AFTER_END`;
  return undefined;
}

// ---- comparing logs ----------------------------------------------------------------------------

function sameEvent(a: Ev, b: Ev): boolean {
  if (a.t !== b.t) return false;
  switch (a.t) {
    case 'request': {
      const o = b as typeof a;
      return a.id === o.id && a.role === o.role && a.keepConn === o.keepConn && a.contentLength === o.contentLength && a.params.length === o.params.length && a.params.every((s, i) => s === o.params[i]);
    }
    case 'body':
    case 'data':
      return a.id === (b as typeof a).id && a.bytes.equals((b as typeof a).bytes);
    case 'reply':
      return a.close === (b as typeof a).close && a.bytes.equals((b as typeof a).bytes);
    case 'error': {
      const o = b as typeof a;
      return a.code === o.code && a.requestId === o.requestId && a.httpStatus === o.httpStatus && a.limit === o.limit;
    }
    default:
      return a.id === (b as typeof a).id;
  }
}

/** Index of the first difference, or -1. */
export function firstDifference(a: readonly Ev[], b: readonly Ev[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (!sameEvent(a[i]!, b[i]!)) return i;
  return a.length === b.length ? -1 : n;
}

export function describeEvent(e: Ev | undefined): string {
  if (e === undefined) return '(none)';
  switch (e.t) {
    case 'request':
      return `request(id ${String(e.id)}, role ${String(e.role)}, ${String(e.params.length / 2)} params, contentLength ${String(e.contentLength)})`;
    case 'body':
    case 'data':
      return `${e.t}(id ${String(e.id)}, ${String(e.bytes.length)} bytes)`;
    case 'reply':
      return `reply(${e.bytes.subarray(0, 24).toString('hex')}…, close ${String(e.close)})`;
    case 'error':
      return `error(${e.code}, request ${String(e.requestId)}, http ${String(e.httpStatus)})`;
    default:
      return `${e.t}(id ${String(e.id)})`;
  }
}

// ---- feeding plans -------------------------------------------------------------------------------

/** FNV-1a over the bytes: a seed that makes an input's split plan part of the input itself. */
export function hashBytes(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Feed {
  readonly name: string;
  readonly pieces: Buffer[];
}

export function cutAt(input: Buffer, cuts: readonly number[]): Feed {
  const points = [...new Set(cuts)].filter((c) => c > 0 && c < input.length).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    pieces.push(input.subarray(start, p));
    start = p;
  }
  pieces.push(input.subarray(start));
  return { name: points.length === input.length - 1 ? 'bytewise' : `split@${points.join(',')}`, pieces };
}

export function bytewise(input: Buffer): Feed {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i++) pieces.push(input.subarray(i, i + 1));
  return { name: 'bytewise', pieces };
}

/** Random cuts, from a seed: 1..12 cuts anywhere, or cuts every k bytes. */
export function randomSplit(input: Buffer, seed: number): Feed {
  const rnd = prng(seed);
  if (input.length < 2) return { name: 'whole', pieces: [input] };
  const cuts: number[] = [];
  if (rnd() < 0.3) {
    // At most ~2048 pieces: a 90 KB input cut every byte costs the oracle, not the decoder, 150 ms.
    const k = Math.max(1 + Math.floor(rnd() * 16), Math.ceil(input.length / 2048));
    for (let c = k; c < input.length; c += k) cuts.push(c);
  } else {
    const n = 1 + Math.floor(rnd() * 12);
    for (let i = 0; i < n; i++) cuts.push(1 + Math.floor(rnd() * (input.length - 1)));
  }
  const feed = cutAt(input, cuts);
  // Empty pushes are legal and must change nothing.
  if (rnd() < 0.2) feed.pieces.splice(Math.floor(rnd() * (feed.pieces.length + 1)), 0, Buffer.alloc(0));
  return feed;
}

/** The split the fuzz loop uses: derived from the input, so a saved input reproduces alone. */
export function derivedSplit(input: Buffer): Feed {
  const h = hashBytes(input);
  if (input.length <= 512 && h % 4 === 0) return bytewise(input);
  return randomSplit(input, h);
}

// ---- the verdict -------------------------------------------------------------------------------

export interface CheckOptions {
  /** The decoder under test (default: the real one for `protocol`). */
  readonly make?: DecoderFactory;
  /** Also feed byte by byte and under this many more random splits (slow; for replaying a corpus). */
  readonly thorough?: number;
  readonly configs?: readonly FuzzConfig[];
}

/** FastCGI input framing by the fuzzer's own parser: does it stop inside a record? */
function fcgiPartial(input: Buffer): boolean {
  const { records, rest } = splitFcgiRecords(input);
  if (rest.length > 0) return true;
  const last = records.at(-1);
  return last !== undefined && (last.content.length < last.contentLength || last.padding.length < last.paddingLength);
}

/**
 * Runs `input` through `protocol`'s decoder under every configuration, whole and split, and
 * returns the first broken invariant (if any) and the log features that guide the fuzzer.
 */
export function checkInput(protocol: Protocol, input: Buffer, options: CheckOptions = {}): Verdict {
  const features: number[] = [];
  const partial = protocol === 'fastcgi' && fcgiPartial(input);
  const expect = expectOf(protocol, input);
  const configs = options.configs ?? configsFor(protocol);
  const make = options.make ?? makeDecoder;
  for (let c = 0; c < configs.length; c++) {
    const config = configs[c]!;
    const fail = (kind: string, detail: string, feed: string): Verdict => ({ problem: { kind, detail, config: config.name, feed }, features });
    const whole = feedOnce(make, protocol, config, [input], true);
    if (whole.problem !== undefined) return fail(whole.problem.kind, whole.problem.detail, 'whole');
    const bad = checkLog(protocol, config, whole.events, whole.endAt, input.length, partial, expect);
    if (bad !== undefined) return fail(kindOf(bad), bad, 'whole');
    const badProbe = probeProblem(whole.events, whole.probe);
    if (badProbe !== undefined) return fail(kindOf(badProbe), badProbe, 'whole, then bytes after end()');
    logFeatures(whole.events, c, features);
    const feeds: Feed[] = [derivedSplit(input)];
    if (options.thorough !== undefined) {
      if (input.length <= 4096) feeds.push(bytewise(input));
      for (let k = 0; k < options.thorough; k++) feeds.push(randomSplit(input, hashBytes(input) + 7919 * (k + 1)));
    }
    for (const feed of feeds) {
      if (feed.pieces.length < 2) continue;
      const split = feedOnce(make, protocol, config, feed.pieces, false, true);
      if (split.problem !== undefined) return fail(split.problem.kind, split.problem.detail, feed.name);
      const badSplit = checkLog(protocol, config, split.events, split.endAt, input.length, partial, expect);
      if (badSplit !== undefined) return fail(kindOf(badSplit), badSplit, feed.name);
      const at = firstDifference(whole.events, split.events);
      if (at !== -1) {
        return fail(
          'whole and split feeding differ',
          `event ${String(at)}: whole ${describeEvent(whole.events[at])}, split ${describeEvent(split.events[at])}`,
          feed.name,
        );
      }
    }
  }
  return { problem: undefined, features };
}

/** A stable kind for a problem sentence: its words without the numbers and quoted values. */
function kindOf(detail: string): string {
  return detail
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\b0x[0-9a-f]+\b|\b\d+\b/gi, 'N')
    .slice(0, 120);
}

/** AFL-style bucket: 0, 1, 2, 3, 4–7, 8–15, … so growing toward a limit counts as progress. */
function bucket(n: number): number {
  return n < 4 ? n : 32 - Math.clz32(n) + 2;
}

/**
 * Hashes of what a log shows, so inputs that make the decoder say new things are kept: event
 * transitions, error codes, reply kinds, and bucketed sizes (params count and bytes, body and
 * data bytes per request), the last giving the fuzzer a gradient toward each limit.
 */
function logFeatures(events: readonly Ev[], config: number, out: number[]): void {
  let prev = 'start';
  const streamed = new Map<string, number>();
  for (const e of events) {
    let name: string = e.t;
    if (e.t === 'error') name = `error:${e.code}:${e.requestId === 0 ? 'conn' : 'req'}:${String(e.httpStatus)}`;
    else if (e.t === 'reply') name = `reply:${e.bytes[1] === undefined ? '' : String(e.bytes[1])}:${String(e.bytes[12] ?? '')}:${String(e.close)}`;
    else if (e.t === 'request') {
      name = `request:${String(e.role)}:${String(e.keepConn)}`;
      out.push(hashString(`${String(config)}|params:${String(bucket(e.params.length / 2))}:${String(bucket(e.params.reduce((n, p) => n + p.length, 0)))}`));
    } else if (e.t === 'body' || e.t === 'data') {
      const key = `${e.t}:${String(e.id)}`;
      streamed.set(key, (streamed.get(key) ?? 0) + e.bytes.length);
    }
    out.push(hashString(`${String(config)}|${prev}>${name}`));
    prev = name;
  }
  out.push(hashString(`${String(config)}|${prev}>end`));
  for (const [key, n] of streamed) out.push(hashString(`${String(config)}|${key.slice(0, 4)}:${String(bucket(n))}`));
}
