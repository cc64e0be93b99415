// SCGI decoder byte vectors, from the application's side: requests captured from nginx and
// Apache, the spec's own example, and a vector for every coded error. Every vector is also fed
// one byte at a time and split at every boundary, and must give the same event log.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMON_ERRORS, ProtocolError } from '../../protocols/common/errors.ts';
import type { DecoderLimits, DecoderSink, RequestHead } from '../../protocols/common/events.ts';
import { encodeResponseHead } from '../../protocols/common/head.ts';
import {
  HEAD_FORM,
  SCGI_ERRORS,
  ScgiDecoder,
  encodeHeaderBlock,
  encodeScgiRequest,
  parseHeaderBlock,
  scgiParams,
} from '../../protocols/scgi/index.ts';
import { EventLog, assertSplitInvariant, drive, ev, splitAt } from '../helpers/event-log.ts';
import type { LoggedEvent } from '../helpers/event-log.ts';

interface Vector {
  readonly name: string;
  /** Where the bytes come from: a capture, a spec section, or the rule the vector pins. */
  readonly source: string;
  readonly hex: string;
  readonly limits?: Partial<DecoderLimits>;
  /** Call end() after the bytes (default true). */
  readonly end?: boolean;
  readonly expect: readonly LoggedEvent[];
}

/** Hex of a latin1 string, so hand-made vectors stay readable. */
function h(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('hex');
}

/** A netstring around a header block given as `name\0value\0…` text. */
function ns(block: string): string {
  return `${String(Buffer.byteLength(block, 'latin1'))}:${block},`;
}

const factory = (limits: Partial<DecoderLimits> = {}) => (sink: DecoderSink) => new ScgiDecoder(sink, limits);

const E = SCGI_ERRORS;
const C = COMMON_ERRORS;

