// uwsgi decoder byte vectors, from the application's side: requests captured from nginx and
// Apache, PING as uWSGI's own tool sends it, wrong-protocol traffic, and a vector for every coded
// error. Every vector is also fed one byte at a time and split at every boundary.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMON_ERRORS, ProtocolError } from '../../protocols/common/errors.ts';
import type { DecoderLimits, DecoderSink, RequestHead } from '../../protocols/common/events.ts';
import { encodeResponseHead } from '../../protocols/common/head.ts';
import {
  HEAD_FORM,
  UWSGI_ERRORS,
  UWSGI_PING,
  UWSGI_PONG,
  UwsgiDecoder,
  encodeUwsgiRequest,
  encodeVars,
  parseVars,
  varsSize,
} from '../../protocols/uwsgi/index.ts';
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

/** Hex of a latin1 string. */
function h(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('hex');
}

/** A var as on the wire: u16le key length, key, u16le value length, value (hex). */
function kv(key: string, value: string): string {
  return u16(key.length) + h(key) + u16(value.length) + h(value);
}

function u16(n: number): string {
  return Buffer.from([n & 0xff, n >> 8]).toString('hex');
}

/** A packet: header with the vars' datasize, the vars, then a body (all hex). */
function packet(vars: string, body = '', modifier1 = 0, modifier2 = 0): string {
  return Buffer.from([modifier1]).toString('hex') + u16(vars.length / 2) + Buffer.from([modifier2]).toString('hex') + vars + body;
}

const factory = (limits: Partial<DecoderLimits> = {}) => (sink: DecoderSink) => new UwsgiDecoder(sink, limits);

const E = UWSGI_ERRORS;
const C = COMMON_ERRORS;
const PONG = ev.reply(Buffer.from('64000001', 'hex'), true);

