// FastCGI decoder byte vectors, from the application's side: spec appendix B, Go's fcgi_test.go
// vectors (PROTOCOLS.md §d), requests captured from nginx 1.22.1, and the error paths. Every
// vector also runs one byte at a time and split at every boundary, with identical event logs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMON_ERRORS, ROLE } from '../../protocols/common/index.ts';
import {
  DEFAULT_FASTCGI_OPTIONS,
  FCGI_ERRORS,
  FastCgiDecoder,
  fastCgiDecoderOptions,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeParams,
  encodeStdin,
  encodeStdinEnd,
} from '../../protocols/fastcgi/index.ts';
import { EventLog, feed, feedBytewise, feedSplitAt, feedWhole, hex, latin1Hex, type DecoderOptions, type FcgiEvent } from '../helpers/fastcgi-events.ts';

interface Vector {
  readonly name: string;
  /** Where the bytes come from. */
  readonly source: string;
  readonly hex: string;
  readonly expect: FcgiEvent[];
  readonly options?: DecoderOptions;
  /** Call `end()` after the bytes (the peer closes); vectors otherwise stop at the last push. */
  readonly end?: boolean;
}

// §8 names for readability in the tables.
const BEGIN_RESPONDER = '0101000100080000 0001000000000000'; // {FCGI_BEGIN_REQUEST, 1, {FCGI_RESPONDER, 0}}
const BEGIN_RESPONDER_KEEP = '0101000100080000 0001010000000000'; // {…, {FCGI_RESPONDER, FCGI_KEEP_CONN}}
const PARAMS_END_1 = '0104000100000000';
const STDIN_END_1 = '0105000100000000';

// Spec appendix B: "\013\002SERVER_PORT80\013\016SERVER_ADDR199.170.183.42" (the example's " ... " tail left out).
const SPEC_PAIRS = `0b02 ${latin1Hex('SERVER_PORT')} ${latin1Hex('80')} 0b0e ${latin1Hex('SERVER_ADDR')} ${latin1Hex('199.170.183.42')}`;
const SPEC_PARAMS = ['SERVER_PORT', '80', 'SERVER_ADDR', '199.170.183.42'];

// Go fcgi_test.go `streamBeginTypeStdin`: records built with zero padding.
const GO_BEGIN_STDIN = `
  0101000100080000 0001000000000000                               # BEGIN_REQUEST id 1, RESPONDER, no flags
  0104000100130000 0e03 ${latin1Hex('REQUEST_METHOD')} ${latin1Hex('GET')}            # PARAMS REQUEST_METHOD=GET
  0104000100190000 0f08 ${latin1Hex('SERVER_PROTOCOL')} ${latin1Hex('HTTP/1.1')}      # PARAMS SERVER_PROTOCOL=HTTP/1.1
  0104000100000000                                                # empty PARAMS
  0105000100100000 ${latin1Hex('0123456789abcdef')}               # STDIN, 16 bytes
`;
const GO_PARAMS = ['REQUEST_METHOD', 'GET', 'SERVER_PROTOCOL', 'HTTP/1.1'];

// nginx 1.22.1 (Debian), stock /etc/nginx/fastcgi_params, `curl http://127.0.0.1:46453/app/par/m?x=1&y=%C3%A9`:
// captured on loopback from `fastcgi_pass` to a recording socket.
const NGINX_GET = `
0101000100080000 0001000000000000 # BEGIN_REQUEST id 1, RESPONDER, no KEEP_CONN
0104000101f40400                  # PARAMS id 1, 500 bytes, padding 4
0c0c51554552595f535452494e47783d3126793d2543332541390e03524551554553545f4d4554484f444745540c0043
4f4e54454e545f545950450e00434f4e54454e545f4c454e4754480b0a5343524950545f4e414d452f6170702f706172
2f6d0b17524551554553545f5552492f6170702f7061722f6d3f783d3126793d2543332541390c0a444f43554d454e54
5f5552492f6170702f7061722f6d0d1c444f43554d454e545f524f4f542f776f726b2f6d61696e2f2e746d702f636170
747572652f68746d6c0f085345525645525f50524f544f434f4c485454502f312e310e04524551554553545f53434845
4d45687474701107474154455741595f494e544552464143454347492f312e310f0c5345525645525f534f4654574152
456e67696e782f312e32322e310b0952454d4f54455f414444523132372e302e302e310b0552454d4f54455f504f5254
33353539380b0052454d4f54455f555345520b095345525645525f414444523132372e302e302e310b05534552564552
5f504f525434363435330b095345525645525f4e414d456c6f63616c686f73740f0352454449524543545f5354415455
533230300909485454505f484f53543132372e302e302e310f0b485454505f555345525f4147454e546375726c2f372e
38382e310b03485454505f4143434550542a2f2a00000000
0104000100000000 # empty PARAMS
0105000100000000 # empty STDIN
`;
const NGINX_GET_PARAMS = [
  'QUERY_STRING', 'x=1&y=%C3%A9', 'REQUEST_METHOD', 'GET', 'CONTENT_TYPE', '', 'CONTENT_LENGTH', '',
  'SCRIPT_NAME', '/app/par/m', 'REQUEST_URI', '/app/par/m?x=1&y=%C3%A9', 'DOCUMENT_URI', '/app/par/m',
  'DOCUMENT_ROOT', '/work/main/.tmp/capture/html', 'SERVER_PROTOCOL', 'HTTP/1.1', 'REQUEST_SCHEME', 'http',
  'GATEWAY_INTERFACE', 'CGI/1.1', 'SERVER_SOFTWARE', 'nginx/1.22.1', 'REMOTE_ADDR', '127.0.0.1', 'REMOTE_PORT', '35598',
  'REMOTE_USER', '', 'SERVER_ADDR', '127.0.0.1', 'SERVER_PORT', '46453', 'SERVER_NAME', 'localhost',
  'REDIRECT_STATUS', '200', 'HTTP_HOST', '127.0.0.1', 'HTTP_USER_AGENT', 'curl/7.88.1', 'HTTP_ACCEPT', '*/*',
];

