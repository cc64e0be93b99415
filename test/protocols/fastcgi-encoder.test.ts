// FastCGI encoder, record-layer and name-value vectors: exact bytes for both directions (Go
// fcgi_test.go TestSize/TestStreams/TestGetValues, spec appendix B), views instead of copies, and
// the record reader that test clients use to read either direction.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMON_ERRORS, ROLE, encodeResponseHead } from '../../protocols/common/index.ts';
import {
  FCGI_ERRORS,
  FCGI_PROTOCOL_STATUS,
  FCGI_TYPE,
  FastCgiRecordAssembler,
  FastCgiRecordReader,
  NV_OK,
  NV_TOO_LARGE,
  NV_TRUNCATED,
  NameValueDecoder,
  decodeNameValuePairs,
  decodeRecords,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeData,
  encodeDataEnd,
  encodeEndRequest,
  encodeGetValues,
  encodeGetValuesResult,
  encodeNameValuePairs,
  encodeParams,
  encodeRecord,
  encodeResponseEnd,
  encodeStderr,
  encodeStderrEnd,
  encodeStdin,
  encodeStdinEnd,
  encodeStdout,
  encodeUnknownType,
  type FastCgiRecord,
} from '../../protocols/fastcgi/index.ts';
import { hex, latin1Hex } from '../helpers/fastcgi-events.ts';

const cat = (parts: readonly Buffer[]): string => Buffer.concat(parts).toString('hex');
const squash = (text: string): string => hex(text).toString('hex');

interface EncoderVector {
  readonly name: string;
  readonly source: string;
  readonly bytes: () => Buffer | Buffer[];
  readonly hex: string;
}