// Exactly what real front servers sent, captured on loopback (see the `source` of each).
const CAPTURED: Vector[] = [
  {
    name: 'nginx 1.22.1 GET with Debian scgi_params: CONTENT_LENGTH first, empty CONTENT_TYPE, one HTTP_COOKIE per Cookie line',
    source: 'captured: curl → nginx 1.22.1 (Debian) scgi_pass, include /etc/nginx/scgi_params',
    hex:
      '3430393a434f4e54454e545f4c454e475448003000524551554553545f4d4554484f440047455400524551554553545f5552' +
      '49002f732f6170702f7061723f783d3126793d2532307a0051554552595f535452494e4700783d3126793d2532307a00434f' +
      '4e54454e545f545950450000444f43554d454e545f555249002f732f6170702f70617200444f43554d454e545f524f4f5400' +
      '2f746d702f736367696361702f68746d6c00534347490031005345525645525f50524f544f434f4c00485454502f312e3100' +
      '524551554553545f534348454d4500687474700052454d4f54455f41444452003132372e302e302e310052454d4f54455f50' +
      '4f5254003532393938005345525645525f504f5254003436373639005345525645525f4e414d45006c6f63616c686f737400' +
      '485454505f484f5354006578616d706c652e7465737400485454505f555345525f4147454e54006375726c2f372e38382e31' +
      '00485454505f414343455054002a2f2a00485454505f585f54455354006100485454505f434f4f4b494500613d3100485454' +
      '505f434f4f4b494500623d32002c',
    expect: [
      ev.requestPairs(1, [
        ['CONTENT_LENGTH', '0'],
        ['REQUEST_METHOD', 'GET'],
        ['REQUEST_URI', '/s/app/par?x=1&y=%20z'],
        ['QUERY_STRING', 'x=1&y=%20z'],
        ['CONTENT_TYPE', ''],
        ['DOCUMENT_URI', '/s/app/par'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SCGI', '1'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_SCHEME', 'http'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['REMOTE_PORT', '52998'],
        ['SERVER_PORT', '46769'],
        ['SERVER_NAME', 'localhost'],
        ['HTTP_HOST', 'example.test'],
        ['HTTP_USER_AGENT', 'curl/7.88.1'],
        ['HTTP_ACCEPT', '*/*'],
        ['HTTP_X_TEST', 'a'],
        ['HTTP_COOKIE', 'a=1'],
        ['HTTP_COOKIE', 'b=2'],
      ], 0),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'nginx 1.22.1 POST with a 16-byte body; nginx also forwards HTTP_CONTENT_TYPE and HTTP_CONTENT_LENGTH',
    source: 'captured: curl --data → nginx 1.22.1 (Debian) scgi_pass',
    hex:
      '3435303a434f4e54454e545f4c454e47544800313600524551554553545f4d4554484f4400504f535400524551554553545f' +
      '555249002f732f75706c6f61640051554552595f535452494e470000434f4e54454e545f54595045006170706c6963617469' +
      '6f6e2f782d7777772d666f726d2d75726c656e636f64656400444f43554d454e545f555249002f732f75706c6f616400444f' +
      '43554d454e545f524f4f54002f746d702f736367696361702f68746d6c00534347490031005345525645525f50524f544f43' +
      '4f4c00485454502f312e3100524551554553545f534348454d4500687474700052454d4f54455f41444452003132372e302e' +
      '302e310052454d4f54455f504f5254003533303130005345525645525f504f5254003436373639005345525645525f4e414d' +
      '45006c6f63616c686f737400485454505f484f5354006578616d706c652e7465737400485454505f555345525f4147454e54' +
      '006375726c2f372e38382e3100485454505f414343455054002a2f2a00485454505f434f4e54454e545f5459504500617070' +
      '6c69636174696f6e2f782d7777772d666f726d2d75726c656e636f64656400485454505f434f4e54454e545f4c454e475448' +
      '003136002c6e616d653d706f737465726e26783d31',
    expect: [
      ev.requestPairs(1, [
        ['CONTENT_LENGTH', '16'],
        ['REQUEST_METHOD', 'POST'],
        ['REQUEST_URI', '/s/upload'],
        ['QUERY_STRING', ''],
        ['CONTENT_TYPE', 'application/x-www-form-urlencoded'],
        ['DOCUMENT_URI', '/s/upload'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SCGI', '1'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_SCHEME', 'http'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['REMOTE_PORT', '53010'],
        ['SERVER_PORT', '46769'],
        ['SERVER_NAME', 'localhost'],
        ['HTTP_HOST', 'example.test'],
        ['HTTP_USER_AGENT', 'curl/7.88.1'],
        ['HTTP_ACCEPT', '*/*'],
        ['HTTP_CONTENT_TYPE', 'application/x-www-form-urlencoded'],
        ['HTTP_CONTENT_LENGTH', '16'],
      ], 16),
      ev.body(1, 'name=postern&x=1'),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'Apache 2.4.71 mod_proxy_scgi GET: CONTENT_LENGTH then SCGI first, whole path in SCRIPT_NAME',
    source: 'captured: curl → Apache 2.4.71 (Debian) ProxyPass scgi://',
    hex:
      '3637363a434f4e54454e545f4c454e47544800300053434749003100485454505f484f5354006578616d706c652e74657374' +
      '3a3830383000485454505f555345525f4147454e54006375726c2f372e38382e3100485454505f414343455054002a2f2a00' +
      '485454505f585f54455354006100485454505f434f4f4b494500613d312c20623d320050415448002f7573722f6c6f63616c' +
      '2f7362696e3a2f7573722f6c6f63616c2f62696e3a2f7573722f7362696e3a2f7573722f62696e3a2f7362696e3a2f62696e' +
      '005345525645525f5349474e415455524500005345525645525f534f465457415245004170616368652f322e342e37312028' +
      '44656269616e29005345525645525f4e414d45006578616d706c652e74657374005345525645525f41444452003132372e30' +
      '2e302e31005345525645525f504f525400383038300052454d4f54455f41444452003132372e302e302e3100444f43554d45' +
      '4e545f524f4f54002f746d702f736367696361702f68746d6c00524551554553545f534348454d45006874747000434f4e54' +
      '4558545f5052454649580000434f4e544558545f444f43554d454e545f524f4f54002f746d702f736367696361702f68746d' +
      '6c005345525645525f41444d494e005b6e6f206164647265737320676976656e5d005343524950545f46494c454e414d4500' +
      '70726f78793a736367693a2f2f3132372e302e302e313a33333337392f6170702f7061720052454d4f54455f504f52540033' +
      '33353432005345525645525f50524f544f434f4c00485454502f312e3100524551554553545f4d4554484f44004745540051' +
      '554552595f535452494e4700783d3126793d2532307a00524551554553545f555249002f732f6170702f7061723f783d3126' +
      '793d2532307a005343524950545f4e414d45002f732f6170702f706172002c',
    expect: [
      ev.requestPairs(1, [
        ['CONTENT_LENGTH', '0'],
        ['SCGI', '1'],
        ['HTTP_HOST', 'example.test:8080'],
        ['HTTP_USER_AGENT', 'curl/7.88.1'],
        ['HTTP_ACCEPT', '*/*'],
        ['HTTP_X_TEST', 'a'],
        ['HTTP_COOKIE', 'a=1, b=2'],
        ['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        ['SERVER_SIGNATURE', ''],
        ['SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)'],
        ['SERVER_NAME', 'example.test'],
        ['SERVER_ADDR', '127.0.0.1'],
        ['SERVER_PORT', '8080'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['REQUEST_SCHEME', 'http'],
        ['CONTEXT_PREFIX', ''],
        ['CONTEXT_DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SERVER_ADMIN', '[no address given]'],
        ['SCRIPT_FILENAME', 'proxy:scgi://127.0.0.1:33379/app/par'],
        ['REMOTE_PORT', '33542'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_METHOD', 'GET'],
        ['QUERY_STRING', 'x=1&y=%20z'],
        ['REQUEST_URI', '/s/app/par?x=1&y=%20z'],
        ['SCRIPT_NAME', '/s/app/par'],
      ], 0),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'Apache 2.4.71 mod_proxy_scgi POST with a 16-byte body',
    source: 'captured: curl --data → Apache 2.4.71 (Debian) ProxyPass scgi://',
    hex:
      '3635393a434f4e54454e545f4c454e4754480031360053434749003100485454505f484f5354006578616d706c652e746573' +
      '7400485454505f555345525f4147454e54006375726c2f372e38382e3100485454505f414343455054002a2f2a00434f4e54' +
      '454e545f54595045006170706c69636174696f6e2f782d7777772d666f726d2d75726c656e636f6465640050415448002f75' +
      '73722f6c6f63616c2f7362696e3a2f7573722f6c6f63616c2f62696e3a2f7573722f7362696e3a2f7573722f62696e3a2f73' +
      '62696e3a2f62696e005345525645525f5349474e415455524500005345525645525f534f465457415245004170616368652f' +
      '322e342e3731202844656269616e29005345525645525f4e414d45006578616d706c652e74657374005345525645525f4144' +
      '4452003132372e302e302e31005345525645525f504f52540038300052454d4f54455f41444452003132372e302e302e3100' +
      '444f43554d454e545f524f4f54002f746d702f736367696361702f68746d6c00524551554553545f534348454d4500687474' +
      '7000434f4e544558545f5052454649580000434f4e544558545f444f43554d454e545f524f4f54002f746d702f7363676963' +
      '61702f68746d6c005345525645525f41444d494e005b6e6f206164647265737320676976656e5d005343524950545f46494c' +
      '454e414d450070726f78793a736367693a2f2f3132372e302e302e313a33333337392f75706c6f61640052454d4f54455f50' +
      '4f5254003333353536005345525645525f50524f544f434f4c00485454502f312e3100524551554553545f4d4554484f4400' +
      '504f53540051554552595f535452494e470000524551554553545f555249002f732f75706c6f6164005343524950545f4e41' +
      '4d45002f732f75706c6f6164002c6e616d653d706f737465726e26783d31',
    expect: [
      ev.requestPairs(1, [
        ['CONTENT_LENGTH', '16'],
        ['SCGI', '1'],
        ['HTTP_HOST', 'example.test'],
        ['HTTP_USER_AGENT', 'curl/7.88.1'],
        ['HTTP_ACCEPT', '*/*'],
        ['CONTENT_TYPE', 'application/x-www-form-urlencoded'],
        ['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        ['SERVER_SIGNATURE', ''],
        ['SERVER_SOFTWARE', 'Apache/2.4.71 (Debian)'],
        ['SERVER_NAME', 'example.test'],
        ['SERVER_ADDR', '127.0.0.1'],
        ['SERVER_PORT', '80'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['REQUEST_SCHEME', 'http'],
        ['CONTEXT_PREFIX', ''],
        ['CONTEXT_DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SERVER_ADMIN', '[no address given]'],
        ['SCRIPT_FILENAME', 'proxy:scgi://127.0.0.1:33379/upload'],
        ['REMOTE_PORT', '33556'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_METHOD', 'POST'],
        ['QUERY_STRING', ''],
        ['REQUEST_URI', '/s/upload'],
        ['SCRIPT_NAME', '/s/upload'],
      ], 16),
      ev.body(1, 'name=postern&x=1'),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'nginx 1.22.1 with a chunked client body: buffered, sent with CONTENT_LENGTH 3',
    source: "captured: curl -H 'Transfer-Encoding: chunked' → nginx 1.22.1 scgi_pass",
    hex:
      '3435353a434f4e54454e545f4c454e475448003300524551554553545f4d4554484f4400504f535400524551554553545f55' +
      '5249002f732f6368756e6b0051554552595f535452494e470000434f4e54454e545f54595045006170706c69636174696f6e' +
      '2f782d7777772d666f726d2d75726c656e636f64656400444f43554d454e545f555249002f732f6368756e6b00444f43554d' +
      '454e545f524f4f54002f746d702f736367696361702f68746d6c00534347490031005345525645525f50524f544f434f4c00' +
      '485454502f312e3100524551554553545f534348454d4500687474700052454d4f54455f41444452003132372e302e302e31' +
      '0052454d4f54455f504f5254003533303430005345525645525f504f5254003436373639005345525645525f4e414d45006c' +
      '6f63616c686f737400485454505f484f5354006578616d706c652e7465737400485454505f555345525f4147454e54006375' +
      '726c2f372e38382e3100485454505f414343455054002a2f2a00485454505f5452414e534645525f454e434f44494e470063' +
      '68756e6b656400485454505f434f4e54454e545f54595045006170706c69636174696f6e2f782d7777772d666f726d2d7572' +
      '6c656e636f646564002c616263',
    expect: [
      ev.requestPairs(1, [
        ['CONTENT_LENGTH', '3'],
        ['REQUEST_METHOD', 'POST'],
        ['REQUEST_URI', '/s/chunk'],
        ['QUERY_STRING', ''],
        ['CONTENT_TYPE', 'application/x-www-form-urlencoded'],
        ['DOCUMENT_URI', '/s/chunk'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SCGI', '1'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_SCHEME', 'http'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['REMOTE_PORT', '53040'],
        ['SERVER_PORT', '46769'],
        ['SERVER_NAME', 'localhost'],
        ['HTTP_HOST', 'example.test'],
        ['HTTP_USER_AGENT', 'curl/7.88.1'],
        ['HTTP_ACCEPT', '*/*'],
        ['HTTP_TRANSFER_ENCODING', 'chunked'],
        ['HTTP_CONTENT_TYPE', 'application/x-www-form-urlencoded'],
      ], 3),
      ev.body(1, 'abc'),
      ev.bodyEnd(1),
    ],
  },
];

const VALID: Vector[] = [
  {
    name: 'the spec example: 70-byte header block, CONTENT_LENGTH 27, SCGI 1, body',
    source: 'SCGI protocol text (Schemenauer), "Example"',
    hex: h('70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?'),
    expect: [
      ev.requestPairs(1, [['CONTENT_LENGTH', '27'], ['SCGI', '1'], ['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/deepthought']], 27),
      ev.body(1, 'What is the answer to life?'),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'Debian scgi_params HTTP_HOST $host plus a forwarded Host header: both kept, in order',
    source: 'PROTOCOLS.md §B.3 item 9 / brief (nginx 1.22.1 itself hides the forwarded one; older or patched builds do not)',
    hex: h(ns('CONTENT_LENGTH\x000\x00SCGI\x001\x00HTTP_HOST\x00example.test\x00HTTP_HOST\x00example.test:8080\x00')),
    expect: [
      ev.requestPairs(1, [['CONTENT_LENGTH', '0'], ['SCGI', '1'], ['HTTP_HOST', 'example.test'], ['HTTP_HOST', 'example.test:8080']], 0),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'SCGI header missing: accepted (spec says must; flup and uWSGI do not check)',
    source: 'SCGI protocol text; decision in protocols/scgi/decoder.ts',
    hex: h(ns('CONTENT_LENGTH\x000\x00REQUEST_METHOD\x00GET\x00')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '0'], ['REQUEST_METHOD', 'GET']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH not first: accepted',
    source: 'decision: lenient on order, strict on presence and format',
    hex: h(ns('SCGI\x001\x00CONTENT_LENGTH\x002\x00') + 'hi'),
    expect: [ev.requestPairs(1, [['SCGI', '1'], ['CONTENT_LENGTH', '2']], 2), ev.body(1, 'hi'), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH twice with the same value: accepted',
    source: 'decision: only differing duplicates are refused',
    hex: h(ns('CONTENT_LENGTH\x001\x00SCGI\x001\x00CONTENT_LENGTH\x001\x00') + 'x'),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '1'], ['SCGI', '1'], ['CONTENT_LENGTH', '1']], 1), ev.body(1, 'x'), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH with leading zeros is still decimal digits',
    source: 'spec: "the length of the body in decimal"',
    hex: h(ns('CONTENT_LENGTH\x00003\x00') + 'abc'),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '003']], 3), ev.body(1, 'abc'), ev.bodyEnd(1)],
  },
  {
    name: 'bytes above 0x7f decode as latin1, never UTF-8',
    source: 'STYLE.md 11; PROTOCOLS.md B.1 item 14',
    hex: h(ns('CONTENT_LENGTH\x000\x00HTTP_X_NAME\x00caf\xe9 \xc3\xa9 \xff\x00')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '0'], ['HTTP_X_NAME', 'caf\xe9 \xc3\xa9 \xff']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'empty values, including the last one',
    source: 'spec grammar value ::= notnull*; nginx sends an empty CONTENT_TYPE',
    hex: h(ns('CONTENT_LENGTH\x000\x00CONTENT_TYPE\x00\x00QUERY_STRING\x00\x00')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '0'], ['CONTENT_TYPE', ''], ['QUERY_STRING', '']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'a body that holds NUL, ",", ":" and digits is opaque',
    source: 'spec: body is CONTENT_LENGTH raw bytes',
    hex: h(ns('CONTENT_LENGTH\x006\x00')) + '002c3a3031ff',
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '6']], 6), ev.body(1, '\x00,:01\xff'), ev.bodyEnd(1)],
  },
  {
    name: 'header block exactly maxParamsBytes long',
    source: 'limit boundary: equal is allowed',
    hex: h(ns('CONTENT_LENGTH\x000\x00')),
    limits: { maxParamsBytes: 17 },
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '0']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'exactly maxParamCount headers',
    source: 'limit boundary: equal is allowed',
    hex: h(ns('CONTENT_LENGTH\x000\x00SCGI\x001\x00')),
    limits: { maxParamCount: 2 },
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '0'], ['SCGI', '1']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH exactly maxBodyBytes',
    source: 'limit boundary: equal is allowed',
    hex: h(ns('CONTENT_LENGTH\x003\x00') + 'abc'),
    limits: { maxBodyBytes: 3 },
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '3']], 3), ev.body(1, 'abc'), ev.bodyEnd(1)],
  },
  {
    name: 'complete request without end(): the client half-closes only later',
    source: 'SCGI: one request per connection; end() after the body is not an error',
    hex: h(ns('CONTENT_LENGTH\x001\x00') + 'z'),
    end: false,
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '1']], 1), ev.body(1, 'z'), ev.bodyEnd(1)],
  },
  {
    name: 'a connection closed before its first byte emits nothing',
    source: 'decision: port probes and health checks are not errors',
    hex: '',
    expect: [],
  },
];

