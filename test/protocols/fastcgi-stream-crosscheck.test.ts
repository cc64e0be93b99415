// Cross-checks against an independent implementation, fastcgi-stream 1.0.0, both ways, on
// well-formed traffic only: it crashes on unknown types, corrupts pairs split across records and
// records over 65535 bytes, and decodes UTF-8, so traffic here is ASCII, whole pairs, small records.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import fcgi from 'fastcgi-stream';
import type { BeginRequest, EndRequest, FcgiRecord, Params, StreamRecord, UnknownType, ValuesRecord } from 'fastcgi-stream';
import { ROLE } from '../../protocols/common/index.ts';
import {
  FCGI_PROTOCOL_STATUS,
  FCGI_TYPE,
  encodeBeginRequest,
  encodeEndRequest,
  encodeGetValuesResult,
  encodeParams,
  encodeResponseEnd,
  encodeStderr,
  encodeStdin,
  encodeStdinEnd,
  encodeStdout,
  encodeUnknownType,
} from '../../protocols/fastcgi/index.ts';
import { feed, splitAt } from '../helpers/fastcgi-events.ts';

const { records } = fcgi;

/** A duplex stand-in: fastcgi-stream reads 'data' events from it and writes records to it. */
class Pipe extends EventEmitter {
  readonly written: Buffer[] = [];
  write(chunk: Buffer): boolean {
    this.written.push(Buffer.from(chunk));
    return true;
  }
}

interface Decoded {
  requestId: number;
  record: FcgiRecord;
}

/** Decodes `wire` with fastcgi-stream, pushed in the given pieces. */
function theirDecode(pieces: readonly Buffer[]): Decoded[] {
  const pipe = new Pipe();
  const stream = new fcgi.FastCGIStream(pipe);
  const out: Decoded[] = [];
  stream.on('record', (requestId, record) => out.push({ requestId, record }));
  for (const p of pieces) if (p.length > 0) pipe.emit('data', p);
  return out;
}

const ascii = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: min, maxLength: max });

interface Req {
  id: number;
  keepConn: boolean;
  /** Pairs grouped by PARAMS record: whole pairs, values non-empty (fastcgi-stream returns bare names otherwise). */
  paramRecords: Array<Array<[string, string]>>;
  body: Uint8Array[];
}

const genReq = fc.record({
  id: fc.integer({ min: 1, max: 65535 }),
  keepConn: fc.boolean(),
  paramRecords: fc.array(fc.array(fc.tuple(ascii(1, 30), ascii(1, 200)), { minLength: 1, maxLength: 8 }), { maxLength: 4 }),
  body: fc.array(fc.uint8Array({ minLength: 1, maxLength: 5000, size: 'medium' }), { maxLength: 4 }),
});

