// Property tests for the FastCGI decoder, from the connection's side: encode→decode identity for
// random multiplexed requests in random splits; random record soup and mutated streams never throw
// out of push(), never pass a limit, and end in events or exactly one connection-level error.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { COMMON_ERRORS, ROLE, type RequestHead } from '../../protocols/common/index.ts';
import {
  FCGI_ERRORS,
  FastCgiDecoder,
  encodeBeginRequest,
  encodeData,
  encodeDataEnd,
  encodeParams,
  encodeStdin,
  encodeStdinEnd,
  nameValuePairsLength,
  type FastCgiDecoderOptions,
} from '../../protocols/fastcgi/index.ts';
import { EventLog, feed, splitAt } from '../helpers/fastcgi-events.ts';
import type { ProtocolError } from '../../protocols/common/errors.ts';

// Latin1 without NUL: every byte a name or value may hold.
const latin1Char = fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c));
const latin1 = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: latin1Char, maxLength });
const pair = fc.tuple(latin1(24), fc.oneof({ weight: 4, arbitrary: latin1(40) }, { weight: 1, arbitrary: latin1(400) }));

interface GenRequest {
  id: number;
  role: 1 | 2 | 3;
  keepConn: boolean;
  params: Array<[string, string]>;
  paramsRecordBytes: number;
  body: Uint8Array[];
  data: Uint8Array[];
}

const genRequest = (id: number): fc.Arbitrary<GenRequest> =>
  fc.record({
    id: fc.constant(id),
    role: fc.constantFrom(ROLE.RESPONDER, ROLE.AUTHORIZER, ROLE.FILTER),
    keepConn: fc.boolean(),
    params: fc.array(pair, { maxLength: 30 }),
    paramsRecordBytes: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(65535)),
    body: fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { maxLength: 4 }),
    data: fc.array(fc.uint8Array({ minLength: 1, maxLength: 500 }), { maxLength: 3 }),
  });

const genRequests = fc
  .uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 4 })
  .chain((ids) => fc.tuple(...ids.map((id) => genRequest(id))));

function recordsOf(r: GenRequest): Buffer[][] {
  const records: Buffer[][] = [[encodeBeginRequest(r.id, r.role, r.keepConn)]];
  for (const rec of encodeParams(r.id, r.params, r.paramsRecordBytes)) records.push([rec]);
  for (const piece of r.body) records.push(encodeStdin(r.id, piece));
  records.push([encodeStdinEnd(r.id)]);
  if (r.role === ROLE.FILTER) {
    for (const piece of r.data) records.push(encodeData(r.id, piece));
    records.push([encodeDataEnd(r.id)]);
  }
  return records;
}

/** Interleaves the requests' records, keeping each request's own order. */
function interleave(lists: Buffer[][][], order: readonly number[]): Buffer {
  const queues = lists.map((l) => [...l]);
  const out: Buffer[] = [];
  let k = 0;
  for (;;) {
    const live = queues.filter((q) => q.length > 0);
    if (live.length === 0) break;
    const q = live[(order[k++ % order.length] ?? 0) % live.length]!;
    out.push(...q.shift()!);
  }
  return Buffer.concat(out);
}

const cutsFor = (length: number, raw: readonly number[]): number[] =>
  [...new Set(raw.map((n) => n % (length + 1)))].sort((a, b) => a - b);

const latin1Of = (parts: readonly Uint8Array[]): string => Buffer.concat(parts).toString('latin1');