const ERRORS: Vector[] = [
  {
    name: 'plain HTTP sent to the SCGI port',
    source: 'captured: curl http://127.0.0.1:<scgi port>/hello',
    hex:
      '474554202f68656c6c6f20485454502f312e310d0a486f73743a203132372e302e302e313a33363536390d0a557365722d' +
      '4167656e743a206375726c2f372e38382e310d0a4163636570743a202a2f2a0d0a0d0a',
    expect: [ev.error(E.HTTP_ON_SCGI_PORT, 400)],
  },
  {
    name: 'FastCGI sent to the SCGI port',
    source: 'captured: env -i REQUEST_METHOD=GET SCRIPT_NAME=/x cgi-fcgi -bind -connect 127.0.0.1:<scgi port>',
    hex:
      '0101000100080000000100000000000001040001002206000e03524551554553545f4d4554484f444745540b025343524950' +
      '545f4e414d452f7800000000000001040001000000000105000100000000',
    expect: [ev.error(E.FASTCGI_ON_SCGI_PORT, 0)],
  },
  {
    name: 'a TLS ClientHello sent to the SCGI port',
    source: 'RFC 8446 §5.1: ContentType handshake (22), legacy version 3.1',
    hex: '160301020001',
    expect: [ev.error(E.TLS_ON_SCGI_PORT, 0)],
  },
  { name: 'netstring "0:" (no CONTENT_LENGTH possible)', source: 'spec: CONTENT_LENGTH must always be present', hex: h('0:,'), expect: [ev.error(E.BAD_NETSTRING_LENGTH, 400)] },
  { name: 'netstring length with a leading zero', source: 'DurusWorks scgi.html: must not start with "0"', hex: h('017:CONTENT_LENGTH\x000\x00,'), expect: [ev.error(E.BAD_NETSTRING_LENGTH, 400)] },
  { name: 'netstring with no length digits', source: 'netstring grammar', hex: h(':CONTENT_LENGTH\x000\x00,'), expect: [ev.error(E.BAD_NETSTRING_LENGTH, 400)] },
  { name: 'netstring length with a letter in it', source: 'netstring grammar: digits only (uWSGI is lenient here)', hex: h('1a:CONTENT_LENGTH\x000\x00,'), expect: [ev.error(E.BAD_NETSTRING_LENGTH, 400)] },
  { name: 'netstring length with a sign', source: 'netstring grammar', hex: h('-17:'), expect: [ev.error(E.BAD_NETSTRING_LENGTH, 400)] },
  { name: 'netstring length after a space', source: 'netstring grammar', hex: h(' 17:'), expect: [ev.error(E.BAD_NETSTRING_LENGTH, 400)] },
  { name: 'lower-case letter first is not taken for HTTP', source: 'HTTP methods are upper case', hex: h('get / HTTP/1.1\r\n'), expect: [ev.error(E.BAD_NETSTRING_LENGTH, 400)] },
  {
    name: 'netstring length over maxParamsBytes, refused before the ":"',
    source: 'limit checked per digit',
    hex: h('65537'),
    end: false,
    expect: [ev.error(C.PARAMS_TOO_LARGE, 431, 'maxParamsBytes')],
  },
  {
    name: 'an endless digit string is refused at the first digit past the limit',
    source: 'digit count capped by the limit (uWSGI caps by buffer-size; flup reads without limit)',
    hex: h('9'.repeat(40)),
    end: false,
    expect: [ev.error(C.PARAMS_TOO_LARGE, 431, 'maxParamsBytes')],
  },
  {
    name: 'a small maxParamsBytes refuses the spec example (70 > 69)',
    source: 'limit boundary',
    hex: h('70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,'),
    limits: { maxParamsBytes: 69 },
    expect: [ev.error(C.PARAMS_TOO_LARGE, 431, 'maxParamsBytes')],
  },
  { name: 'maxParamsBytes 0 refuses every request', source: 'limit edge', hex: h('1:'), limits: { maxParamsBytes: 0 }, expect: [ev.error(C.PARAMS_TOO_LARGE, 431, 'maxParamsBytes')] },
  { name: 'netstring not closed by ","', source: 'netstring grammar', hex: h('17:CONTENT_LENGTH\x000\x00;'), expect: [ev.error(E.MISSING_COMMA, 400)] },
  {
    name: 'netstring length one short: the last NUL lands where "," should be',
    source: 'netstring grammar',
    hex: h('16:CONTENT_LENGTH\x000\x00,'),
    expect: [ev.error(E.BAD_HEADER_BLOCK, 400)],
  },
  {
    name: 'netstring length one long: "," taken into the block, body byte where "," should be',
    source: 'netstring grammar',
    hex: h('18:CONTENT_LENGTH\x000\x00,x'),
    expect: [ev.error(E.BAD_HEADER_BLOCK, 400)],
  },
  { name: 'block without its final NUL', source: 'spec grammar: header ::= name NUL value NUL', hex: h(ns('CONTENT_LENGTH\x000')), expect: [ev.error(E.BAD_HEADER_BLOCK, 400)] },
  { name: 'odd number of strings (a name with no value)', source: 'spec grammar', hex: h(ns('CONTENT_LENGTH\x000\x00SCGI\x00')), expect: [ev.error(E.BAD_HEADER_BLOCK, 400)] },
  { name: 'empty header name', source: 'spec grammar: name ::= notnull+', hex: h(ns('CONTENT_LENGTH\x000\x00\x00x\x00')), expect: [ev.error(E.EMPTY_HEADER_NAME, 400)] },
  { name: 'a block that is a single NUL', source: 'spec grammar', hex: h(ns('\x00')), expect: [ev.error(E.EMPTY_HEADER_NAME, 400)] },
  {
    name: 'more headers than maxParamCount',
    source: 'limit',
    hex: h(ns('CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00y\x00')),
    limits: { maxParamCount: 2 },
    expect: [ev.error(C.TOO_MANY_PARAMS, 431, 'maxParamCount')],
  },
  { name: 'CONTENT_LENGTH missing', source: 'spec: "must always be present"', hex: h(ns('SCGI\x001\x00')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  { name: 'CONTENT_LENGTH empty', source: 'spec: "even if its value is \'0\'"', hex: h(ns('CONTENT_LENGTH\x00\x00SCGI\x001\x00')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  { name: 'CONTENT_LENGTH not a number', source: 'flup rejects non-numeric', hex: h(ns('CONTENT_LENGTH\x00abc\x00')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  { name: 'CONTENT_LENGTH negative', source: 'flup rejects negative', hex: h(ns('CONTENT_LENGTH\x00-1\x00')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  { name: 'CONTENT_LENGTH with a space', source: 'digits only', hex: h(ns('CONTENT_LENGTH\x00 5\x00')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  { name: 'CONTENT_LENGTH in exponent form', source: 'digits only', hex: h(ns('CONTENT_LENGTH\x001e3\x00')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  {
    name: 'CONTENT_LENGTH beyond 2^53 with no body limit',
    source: 'cannot be counted exactly',
    hex: h(ns('CONTENT_LENGTH\x0099999999999999999999\x00')),
    expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)],
  },
  {
    name: 'two CONTENT_LENGTH headers that differ',
    source: 'decision: framing and environ must not disagree on the body length',
    hex: h(ns('CONTENT_LENGTH\x001\x00CONTENT_LENGTH\x002\x00') + 'xy'),
    expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)],
  },
  {
    name: 'CONTENT_LENGTH over maxBodyBytes, refused before any body byte',
    source: 'limit',
    hex: h(ns('CONTENT_LENGTH\x004\x00')),
    limits: { maxBodyBytes: 3 },
    end: false,
    expect: [ev.error(C.BODY_TOO_LARGE, 413, 'maxBodyBytes')],
  },
  {
    name: 'a huge CONTENT_LENGTH with a body limit is 413, not 400',
    source: 'limit names the knob',
    hex: h(ns('CONTENT_LENGTH\x0099999999999999999999\x00')),
    limits: { maxBodyBytes: 1 << 20 },
    expect: [ev.error(C.BODY_TOO_LARGE, 413, 'maxBodyBytes')],
  },
  {
    name: 'bytes after the body',
    source: 'decision: one request per connection; extra bytes mean the framing is off',
    hex: h(ns('CONTENT_LENGTH\x002\x00') + 'hi!'),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '2']], 2), ev.body(1, 'hi'), ev.bodyEnd(1), ev.error(E.TRAILING_BYTES, 0)],
  },
  {
    name: 'bytes after a bodiless request (a second request pipelined)',
    source: 'decision: SCGI has no keep-alive',
    hex: h(ns('CONTENT_LENGTH\x000\x00') + ns('CONTENT_LENGTH\x000\x00')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '0']], 0), ev.bodyEnd(1), ev.error(E.TRAILING_BYTES, 0)],
  },
  { name: 'connection closed inside the length', source: 'end() in a partial frame', hex: h('17'), expect: [ev.error(C.TRUNCATED, 0)] },
  { name: 'connection closed after the ":"', source: 'end() in a partial frame', hex: h('17:'), expect: [ev.error(C.TRUNCATED, 0)] },
  { name: 'connection closed inside the header block', source: 'end() in a partial frame', hex: h('17:CONTENT_LEN'), expect: [ev.error(C.TRUNCATED, 0)] },
  { name: 'connection closed before the ","', source: 'end() in a partial frame', hex: h('17:CONTENT_LENGTH\x000\x00'), expect: [ev.error(C.TRUNCATED, 0)] },
  {
    name: 'connection closed inside the body aborts the request',
    source: 'events.ts: abort when the connection closes early',
    hex: h(ns('CONTENT_LENGTH\x005\x00') + 'ab'),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '5']], 5), ev.body(1, 'ab'), ev.abort(1)],
  },
  {
    name: 'connection closed right after the head of a request with a body',
    source: 'events.ts: abort when the connection closes early',
    hex: h(ns('CONTENT_LENGTH\x005\x00')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '5']], 5), ev.abort(1)],
  },
];