// Same capture setup, `curl --data-binary 'quantity=100&item=3047936' -H 'Content-Type: application/x-www-form-urlencoded'`.
const NGINX_POST = `
0101000100080000 0001000000000000 # BEGIN_REQUEST id 1
01040001023b0500                  # PARAMS id 1, 571 bytes, padding 5
0c0051554552595f535452494e470e04524551554553545f4d4554484f44504f53540c21434f4e54454e545f54595045
6170706c69636174696f6e2f782d7777772d666f726d2d75726c656e636f6465640e02434f4e54454e545f4c454e4754
4832350b055343524950545f4e414d452f666f726d0b05524551554553545f5552492f666f726d0c05444f43554d454e
545f5552492f666f726d0d1c444f43554d454e545f524f4f542f776f726b2f6d61696e2f2e746d702f63617074757265
2f68746d6c0f085345525645525f50524f544f434f4c485454502f312e310e04524551554553545f534348454d456874
74701107474154455741595f494e544552464143454347492f312e310f0c5345525645525f534f4654574152456e6769
6e782f312e32322e310b0952454d4f54455f414444523132372e302e302e310b0552454d4f54455f504f525433353630
380b0052454d4f54455f555345520b095345525645525f414444523132372e302e302e310b055345525645525f504f52
5434363435330b095345525645525f4e414d456c6f63616c686f73740f0352454449524543545f535441545553323030
0909485454505f484f53543132372e302e302e310b03485454505f4143434550542a2f2a0f0b485454505f555345525f
4147454e546375726c2f372e38382e311121485454505f434f4e54454e545f545950456170706c69636174696f6e2f78
2d7777772d666f726d2d75726c656e636f6465641302485454505f434f4e54454e545f4c454e47544832350000000000
0104000100000000 # empty PARAMS
0105000100190700 # STDIN id 1, 25 bytes, padding 7
7175616e746974793d313030266974656d3d3330343739333600000000000000
0105000100000000 # empty STDIN
`;
const NGINX_POST_PARAMS = [
  'QUERY_STRING', '', 'REQUEST_METHOD', 'POST', 'CONTENT_TYPE', 'application/x-www-form-urlencoded', 'CONTENT_LENGTH', '25',
  'SCRIPT_NAME', '/form', 'REQUEST_URI', '/form', 'DOCUMENT_URI', '/form', 'DOCUMENT_ROOT', '/work/main/.tmp/capture/html',
  'SERVER_PROTOCOL', 'HTTP/1.1', 'REQUEST_SCHEME', 'http', 'GATEWAY_INTERFACE', 'CGI/1.1', 'SERVER_SOFTWARE', 'nginx/1.22.1',
  'REMOTE_ADDR', '127.0.0.1', 'REMOTE_PORT', '35608', 'REMOTE_USER', '', 'SERVER_ADDR', '127.0.0.1', 'SERVER_PORT', '46453',
  'SERVER_NAME', 'localhost', 'REDIRECT_STATUS', '200', 'HTTP_HOST', '127.0.0.1', 'HTTP_ACCEPT', '*/*',
  'HTTP_USER_AGENT', 'curl/7.88.1', 'HTTP_CONTENT_TYPE', 'application/x-www-form-urlencoded', 'HTTP_CONTENT_LENGTH', '25',
];

// Same setup, a 40,000-byte upload: nginx cut the body into 32 KiB STDIN records (32768 + 7232,
// both multiples of 8, so no padding). Params shortened here to one pair; the framing is the point.
const NGINX_UPLOAD =
  `${BEGIN_RESPONDER} 0104000100150300 0e05 ${latin1Hex('CONTENT_LENGTH')} ${latin1Hex('40000')} 000000 ${PARAMS_END_1}` +
  `0105000180000000 ${'61'.repeat(32768)} 010500011c400000 ${'61'.repeat(7232)} ${STDIN_END_1}`;

// Go TestStreams "two records": 66,000 zero bytes on STDIN for request 300 (0x012c).
const GO_TWO_RECORDS =
  `0101012c00080000 0001000000000000 0104012c00000000` +
  `0105012cffff0100 ${'00'.repeat(65536)} 0105012c01d10700 ${'00'.repeat(472)} 0105012c00000000`;