describe('FastCGI decoder properties', () => {
  it('encode → decode is the identity for random multiplexed requests in any split', () => {
    fc.assert(
      fc.property(genRequests, fc.array(fc.nat(), { minLength: 1, maxLength: 50 }), fc.array(fc.nat(), { maxLength: 12 }), (requests, order, rawCuts) => {
        const wire = interleave(requests.map(recordsOf), order);
        const options = { maxRequestsPerConnection: 4, maxParamsBytes: 1 << 20 };
        const whole = feed([wire], options, false).events;
        const split = feed(splitAt(wire, cutsFor(wire.length, rawCuts)), options, false).events;
        assert.deepEqual(split, whole, 'the split does not change the events');
        for (const r of requests) {
          const mine = whole.filter((e) => 'id' in e && e.id === r.id);
          const types = mine.map((e) => e.type).filter((t, i, a) => t !== a[i - 1]);
          // An Authorizer has no body: its STDIN, if a front server sends any, is skipped.
          const hasBody = r.body.length > 0 && r.role !== ROLE.AUTHORIZER;
          const expectTypes = ['request', ...(hasBody ? ['body'] : []), 'bodyEnd'];
          if (r.role === ROLE.FILTER) expectTypes.push(...(r.data.length > 0 ? ['data'] : []), 'dataEnd');
          assert.deepEqual(types, expectTypes);
          assert.deepEqual(mine[0], { type: 'request', id: r.id, role: r.role, keepConn: r.keepConn, params: r.params.flat() });
          const text = (t: string): string => mine.map((e) => (e.type === t && 'text' in e ? e.text : '')).join('');
          assert.equal(text('body'), hasBody ? latin1Of(r.body) : '');
          assert.equal(text('data'), r.role === ROLE.FILTER ? latin1Of(r.data) : '');
        }
        assert.equal(whole.filter((e) => e.type === 'error' || e.type === 'reply').length, 0);
      }),
      { numRuns: 150 },
    );
  });

  const KNOWN_CODES = new Set<string>([...Object.values(FCGI_ERRORS), ...Object.values(COMMON_ERRORS)]);

  /** Checks the invariants every event log must satisfy, whatever the input. */
  class CheckedLog extends EventLog {
    readonly #options: FastCgiDecoderOptions;
    readonly #body = new Map<number, number>();
    readonly #open = new Set<number>();
    #connectionErrors = 0;
    #afterConnectionError = 0;

    constructor(options: FastCgiDecoderOptions) {
      super();
      this.#options = options;
    }

    override request(head: RequestHead): void {
      this.#seen();
      assert.ok(head.params.length / 2 <= this.#options.maxParamCount, 'maxParamCount');
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i < head.params.length; i += 2) pairs.push([head.params[i]!, head.params[i + 1]!]);
      assert.ok(nameValuePairsLength(pairs) <= this.#options.maxParamsBytes, 'maxParamsBytes');
      assert.ok(!head.params.some((s) => s.includes('\0')), 'no NUL reaches the app');
      this.#body.set(head.id, 0);
      this.#open.add(head.id);
      super.request(head);
    }

    override body(id: number, chunk: Buffer): void {
      this.#seen();
      assert.ok(this.#open.has(id), 'body only for a request the app has and that is still live');
      const total = (this.#body.get(id) ?? 0) + chunk.length;
      this.#body.set(id, total);
      if (this.#options.maxBodyBytes > 0) assert.ok(total <= this.#options.maxBodyBytes, 'maxBodyBytes');
      super.body(id, chunk);
    }

    override bodyEnd(id: number): void {
      this.#seen();
      assert.ok(this.#open.has(id));
      super.bodyEnd(id);
    }

    override abort(id: number): void {
      this.#seen();
      assert.ok(this.#open.has(id), 'abort only for a request the app has');
      this.#open.delete(id);
      super.abort(id);
    }

    override data(id: number, chunk: Buffer): void {
      this.#seen();
      assert.ok(this.#open.has(id));
      super.data(id, chunk);
    }

    override reply(bytes: Buffer, close: boolean): void {
      this.#seen();
      assert.ok(bytes.length >= 8 && bytes.length % 8 === 0 && bytes[0] === 1, 'replies are whole, 8-aligned FastCGI records');
      super.reply(bytes, close);
    }

    override error(err: ProtocolError): void {
      this.#seen();
      assert.ok(KNOWN_CODES.has(err.code), `known code ${err.code}`);
      if (err.requestId === 0) {
        this.#connectionErrors++;
        assert.equal(err.httpStatus, 0);
      } else {
        assert.ok([400, 413, 431].includes(err.httpStatus), `request error status ${err.httpStatus}`);
        this.#open.delete(err.requestId);
      }
      super.error(err);
    }

    #seen(): void {
      if (this.#connectionErrors > 0) this.#afterConnectionError++;
    }

    verdict(): void {
      assert.ok(this.#connectionErrors <= 1, 'at most one connection-level error');
      assert.equal(this.#afterConnectionError, 0, 'nothing after a connection-level error');
    }
  }

  const genOptions: fc.Arbitrary<FastCgiDecoderOptions> = fc.record({
    maxParamsBytes: fc.integer({ min: 0, max: 400 }),
    maxParamCount: fc.integer({ min: 0, max: 12 }),
    maxBodyBytes: fc.integer({ min: 0, max: 600 }),
    maxRequestsPerConnection: fc.integer({ min: 1, max: 3 }),
    maxConns: fc.integer({ min: 1, max: 5000 }),
  });

  /** Feeds pieces to a checked decoder; the app releases each request at its body's end or error. */
  function runChecked(pieces: readonly Buffer[], options: FastCgiDecoderOptions, release: boolean): EventLog {
    const log = new CheckedLog(options);
    const decoder = new FastCgiDecoder(log, options);
    if (release) {
      log.onBodyEnd = (id) => decoder.release(id);
      log.onError = (err) => decoder.release(err.requestId);
    }
    for (const p of pieces) decoder.push(p);
    decoder.end();
    decoder.push(Buffer.from([1]));
    log.verdict();
    return log;
  }

  // Records shaped like a web server's (BEGIN bodies, pairs, terminators, GET_VALUES), mixed with
  // records of any type, id, size and padding, and now and then a bad version byte.
  const id = fc.oneof({ weight: 30, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constant(0) });
  const maybeEmpty = (content: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
    fc.oneof({ weight: 2, arbitrary: content }, { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) });
  const beginBody = fc
    .tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 255 }), fc.oneof({ weight: 20, arbitrary: fc.constant(8) }, { weight: 1, arbitrary: fc.integer({ min: 7, max: 9 }) }))
    .map(([role, flags, length]) => {
      const body = new Uint8Array(length);
      body[1] = role;
      body[2] = flags;
      return body;
    });
  const pairsBody = fc.array(pair, { maxLength: 4 }).map((ps) => new Uint8Array(encodeParams(1, ps, 65535)[0]!.subarray(8)));
  const soupFields = fc.oneof(
    { weight: 3, arbitrary: fc.record({ type: fc.constant(1), id, content: fc.oneof({ weight: 20, arbitrary: beginBody }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }) }) }) },
    { weight: 4, arbitrary: fc.record({ type: fc.constant(4), id, content: maybeEmpty(fc.oneof({ weight: 5, arbitrary: pairsBody }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 30 }) })) }) },
    { weight: 4, arbitrary: fc.record({ type: fc.constantFrom(5, 8), id, content: maybeEmpty(fc.uint8Array({ minLength: 1, maxLength: 60 })) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant(2), id, content: fc.constant(new Uint8Array(0)) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant(9), id: fc.constant(0), content: fc.oneof({ weight: 5, arbitrary: pairsBody }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 20 }) }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.integer({ min: 0, max: 255 }), id: fc.integer({ min: 0, max: 65535 }), content: fc.uint8Array({ maxLength: 40 }) }) },
  );
  const soupRecord = fc
    .record({
      version: fc.oneof({ weight: 200, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
      fields: soupFields,
      padding: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    })
    .map(({ version, fields, padding }) => {
      const buf = Buffer.alloc(8 + fields.content.length + padding);
      buf[0] = version;
      buf[1] = fields.type;
      buf.writeUInt16BE(fields.id, 2);
      buf.writeUInt16BE(fields.content.length, 4);
      buf[6] = padding;
      buf.set(fields.content, 8);
      return buf;
    });

  it('record soup never throws, never passes a limit, ends in events or one connection error', () => {
    fc.assert(
      fc.property(fc.array(soupRecord, { maxLength: 60, size: 'medium' }), genOptions, fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), (records, options, release, rawCuts) => {
        const wire = Buffer.concat(records);
        const whole = runChecked([wire], options, release).events;
        const split = runChecked(splitAt(wire, cutsFor(wire.length, rawCuts)), options, release).events;
        assert.deepEqual(split, whole);
      }),
      { numRuns: 400 },
    );
  });

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
  );

  it('mutated valid streams never throw, never pass a limit, end in events or one connection error', () => {
    fc.assert(
      fc.property(genRequests, fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), genOptions, fc.boolean(), (requests, order, mutations, options, release) => {
        let wire = interleave(requests.map(recordsOf), order);
        for (const m of mutations) {
          const at = m.at % (wire.length + 1);
          if (m.kind === 'flip' && at < wire.length) wire[at] = m.value;
          else if (m.kind === 'delete') wire = Buffer.concat([wire.subarray(0, at), wire.subarray(at + m.value)]);
          else if (m.kind === 'insert') wire = Buffer.concat([wire.subarray(0, at), Buffer.from([m.value]), wire.subarray(at)]);
          else if (m.kind === 'truncate') wire = wire.subarray(0, at);
        }
        const whole = runChecked([wire], options, release).events;
        const bytewise = runChecked(Array.from(wire, (_, i) => wire.subarray(i, i + 1)), options, release).events;
        assert.deepEqual(bytewise, whole);
      }),
      { numRuns: 200 },
    );
  });

  it('purely random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), genOptions, (bytes, options) => {
        runChecked([Buffer.from(bytes)], options, true);
      }),
      { numRuns: 300 },
    );
  });
});
