// Input safety, byte for byte, from a hostile or broken front server's side: every case is raw
// bytes on a real socket, with the coded error the log must carry and the reply the peer gets.
// NUL and CR/LF in names and values, oversized counts and lengths (including lying length
// prefixes), lying CONTENT_LENGTH (shorter and longer than the body, malformed, duplicated),
// duplicate names, httpoxy, uwsgi's magic UWSGI_* variables, and path traversal through the mount
// tree (postern serves no files itself; what protects a file-serving app is that no `..` segment,
// plain or %-encoded, ever reaches PATH_INFO). The same rule holds on all four listeners: the
// gateways refuse what llhttp refuses on the HTTP listener.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMON_ERRORS } from '../../protocols/common/errors.ts';
import { encodeBeginRequest, encodeParams, encodeStdin, encodeStdinEnd, FCGI_TYPE } from '../../protocols/fastcgi/index.ts';
import { SCGI_ERRORS } from '../../protocols/scgi/index.ts';
import { UWSGI_ERRORS, encodeUwsgiRequest } from '../../protocols/uwsgi/index.ts';
import { native } from '../../src/app/resolve.ts';
import { Tree } from '../../src/app/tree.ts';
import type { Environ, NativeApp, Protocol } from '../../src/app/types.ts';
import { SERVER_ERRORS } from '../../src/server/errors.ts';
import { readAll, startTestServer, type TestServer } from '../helpers/servers.ts';
import { dialRaw, exchange, gatewayParams, PROTOCOLS, rawRequest, reply } from './hardening-helpers.ts';

type Pairs = Array<readonly [string, string]>;
const GATEWAYS = ['fastcgi', 'scgi', 'uwsgi'] as const;

/** Echoes what the app saw: chosen environ keys, the body or its error code, cwd and a process env probe. */
const echo: NativeApp = async (environ: Environ, start) => {
  let body = '';
  let bodyError: string | null = null;
  try {
    body = (await readAll(environ['postern.input'])).toString('latin1');
  } catch (err) {
    bodyError = String((err as { code?: unknown }).code);
  }
  const env: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(environ)) if (typeof v === 'string' && /^(HTTP_|UWSGI_|CONTENT_|SCRIPT_NAME|PATH_INFO)/.test(k)) env[k] = v;
  start('200 OK', [['Content-Type', 'application/json']]);
  return JSON.stringify({ mount: environ.SCRIPT_NAME, scheme: environ['postern.url_scheme'], env, body, bodyError, cwd: process.cwd(), probe: process.env['POSTERN_HARDENING_PROBE'] ?? null });
};

let srv: TestServer;
before(async () => {
  const tree = new Tree({ onError: () => undefined }).mount(native(echo), '/').mount(native(echo), '/static');
  srv = await startTestServer({ tree, maxParamCount: 50, maxParamsBytes: 4096 });
});
after(async () => { await srv.close(); });

interface Outcome {
  readonly status: number | undefined;
  readonly how: 'end' | 'reset' | 'close';
  /** Codes the server logged for this exchange. */
  readonly codes: string[];
  readonly json: Record<string, unknown> | undefined;
  readonly raw: Buffer;
  readonly protocolStatus: number;
}

async function send(protocol: Protocol, bytes: Buffer | readonly Buffer[]): Promise<Outcome> {
  const mark = srv.log.entries.length;
  const r = await exchange(srv.target(protocol), bytes, 5000);
  const v = reply(protocol, r.bytes);
  const codes = srv.log.entries.slice(mark).map((e) => e.meta['code']).filter((c): c is string => typeof c === 'string');
  let json: Record<string, unknown> | undefined;
  if (v.response?.status === 200) json = JSON.parse(v.response.text) as Record<string, unknown>;
  return { status: v.response?.status, how: r.how, codes, json, raw: r.bytes, protocolStatus: v.protocolStatus };
}

function request(protocol: Protocol, extra: Pairs, spec: { body?: Buffer; contentLength?: string; uri?: string } = {}): Buffer {
  return rawRequest(protocol, { method: spec.body === undefined ? 'GET' : 'POST', uri: spec.uri ?? '/x', extra, ...spec });
}

/** One FastCGI record for request id 1, built by hand so lengths can lie. */
function fcgiRecord(type: number, content: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 1;
  h[1] = type;
  h.writeUInt16BE(1, 2);
  h.writeUInt16BE(content.length, 4);
  return Buffer.concat([h, content]);
}