const vectors: Vector[] = [
  {
    name: 'simple request, no stdin',
    source: 'spec appendix B, example 1 (example 3 sends the same request)',
    hex: `${BEGIN_RESPONDER} 0104000100 2a0600 ${SPEC_PAIRS} 000000000000 ${PARAMS_END_1} ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: SPEC_PARAMS },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'SERVER_ADDR pair split across two PARAMS records, body on stdin',
    source: 'spec appendix B, example 2',
    hex: `${BEGIN_RESPONDER}
      0104000100140000 0b02 ${latin1Hex('SERVER_PORT')} ${latin1Hex('80')} 0b0e ${latin1Hex('SER')}
      0104000100160000 ${latin1Hex('VER_ADDR')} ${latin1Hex('199.170.183.42')}
      ${PARAMS_END_1}
      0105000100190000 ${latin1Hex('quantity=100&item=3047936')}
      ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: SPEC_PARAMS },
      { type: 'body', id: 1, text: 'quantity=100&item=3047936' },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'two requests multiplexed on one connection',
    source: 'spec appendix B, example 4 (maxRequestsPerConnection 2)',
    options: { maxRequestsPerConnection: 2 },
    hex: `0101000100080000 0001010000000000 01040001002a0000 ${SPEC_PAIRS} ${PARAMS_END_1}
      0101000200080000 0001010000000000 01040002002a0000 ${SPEC_PAIRS}
      ${STDIN_END_1}
      0104000200000000 0105000200000000`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: true, params: SPEC_PARAMS },
      { type: 'bodyEnd', id: 1 },
      { type: 'request', id: 2, role: 1, keepConn: true, params: SPEC_PARAMS },
      { type: 'bodyEnd', id: 2 },
    ],
  },
  {
    name: 'second request refused with CANT_MPX_CONN when not multiplexing',
    source: 'spec appendix B, example 4 with defaults; §5.5',
    hex: `0101000100080000 0001010000000000 01040001002a0000 ${SPEC_PAIRS} ${PARAMS_END_1}
      0101000200080000 0001010000000000 01040002002a0000 ${SPEC_PAIRS}
      ${STDIN_END_1}
      0104000200000000 0105000200000000`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: true, params: SPEC_PARAMS },
      { type: 'reply', hex: '0103000200080000 0000000001000000'.replace(/ /g, ''), close: false },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: '66,000-byte stdin in two records (65535 + padding 1, 465 + padding 7)',
    source: 'Go fcgi_test.go TestStreams "two records"',
    hex: GO_TWO_RECORDS,
    expect: [
      { type: 'request', id: 300, role: 1, keepConn: false, params: [] },
      { type: 'body', id: 300, text: '\0'.repeat(66000) },
      { type: 'bodyEnd', id: 300 },
    ],
  },
  {
    name: 'GET_VALUES with no names: one empty GET_VALUES_RESULT, no trailing empty record',
    source: 'Go fcgi_test.go TestGetValues (Go answers blindly and adds an empty record; §4.1 says neither)',
    hex: '0109000000000000',
    expect: [{ type: 'reply', hex: '010a000000000000', close: false }],
  },
  {
    name: 'GET_VALUES for FCGI_MPXS_CONNS on a multiplexing connection',
    source: 'Go fcgi_test.go TestGetValues expected bytes, minus its trailing empty record',
    options: { maxRequestsPerConnection: 2 },
    hex: `0109000000110700 0f00 ${latin1Hex('FCGI_MPXS_CONNS')} 00000000000000`,
    expect: [{ type: 'reply', hex: `010a000000120600 0f01 ${latin1Hex('FCGI_MPXS_CONNS')} 31 000000000000`.replace(/ /g, ''), close: false }],
  },
  {
    name: 'ABORT_REQUEST while the body streams',
    source: 'Go fcgi_test.go TestChildServeCleansUp (a), Go issue 6934',
    hex: `${GO_BEGIN_STDIN} 0102000100000000`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: GO_PARAMS },
      { type: 'body', id: 1, text: '0123456789abcdef' },
      { type: 'abort', id: 1 },
    ],
  },
  {
    name: 'connection closed while the body streams',
    source: 'Go fcgi_test.go TestChildServeCleansUp (b), Go issue 6934',
    hex: GO_BEGIN_STDIN,
    end: true,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: GO_PARAMS },
      { type: 'body', id: 1, text: '0123456789abcdef' },
      { type: 'abort', id: 1 },
    ],
  },
  {
    name: 'pair lengths (50, 50) reaching past the params stream',
    source: 'Go fcgi_test.go TestMalformedParams, Go issue 11824 (PROTOCOLS.md §d.5)',
    hex: `0101000100080000 0001010000000000 010400010 00a0000 3232 030405060708090a 0104000100000000`,
    expect: [{ type: 'error', code: FCGI_ERRORS.BAD_NAME_VALUE, requestId: 1, httpStatus: 400 }],
  },
  {
    name: 'stray END_REQUEST sent to the application',
    source: 'Go fcgi_test.go TestChildServeReadsEnvVars (PROTOCOLS.md §d.6)',
    hex: `0101000100080000 0001000000000000
      0104000100130000 0e03 ${latin1Hex('REQUEST_METHOD')} ${latin1Hex('GET')}
      0104000100190000 0f08 ${latin1Hex('SERVER_PROTOCOL')} ${latin1Hex('HTTP/1.1')}
      0104000100150000 0b08 ${latin1Hex('REMOTE_USER')} ${latin1Hex('jane.doe')}
      01040001001600 00 0c08 ${latin1Hex('QUERY_STRING')} ${latin1Hex('/foo/bar')}
      ${PARAMS_END_1}
      0105000100100000 ${latin1Hex('0123456789abcdef')}
      0103000100000000`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: [...GO_PARAMS, 'REMOTE_USER', 'jane.doe', 'QUERY_STRING', '/foo/bar'] },
      { type: 'body', id: 1, text: '0123456789abcdef' },
      { type: 'reply', hex: '010b000000080000 0300000000000000'.replace(/ /g, ''), close: false },
    ],
  },
  {
    name: 'slow request: the empty STDIN comes late, no KEEP_CONN',
    source: 'Go fcgi_test.go TestSlowRequest (PROTOCOLS.md §d.8)',
    hex: `${GO_BEGIN_STDIN} ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: GO_PARAMS },
      { type: 'body', id: 1, text: '0123456789abcdef' },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'nginx GET: one PARAMS record with the stock fastcgi_params, empty STDIN',
    source: 'captured from nginx 1.22.1 (PROTOCOLS.md B.2)',
    hex: NGINX_GET,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: NGINX_GET_PARAMS },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'nginx POST: STDIN record padded to 8',
    source: 'captured from nginx 1.22.1 (PROTOCOLS.md B.2)',
    hex: NGINX_POST,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: NGINX_POST_PARAMS },
      { type: 'body', id: 1, text: 'quantity=100&item=3047936' },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'nginx upload: STDIN in 32 KiB records',
    source: 'framing captured from nginx 1.22.1 (40,000 bytes → 32768 + 7232), params shortened',
    hex: NGINX_UPLOAD,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: ['CONTENT_LENGTH', '40000'] },
      { type: 'body', id: 1, text: 'a'.repeat(40000) },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'KEEP_CONN, padding up to 255, zero-length records',
    source: 'spec §3.3 (padding 0..255 is skipped), §5.1',
    hex: `0101000700080000 0001010000000000 01040007002aff00 ${SPEC_PAIRS} ${'00'.repeat(255)} 0104000700000300 000000
      0105000700030500 ${latin1Hex('abc')} 0000000000 0105000700000000`,
    expect: [
      { type: 'request', id: 7, role: 1, keepConn: true, params: SPEC_PARAMS },
      { type: 'body', id: 7, text: 'abc' },
      { type: 'bodyEnd', id: 7 },
    ],
  },
  {
    name: '4-byte lengths, empty names and values, latin1 bytes',
    source: 'spec §3.4 (11/14/41/44 layouts); PROTOCOLS.md B.1 item 14',
    hex: `${BEGIN_RESPONDER} 0104000101130500
      0180000080 41 ${'62'.repeat(128)}
      8000008001 ${'63'.repeat(128)} 64
      0000
      0201 e9ff fe
      ${'00'.repeat(5)}
      ${PARAMS_END_1}`,
    expect: [{ type: 'request', id: 1, role: 1, keepConn: false, params: ['A', 'b'.repeat(128), 'c'.repeat(128), 'd', '', '', '\u00e9\u00ff', '\u00fe'] }],
  },
  {
    name: 'FILTER role: STDIN then the DATA stream',
    source: 'spec §6.4',
    hex: `0101000100080000 0003000000000000 0104000100140400 1002 ${latin1Hex('FCGI_DATA_LENGTH')} ${latin1Hex('10')} 00000000
      ${PARAMS_END_1} 0105000100020600 ${latin1Hex('in')} 000000000000 ${STDIN_END_1}
      0108000100050300 ${latin1Hex('hello')} 000000 0108000100050300 ${latin1Hex('world')} 000000 0108000100000000`,
    expect: [
      { type: 'request', id: 1, role: 3, keepConn: false, params: ['FCGI_DATA_LENGTH', '10'] },
      { type: 'body', id: 1, text: 'in' },
      { type: 'bodyEnd', id: 1 },
      { type: 'data', id: 1, text: 'helloworld' },
      { type: 'dataEnd', id: 1 },
    ],
  },
  {
    name: 'AUTHORIZER role',
    source: 'spec §6.3',
    hex: `0101000100080000 0002000000000000 ${PARAMS_END_1} ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 2, keepConn: false, params: [] },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'AUTHORIZER from httpd mod_authnz_fcgi: no STDIN record at all',
    source: 'captured from Apache 2.4.71 mod_authnz_fcgi on loopback (BEGIN role 2, PARAMS, empty PARAMS, then waits)',
    hex: `0101000100080000 0002000000000000 0104000100040400 0101${latin1Hex('XA')} 00000000 ${PARAMS_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 2, keepConn: false, params: ['X', 'A'] },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  {
    name: 'AUTHORIZER: STDIN sent anyway is skipped, not an error',
    source: 'spec §6.3 (an Authorizer gets no body)',
    hex: `0101000100080000 0002000000000000 ${PARAMS_END_1} 0105000100020600 ${latin1Hex('xy')} 000000000000 ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 2, keepConn: false, params: [] },
      { type: 'bodyEnd', id: 1 },
    ],
  },
  // ---- refusals and errors --------------------------------------------------------------------
  {
    name: 'version 2 record',
    source: 'spec §3.3, §8 (FCGI_VERSION_1 only)',
    hex: `0201000100080000 0001000000000000 ${PARAMS_END_1}`,
    expect: [{ type: 'error', code: FCGI_ERRORS.BAD_VERSION, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'version 0 after a good request: nothing more after the error',
    source: 'spec §3.3',
    hex: `${BEGIN_RESPONDER} ${PARAMS_END_1} 0005000100000000 ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: [] },
      { type: 'error', code: FCGI_ERRORS.BAD_VERSION, requestId: 0, httpStatus: 0 },
    ],
  },
  {
    name: 'BEGIN_REQUEST with the null request id',
    source: 'spec §3.3, appendix A',
    hex: `0101000000080000 0001000000000000`,
    expect: [{ type: 'error', code: FCGI_ERRORS.NULL_REQUEST_ID, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'STDIN with the null request id',
    source: 'spec appendix A (application records cannot use the null id)',
    hex: `0105000000000000`,
    expect: [{ type: 'error', code: FCGI_ERRORS.NULL_REQUEST_ID, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'BEGIN_REQUEST body of 7 bytes',
    source: 'spec §5.1 (FCGI_BeginRequestBody is 8 bytes)',
    hex: `0101000100070100 00010000000000 00`,
    expect: [{ type: 'error', code: FCGI_ERRORS.BAD_BEGIN_REQUEST, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'BEGIN_REQUEST for an id that is still active',
    source: 'spec §3.3; Go child.go closes the connection',
    options: { maxRequestsPerConnection: 4 },
    hex: `${BEGIN_RESPONDER} ${BEGIN_RESPONDER} ${PARAMS_END_1}`,
    expect: [{ type: 'error', code: FCGI_ERRORS.REQUEST_ID_IN_USE, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'unknown role 4 without KEEP_CONN: END_REQUEST(UNKNOWN_ROLE), close; its records ignored',
    source: 'spec §5.5',
    hex: `0101000100080000 0004000000000000 01040001002a0000 ${SPEC_PAIRS} ${PARAMS_END_1} ${STDIN_END_1}`,
    expect: [{ type: 'reply', hex: '01030001000800000000000003000000', close: true }],
  },
  {
    name: 'unknown role 0 with KEEP_CONN: stays open, the id can begin again',
    source: 'spec §5.5, §3.3',
    hex: `0101000100080000 0000010000000000 ${BEGIN_RESPONDER_KEEP} ${PARAMS_END_1}`,
    expect: [
      { type: 'reply', hex: '01030001000800000000000003000000', close: false },
      { type: 'request', id: 1, role: 1, keepConn: true, params: [] },
    ],
  },
  {
    name: 'third request refused with OVERLOADED when multiplexing two',
    source: 'spec §5.5',
    options: { maxRequestsPerConnection: 2 },
    hex: `0101000100080000 0001010000000000 0101000200080000 0001010000000000 0101000300080000 0001000000000000`,
    expect: [{ type: 'reply', hex: '01030003000800000000000002000000', close: true }],
  },
  {
    name: 'unknown management record types 99 and 0',
    source: 'spec §4.2',
    hex: `0163000000020600 abcd 000000000000 0100000000000000`,
    expect: [
      { type: 'reply', hex: '010b0000000800006300000000000000', close: false },
      { type: 'reply', hex: '010b0000000800000000000000000000', close: false },
    ],
  },
  {
    name: 'GET_VALUES: only known names, each once, truthful',
    source: 'spec §4.1; options maxConns 50, maxRequestsPerConnection 1',
    options: { maxConns: 50 },
    hex: `0109000000450300 0e00 ${latin1Hex('FCGI_MAX_CONNS')} 0300 ${latin1Hex('FOO')} 0d00 ${latin1Hex('FCGI_MAX_REQS')}
      0f00 ${latin1Hex('FCGI_MPXS_CONNS')} 0e00 ${latin1Hex('FCGI_MAX_CONNS')} 000000`,
    expect: [{
      type: 'reply',
      hex: `010a000000350300 0e02 ${latin1Hex('FCGI_MAX_CONNS')} ${latin1Hex('50')} 0d02 ${latin1Hex('FCGI_MAX_REQS')} ${latin1Hex('50')}
        0f01 ${latin1Hex('FCGI_MPXS_CONNS')} 30 000000`.replace(/\s+/g, ''),
      close: false,
    }],
  },
  {
    name: 'malformed GET_VALUES body',
    source: 'spec §4.1, §3.4',
    hex: `0109000000030500 0e0046 0000000000`,
    expect: [{ type: 'error', code: FCGI_ERRORS.BAD_NAME_VALUE, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'records for ids never begun are ignored',
    source: 'spec §3.3',
    hex: `0105000700030500 616263 0000000000 0104000700000000 0102000700000000 0103000700000000`,
    expect: [],
  },
  {
    name: 'STDIN before the params ended: that request fails, its later records are ignored',
    source: 'spec §6.2 (params before stdin)',
    hex: `${BEGIN_RESPONDER} 0105000100030500 616263 0000000000 ${PARAMS_END_1} ${STDIN_END_1}`,
    expect: [{ type: 'error', code: FCGI_ERRORS.UNEXPECTED_RECORD, requestId: 1, httpStatus: 400 }],
  },
  {
    name: 'PARAMS after the params ended',
    source: 'spec §3.3 (a stream ends with its empty record)',
    hex: `${BEGIN_RESPONDER} ${PARAMS_END_1} 01040001002a0000 ${SPEC_PAIRS} ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: [] },
      { type: 'error', code: FCGI_ERRORS.UNEXPECTED_RECORD, requestId: 1, httpStatus: 400 },
    ],
  },
  {
    name: 'DATA for a RESPONDER',
    source: 'spec §6.4 (DATA is the FILTER role\'s)',
    hex: `${BEGIN_RESPONDER} ${PARAMS_END_1} 0108000100010700 41 00000000000000`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: [] },
      { type: 'error', code: FCGI_ERRORS.UNEXPECTED_RECORD, requestId: 1, httpStatus: 400 },
    ],
  },
  {
    name: 'ABORT_REQUEST before the params ended: the decoder answers END_REQUEST itself',
    source: 'spec §5.4',
    hex: `${BEGIN_RESPONDER_KEEP} 01040001002a0000 ${SPEC_PAIRS} 0102000100000000 ${PARAMS_END_1} ${STDIN_END_1}`,
    expect: [{ type: 'reply', hex: '01030001000800000000000000000000', close: false }],
  },
  {
    name: 'params over maxParamsBytes (checked at the record header)',
    source: 'limit maxParamsBytes 40 (spec example pairs are 42 bytes)',
    options: { maxParamsBytes: 40 },
    hex: `${BEGIN_RESPONDER} 01040001002a0600 ${SPEC_PAIRS} 000000000000 ${PARAMS_END_1} ${STDIN_END_1}`,
    expect: [{ type: 'error', code: COMMON_ERRORS.PARAMS_TOO_LARGE, requestId: 1, httpStatus: 431, limit: 'maxParamsBytes' }],
  },
  {
    name: 'a 31-bit name length that lies is refused at once',
    source: 'PROTOCOLS.md B.1 item 12 (never allocate on a lie)',
    hex: `${BEGIN_RESPONDER} 0104000100060200 ffffffff 0141 0000 ${PARAMS_END_1}`,
    expect: [{ type: 'error', code: COMMON_ERRORS.PARAMS_TOO_LARGE, requestId: 1, httpStatus: 431, limit: 'maxParamsBytes' }],
  },
  {
    name: 'more params than maxParamCount',
    source: 'limit maxParamCount 1',
    options: { maxParamCount: 1 },
    hex: `${BEGIN_RESPONDER} 01040001002a0000 ${SPEC_PAIRS} ${PARAMS_END_1}`,
    expect: [{ type: 'error', code: COMMON_ERRORS.TOO_MANY_PARAMS, requestId: 1, httpStatus: 431, limit: 'maxParamCount' }],
  },
  {
    name: 'body over maxBodyBytes: nothing past the limit is delivered',
    source: 'limit maxBodyBytes 4',
    options: { maxBodyBytes: 4 },
    hex: `${BEGIN_RESPONDER} ${PARAMS_END_1} 0105000100030500 616263 0000000000 0105000100030500 646566 0000000000 ${STDIN_END_1}`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: [] },
      { type: 'body', id: 1, text: 'abc' },
      { type: 'error', code: COMMON_ERRORS.BODY_TOO_LARGE, requestId: 1, httpStatus: 413, limit: 'maxBodyBytes' },
    ],
  },
  {
    name: 'NUL in a param name',
    source: 'spec §6.1; PROTOCOLS.md B.1 item 13',
    hex: `${BEGIN_RESPONDER} 0104000100050300 0201 410042 000000 ${PARAMS_END_1}`,
    expect: [{ type: 'error', code: COMMON_ERRORS.BAD_PARAM, requestId: 1, httpStatus: 400 }],
  },
  {
    name: 'NUL in a param value',
    source: 'spec §6.1; PROTOCOLS.md B.1 item 13',
    hex: `${BEGIN_RESPONDER} 0104000100050300 0102 410042 000000 ${PARAMS_END_1}`,
    expect: [{ type: 'error', code: COMMON_ERRORS.BAD_PARAM, requestId: 1, httpStatus: 400 }],
  },
  {
    name: 'a failed request does not disturb its neighbour',
    source: 'spec §3.3 (requests are independent); maxRequestsPerConnection 2',
    options: { maxRequestsPerConnection: 2, maxBodyBytes: 2 },
    hex: `0101000100080000 0001010000000000 0101000200080000 0001010000000000 ${PARAMS_END_1} 0104000200000000
      0105000100030500 616263 0000000000 0105000200020600 7879 000000000000 ${STDIN_END_1} 0105000200000000`,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: true, params: [] },
      { type: 'request', id: 2, role: 1, keepConn: true, params: [] },
      { type: 'error', code: COMMON_ERRORS.BODY_TOO_LARGE, requestId: 1, httpStatus: 413, limit: 'maxBodyBytes' },
      { type: 'body', id: 2, text: 'xy' },
      { type: 'bodyEnd', id: 2 },
    ],
  },
  {
    name: 'connection closed inside a record',
    source: 'COMMON_ERRORS.TRUNCATED',
    hex: `${BEGIN_RESPONDER} 0104000100200000 0b02`,
    end: true,
    expect: [{ type: 'error', code: COMMON_ERRORS.TRUNCATED, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'connection closed between records but inside the params stream',
    source: 'COMMON_ERRORS.TRUNCATED ("in the middle of a header block")',
    hex: `${BEGIN_RESPONDER} 01040001002a0000 ${SPEC_PAIRS}`,
    end: true,
    expect: [{ type: 'error', code: COMMON_ERRORS.TRUNCATED, requestId: 0, httpStatus: 0 }],
  },
  {
    name: 'connection closed inside a STDIN record of a live request: the abort explains it',
    source: 'decided: TRUNCATED only when no abort was emitted',
    hex: `${BEGIN_RESPONDER} ${PARAMS_END_1} 0105000100100000 414243`,
    end: true,
    expect: [
      { type: 'request', id: 1, role: 1, keepConn: false, params: [] },
      { type: 'body', id: 1, text: 'ABC' },
      { type: 'abort', id: 1 },
    ],
  },
];

/** Every boundary for small vectors; for large ones, around each record boundary and a spread. */
function splitPoints(bytes: Buffer): number[] {
  if (bytes.length <= 4096) return Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
  const points = new Set<number>();
  let o = 0;
  while (o + 8 <= bytes.length) {
    for (let d = -9; d <= 9; d++) points.add(o + d);
    o += 8 + bytes.readUInt16BE(o + 4) + bytes[o + 6]!;
  }
  for (let i = 1; i < 64; i++) points.add(Math.floor((bytes.length * i) / 64));
  return [...points].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
}

describe('FastCGI decoder byte vectors', () => {
  for (const v of vectors) {
    const bytes = hex(v.hex);
    const options = v.options ?? {};
    const end = v.end === true;
    it(`${v.name} [${v.source}]`, () => {
      assert.deepEqual(feedWhole(bytes, options, end), v.expect, 'whole buffer');
      assert.deepEqual(feedBytewise(bytes, options, end), v.expect, 'one byte at a time');
      for (const at of splitPoints(bytes)) assert.deepEqual(feedSplitAt(bytes, at, options, end), v.expect, `split at ${at}`);
    });
  }
});

describe('FastCGI decoder lifecycle', () => {
  const request = (id: number, keepConn = true, body = 'abc'): Buffer[] => [
    encodeBeginRequest(id, ROLE.RESPONDER, keepConn),
    ...encodeParams(id, [['REQUEST_METHOD', 'POST']]),
    ...encodeStdin(id, Buffer.from(body)),
    encodeStdinEnd(id),
  ];

  it('release() makes the id inactive: late records are ignored and the id can begin again', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    log.onRequest = (head) => decoder.release(head.id); // the app answered at once
    decoder.push(Buffer.concat(request(1)));
    decoder.push(Buffer.concat(request(1, true, 'second')));
    assert.deepEqual(log.events, [
      { type: 'request', id: 1, role: 1, keepConn: true, params: ['REQUEST_METHOD', 'POST'] },
      { type: 'request', id: 1, role: 1, keepConn: true, params: ['REQUEST_METHOD', 'POST'] },
    ]);
  });

  it('keep-conn connection: requests one after another, each released after its body', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    log.onBodyEnd = (id) => decoder.release(id);
    decoder.push(Buffer.concat([...request(1), ...request(1, true, 'x'), ...request(1, true, 'y')]));
    decoder.end();
    assert.deepEqual(log.events.map((e) => e.type), ['request', 'body', 'bodyEnd', 'request', 'body', 'bodyEnd', 'request', 'body', 'bodyEnd']);
  });

  it('without release(), a second request on the connection is refused with CANT_MPX_CONN', () => {
    const events = feedWhole(Buffer.concat([...request(1), ...request(2)]), {}, false);
    assert.deepEqual(events.at(-1), { type: 'reply', hex: '01030002000800000000000001000000', close: false });
  });

  it('a per-request error keeps the id active until release(); then it can begin again', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log, { maxBodyBytes: 1 });
    decoder.push(Buffer.concat(request(1)));
    assert.equal(log.errors.length, 1);
    assert.equal(log.errors[0]?.code, COMMON_ERRORS.BODY_TOO_LARGE);
    assert.equal(decoder.keepConn(1), true, 'the connection can still ask how to end it');
    assert.equal(decoder.keepConn(2), undefined);
    decoder.push(encodeBeginRequest(1, ROLE.RESPONDER, true));
    assert.equal(log.errors.at(-1)?.code, FCGI_ERRORS.REQUEST_ID_IN_USE, 'still active before release()');

    const log2 = new EventLog();
    const decoder2 = new FastCgiDecoder(log2, { maxBodyBytes: 1 });
    log2.onError = (err) => decoder2.release(err.requestId);
    decoder2.push(Buffer.concat([...request(1), ...request(1, true, 'z')]));
    assert.deepEqual(log2.events.map((e) => e.type), ['request', 'error', 'request', 'body', 'bodyEnd']);
  });

  it('release() from inside body(): the rest of that record is not delivered', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    log.onBody = (id) => decoder.release(id);
    const bytes = Buffer.concat(request(1, true, 'abcdef'));
    const stdinAt = bytes.indexOf(Buffer.from('abcdef'));
    decoder.push(bytes.subarray(0, stdinAt + 2));
    decoder.push(bytes.subarray(stdinAt + 2));
    assert.deepEqual(log.events.slice(1), [{ type: 'body', id: 1, text: 'ab' }]);
  });

  it('end(): nothing to report on a clean boundary with no live request; a second end() does nothing', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    log.onBodyEnd = (id) => decoder.release(id);
    decoder.push(Buffer.concat(request(1)));
    decoder.end();
    decoder.end();
    assert.deepEqual(log.events.map((e) => e.type), ['request', 'body', 'bodyEnd']);
  });

  it('end() aborts every live request the app has seen, once each, multiplexed too', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log, { maxRequestsPerConnection: 3 });
    decoder.push(Buffer.concat([...request(1), ...request(2).slice(0, -1), encodeBeginRequest(3)]));
    decoder.push(encodeAbortRequest(2));
    decoder.end();
    assert.deepEqual(log.events.filter((e) => e.type === 'abort'), [{ type: 'abort', id: 2 }, { type: 'abort', id: 1 }]);
    assert.equal(log.errors.length, 0, 'request 3 never surfaced, but the aborts explain the close');
  });

  it('push() after end() is one AFTER_END error; after a connection error nothing at all', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    decoder.end();
    decoder.push(encodeBeginRequest(1));
    decoder.push(encodeBeginRequest(2));
    assert.deepEqual(log.events, [{ type: 'error', code: COMMON_ERRORS.AFTER_END, requestId: 0, httpStatus: 0 }]);

    const log2 = new EventLog();
    const decoder2 = new FastCgiDecoder(log2);
    decoder2.push(hex('0901000100080000'));
    decoder2.push(Buffer.concat(request(1)));
    decoder2.end();
    decoder2.release(1);
    assert.deepEqual(log2.events, [{ type: 'error', code: FCGI_ERRORS.BAD_VERSION, requestId: 0, httpStatus: 0 }]);
  });

  it('limits act as bytes arrive: a PARAMS header alone trips maxParamsBytes, a length prefix alone trips it too', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log, { maxParamsBytes: 100 });
    decoder.push(encodeBeginRequest(1));
    decoder.push(hex('0104000100650300')); // 101 bytes announced, none sent yet
    assert.equal(log.errors[0]?.code, COMMON_ERRORS.PARAMS_TOO_LARGE);

    const log2 = new EventLog();
    const decoder2 = new FastCgiDecoder(log2, { maxParamsBytes: 100 });
    decoder2.push(encodeBeginRequest(1));
    decoder2.push(hex('0104000100400000 0162')); // a 98-byte value and a 1-byte name after 2 length bytes: 101
    assert.equal(log2.errors[0]?.code, COMMON_ERRORS.PARAMS_TOO_LARGE);
    assert.equal(log2.errors[0]?.limit, 'maxParamsBytes');
  });

  it('a 2 GiB length lie costs no memory', () => {
    const before = process.memoryUsage().arrayBuffers;
    const events = feedWhole(hex(`${BEGIN_RESPONDER} 0104000100080000 fffffff0 fffffff0`), { maxParamsBytes: 0x7fffffff * 4 }, false);
    assert.deepEqual(events, [], 'incomplete: waiting for bytes that never come');
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024);
  });

  it('body bytes are views of the pushed chunks: nothing is copied, whole or split at 64 KiB', () => {
    const body = Buffer.alloc(200_000, 0x5a);
    const parts = [encodeBeginRequest(1), ...encodeParams(1, [['A', 'b']]), ...encodeStdin(1, body), encodeStdinEnd(1)];
    // Its own (non-pooled) ArrayBuffer, so `buffer` identity proves the views point into it.
    const wire = Buffer.from(new ArrayBuffer(parts.reduce((n, p) => n + p.length, 0)));
    Buffer.concat(parts).copy(wire);
    for (const pieces of [[wire], Array.from({ length: Math.ceil(wire.length / 65536) }, (_, i) => wire.subarray(i * 65536, (i + 1) * 65536))]) {
      const log = feed(pieces);
      const total = log.chunks.reduce((n, c) => n + c.length, 0);
      assert.equal(total, body.length);
      for (const chunk of log.chunks) {
        assert.equal(chunk.buffer, wire.buffer, 'body chunk shares the input ArrayBuffer');
        assert.ok(chunk.byteOffset >= wire.byteOffset && chunk.byteOffset + chunk.length <= wire.byteOffset + wire.length);
      }
      if (pieces.length > 1) assert.ok(log.chunks.length > 4, 'records crossing chunks arrive as several views');
    }
  });

  it('options: defaults, and out-of-range values throw RangeError at construction', () => {
    assert.deepEqual({ ...DEFAULT_FASTCGI_OPTIONS }, { maxParamsBytes: 65536, maxParamCount: 1000, maxBodyBytes: 0, maxRequestsPerConnection: 1, maxConns: 1024 });
    const sink = new EventLog();
    assert.throws(() => new FastCgiDecoder(sink, { maxRequestsPerConnection: 0 }), RangeError);
    assert.throws(() => new FastCgiDecoder(sink, { maxRequestsPerConnection: 70000 }), RangeError);
    assert.throws(() => new FastCgiDecoder(sink, { maxParamsBytes: -1 }), RangeError);
    assert.throws(() => new FastCgiDecoder(sink, { maxConns: 1.5 }), RangeError);
  });

  it('GET_VALUES answers from the options: FCGI_MAX_REQS = maxConns × maxRequestsPerConnection', () => {
    const get = hex(`01090000001f0100 0e00 ${latin1Hex('FCGI_MAX_CONNS')} 0d00 ${latin1Hex('FCGI_MAX_REQS')} 00`);
    const [reply] = feedWhole(get, { maxConns: 10, maxRequestsPerConnection: 8 }, false);
    assert.ok(reply?.type === 'reply');
    const content = Buffer.from(reply.hex, 'hex').subarray(8, 8 + Buffer.from(reply.hex, 'hex').readUInt16BE(4));
    assert.equal(content.toString('latin1'), '\x0e\x02FCGI_MAX_CONNS10\x0d\x02FCGI_MAX_REQS80');
  });

  it('fastCgiDecoderOptions: checked once (same RangeErrors), frozen, and a decoder given them answers as one given the plain object', () => {
    assert.throws(() => fastCgiDecoderOptions({ maxRequestsPerConnection: 70000 }), RangeError);
    assert.throws(() => fastCgiDecoderOptions({ maxInflightRequests: -1 }), RangeError);
    const plain = { maxConns: 10, maxRequestsPerConnection: 8, maxInflightRequests: 20 };
    const checked = fastCgiDecoderOptions(plain);
    assert.ok(Object.isFrozen(checked));
    assert.deepEqual({ ...checked }, { ...DEFAULT_FASTCGI_OPTIONS, ...plain });
    const get = hex(`01090000001f0100 0e00 ${latin1Hex('FCGI_MAX_CONNS')} 0d00 ${latin1Hex('FCGI_MAX_REQS')} 00`);
    const viaChecked = feedWhole(get, checked, false);
    assert.deepEqual(viaChecked, feedWhole(get, plain, false));
    const [reply] = viaChecked;
    assert.ok(reply?.type === 'reply');
    assert.match(Buffer.from(reply.hex, 'hex').toString('latin1'), /FCGI_MAX_REQS20/);
  });
});