describe('FastCGI cross-check with fastcgi-stream', () => {
  it('fastcgi-stream encodes (its own padding formula) → postern decodes, in any split', () => {
    fc.assert(
      fc.property(genReq, fc.array(fc.nat(), { maxLength: 10 }), (req: Req, rawCuts) => {
        const pipe = new Pipe();
        const stream = new fcgi.FastCGIStream(pipe);
        stream.writeRecord(req.id, new records.BeginRequest(records.BeginRequest.roles.RESPONDER, req.keepConn ? records.BeginRequest.flags.KEEPCONN : 0));
        for (const group of req.paramRecords) stream.writeRecord(req.id, new records.Params(group));
        stream.writeRecord(req.id, new records.Params([]));
        for (const piece of req.body) stream.writeRecord(req.id, new records.StdIn(Buffer.from(piece)));
        stream.writeRecord(req.id, new records.StdIn());
        const wire = Buffer.concat(pipe.written);
        const cuts = [...new Set(rawCuts.map((n) => n % (wire.length + 1)))].sort((a, b) => a - b);
        const events = feed(splitAt(wire, cuts), {}, false).events;
        const expected = [
          { type: 'request', id: req.id, role: ROLE.RESPONDER, keepConn: req.keepConn, params: req.paramRecords.flat(2) },
          ...(req.body.length > 0 ? [{ type: 'body', id: req.id, text: Buffer.concat(req.body).toString('latin1') }] : []),
          { type: 'bodyEnd', id: req.id },
        ];
        assert.deepEqual(events, expected);
      }),
      { numRuns: 100 },
    );
  });

  it('postern encodes the web server side → fastcgi-stream decodes', () => {
    fc.assert(
      fc.property(genReq, (req: Req) => {
        const wire = Buffer.concat([
          encodeBeginRequest(req.id, ROLE.RESPONDER, req.keepConn),
          ...req.paramRecords.flatMap((group) => encodeParams(req.id, group).slice(0, -1)),
          ...encodeParams(req.id, []),
          ...req.body.flatMap((piece) => encodeStdin(req.id, piece)),
          encodeStdinEnd(req.id),
        ]);
        const decoded = theirDecode([wire]);
        assert.ok(decoded.every((d) => d.requestId === req.id));
        const [begin, ...rest] = decoded.map((d) => d.record);
        assert.equal(begin?.TYPE, records.BeginRequest.TYPE);
        const b = begin as BeginRequest;
        assert.deepEqual([b.role, b.flags], [ROLE.RESPONDER, req.keepConn ? 1 : 0]);
        const params = rest.filter((r) => r.TYPE === records.Params.TYPE) as Array<Params>;
        assert.deepEqual(params.map((p) => p.params), [...req.paramRecords, []]);
        const stdin = rest.filter((r) => r.TYPE === records.StdIn.TYPE) as Array<StreamRecord>;
        const data = stdin.map((r) => (typeof r.data === 'string' ? Buffer.from(r.data) : r.data));
        assert.ok(Buffer.concat(data).equals(Buffer.concat(req.body)));
        assert.equal(data.at(-1)?.length ?? 0, 0, 'ends with the empty STDIN');
      }),
      { numRuns: 100 },
    );
  });

  it('postern encodes the application side → fastcgi-stream decodes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 }),
        fc.uint8Array({ minLength: 1, maxLength: 140_000, size: 'max' }),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.integer({ min: 0, max: 0x7fffffff }),
        (id, out, err, appStatus) => {
          const wire = Buffer.concat([...encodeStdout(id, out), ...encodeStderr(id, err), encodeResponseEnd(id, appStatus)]);
          const decoded = theirDecode([wire]);
          const outRecords = Math.ceil(out.length / 65535);
          assert.deepEqual(decoded.map((d) => [d.requestId, d.record.TYPE]), [...Array<number[]>(outRecords).fill([id, 6]), [id, 7], [id, 6], [id, 3]]);
          const stdout = decoded.slice(0, outRecords).map((d) => Buffer.from((d.record as StreamRecord).data));
          assert.ok(stdout.every((b) => b.length <= 65535));
          assert.ok(Buffer.concat(stdout).equals(Buffer.from(out)));
          const end = decoded.at(-1)!.record as EndRequest;
          assert.deepEqual([end.appStatus, end.protocolStatus], [appStatus, FCGI_PROTOCOL_STATUS.REQUEST_COMPLETE]);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('management replies and END_REQUEST statuses read back in fastcgi-stream', () => {
    const wire = Buffer.concat([
      encodeGetValuesResult([['FCGI_MAX_CONNS', '1024'], ['FCGI_MAX_REQS', '1024'], ['FCGI_MPXS_CONNS', '0']]),
      encodeUnknownType(42),
      encodeEndRequest(7, 0, FCGI_PROTOCOL_STATUS.OVERLOADED),
    ]);
    const decoded = theirDecode(splitAt(wire, [3, 17, 40]));
    assert.deepEqual(decoded.map((d) => [d.requestId, d.record.TYPE]), [[0, FCGI_TYPE.GET_VALUES_RESULT], [0, FCGI_TYPE.UNKNOWN_TYPE], [7, FCGI_TYPE.END_REQUEST]]);
    assert.deepEqual((decoded[0]!.record as ValuesRecord).values, [['FCGI_MAX_CONNS', '1024'], ['FCGI_MAX_REQS', '1024'], ['FCGI_MPXS_CONNS', '0']]);
    assert.equal((decoded[1]!.record as UnknownType).type, 42);
    assert.equal((decoded[2]!.record as EndRequest).protocolStatus, FCGI_PROTOCOL_STATUS.OVERLOADED);
  });
});