function expectRefused(o: Outcome, status: number, code: string, what: string): void {
  assert.equal(o.status, status, `${what}: status (got ${JSON.stringify(o.raw.toString('latin1').slice(0, 120))})`);
  assert.ok(o.codes.includes(code), `${what}: logged ${code}, got ${JSON.stringify(o.codes)}`);
}

describe('NUL, CR and LF in names and values', () => {
  const CASES: ReadonlyArray<{ name: string; pair: readonly [string, string] }> = [
    { name: 'NUL in a value', pair: ['HTTP_X_A', 'a\0b'] },
    { name: 'NUL in a name', pair: ['HTTP_X\0A', 'v'] },
    { name: 'CR LF in a value (header splitting)', pair: ['HTTP_X_A', 'a\r\nSet-Cookie: admin=1'] },
    { name: 'LF alone in a value', pair: ['HTTP_X_A', 'a\nb'] },
    { name: 'CR LF in a name', pair: ['HTTP_X\r\nSET_COOKIE', 'v'] },
    { name: 'a space in a name', pair: ['HTTP_X A', 'v'] },
    { name: 'DEL in a name', pair: ['HTTP_X\x7fA', 'v'] },
  ];
  for (const protocol of ['fastcgi', 'uwsgi'] as const) {
    for (const c of CASES) {
      test(`${protocol}: ${c.name} is refused with 400 (${COMMON_ERRORS.BAD_PARAM}) before the app runs`, async () => {
        const o = await send(protocol, request(protocol, [c.pair]));
        expectRefused(o, 400, COMMON_ERRORS.BAD_PARAM, c.name);
        if (protocol === 'fastcgi') assert.equal(o.protocolStatus, 0, 'END_REQUEST(REQUEST_COMPLETE) after the 400');
      });
    }
  }
  test('scgi: CR/LF, a space or DEL are refused with 400; a NUL inside a value cannot be framed and breaks the header block (400)', async () => {
    for (const c of CASES.filter((x) => !x.pair.join('').includes('\0'))) {
      expectRefused(await send('scgi', request('scgi', [c.pair])), 400, COMMON_ERRORS.BAD_PARAM, c.name);
    }
    // name NUL value NUL … : an extra NUL leaves a name without its value.
    const block = Buffer.from('CONTENT_LENGTH\x000\x00SCGI\x001\x00REQUEST_URI\x00/x\x00HTTP_X_A\x00a\x00b\x00', 'latin1');
    const o = await send('scgi', Buffer.concat([Buffer.from(`${String(block.length)}:`), block, Buffer.from(',')]));
    expectRefused(o, 400, SCGI_ERRORS.BAD_HEADER_BLOCK, 'NUL inside a value');
  });
  test('http: llhttp refuses the same bytes with 400', async () => {
    for (const [what, head] of [['NUL in a value', 'X-A: a\0b'], ['a bare CR', 'X-A: a\rb'], ['a space in a name', 'X A: v'], ['CR LF then a header-less line', 'X-A: a\r\n: b']] as const) {
      const o = await send('http', Buffer.from(`GET /x HTTP/1.1\r\nHost: a\r\n${head}\r\nConnection: close\r\n\r\n`, 'latin1'));
      assert.equal(o.status, 400, what);
      assert.ok(o.codes.some((c) => c.startsWith('HPE_')), `${what}: ${JSON.stringify(o.codes)}`);
    }
  });
  test('what is refused never reaches an app, and the next request on a fresh connection is served', async () => {
    for (const protocol of PROTOCOLS) {
      const o = await send(protocol, request(protocol, [[protocol === 'http' ? 'X-Ok' : 'HTTP_X_OK', 'fine\ttab and obs-text \xe9']]));
      assert.equal(o.status, 200, protocol);
      assert.equal((o.json?.['env'] as Record<string, string>)['HTTP_X_OK'], 'fine\ttab and obs-text \xe9', `${protocol}: HTAB and latin1 bytes are fine`);
    }
  });
});