// Exactly what real front servers sent, captured on loopback (see the `source` of each).
const CAPTURED: Vector[] = [
  {
    name: 'nginx 1.22.1 GET with Debian uwsgi_params: empty CONTENT_LENGTH, PATH_INFO, one HTTP_COOKIE per Cookie line',
    source: 'captured: curl → nginx 1.22.1 (Debian) uwsgi_pass, include /etc/nginx/uwsgi_params',
    hex:
      '00b401000c0051554552595f535452494e470a00783d3126793d2532307a0e00524551554553545f4d4554484f4403004745' +
      '540c00434f4e54454e545f5459504500000e00434f4e54454e545f4c454e47544800000b00524551554553545f5552491500' +
      '2f752f6170702f7061723f783d3126793d2532307a0900504154485f494e464f0a002f752f6170702f7061720d00444f4355' +
      '4d454e545f524f4f5411002f746d702f736367696361702f68746d6c0f005345525645525f50524f544f434f4c0800485454' +
      '502f312e310e00524551554553545f534348454d450400687474700b0052454d4f54455f4144445209003132372e302e302e' +
      '310b0052454d4f54455f504f5254050035333032340b005345525645525f504f5254050034363736390b005345525645525f' +
      '4e414d4509006c6f63616c686f73740900485454505f484f53540c006578616d706c652e746573740f00485454505f555345' +
      '525f4147454e540b006375726c2f372e38382e310b00485454505f41434345505403002a2f2a0b00485454505f585f544553' +
      '540100610b00485454505f434f4f4b49450300613d310b00485454505f434f4f4b49450300623d32',
    expect: [
      ev.requestPairs(1, [
        ['QUERY_STRING', 'x=1&y=%20z'],
        ['REQUEST_METHOD', 'GET'],
        ['CONTENT_TYPE', ''],
        ['CONTENT_LENGTH', ''],
        ['REQUEST_URI', '/u/app/par?x=1&y=%20z'],
        ['PATH_INFO', '/u/app/par'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_SCHEME', 'http'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['REMOTE_PORT', '53024'],
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
    source: 'captured: curl --data → nginx 1.22.1 (Debian) uwsgi_pass',
    hex:
      '00dc01000c0051554552595f535452494e4700000e00524551554553545f4d4554484f440400504f53540c00434f4e54454e' +
      '545f5459504521006170706c69636174696f6e2f782d7777772d666f726d2d75726c656e636f6465640e00434f4e54454e54' +
      '5f4c454e475448020031360b00524551554553545f55524909002f752f75706c6f61640900504154485f494e464f09002f75' +
      '2f75706c6f61640d00444f43554d454e545f524f4f5411002f746d702f736367696361702f68746d6c0f005345525645525f' +
      '50524f544f434f4c0800485454502f312e310e00524551554553545f534348454d450400687474700b0052454d4f54455f41' +
      '44445209003132372e302e302e310b0052454d4f54455f504f5254050035333033360b005345525645525f504f5254050034' +
      '363736390b005345525645525f4e414d4509006c6f63616c686f73740900485454505f484f53540c006578616d706c652e74' +
      '6573740f00485454505f555345525f4147454e540b006375726c2f372e38382e310b00485454505f41434345505403002a2f' +
      '2a1100485454505f434f4e54454e545f5459504521006170706c69636174696f6e2f782d7777772d666f726d2d75726c656e' +
      '636f6465641300485454505f434f4e54454e545f4c454e475448020031366e616d653d706f737465726e26783d31',
    expect: [
      ev.requestPairs(1, [
        ['QUERY_STRING', ''],
        ['REQUEST_METHOD', 'POST'],
        ['CONTENT_TYPE', 'application/x-www-form-urlencoded'],
        ['CONTENT_LENGTH', '16'],
        ['REQUEST_URI', '/u/upload'],
        ['PATH_INFO', '/u/upload'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_SCHEME', 'http'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['REMOTE_PORT', '53036'],
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
    name: 'Apache 2.4.71 mod_proxy_uwsgi GET: no CONTENT_LENGTH, SCRIPT_NAME /u, PATH_INFO the rest',
    source: 'captured: curl → Apache 2.4.71 (Debian) ProxyPass uwsgi://',
    hex:
      '00e602000900504154485f494e464f08002f6170702f7061720900485454505f484f535411006578616d706c652e74657374' +
      '3a383038300f00485454505f555345525f4147454e540b006375726c2f372e38382e310b00485454505f4143434550540300' +
      '2a2f2a0b00485454505f585f544553540100610b00485454505f434f4f4b49450800613d312c20623d320400504154483c00' +
      '2f7573722f6c6f63616c2f7362696e3a2f7573722f6c6f63616c2f62696e3a2f7573722f7362696e3a2f7573722f62696e3a' +
      '2f7362696e3a2f62696e10005345525645525f5349474e415455524500000f005345525645525f534f465457415245160041' +
      '70616368652f322e342e3731202844656269616e290b005345525645525f4e414d450c006578616d706c652e746573740b00' +
      '5345525645525f4144445209003132372e302e302e310b005345525645525f504f52540400383038300b0052454d4f54455f' +
      '4144445209003132372e302e302e310d00444f43554d454e545f524f4f5411002f746d702f736367696361702f68746d6c0e' +
      '00524551554553545f534348454d450400687474700e00434f4e544558545f50524546495800001500434f4e544558545f44' +
      '4f43554d454e545f524f4f5411002f746d702f736367696361702f68746d6c0c005345525645525f41444d494e12005b6e6f' +
      '206164647265737320676976656e5d0f005343524950545f46494c454e414d45250070726f78793a75777367693a2f2f3132' +
      '372e302e302e313a33353335312f6170702f7061720b0052454d4f54455f504f525405003333353632110047415445574159' +
      '5f494e5445524641434507004347492f312e310f005345525645525f50524f544f434f4c0800485454502f312e310e005245' +
      '51554553545f4d4554484f4403004745540c0051554552595f535452494e470a00783d3126793d2532307a0b005245515545' +
      '53545f55524915002f752f6170702f7061723f783d3126793d2532307a0b005343524950545f4e414d4502002f75',
    expect: [
      ev.requestPairs(1, [
        ['PATH_INFO', '/app/par'],
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
        ['SCRIPT_FILENAME', 'proxy:uwsgi://127.0.0.1:35351/app/par'],
        ['REMOTE_PORT', '33562'],
        ['GATEWAY_INTERFACE', 'CGI/1.1'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_METHOD', 'GET'],
        ['QUERY_STRING', 'x=1&y=%20z'],
        ['REQUEST_URI', '/u/app/par?x=1&y=%20z'],
        ['SCRIPT_NAME', '/u'],
      ], 0),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'Apache 2.4.71 mod_proxy_uwsgi POST with a 16-byte body',
    source: 'captured: curl --data → Apache 2.4.71 (Debian) ProxyPass uwsgi://',
    hex:
      '00e602000900504154485f494e464f07002f75706c6f61640900485454505f484f53540c006578616d706c652e746573740f' +
      '00485454505f555345525f4147454e540b006375726c2f372e38382e310b00485454505f41434345505403002a2f2a0c0043' +
      '4f4e54454e545f5459504521006170706c69636174696f6e2f782d7777772d666f726d2d75726c656e636f6465640e00434f' +
      '4e54454e545f4c454e475448020031360400504154483c002f7573722f6c6f63616c2f7362696e3a2f7573722f6c6f63616c' +
      '2f62696e3a2f7573722f7362696e3a2f7573722f62696e3a2f7362696e3a2f62696e10005345525645525f5349474e415455' +
      '524500000f005345525645525f534f46545741524516004170616368652f322e342e3731202844656269616e290b00534552' +
      '5645525f4e414d450c006578616d706c652e746573740b005345525645525f4144445209003132372e302e302e310b005345' +
      '525645525f504f5254020038300b0052454d4f54455f4144445209003132372e302e302e310d00444f43554d454e545f524f' +
      '4f5411002f746d702f736367696361702f68746d6c0e00524551554553545f534348454d450400687474700e00434f4e5445' +
      '58545f50524546495800001500434f4e544558545f444f43554d454e545f524f4f5411002f746d702f736367696361702f68' +
      '746d6c0c005345525645525f41444d494e12005b6e6f206164647265737320676976656e5d0f005343524950545f46494c45' +
      '4e414d45240070726f78793a75777367693a2f2f3132372e302e302e313a33353335312f75706c6f61640b0052454d4f5445' +
      '5f504f5254050033333537361100474154455741595f494e5445524641434507004347492f312e310f005345525645525f50' +
      '524f544f434f4c0800485454502f312e310e00524551554553545f4d4554484f440400504f53540c0051554552595f535452' +
      '494e4700000b00524551554553545f55524909002f752f75706c6f61640b005343524950545f4e414d4502002f756e616d65' +
      '3d706f737465726e26783d31',
    expect: [
      ev.requestPairs(1, [
        ['PATH_INFO', '/upload'],
        ['HTTP_HOST', 'example.test'],
        ['HTTP_USER_AGENT', 'curl/7.88.1'],
        ['HTTP_ACCEPT', '*/*'],
        ['CONTENT_TYPE', 'application/x-www-form-urlencoded'],
        ['CONTENT_LENGTH', '16'],
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
        ['SCRIPT_FILENAME', 'proxy:uwsgi://127.0.0.1:35351/upload'],
        ['REMOTE_PORT', '33576'],
        ['GATEWAY_INTERFACE', 'CGI/1.1'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_METHOD', 'POST'],
        ['QUERY_STRING', ''],
        ['REQUEST_URI', '/u/upload'],
        ['SCRIPT_NAME', '/u'],
      ], 16),
      ev.body(1, 'name=postern&x=1'),
      ev.bodyEnd(1),
    ],
  },
  {
    name: 'nginx 1.22.1 with a chunked client body: buffered, sent with CONTENT_LENGTH 3',
    source: "captured: curl -H 'Transfer-Encoding: chunked' → nginx 1.22.1 uwsgi_pass",
    hex:
      '00e101000c0051554552595f535452494e4700000e00524551554553545f4d4554484f440400504f53540c00434f4e54454e' +
      '545f5459504521006170706c69636174696f6e2f782d7777772d666f726d2d75726c656e636f6465640e00434f4e54454e54' +
      '5f4c454e4754480100330b00524551554553545f55524908002f752f6368756e6b0900504154485f494e464f08002f752f63' +
      '68756e6b0d00444f43554d454e545f524f4f5411002f746d702f736367696361702f68746d6c0f005345525645525f50524f' +
      '544f434f4c0800485454502f312e310e00524551554553545f534348454d450400687474700b0052454d4f54455f41444452' +
      '09003132372e302e302e310b0052454d4f54455f504f5254050035333034340b005345525645525f504f5254050034363736' +
      '390b005345525645525f4e414d4509006c6f63616c686f73740900485454505f484f53540c006578616d706c652e74657374' +
      '0f00485454505f555345525f4147454e540b006375726c2f372e38382e310b00485454505f41434345505403002a2f2a1600' +
      '485454505f5452414e534645525f454e434f44494e4707006368756e6b65641100485454505f434f4e54454e545f54595045' +
      '21006170706c69636174696f6e2f782d7777772d666f726d2d75726c656e636f646564616263',
    expect: [
      ev.requestPairs(1, [
        ['QUERY_STRING', ''],
        ['REQUEST_METHOD', 'POST'],
        ['CONTENT_TYPE', 'application/x-www-form-urlencoded'],
        ['CONTENT_LENGTH', '3'],
        ['REQUEST_URI', '/u/chunk'],
        ['PATH_INFO', '/u/chunk'],
        ['DOCUMENT_ROOT', '/tmp/scgicap/html'],
        ['SERVER_PROTOCOL', 'HTTP/1.1'],
        ['REQUEST_SCHEME', 'http'],
        ['REMOTE_ADDR', '127.0.0.1'],
        ['REMOTE_PORT', '53044'],
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
  {
    name: 'PING as `uwsgi --ping` sends it: answered with PONG and close',
    source: 'captured: uwsgi 2.0.21 --plugin ping --ping 127.0.0.1:<port>; reply 64 00 00 01 observed from uWSGI 2.0.21 itself',
    hex: '64000000',
    expect: [PONG],
  },
];

const VALID: Vector[] = [
  {
    name: 'PING with vars: the vars are skipped unread, then PONG',
    source: 'uWSGI 2.0.21 answers 64 00 00 01 to this packet (observed)',
    hex: '640500000300616263',
    expect: [PONG],
  },
  {
    name: 'datasize 0: a request with no vars and no body',
    source: 'Protocol.rst: vars may be empty; the environ decides what is missing',
    hex: '00000000',
    expect: [ev.requestPairs(1, [], 0), ev.bodyEnd(1)],
  },
  {
    name: 'modifier2 is ignored for modifier1 0',
    source: 'nginx uwsgi_modifier2; Apache always 0',
    hex: packet(kv('REQUEST_METHOD', 'GET'), '', 0, 7),
    expect: [ev.requestPairs(1, [['REQUEST_METHOD', 'GET']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH absent: no body',
    source: 'Apache mod_proxy_uwsgi leaves it out on a GET',
    hex: packet(kv('REQUEST_METHOD', 'GET')),
    expect: [ev.requestPairs(1, [['REQUEST_METHOD', 'GET']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH empty: no body',
    source: 'nginx uwsgi_params sends CONTENT_LENGTH $content_length, empty on a GET',
    hex: packet(kv('CONTENT_LENGTH', '')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH twice with the same value: accepted',
    source: 'decision: only differing duplicates are refused',
    hex: packet(kv('CONTENT_LENGTH', '2') + kv('CONTENT_LENGTH', '2'), h('ok')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '2'], ['CONTENT_LENGTH', '2']], 2), ev.body(1, 'ok'), ev.bodyEnd(1)],
  },
  {
    name: 'bytes above 0x7f decode as latin1, never UTF-8',
    source: 'STYLE.md 11',
    hex: packet(kv('HTTP_X_NAME', 'caf\xe9 \xc3\xa9 \xff')),
    expect: [ev.requestPairs(1, [['HTTP_X_NAME', 'caf\xe9 \xc3\xa9 \xff']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'NUL inside a key or value is carried through (length-prefixed strings can hold it)',
    source: 'Protocol.rst: vars are length-prefixed; the environ decides',
    hex: packet(kv('A\x00B', 'x\x00y')),
    expect: [ev.requestPairs(1, [['A\x00B', 'x\x00y']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'a body that starts like a uwsgi header or HTTP is opaque',
    source: 'body is CONTENT_LENGTH raw bytes',
    hex: packet(kv('CONTENT_LENGTH', '8'), '64000000' + h('GET ')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '8']], 8), ev.body(1, '\x64\x00\x00\x00GET '), ev.bodyEnd(1)],
  },
  {
    name: 'vars block exactly maxParamsBytes long',
    source: 'limit boundary: equal is allowed',
    hex: packet(kv('A', 'b')),
    limits: { maxParamsBytes: 6 },
    expect: [ev.requestPairs(1, [['A', 'b']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'exactly maxParamCount vars',
    source: 'limit boundary: equal is allowed',
    hex: packet(kv('A', '1') + kv('B', '2')),
    limits: { maxParamCount: 2 },
    expect: [ev.requestPairs(1, [['A', '1'], ['B', '2']], 0), ev.bodyEnd(1)],
  },
  {
    name: 'CONTENT_LENGTH exactly maxBodyBytes',
    source: 'limit boundary: equal is allowed',
    hex: packet(kv('CONTENT_LENGTH', '3'), h('abc')),
    limits: { maxBodyBytes: 3 },
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '3']], 3), ev.body(1, 'abc'), ev.bodyEnd(1)],
  },
  {
    name: 'datasize 65535 with the default limit (64 KiB) is accepted',
    source: 'PROTOCOLS.md §B.4 item 3: default cap fits the u16 ceiling',
    hex: packet(kv('X', 'v'.repeat(65535 - 6))),
    expect: [ev.requestPairs(1, [['X', 'v'.repeat(65535 - 6)]], 0), ev.bodyEnd(1)],
  },
  {
    name: 'complete request without end(): the client half-closes only later',
    source: 'one request per connection; end() after the body is not an error',
    hex: packet(kv('CONTENT_LENGTH', '1'), h('z')),
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
    name: 'plain HTTP sent to the uwsgi port (datasize 21573)',
    source: 'captured: curl http://127.0.0.1:<uwsgi port>/hello; uWSGI logs "invalid request block size: 21573"',
    hex:
      '474554202f68656c6c6f20485454502f312e310d0a486f73743a203132372e302e302e313a34353132390d0a557365722d' +
      '4167656e743a206375726c2f372e38382e310d0a4163636570743a202a2f2a0d0a0d0a',
    expect: [ev.error(E.HTTP_ON_UWSGI_PORT, 400)],
  },
  { name: 'HTTP POST to the uwsgi port', source: 'RFC 9110 §9', hex: h('POST /x HTTP/1.1\r\n'), expect: [ev.error(E.HTTP_ON_UWSGI_PORT, 400)] },
  { name: 'HTTP PUT to the uwsgi port', source: 'RFC 9110 §9', hex: h('PUT /x HTTP/1.1\r\n'), expect: [ev.error(E.HTTP_ON_UWSGI_PORT, 400)] },
  { name: 'HTTP HEAD to the uwsgi port', source: 'RFC 9110 §9', hex: h('HEAD /x HTTP/1.0\r\n'), expect: [ev.error(E.HTTP_ON_UWSGI_PORT, 400)] },
  { name: 'HTTP DELETE to the uwsgi port', source: 'RFC 9110 §9', hex: h('DELETE /x HTTP/1.1\r\n'), expect: [ev.error(E.HTTP_ON_UWSGI_PORT, 400)] },
  { name: 'HTTP/2 preface to the uwsgi port', source: 'RFC 9113 §3.4', hex: h('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), expect: [ev.error(E.HTTP_ON_UWSGI_PORT, 400)] },
  {
    name: 'FastCGI sent to the uwsgi port',
    source: 'captured: env -i REQUEST_METHOD=GET SCRIPT_NAME=/x cgi-fcgi -bind -connect 127.0.0.1:<uwsgi port>',
    hex:
      '0101000100080000000100000000000001040001002206000e03524551554553545f4d4554484f444745540b025343524950' +
      '545f4e414d452f7800000000000001040001000000000105000100000000',
    expect: [ev.error(E.FASTCGI_ON_UWSGI_PORT, 0)],
  },
  { name: 'a TLS ClientHello sent to the uwsgi port', source: 'RFC 8446 §5.1', hex: '16030102000100', expect: [ev.error(E.TLS_ON_UWSGI_PORT, 0)] },
  { name: 'modifier1 5 (PSGI)', source: 'Protocol.rst modifier table', hex: packet(kv('A', 'b'), '', 5), expect: [ev.error(E.UNSUPPORTED_MODIFIER, 501)] },
  { name: 'modifier1 30 (old SCRIPT_NAME stripping)', source: 'uwsgi#935', hex: packet('', '', 30), expect: [ev.error(E.UNSUPPORTED_MODIFIER, 501)] },
  { name: 'modifier1 1 with a datasize that is no FastCGI type', source: 'Protocol.rst', hex: '01000100' + '00', expect: [ev.error(E.UNSUPPORTED_MODIFIER, 501)] },
  { name: 'modifier1 255', source: 'Protocol.rst', hex: 'ff000000', expect: [ev.error(E.UNSUPPORTED_MODIFIER, 501)] },
  {
    name: 'datasize over maxParamsBytes, refused from the header alone',
    source: 'limit checked before any var byte arrives',
    hex: packet(kv('A', 'bc')).slice(0, 8),
    limits: { maxParamsBytes: 6 },
    end: false,
    expect: [ev.error(C.PARAMS_TOO_LARGE, 431, 'maxParamsBytes')],
  },
  { name: 'a key length that runs past datasize', source: 'vars must exactly fill datasize', hex: packet('0500' + h('AB') + '0000'), expect: [ev.error(E.BAD_VARS, 400)] },
  { name: 'a value length that runs past datasize', source: 'vars must exactly fill datasize', hex: packet('0100' + h('A') + '0900' + h('xy')), expect: [ev.error(E.BAD_VARS, 400)] },
  { name: 'one stray byte after the last var', source: 'vars must exactly fill datasize', hex: packet(kv('A', 'b') + '01'), expect: [ev.error(E.BAD_VARS, 400)] },
  { name: 'a key with no value length', source: 'vars must exactly fill datasize', hex: packet('0100' + h('A')), expect: [ev.error(E.BAD_VARS, 400)] },
  { name: 'a key with half a value length', source: 'vars must exactly fill datasize', hex: packet('0100' + h('A') + '00'), expect: [ev.error(E.BAD_VARS, 400)] },
  { name: 'zero-length key', source: 'uWSGI core/protocol.c: "uwsgi key cannot be null"', hex: packet(kv('A', 'b') + '0000' + '0100' + h('x')), expect: [ev.error(E.EMPTY_KEY, 400)] },
  { name: 'more vars than maxParamCount', source: 'limit', hex: packet(kv('A', '1') + kv('B', '2') + kv('C', '3')), limits: { maxParamCount: 2 }, expect: [ev.error(C.TOO_MANY_PARAMS, 431, 'maxParamCount')] },
  { name: 'CONTENT_LENGTH not a number', source: 'brief: non-numeric is 400', hex: packet(kv('CONTENT_LENGTH', 'abc')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  { name: 'CONTENT_LENGTH negative', source: 'digits only', hex: packet(kv('CONTENT_LENGTH', '-1')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  { name: 'CONTENT_LENGTH with a space', source: 'digits only', hex: packet(kv('CONTENT_LENGTH', ' 16')), expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)] },
  {
    name: 'CONTENT_LENGTH beyond 2^53 with no body limit',
    source: 'cannot be counted exactly',
    hex: packet(kv('CONTENT_LENGTH', '99999999999999999999')),
    expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)],
  },
  {
    name: 'two CONTENT_LENGTH vars that differ',
    source: 'decision: framing and environ must not disagree on the body length',
    hex: packet(kv('CONTENT_LENGTH', '') + kv('CONTENT_LENGTH', '2'), h('xy')),
    expect: [ev.error(C.BAD_CONTENT_LENGTH, 400)],
  },
  {
    name: 'CONTENT_LENGTH over maxBodyBytes, refused before any body byte',
    source: 'limit',
    hex: packet(kv('CONTENT_LENGTH', '4')),
    limits: { maxBodyBytes: 3 },
    end: false,
    expect: [ev.error(C.BODY_TOO_LARGE, 413, 'maxBodyBytes')],
  },
  {
    name: 'bytes after the body',
    source: 'decision: one request per connection; extra bytes mean the framing is off',
    hex: packet(kv('CONTENT_LENGTH', '2'), h('hi!')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '2']], 2), ev.body(1, 'hi'), ev.bodyEnd(1), ev.error(E.TRAILING_BYTES, 0)],
  },
  {
    name: 'a second packet after a bodiless request',
    source: 'decision: nginx and Apache never keep uwsgi connections alive',
    hex: packet(kv('A', 'b')) + packet(kv('A', 'b')),
    expect: [ev.requestPairs(1, [['A', 'b']], 0), ev.bodyEnd(1), ev.error(E.TRAILING_BYTES, 0)],
  },
  { name: 'bytes after a PING', source: 'PING is the whole conversation', hex: '64000000' + '64000000', expect: [PONG, ev.error(E.TRAILING_BYTES, 0)] },
  { name: 'connection closed inside the header', source: 'end() in a partial frame', hex: '0005', expect: [ev.error(C.TRUNCATED, 0)] },
  { name: 'connection closed inside the vars', source: 'end() in a partial frame', hex: packet(kv('A', 'b')).slice(0, 14), expect: [ev.error(C.TRUNCATED, 0)] },
  { name: 'connection closed inside a PING\'s vars', source: 'end() in a partial frame', hex: '6405000003', expect: [ev.error(C.TRUNCATED, 0)] },
  {
    name: 'connection closed inside the body aborts the request',
    source: 'events.ts: abort when the connection closes early',
    hex: packet(kv('CONTENT_LENGTH', '5'), h('ab')),
    expect: [ev.requestPairs(1, [['CONTENT_LENGTH', '5']], 5), ev.body(1, 'ab'), ev.abort(1)],
  },
  {
    name: 'connection closed right after the vars of a request with a body',
    source: 'events.ts: abort when the connection closes early',
    hex: packet(kv('CONTENT_LENGTH', '5')),
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

runTable('uwsgi: captured front-server requests', CAPTURED);
runTable('uwsgi: valid edge cases', VALID);
runTable('uwsgi: coded errors', ERRORS);

describe('uwsgi: error codes', () => {
  it('every uwsgi code and every common code the decoder can raise has a vector', () => {
    const seen = new Set<string>();
    for (const v of ERRORS) for (const e of v.expect) if (e.type === 'error') seen.add(e.code);
    for (const code of Object.values(UWSGI_ERRORS)) assert.ok(seen.has(code), `no vector for ${code}`);
    for (const code of [C.TRUNCATED, C.PARAMS_TOO_LARGE, C.TOO_MANY_PARAMS, C.BODY_TOO_LARGE, C.BAD_CONTENT_LENGTH]) {
      assert.ok(seen.has(code), `no vector for ${code}`);
    }
  });

  it('codes are stable POSTERN_ERR_UWSGI_ strings', () => {
    for (const [key, code] of Object.entries(UWSGI_ERRORS)) assert.equal(code, `POSTERN_ERR_UWSGI_${key}`);
    assert.equal(UWSGI_ERRORS.HTTP_ON_UWSGI_PORT, 'POSTERN_ERR_UWSGI_HTTP_ON_UWSGI_PORT');
  });

  it('HTTP on the uwsgi port says which directive is likely wrong', () => {
    const log = drive(factory(), [Buffer.from('GET / HTTP/1.1\r\n')]);
    const [err] = log.errors;
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.requestId, 0);
    assert.match(err.message, /this port speaks uwsgi; is the front server using proxy_pass instead of uwsgi_pass\?/);
  });
});

describe('uwsgi: decoder behaviour', () => {
  const post = Buffer.from(packet(kv('REQUEST_METHOD', 'POST') + kv('CONTENT_LENGTH', '12'), h('hello, world')), 'hex');

  it('push after end() is AFTER_END, once; then silence', () => {
    const log = new EventLog();
    const d = new UwsgiDecoder(log);
    d.push(post);
    d.end();
    d.push(Buffer.from('x'));
    d.push(Buffer.from('y'));
    d.end();
    assert.deepStrictEqual(log.events.slice(-2), [ev.bodyEnd(1), ev.error(C.AFTER_END, 0)]);
  });

  it('after an error, push() and end() emit nothing', () => {
    const log = new EventLog();
    const d = new UwsgiDecoder(log);
    d.push(Buffer.from('05000000', 'hex'));
    d.push(post);
    d.end();
    assert.deepStrictEqual(log.events, [ev.error(E.UNSUPPORTED_MODIFIER, 501)]);
  });

  it('empty pushes are ignored in every state', () => {
    const log = new EventLog();
    const d = new UwsgiDecoder(log);
    const empty = Buffer.alloc(0);
    d.push(empty);
    for (const piece of splitAt(post, [2, 4, 9, post.length - 12, post.length - 3])) {
      d.push(piece);
      d.push(empty);
    }
    d.end();
    d.push(empty);
    assert.deepStrictEqual(log.events, drive(factory(), [post]).events);
  });

  it('body pieces are zero-copy views into the pushed chunks', () => {
    const views: Buffer[] = [];
    const sink = new (class extends EventLog {
      override body(id: number, chunk: Buffer): void {
        views.push(chunk);
        super.body(id, chunk);
      }
    })();
    const d = new UwsgiDecoder(sink);
    const [head, tail] = splitAt(post, [post.length - 5]);
    assert.ok(head !== undefined && tail !== undefined);
    d.push(head);
    d.push(tail);
    assert.equal(views.length, 2);
    assert.equal(views[0]?.buffer, head.buffer);
    assert.equal(views[1], tail, 'a chunk that is all body is passed through as is');
  });

  it('vars inside one chunk are not copied; vars that cross chunks are, once, at datasize', () => {
    const datasize = post.readUInt16LE(1);
    const d = new UwsgiDecoder(new EventLog());
    d.push(post);
    assert.equal(d.bufferedBytes, 0);
    const e = new UwsgiDecoder(new EventLog());
    e.push(post.subarray(0, 3));
    assert.equal(e.bufferedBytes, 0, 'the header alone allocates nothing');
    e.push(post.subarray(3, 10));
    assert.equal(e.bufferedBytes, datasize);
    e.push(post.subarray(10, 4 + datasize - 1));
    assert.equal(e.bufferedBytes, datasize);
    e.push(post.subarray(4 + datasize - 1));
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
    new UwsgiDecoder(sink).push(post);
    assert.equal(heads.length, 1);
    assert.deepStrictEqual({ ...heads[0] }, { id: 1, role: 1, keepConn: false, contentLength: 12, params: ['REQUEST_METHOD', 'POST', 'CONTENT_LENGTH', '12'] });
  });

  it('end() called from inside request() aborts the request and stops the decoder', () => {
    const sink = new (class extends EventLog {
      decoder: UwsgiDecoder | undefined;
      override request(head: RequestHead): void {
        super.request(head);
        this.decoder?.end();
      }
    })();
    const decoder = new UwsgiDecoder(sink);
    sink.decoder = decoder;
    decoder.push(post);
    assert.deepStrictEqual(sink.events.map((e) => e.type), ['request', 'abort']);
  });

  it('PING is answered with the shared UWSGI_PONG buffer, and UWSGI_PING is what uwsgi --ping sends', () => {
    const replies: Buffer[] = [];
    const sink = new (class extends EventLog {
      override reply(bytes: Buffer, close: boolean): void {
        replies.push(bytes);
        super.reply(bytes, close);
      }
    })();
    new UwsgiDecoder(sink).push(UWSGI_PING);
    assert.equal(replies[0], UWSGI_PONG);
    assert.equal(UWSGI_PING.toString('hex'), '64000000');
    assert.equal(UWSGI_PONG.toString('hex'), '64000001');
  });

  it('refuses nonsense limits at construction', () => {
    const sink = new EventLog();
    assert.throws(() => new UwsgiDecoder(sink, { maxParamsBytes: -1 }), RangeError);
    assert.throws(() => new UwsgiDecoder(sink, { maxParamCount: Number.POSITIVE_INFINITY }), RangeError);
  });
});

describe('uwsgi: encoder', () => {
  it('encodes header, vars and body exactly as given', () => {
    const bytes = encodeUwsgiRequest([['A', 'b'], ['CONTENT_LENGTH', '2']], Buffer.from('hi'), 0, 3);
    assert.equal(bytes.toString('hex'), packet(kv('A', 'b') + kv('CONTENT_LENGTH', '2'), h('hi'), 0, 3));
  });

  it('encodes what a decoder must refuse: an empty key, a missing CONTENT_LENGTH', () => {
    assert.equal(encodeUwsgiRequest([['', 'x']]).toString('hex'), '00050000' + '0000' + '0100' + h('x'));
    assert.equal(encodeUwsgiRequest([], Buffer.from('z')).toString('hex'), '00000000' + h('z'));
  });

  it('varsSize is the datasize the vars need', () => {
    const params: Array<[string, string]> = [['REQUEST_METHOD', 'GET'], ['X', '']];
    assert.equal(varsSize(params), encodeVars(params).length);
    assert.equal(varsSize(params), 4 + 14 + 3 + 4 + 1);
  });

  it('refuses what uwsgi cannot carry', () => {
    const code = (c: string) => (e: unknown) => e instanceof ProtocolError && e.code === c;
    assert.throws(() => encodeUwsgiRequest([['X', 'v'.repeat(65535 - 4)]]), code(C.PARAMS_TOO_LARGE));
    assert.throws(() => encodeUwsgiRequest([['X', 'v'.repeat(65536)]]), code(C.PARAMS_TOO_LARGE));
    assert.throws(() => encodeVars([['X', '\u20ac']]), code(C.BAD_PARAM));
    assert.throws(() => encodeUwsgiRequest([], undefined, 256), RangeError);
    assert.throws(() => encodeUwsgiRequest([], undefined, 0, -1), RangeError);
  });

  it('encodes latin1 and decodes back', () => {
    const block = encodeVars([['X', '\xe9\xff']]);
    assert.equal(block.toString('hex'), '0100580200e9ff');
    assert.deepStrictEqual(parseVars(block, 10), ['X', '\xe9\xff']);
  });

  it('round-trips a request with a body through the decoder', () => {
    const body = Buffer.from([0x64, 0, 0, 0, 0xff]);
    const params: Array<[string, string]> = [['REQUEST_METHOD', 'PUT'], ['PATH_INFO', '/x'], ['CONTENT_LENGTH', '5']];
    const events = assertSplitInvariant(factory(), encodeUwsgiRequest(params, body));
    assert.deepStrictEqual(events, [ev.requestPairs(1, params, 5), ev.body(1, body), ev.bodyEnd(1)]);
  });
});

describe('uwsgi: response head', () => {
  it('HEAD_FORM is the HTTP status-line form Apache mod_proxy_uwsgi requires', () => {
    assert.equal(HEAD_FORM, 'http');
    assert.equal(encodeResponseHead(HEAD_FORM, 200, 'OK', [['Content-Length', '2']]).toString('latin1'), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n');
  });
});