function runTable(title: string, vectors: readonly Vector[]): void {
  describe(title, () => {
    for (const v of vectors) {
      it(v.name, () => {
        const make = factory(v.limits);
        const bytes = Buffer.from(v.hex, 'hex');
        const options = { end: v.end ?? true };
        assert.deepStrictEqual(drive(make, [bytes], options).events, v.expect, v.source);
        assertSplitInvariant(make, bytes, options);
      });
    }
  });
}

runTable('SCGI: captured front-server requests', CAPTURED);
runTable('SCGI: valid edge cases', VALID);
runTable('SCGI: coded errors', ERRORS);

describe('SCGI: error codes', () => {
  it('every SCGI code and every common code the decoder can raise has a vector', () => {
    const seen = new Set<string>();
    for (const v of ERRORS) for (const e of v.expect) if (e.type === 'error') seen.add(e.code);
    seen.add(C.AFTER_END); // push after end(): its own test below
    for (const code of Object.values(SCGI_ERRORS)) assert.ok(seen.has(code), `no vector for ${code}`);
    for (const code of [C.TRUNCATED, C.PARAMS_TOO_LARGE, C.TOO_MANY_PARAMS, C.BODY_TOO_LARGE, C.BAD_CONTENT_LENGTH]) {
      assert.ok(seen.has(code), `no vector for ${code}`);
    }
  });

  it('codes are stable POSTERN_ERR_SCGI_ strings', () => {
    for (const [key, code] of Object.entries(SCGI_ERRORS)) assert.equal(code, `POSTERN_ERR_SCGI_${key}`);
  });

  it('errors are ProtocolError values naming no request', () => {
    const log = drive(factory(), [Buffer.from('GET / HTTP/1.1\r\n')]);
    assert.equal(log.errors.length, 1);
    const [err] = log.errors;
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.requestId, 0);
    assert.match(err.message, /scgi_pass/);
  });
});