describe('oversized counts and lengths (maxParamCount 50, maxParamsBytes 4096 here)', () => {
  const many: Pairs = Array.from({ length: 60 }, (_, i) => [`HTTP_X_${String(i)}`, 'v'] as const);
  const big: Pairs = [['HTTP_X_BIG', 'x'.repeat(5000)]];
  for (const protocol of GATEWAYS) {
    test(`${protocol}: too many params → 431 ${COMMON_ERRORS.TOO_MANY_PARAMS}; too many bytes → 431 ${COMMON_ERRORS.PARAMS_TOO_LARGE}; the log names the knob`, async () => {
      const count = await send(protocol, request(protocol, many));
      expectRefused(count, 431, COMMON_ERRORS.TOO_MANY_PARAMS, 'count');
      assert.ok(srv.log.withCode(COMMON_ERRORS.TOO_MANY_PARAMS).some((e) => e.meta['limit'] === 'maxParamCount'));
      const bytes = await send(protocol, request(protocol, big));
      expectRefused(bytes, 431, COMMON_ERRORS.PARAMS_TOO_LARGE, 'bytes');
      assert.ok(srv.log.withCode(COMMON_ERRORS.PARAMS_TOO_LARGE).some((e) => e.meta['limit'] === 'maxParamsBytes'));
    });
  }
  test('fastcgi: a length prefix that lies (a 2^31-1 byte name, a 1 MiB value in a 10-byte record) → 431 at once, nothing buffered', async () => {
    const name = fcgiRecord(FCGI_TYPE.PARAMS, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01, 0x41, 0x42]));
    const value = fcgiRecord(FCGI_TYPE.PARAMS, Buffer.from([0x05, 0x80, 0x10, 0x00, 0x00, 0x41, 0x42, 0x43, 0x44, 0x45]));
    for (const [what, rec] of [['name', name], ['value', value]] as const) {
      const o = await send('fastcgi', [encodeBeginRequest(1), rec, fcgiRecord(FCGI_TYPE.PARAMS, Buffer.alloc(0)), encodeStdinEnd(1)]);
      expectRefused(o, 431, COMMON_ERRORS.PARAMS_TOO_LARGE, what);
    }
  });
  test('scgi: a netstring length of 14 digits → 431; letters or a leading zero → 400', async () => {
    expectRefused(await send('scgi', Buffer.from('99999999999999:CONTENT_LENGTH\x000\x00', 'latin1')), 431, COMMON_ERRORS.PARAMS_TOO_LARGE, '14 digits');
    expectRefused(await send('scgi', Buffer.from('12a:', 'latin1')), 400, SCGI_ERRORS.BAD_NETSTRING_LENGTH, 'letters');
    expectRefused(await send('scgi', Buffer.from('0012:', 'latin1')), 400, SCGI_ERRORS.BAD_NETSTRING_LENGTH, 'leading zero');
  });
  test('uwsgi: a datasize past maxParamsBytes → 431; a var length past the datasize → 400', async () => {
    expectRefused(await send('uwsgi', Buffer.concat([Buffer.from([0, 0xff, 0xff, 0]), Buffer.alloc(64)])), 431, COMMON_ERRORS.PARAMS_TOO_LARGE, 'datasize');
    const lying = Buffer.concat([Buffer.from([0, 8, 0, 0]), Buffer.from([0xff, 0xff, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46])]);
    expectRefused(await send('uwsgi', lying), 400, UWSGI_ERRORS.BAD_VARS, 'key length');
  });
  test('http: a head over maxHeadersBytes → 431', async () => {
    const o = await send('http', Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(70_000)}\r\nConnection: close\r\n\r\n`));
    expectRefused(o, 431, 'HPE_HEADER_OVERFLOW', 'head');
  });
});

describe('lying CONTENT_LENGTH', () => {
  const body = Buffer.from('abcdefgh');
  test(`fastcgi: a body longer than CONTENT_LENGTH → 400 ${SERVER_ERRORS.BODY_TOO_LONG} (§6.2) before the app reads a byte more`, async () => {
    const o = await send('fastcgi', request('fastcgi', [], { body, contentLength: '3' }));
    expectRefused(o, 400, SERVER_ERRORS.BODY_TOO_LONG, 'longer body');
  });
  test(`fastcgi: a body shorter than CONTENT_LENGTH → the app's read fails with ${SERVER_ERRORS.BODY_TRUNCATED} (its answer goes out)`, async () => {
    const o = await send('fastcgi', request('fastcgi', [], { body, contentLength: '30' }));
    assert.equal(o.status, 200);
    assert.equal(o.json?.['bodyError'], SERVER_ERRORS.BODY_TRUNCATED);
  });
  for (const protocol of ['scgi', 'uwsgi'] as const) {
    const trailing = protocol === 'scgi' ? SCGI_ERRORS.TRAILING_BYTES : UWSGI_ERRORS.TRAILING_BYTES;
    test(`${protocol}: bytes past CONTENT_LENGTH → the connection is closed with no reply (${trailing}: the framing is lost)`, async () => {
      const o = await send(protocol, request(protocol, [], { body, contentLength: '3' }));
      assert.equal(o.status, undefined);
      assert.ok(o.codes.includes(trailing), JSON.stringify(o.codes));
    });
    test(`${protocol}: the peer stops short of CONTENT_LENGTH and half-closes → the request is aborted (${SERVER_ERRORS.CONNECTION_CLOSED}), no reply`, async () => {
      const aborted = srv.server.stats().aborted;
      const s = await dialRaw(srv.target(protocol));
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('error', () => undefined);
      const closed = new Promise((resolve) => s.on('close', resolve));
      s.end(request(protocol, [], { body, contentLength: '30', uri: '/x' }));
      await closed;
      assert.equal(Buffer.concat(chunks).length, 0);
      assert.equal(srv.server.stats().aborted, aborted + 1);
    });
  }
  test('http: bytes past Content-Length are parsed as the next request (garbage here → 400, connection closed); a short body then EOF → 400', async () => {
    const o = await exchange(srv.target('http'), Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcdefgh\r\n\r\n'));
    const text = o.bytes.toString('latin1');
    assert.match(text, /HTTP\/1\.1 400 Bad Request\r\n/);
    assert.ok(!text.includes('defgh'), 'the extra bytes were never a body');
    const s = await dialRaw(srv.target('http'));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    const closed = new Promise((resolve) => s.on('close', resolve));
    s.end('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\n\r\nabcdefgh');
    await closed;
    assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 400 /);
  });
  test(`not a decimal number → 400 ${COMMON_ERRORS.BAD_CONTENT_LENGTH} on every gateway (HTTP: llhttp's 400)`, async () => {
    for (const cl of ['-1', '1e3', ' 5', '0x10', '5.0', '99999999999999999999']) {
      for (const protocol of GATEWAYS) {
        expectRefused(await send(protocol, request(protocol, [], { body: Buffer.from('abcde'), contentLength: cl })), 400, COMMON_ERRORS.BAD_CONTENT_LENGTH, `${protocol} ${JSON.stringify(cl)}`);
      }
      // HTTP trims the optional whitespace around a field value (RFC 9110 §5.5): ` 5` is 5 there.
      if (cl === ' 5') continue;
      const o = await send('http', Buffer.from(`POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: ${cl}\r\nConnection: close\r\n\r\nabcde`));
      assert.equal(o.status, 400, `http ${JSON.stringify(cl)}`);
    }
  });
});

