// Hand-made edge seeds for the fuzz corpus, from a developer's shell: the spec's own examples
// (FastCGI appendix B, the SCGI protocol text), Go's net/http/fcgi test vectors, and the framing
// corners captured traffic never shows (management records, other roles, lying lengths, the
// wrong protocol on the port). Written as fuzz/corpus/<protocol>/hand-<name>.bin.
//
//   node --import tsx fuzz/seeds.ts

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './corpus.ts';
import type { Protocol } from './oracle.ts';
import { encodeNv, encodeUwsgiVars, fcgiRecord, scgiFrame, uwsgiFrame } from './wire.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const pairs = (...kv: string[]): Array<[Buffer, Buffer]> => {
  const out: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < kv.length; i += 2) out.push([b(kv[i]!), b(kv[i + 1]!)]);
  return out;
};
const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

// FastCGI record types (spec §8).
const BEGIN = 1;
const ABORT = 2;
const END = 3;
const PARAMS = 4;
const STDIN = 5;
const DATA = 8;
const GET_VALUES = 9;

const begin = (id: number, role = 1, flags = 0): Buffer => fcgiRecord(BEGIN, id, Buffer.from([role >> 8, role & 0xff, flags, 0, 0, 0, 0, 0]), { padding: 0 });
const params = (id: number, content: Buffer): Buffer => fcgiRecord(PARAMS, id, content);

// Spec appendix B: "SERVER_PORT=80 SERVER_ADDR=199.170.183.42 … STDIN quantity=100&item=3047936".
const B_PARAMS = encodeNv(pairs('SERVER_PORT', '80', 'SERVER_ADDR', '199.170.183.42'));
const B_STDIN = b('quantity=100&item=3047936');