const encoderVectors: EncoderVector[] = [
  {
    name: 'empty STDOUT then END_REQUEST(0, REQUEST_COMPLETE), id 1',
    source: 'Go TestStreams "single record"; spec appendix B example 1 response end',
    bytes: () => encodeResponseEnd(1, 0),
    hex: '0106000100000000 0103000100080000 0000000000000000',
  },
  {
    name: 'response end with appStatus 938 on request 300',
    source: 'spec appendix B example 3 ({938, FCGI_REQUEST_COMPLETE})',
    bytes: () => encodeResponseEnd(300, 938),
    hex: '0106012c00000000 0103012c00080000 000003aa00000000',
  },
  {
    name: 'END_REQUEST with each protocol status',
    source: 'spec §5.5',
    bytes: () => [
      encodeEndRequest(1, 0, FCGI_PROTOCOL_STATUS.CANT_MPX_CONN),
      encodeEndRequest(2, 0xffffffff, FCGI_PROTOCOL_STATUS.OVERLOADED),
      encodeEndRequest(65535, -1, FCGI_PROTOCOL_STATUS.UNKNOWN_ROLE),
    ],
    hex: '0103000100080000 0000000001000000 0103000200080000 ffffffff02000000 0103ffff00080000 ffffffff03000000',
  },
  {
    name: 'GET_VALUES_RESULT FCGI_MPXS_CONNS=1: 18 bytes + padding 6, one record',
    source: 'Go TestGetValues expected bytes, without its trailing empty record (§4.1)',
    bytes: () => encodeGetValuesResult([['FCGI_MPXS_CONNS', '1']]),
    hex: `010a000000120600 0f01 ${latin1Hex('FCGI_MPXS_CONNS')} 31 000000000000`,
  },
  {
    name: 'GET_VALUES_RESULT with nothing to say',
    source: 'spec §4.1',
    bytes: () => encodeGetValuesResult([]),
    hex: '010a000000000000',
  },
  {
    name: 'UNKNOWN_TYPE for type 99',
    source: 'spec §4.2 ({FCGI_UNKNOWN_TYPE, 0, {T}})',
    bytes: () => encodeUnknownType(99),
    hex: '010b000000080000 6300000000000000',
  },
  {
    name: 'the application\'s answer of appendix B example 3, STDOUT and STDERR interleaved',
    source: 'spec appendix B example 3 (empty STDERR before empty STDOUT: the streams end independently, §6.1)',
    bytes: () => [
      ...encodeStdout(1, Buffer.from('Content-type: text/html\r\n\r\n<ht', 'latin1')),
      ...encodeStderr(1, Buffer.from('config error: missing SI_UID\n', 'latin1')),
      ...encodeStdout(1, Buffer.from('ml>\n<head> ... ', 'latin1')),
      encodeStderrEnd(1),
      encodeResponseEnd(1, 938),
    ],
    hex: `0106000100 1e0200 ${latin1Hex('Content-type: text/html\r\n\r\n<ht')} 0000
      0107000100 1d0300 ${latin1Hex('config error: missing SI_UID\n')} 000000
      0106000100 0f0100 ${latin1Hex('ml>\n<head> ... ')} 00
      0107000100000000 0106000100000000 0103000100080000 000003aa00000000`,
  },
  {
    name: 'BEGIN_REQUEST RESPONDER with KEEP_CONN, FILTER without',
    source: 'spec §5.1',
    bytes: () => [encodeBeginRequest(1, ROLE.RESPONDER, true), encodeBeginRequest(258, ROLE.FILTER, false)],
    hex: '0101000100080000 0001010000000000 0101010200080000 0003000000000000',
  },
  {
    name: 'PARAMS in 20-byte records: SERVER_ADDR split after "SER" as in the spec, the value split too',
    source: 'spec appendix B example 2 (its second record holds 22 bytes; ours hold at most 20)',
    bytes: () => encodeParams(1, [['SERVER_PORT', '80'], ['SERVER_ADDR', '199.170.183.42']], 20),
    hex: `0104000100140400 0b02 ${latin1Hex('SERVER_PORT')} ${latin1Hex('80')} 0b0e ${latin1Hex('SER')} 00000000
      0104000100140400 ${latin1Hex('VER_ADDR')} ${latin1Hex('199.170.183.')} 00000000
      0104000100020600 ${latin1Hex('42')} 000000000000
      0104000100000000`,
  },
  {
    name: 'PARAMS: latin1 bytes, empty values, terminator only when empty',
    source: 'spec §3.4; PROTOCOLS.md B.1 items 14, 16',
    bytes: () => [...encodeParams(2, [['CONTENT_TYPE', ''], ['X', '\u00e9']]), ...encodeParams(3, [])],
    hex: `0104000200120600 0c00 ${latin1Hex('CONTENT_TYPE')} 0101 58 e9 000000000000 0104000200000000 0104000300000000`,
  },
  {
    name: 'STDIN, DATA, their terminators, ABORT_REQUEST',
    source: 'spec §5.3, §5.4, §6.4',
    bytes: () => [...encodeStdin(1, Buffer.from('abc')), encodeStdinEnd(1), ...encodeData(1, Buffer.from('12345678')), encodeDataEnd(1), encodeAbortRequest(1)],
    hex: `0105000100030500 616263 0000000000 0105000100000000 0108000100080000 3132333435363738 0108000100000000 0102000100000000`,
  },
  {
    name: 'GET_VALUES asking the three standard names',
    source: 'spec §4.1',
    bytes: () => encodeGetValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS']),
    hex: `0109000000300000 0e00 ${latin1Hex('FCGI_MAX_CONNS')} 0d00 ${latin1Hex('FCGI_MAX_REQS')} 0f00 ${latin1Hex('FCGI_MPXS_CONNS')}`,
  },
  {
    name: 'encodeRecord: default padding to 8, explicit 0 and 255',
    source: 'spec §3.3',
    bytes: () => [encodeRecord(FCGI_TYPE.STDIN, 1, Buffer.from('a')), encodeRecord(FCGI_TYPE.STDIN, 1, Buffer.from('a'), 0), encodeRecord(99, 0, Buffer.alloc(0), 255)],
    hex: `0105000100010700 61 00000000000000 0105000100010000 61 016300000000ff00 ${'00'.repeat(255)}`,
  },
];