describe('duplicate names', () => {
  for (const protocol of GATEWAYS) {
    test(`${protocol}: a repeated header param is joined as HTTP joins it; CONTENT_LENGTH twice with different values → 400 ${COMMON_ERRORS.BAD_CONTENT_LENGTH}`, async () => {
      const o = await send(protocol, request(protocol, [['HTTP_X_A', 'first'], ['HTTP_X_A', 'second']]));
      assert.equal((o.json?.['env'] as Record<string, string>)['HTTP_X_A'], 'first, second');
      const params = gatewayParams({ method: 'POST', uri: '/x', contentLength: '5' });
      const twice: Pairs = [...params, ['CONTENT_LENGTH', '3']];
      const bytes = protocol === 'fastcgi'
        ? Buffer.concat([encodeBeginRequest(1), ...encodeParams(1, twice), ...encodeStdin(1, Buffer.from('abcde')), encodeStdinEnd(1)])
        : protocol === 'uwsgi' ? encodeUwsgiRequest(twice, Buffer.from('abcde'))
          : Buffer.concat([Buffer.from('100:'), Buffer.alloc(0)]);
      if (protocol !== 'scgi') expectRefused(await send(protocol, bytes), 400, COMMON_ERRORS.BAD_CONTENT_LENGTH, 'two lengths');
      else {
        const block = Buffer.from('CONTENT_LENGTH\x005\x00SCGI\x001\x00REQUEST_URI\x00/x\x00CONTENT_LENGTH\x003\x00', 'latin1');
        expectRefused(await send('scgi', Buffer.concat([Buffer.from(`${String(block.length)}:`), block, Buffer.from(','), Buffer.from('abcde')])), 400, COMMON_ERRORS.BAD_CONTENT_LENGTH, 'two lengths');
      }
      const same: Pairs = [...params, ['CONTENT_LENGTH', '5']];
      if (protocol === 'fastcgi') {
        const ok = await send('fastcgi', Buffer.concat([encodeBeginRequest(1), ...encodeParams(1, same), ...encodeStdin(1, Buffer.from('abcde')), encodeStdinEnd(1)]));
        assert.equal(ok.json?.['body'], 'abcde', 'the same length twice is fine');
      }
    });
  }
  test('http: repeated headers are combined (RFC 9110 §5.3); two different Content-Lengths → 400', async () => {
    const o = await send('http', Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\nX-A: first\r\nX-A: second\r\nConnection: close\r\n\r\n'));
    assert.equal((o.json?.['env'] as Record<string, string>)['HTTP_X_A'], 'first, second');
    const cl = await send('http', Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde'));
    assert.equal(cl.status, 400);
  });
});

describe('httpoxy and uwsgi magic variables', () => {
  test('HTTP_PROXY (from a client `Proxy:` header) never reaches the app, on any listener (CVE-2016-5385)', async () => {
    for (const protocol of PROTOCOLS) {
      const bytes = protocol === 'http' ? rawRequest('http', { uri: '/x', extra: [['Proxy', 'http://evil.example:8080']] }) : request(protocol, [['HTTP_PROXY', 'http://evil.example:8080']]);
      const o = await send(protocol, bytes);
      assert.equal(o.status, 200, protocol);
      assert.equal((o.json?.['env'] as Record<string, string>)['HTTP_PROXY'], undefined, protocol);
    }
  });
  test('UWSGI_SCHEME, UWSGI_SCRIPT, UWSGI_CHDIR, UWSGI_SETENV, UWSGI_APPID change nothing: scheme, mount, cwd and process env stay', async () => {
    const magic: Pairs = [['UWSGI_SCHEME', 'https'], ['UWSGI_SCRIPT', 'static'], ['UWSGI_CHDIR', '/tmp'], ['UWSGI_SETENV', 'POSTERN_HARDENING_PROBE=set'], ['UWSGI_APPID', '/static'], ['UWSGI_FILE', '/etc/passwd']];
    const cwd = process.cwd();
    for (const protocol of GATEWAYS) {
      const o = await send(protocol, request(protocol, magic, { uri: '/x' }));
      assert.equal(o.status, 200, protocol);
      assert.equal(o.json?.['scheme'], 'http', `${protocol}: UWSGI_SCHEME is not a scheme`);
      assert.equal(o.json?.['mount'], '', `${protocol}: the path picks the mount, not UWSGI_SCRIPT/APPID`);
      assert.equal(o.json?.['cwd'], cwd);
      assert.equal(o.json?.['probe'], null, 'UWSGI_SETENV sets nothing');
      // They are plain CGI variables to the app, like any other param.
      assert.equal((o.json?.['env'] as Record<string, string>)['UWSGI_CHDIR'], '/tmp');
    }
    // modifier1 other than 0 (what uwsgi's own routing uses) is refused, not interpreted.
    const o = await send('uwsgi', encodeUwsgiRequest(gatewayParams({ uri: '/x' }), undefined, 5));
    expectRefused(o, 501, UWSGI_ERRORS.UNSUPPORTED_MODIFIER, 'modifier1 5');
  });
});

describe('path traversal through the mount tree', () => {
  const TRAVERSALS: ReadonlyArray<readonly [string, string, string]> = [
    // uri, the mount that answers, PATH_INFO it gets
    ['/static/../admin/secret', '', '/admin/secret'],
    ['/static/%2e%2e/%2e%2e/etc/passwd', '', '/etc/passwd'],
    ['/static/..%2f..%2fetc%2fpasswd', '', '/etc/passwd'],
    ['/static/%2e%2e%2f%2e%2e%2fetc/passwd', '', '/etc/passwd'],
    ['/static/.%2e/x', '', '/x'],
    ['/static//..//x', '', '/x'],
    ['/static/a/./b/../../../../x', '', '/x'],
    ['/%2e%2e/static/x', '/static', '/x'],
    // Decoded once: a double-encoded dot stays a literal %2e for the app.
    ['/static/%252e%252e/x', '/static', '/%2e%2e/x'],
  ];
  for (const protocol of PROTOCOLS) {
    test(`${protocol}: no .. segment, plain or %-encoded, reaches PATH_INFO, and none climbs out of its mount`, async () => {
      for (const [uri, mount, path] of TRAVERSALS) {
        const o = await send(protocol, request(protocol, [], { uri }));
        assert.equal(o.status, 200, uri);
        const env = o.json?.['env'] as Record<string, string>;
        assert.deepEqual([o.json?.['mount'], env['PATH_INFO']], [mount, path], uri);
        assert.ok(!env['PATH_INFO']?.split('/').includes('..'), uri);
      }
    });
  }
});