describe('SCGI: decoder behaviour', () => {
  const spec = Buffer.from('70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?', 'latin1');

  it('push after end() is AFTER_END, once; then silence', () => {
    const log = new EventLog();
    const d = new ScgiDecoder(log);
    d.push(spec);
    d.end();
    d.push(Buffer.from('x'));
    d.push(Buffer.from('y'));
    d.end();
    assert.deepStrictEqual(log.events.slice(-2), [ev.bodyEnd(1), ev.error(C.AFTER_END, 0)]);
  });

  it('after an error, push() and end() emit nothing', () => {
    const log = new EventLog();
    const d = new ScgiDecoder(log);
    d.push(Buffer.from('x'));
    d.push(spec);
    d.end();
    assert.deepStrictEqual(log.events, [ev.error(E.BAD_NETSTRING_LENGTH, 400)]);
  });

  it('empty pushes are ignored in every state', () => {
    const log = new EventLog();
    const d = new ScgiDecoder(log);
    const empty = Buffer.alloc(0);
    d.push(empty);
    for (const piece of splitAt(spec, [2, 3, 20, 74, 75, 80])) {
      d.push(piece);
      d.push(empty);
    }
    d.end();
    d.push(empty);
    assert.deepStrictEqual(log.events, drive(factory(), [spec]).events);
  });

  it('body pieces are zero-copy views into the pushed chunks', () => {
    const views: Buffer[] = [];
    const sink = new (class extends EventLog {
      override body(id: number, chunk: Buffer): void {
        views.push(chunk);
        super.body(id, chunk);
      }
    })();
    const d = new ScgiDecoder(sink);
    const [head, tail] = splitAt(spec, [spec.length - 10]);
    assert.ok(head !== undefined && tail !== undefined);
    d.push(head);
    d.push(tail);
    assert.equal(views.length, 2);
    assert.equal(views[0]?.buffer, head.buffer);
    assert.equal(views[1], tail, 'a chunk that is all body is passed through as is');
  });

  it('a header block inside one chunk is not copied; one that crosses chunks is, once, at its announced size', () => {
    const d = new ScgiDecoder(new EventLog());
    d.push(spec);
    assert.equal(d.bufferedBytes, 0);
    const e = new ScgiDecoder(new EventLog());
    e.push(spec.subarray(0, 10));
    assert.equal(e.bufferedBytes, 70);
    e.push(spec.subarray(10, 72));
    assert.equal(e.bufferedBytes, 70);
    e.push(spec.subarray(72));
    assert.equal(e.bufferedBytes, 0);
  });

  it('a request head gives id 1, RESPONDER, no keep-alive, and the declared CONTENT_LENGTH', () => {
    const heads: RequestHead[] = [];
    const sink = new (class extends EventLog {
      override request(head: RequestHead): void {
        heads.push(head);
        super.request(head);
      }
    })();
    new ScgiDecoder(sink).push(spec);
    assert.equal(heads.length, 1);
    assert.deepStrictEqual({ ...heads[0] }, {
      id: 1,
      role: 1,
      keepConn: false,
      contentLength: 27,
      params: ['CONTENT_LENGTH', '27', 'SCGI', '1', 'REQUEST_METHOD', 'POST', 'REQUEST_URI', '/deepthought'],
    });
  });

  it('end() called from inside request() aborts the request and stops the decoder', () => {
    const sink = new (class extends EventLog {
      decoder: ScgiDecoder | undefined;
      override request(head: RequestHead): void {
        super.request(head);
        this.decoder?.end();
      }
    })();
    const decoder = new ScgiDecoder(sink);
    sink.decoder = decoder;
    decoder.push(spec);
    assert.deepStrictEqual(sink.events.map((e) => e.type), ['request', 'abort']);
  });

  it('end() called from inside request() of a bodiless request still completes it', () => {
    const sink = new (class extends EventLog {
      decoder: ScgiDecoder | undefined;
      override request(head: RequestHead): void {
        super.request(head);
        this.decoder?.end();
      }
    })();
    const decoder = new ScgiDecoder(sink);
    sink.decoder = decoder;
    decoder.push(Buffer.from(ns('CONTENT_LENGTH\x000\x00'), 'latin1'));
    assert.deepStrictEqual(sink.events.map((e) => e.type), ['request', 'bodyEnd']);
  });

  it('refuses nonsense limits at construction', () => {
    const sink = new EventLog();
    assert.throws(() => new ScgiDecoder(sink, { maxParamsBytes: -1 }), RangeError);
    assert.throws(() => new ScgiDecoder(sink, { maxParamCount: 1.5 }), RangeError);
    assert.throws(() => new ScgiDecoder(sink, { maxBodyBytes: Number.NaN }), RangeError);
  });
});