describe('FastCGI encoder byte vectors', () => {
  for (const v of encoderVectors) {
    it(`${v.name} [${v.source}]`, () => {
      const out = v.bytes();
      assert.equal(Array.isArray(out) ? cat(out) : out.toString('hex'), squash(v.hex));
    });
  }

  it('66,000 bytes of STDIN for id 300: 65535 + padding 1, 465 + padding 7, terminator [Go TestStreams "two records"]', () => {
    const data = Buffer.alloc(66000);
    const wire = Buffer.concat([...encodeStdin(300, data), encodeStdinEnd(300)]);
    const expected = Buffer.concat([
      hex('0105012cffff0100'), Buffer.alloc(65536),
      hex('0105012c01d10700'), Buffer.alloc(472),
      hex('0105012c00000000'),
    ]);
    assert.ok(wire.equals(expected));
    // The reader side reassembles exactly the 66,000 bytes and the last record's type and id.
    const records = decodeRecords(wire);
    assert.deepEqual(records.map((r) => [r.type, r.requestId, r.content.length, r.paddingLength]), [[5, 300, 65535, 1], [5, 300, 465, 7], [5, 300, 0, 0]]);
    assert.ok(Buffer.concat(records.map((r) => r.content)).equals(data));
  });

  it('stream encoders return views: payloads share the caller\'s memory, padding is one shared zero buffer', () => {
    const data = new Uint8Array(new ArrayBuffer(140_000), 1000, 131_075); // not a Buffer, odd offset
    data.fill(7);
    const parts = encodeStdout(9, data);
    assert.equal(parts.length, 3 * 3, 'header, payload, padding ×3 (65535 + 1, 65535 + 1, 5 + 3)');
    const payloads = [parts[1]!, parts[4]!, parts[7]!];
    assert.deepEqual(payloads.map((p) => p.length), [65535, 65535, 5]);
    for (const p of payloads) assert.equal(p.buffer, data.buffer);
    assert.equal(payloads[0]!.byteOffset, 1000);
    const pads = [parts[2]!, parts[5]!, parts[8]!];
    assert.deepEqual(pads.map((p) => p.length), [1, 1, 3]);
    assert.equal(pads[0]!.buffer, pads[2]!.buffer, 'one shared padding buffer');
    assert.ok(pads.every((p) => p.every((b) => b === 0)));
    const whole = Buffer.from('x');
    assert.equal(encodeStdout(1, whole)[1], whole, 'a payload that fits one record is the caller\'s buffer itself');
  });

  it('empty data gives no records (an empty record would end the stream)', () => {
    assert.deepEqual(encodeStdout(1, Buffer.alloc(0)), []);
    assert.deepEqual(encodeStderr(1, new Uint8Array(0)), []);
    assert.deepEqual(encodeStdin(1, Buffer.alloc(0)), []);
  });

  it('encodeResponseEnd(1, 0) is one cached buffer; other ids and statuses are fresh', () => {
    assert.equal(encodeResponseEnd(1, 0), encodeResponseEnd(1, 0));
    assert.notEqual(encodeResponseEnd(2, 0), encodeResponseEnd(2, 0));
    assert.equal(encodeResponseEnd(1, 0).length, 24);
  });

  it('a CGI response head (Status: header, never a status line) framed as STDOUT reads back intact', () => {
    const head = encodeResponseHead('cgi', 404, 'Not Found', [['Content-Type', 'text/plain'], ['X-A', 'b']]);
    const wire = Buffer.concat([...encodeStdout(1, head), ...encodeStdout(1, Buffer.from('gone')), encodeResponseEnd(1, 0)]);
    const records = decodeRecords(wire);
    assert.deepEqual(records.map((r) => r.type), [FCGI_TYPE.STDOUT, FCGI_TYPE.STDOUT, FCGI_TYPE.STDOUT, FCGI_TYPE.END_REQUEST]);
    assert.equal(Buffer.concat(records.slice(0, 2).map((r) => r.content)).toString('latin1'), 'Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A: b\r\n\r\ngone');
  });

  it('argument checks throw RangeError', () => {
    assert.throws(() => encodeRecord(FCGI_TYPE.STDIN, 1, Buffer.alloc(65536)), RangeError);
    assert.throws(() => encodeRecord(FCGI_TYPE.STDIN, 65536, Buffer.alloc(0)), RangeError);
    assert.throws(() => encodeRecord(FCGI_TYPE.STDIN, 1, Buffer.alloc(0), 256), RangeError);
    assert.throws(() => encodeStdout(-1, Buffer.from('x')), RangeError);
    assert.throws(() => encodeParams(1, [['A', 'b']], 0), RangeError);
    assert.throws(() => encodeParams(1, [['A', '\u0100']]), RangeError, 'a char above U+00FF has no latin1 byte');
  });
});