const fastcgi: Record<string, Buffer> = {
  // B.1: a simple Responder request.
  'spec-b1-responder': cat(begin(1), params(1, B_PARAMS), params(1, Buffer.alloc(0)), fcgiRecord(STDIN, 1, B_STDIN), fcgiRecord(STDIN, 1)),
  // B.2: PARAMS and STDIN each split across records, one pair cut in the middle (the split most peers get wrong).
  'spec-b2-split-pair': cat(
    begin(1),
    params(1, B_PARAMS.subarray(0, 20)),
    params(1, B_PARAMS.subarray(20)),
    params(1, Buffer.alloc(0)),
    fcgiRecord(STDIN, 1, B_STDIN.subarray(0, 13)),
    fcgiRecord(STDIN, 1, B_STDIN.subarray(13)),
    fcgiRecord(STDIN, 1),
  ),
  // B.4: two multiplexed requests, interleaved, on a kept connection.
  'spec-b4-multiplexed': cat(
    begin(1, 1, 1),
    params(1, B_PARAMS),
    begin(2, 1, 1),
    params(2, encodeNv(pairs('SERVER_PORT', '80', 'SERVER_ADDR', '199.170.183.42', 'REQUEST_URI', '/2'))),
    params(1, Buffer.alloc(0)),
    params(2, Buffer.alloc(0)),
    fcgiRecord(STDIN, 2),
    fcgiRecord(STDIN, 1, B_STDIN),
    fcgiRecord(STDIN, 1),
  ),
  // Go TestMalformedParams (issue 11824): a pair claims 50+50 bytes in a 10-byte record.
  'go-malformed-params': cat(begin(1, 1, 1), params(1, Buffer.from([50, 50, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68])), params(1, Buffer.alloc(0))),
  // Go TestChildServeCleansUp: a body in flight, then ABORT_REQUEST; zero padding, as Go's test builds it.
  'go-abort-mid-body': cat(
    begin(1),
    fcgiRecord(PARAMS, 1, encodeNv(pairs('REQUEST_METHOD', 'GET')), { padding: 0 }),
    fcgiRecord(PARAMS, 1, encodeNv(pairs('SERVER_PROTOCOL', 'HTTP/1.1')), { padding: 0 }),
    fcgiRecord(PARAMS, 1, Buffer.alloc(0), { padding: 0 }),
    fcgiRecord(STDIN, 1, b('0123456789abcdef'), { padding: 0 }),
    fcgiRecord(ABORT, 1),
  ),
  // Go TestChildServeReadsEnvVars: a stray END_REQUEST sent to the application.
  'go-stray-end-request': cat(begin(1), params(1, encodeNv(pairs('REQUEST_METHOD', 'GET', 'REMOTE_USER', 'jane.doe', 'QUERY_STRING', '/foo/bar'))), params(1, Buffer.alloc(0)), fcgiRecord(STDIN, 1, b('0123456789abcdef')), fcgiRecord(END, 1, Buffer.alloc(8))),
  'get-values-all': fcgiRecord(GET_VALUES, 0, encodeNv(pairs('FCGI_MAX_CONNS', '', 'FCGI_MAX_REQS', '', 'FCGI_MPXS_CONNS', '', 'FCGI_UNKNOWN_NAME', ''))),
  'get-values-empty-then-request': cat(fcgiRecord(GET_VALUES, 0), begin(1), params(1, encodeNv(pairs('REQUEST_METHOD', 'GET'))), params(1, Buffer.alloc(0)), fcgiRecord(STDIN, 1)),
  'unknown-management-type': cat(fcgiRecord(0x7f, 0, b('whatever')), fcgiRecord(11, 0, Buffer.alloc(8))),
  // FILTER (§6.4): STDIN, then the file's bytes as DATA.
  'filter-role': cat(begin(1, 3), params(1, encodeNv(pairs('FCGI_DATA_LAST_MOD', '1700000000', 'FCGI_DATA_LENGTH', '11'))), params(1, Buffer.alloc(0)), fcgiRecord(STDIN, 1), fcgiRecord(DATA, 1, b('file bytes!')), fcgiRecord(DATA, 1)),
  'authorizer-role': cat(begin(1, 2, 1), params(1, encodeNv(pairs('REQUEST_METHOD', 'GET', 'HTTP_AUTHORIZATION', 'Basic Zm9vOmJhcg=='))), params(1, Buffer.alloc(0))),
  'unknown-role-then-request': cat(begin(1, 9, 1), begin(1, 1, 0), params(1, Buffer.alloc(0)), fcgiRecord(STDIN, 1)),
  // Second BEGIN while the first is live: CANT_MPX_CONN (or OVERLOADED when multiplexing).
  'second-begin-busy': cat(begin(1, 1, 1), params(1, B_PARAMS), begin(2, 1, 1), begin(3, 1, 1), begin(4, 1, 1), params(1, Buffer.alloc(0)), fcgiRecord(STDIN, 1)),
  // Long lengths for short strings, a 200-byte value, padding 255.
  'long-form-lengths': cat(begin(1), fcgiRecord(PARAMS, 1, encodeNv(pairs('A', 'b', 'HTTP_X', 'v'.repeat(200)), true), { padding: 255 }), params(1, Buffer.alloc(0)), fcgiRecord(STDIN, 1, b('x'), { padding: 255 }), fcgiRecord(STDIN, 1)),
  'nul-in-param': cat(begin(1), params(1, encodeNv(pairs('HTTP_X', 'a\0b'))), params(1, Buffer.alloc(0))),
  'truncated-mid-record': cat(begin(1), params(1, B_PARAMS)).subarray(0, 30),
  'bad-version': cat(begin(1), Buffer.from([2, PARAMS, 0, 1, 0, 0, 0, 0])),
  'http-on-fastcgi-port': b('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
};

const SCGI_BODY = b('What is the answer to life?');

const scgi: Record<string, Buffer> = {
  // The SCGI protocol text's own example.
  'spec-example': cat(b('70:'), b('CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00'), b(','), SCGI_BODY),
  'no-content-length': scgiFrame(b('SCGI\x001\x00REQUEST_METHOD\x00GET\x00')),
  'content-length-twice-differ': scgiFrame(b('CONTENT_LENGTH\x003\x00CONTENT_LENGTH\x004\x00'), b('abcd')),
  'content-length-twice-same': scgiFrame(b('CONTENT_LENGTH\x004\x00SCGI\x001\x00CONTENT_LENGTH\x004\x00'), b('abcd')),
  'content-length-not-decimal': scgiFrame(b('CONTENT_LENGTH\x00 4\x00')),
  'content-length-huge': scgiFrame(b('CONTENT_LENGTH\x0099999999999999999999\x00')),
  'leading-zero-length': b('024:CONTENT_LENGTH\x000\x00SCGI\x001\x00,'),
  'empty-netstring': b('0:,'),
  'missing-comma': b('24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;'),
  'trailing-bytes': cat(scgiFrame(b('CONTENT_LENGTH\x002\x00'), b('ok')), b('extra')),
  'odd-strings': scgiFrame(b('CONTENT_LENGTH\x000\x00SCGI\x00')),
  'empty-name': scgiFrame(b('CONTENT_LENGTH\x000\x00\x00value\x00')),
  'http-on-scgi-port': b('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
  'tls-on-scgi-port': Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
  'fastcgi-on-scgi-port': begin(1),
};

const UW_PARAMS = pairs('REQUEST_METHOD', 'POST', 'PATH_INFO', '/x', 'CONTENT_LENGTH', '5');

const uwsgi: Record<string, Buffer> = {
  ping: Buffer.from([100, 0, 0, 0]),
  'ping-with-vars': uwsgiFrame(encodeUwsgiVars(pairs('a', 'b')), Buffer.alloc(0), 100),
  'post-with-body': uwsgiFrame(encodeUwsgiVars(UW_PARAMS), b('hello')),
  'content-length-empty': uwsgiFrame(encodeUwsgiVars(pairs('REQUEST_METHOD', 'GET', 'CONTENT_LENGTH', ''))),
  'content-length-twice-differ': uwsgiFrame(encodeUwsgiVars(pairs('CONTENT_LENGTH', '1', 'CONTENT_LENGTH', '2')), b('ab')),
  'modifier1-unsupported': uwsgiFrame(encodeUwsgiVars(pairs('REQUEST_METHOD', 'GET')), Buffer.alloc(0), 5),
  'empty-key': uwsgiFrame(encodeUwsgiVars(pairs('', 'value'))),
  'vars-overrun': uwsgiFrame(Buffer.from([0x05, 0x00, 0x41, 0x42])),
  'datasize-zero': Buffer.from([0, 0, 0, 0]),
  'trailing-bytes': cat(uwsgiFrame(encodeUwsgiVars(pairs('CONTENT_LENGTH', '2')), b('ok')), b('extra')),
  'http-on-uwsgi-port': b('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
  'tls-on-uwsgi-port': Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
  'fastcgi-on-uwsgi-port': begin(1),
};

const ALL: Record<Protocol, Record<string, Buffer>> = { fastcgi, scgi, uwsgi };
for (const [protocol, seeds] of Object.entries(ALL)) {
  // A connection closed before its first byte (port probes, health checks).
  seeds['empty'] = Buffer.alloc(0);
  const dir = join(repoRoot(), 'fuzz', 'corpus', protocol);
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(seeds)) writeFileSync(join(dir, `hand-${name}.bin`), bytes);
  console.log(`${protocol}: ${String(Object.keys(seeds).length)} hand-made seeds`);
}