describe('SCGI: encoder', () => {
  it('encodes the spec example byte for byte', () => {
    const bytes = encodeScgiRequest(
      [['CONTENT_LENGTH', '27'], ['SCGI', '1'], ['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/deepthought']],
      Buffer.from('What is the answer to life?'),
    );
    assert.equal(bytes.toString('latin1'), '70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?');
  });

  it('encodes exactly what it is given, even what a decoder must refuse', () => {
    assert.equal(encodeScgiRequest([]).toString('latin1'), '0:,');
    assert.equal(encodeScgiRequest([['', 'x']]).toString('latin1'), '3:\x00x\x00,');
  });

  it('scgiParams puts CONTENT_LENGTH then SCGI first and drops the caller\'s own', () => {
    assert.deepStrictEqual(
      scgiParams([['REQUEST_METHOD', 'GET'], ['SCGI', '2'], ['CONTENT_LENGTH', '9'], ['HTTP_HOST', 'h']], 5),
      [['CONTENT_LENGTH', '5'], ['SCGI', '1'], ['REQUEST_METHOD', 'GET'], ['HTTP_HOST', 'h']],
    );
  });

  it('refuses what SCGI cannot carry: NUL, and chars above U+00FF', () => {
    const isBadParam = (e: unknown) => e instanceof ProtocolError && e.code === C.BAD_PARAM;
    assert.throws(() => encodeScgiRequest([['A\x00B', '1']]), isBadParam);
    assert.throws(() => encodeScgiRequest([['A', 'x\x00']]), isBadParam);
    assert.throws(() => encodeHeaderBlock([['A', '\u20ac']]), isBadParam);
  });

  it('encodes latin1 and decodes back', () => {
    const block = encodeHeaderBlock([['X', '\xe9\xff']]);
    assert.deepStrictEqual([...block], [0x58, 0, 0xe9, 0xff, 0]);
    assert.deepStrictEqual(parseHeaderBlock(block, 10), ['X', '\xe9\xff']);
  });

  it('round-trips a request with a body through the decoder', () => {
    const body = Buffer.from([0, 1, 2, 0xff, 0x2c]);
    const params = scgiParams([['REQUEST_METHOD', 'PUT'], ['REQUEST_URI', '/x'], ['CONTENT_TYPE', '']], body.length);
    const events = assertSplitInvariant(factory(), encodeScgiRequest(params, body));
    assert.deepStrictEqual(events, [ev.requestPairs(1, params, 5), ev.body(1, body), ev.bodyEnd(1)]);
  });
});

describe('SCGI: response head', () => {
  it('HEAD_FORM is the CGI Status: form', () => {
    assert.equal(HEAD_FORM, 'cgi');
    assert.equal(encodeResponseHead(HEAD_FORM, 404, 'Not Found', [['Content-Type', 'text/plain']]).toString('latin1'), 'Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n');
  });
});