describe('FastCGI name-value pairs', () => {
  it('length prefixes: 0, 127, 128, 1000 [Go TestSize]', () => {
    const prefix = (n: number): string => encodeNameValuePairs([['x'.repeat(n), '']]).subarray(0, n < 128 ? 1 : 4).toString('hex');
    assert.equal(prefix(0), '00');
    assert.equal(prefix(127), '7f');
    assert.equal(prefix(128), '80000080');
    assert.equal(prefix(1000), '800003e8');
  });

  it('reads 0x81ffffff as 33,554,431 without waiting for or allocating the bytes [Go TestSize]', () => {
    const lengths = hex('81ffffff 00');
    const exact = new NameValueDecoder(5 + 33554431, 10);
    assert.equal(exact.write(lengths, 0, lengths.length), NV_OK);
    assert.equal(exact.finish(), NV_TRUNCATED);
    const short = new NameValueDecoder(5 + 33554430, 10);
    assert.equal(short.write(lengths, 0, lengths.length), NV_TOO_LARGE);
  });

  it('a pair\'s declared end is checked against maxBytes exactly, whole or byte by byte', () => {
    const bytes = hex('0105 41'); // name length 1, value length 5: the pair ends at stream byte 8
    for (const [max, status] of [[7, NV_TOO_LARGE], [8, NV_OK]] as const) {
      assert.equal(new NameValueDecoder(max, 10).write(bytes, 0, bytes.length), status, `whole, maxBytes ${max}`);
      const d = new NameValueDecoder(max, 10);
      let last: number = NV_OK;
      for (let i = 0; i < bytes.length && last === NV_OK; i++) last = d.write(bytes, i, i + 1);
      assert.equal(last, status, `byte by byte, maxBytes ${max}`);
    }
  });

  it('decodes across any split, latin1, and round-trips the encoder', () => {
    const pairs: Array<[string, string]> = [['A', ''], ['', 'b'], ['N'.repeat(200), 'v'.repeat(70000)], ['\u00ff\u0080', '\u0001']];
    const block = encodeNameValuePairs(pairs);
    for (const step of [1, 2, 3, 5, 127, 128, 4096]) {
      const d = new NameValueDecoder(block.length, 100);
      for (let i = 0; i < block.length; i += step) assert.equal(d.write(block, i, Math.min(block.length, i + step)), NV_OK);
      assert.equal(d.finish(), NV_OK);
      assert.deepEqual(d.params, pairs.flat());
    }
    assert.deepEqual(decodeNameValuePairs(block), pairs.flat());
    assert.equal(decodeNameValuePairs(block.subarray(0, 10)), NV_TRUNCATED);
  });
});

describe('FastCGI record reader', () => {
  const collect = (pieces: readonly Buffer[]): { records: FastCgiRecord[]; reader: FastCgiRecordReader } => {
    const records: FastCgiRecord[] = [];
    const reader = new FastCgiRecordReader(new FastCgiRecordAssembler((r) => records.push(r)));
    for (const p of pieces) reader.push(p);
    return { records, reader };
  };

  it('reads the application\'s side too: STDOUT, STDERR, END_REQUEST in odd splits', () => {
    const wire = Buffer.concat([...encodeStdout(1, Buffer.from('hello')), ...encodeStderr(1, Buffer.from('oops')), encodeStderrEnd(1), encodeResponseEnd(1, 3)]);
    for (let step = 1; step <= wire.length; step++) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < wire.length; i += step) pieces.push(wire.subarray(i, i + step));
      const { records, reader } = collect(pieces);
      assert.equal(reader.partial, false);
      assert.deepEqual(records.map((r) => [r.type, r.content.toString('latin1')]), [[6, 'hello'], [7, 'oops'], [7, ''], [6, ''], [3, '\0\0\0\x03\0\0\0\0']]);
    }
  });

  it('content inside one chunk is a view; content crossing chunks is assembled', () => {
    // Its own ArrayBuffer (not the pool the assembler's copies come from), so identity means something.
    const wire = Buffer.from(new ArrayBuffer(32));
    Buffer.concat([encodeRecord(FCGI_TYPE.STDOUT, 1, Buffer.from('abcdefgh')), encodeRecord(FCGI_TYPE.STDOUT, 1, Buffer.from('ijklmnop'))]).copy(wire);
    const { records } = collect([wire.subarray(0, 28), wire.subarray(28)]);
    assert.equal(records[0]!.content.buffer, wire.buffer, 'first record lies in the first chunk');
    assert.equal(records[1]!.content.toString(), 'ijklmnop');
    assert.notEqual(records[1]!.content.buffer, wire.buffer, 'second record crossed chunks: a copy');
  });

  it('a bad version stops the reader with POSTERN_ERR_FCGI_BAD_VERSION; truncated bytes are reported', () => {
    const errors: string[] = [];
    const reader = new FastCgiRecordReader(new FastCgiRecordAssembler(() => assert.fail('no record'), (err) => errors.push(err.code)));
    reader.push(hex('0006000100000000 0106000100000000'));
    assert.deepEqual(errors, [FCGI_ERRORS.BAD_VERSION]);
    assert.equal(reader.stopped, true);
    assert.throws(() => decodeRecords(hex('0106000100050000 6162')), (err: { code?: string }) => err.code === COMMON_ERRORS.TRUNCATED);
  });
});
