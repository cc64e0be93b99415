// The hot path's remembered results, from a caller's side: the params check's previous names and
// the response head encoder's previous head must never let a changed request or response through
// on the strength of an earlier one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMON_ERRORS } from '../../protocols/common/errors.ts';
import { encodeResponseHead, HEAD_ERRORS, isFieldValue, type HeaderList } from '../../protocols/common/head.ts';
import { ProtocolError } from '../../protocols/common/errors.ts';
import { checkParams } from '../../src/server/params-check.ts';
import { internalized } from '../../protocols/common/latin1.ts';
import { encodeHeaderBlock, parseHeaderBlock } from '../../protocols/scgi/netstring.ts';
import { encodeVars, parseVars } from '../../protocols/uwsgi/vars.ts';
import { decodeNameValuePairs, encodeNameValuePairs, NameValueDecoder, NV_NUL, NV_OK } from '../../protocols/fastcgi/name-value.ts';

const GOOD = ['REQUEST_METHOD', 'GET', 'REQUEST_URI', '/a', 'HTTP_HOST', 'example.org', 'CONTENT_LENGTH', ''];

test('a name checked in one request is checked again when the next request has another name there', () => {
  assert.equal(checkParams(GOOD.slice(), 1, true), undefined);
  const bad = GOOD.slice();
  bad[2] = 'REQUEST URI';
  assert.equal(checkParams(bad, 2, true)?.code, COMMON_ERRORS.BAD_PARAM);
  const ctl = GOOD.slice();
  ctl[4] = 'HTTP_HO\nST';
  assert.equal(checkParams(ctl, 3, true)?.code, COMMON_ERRORS.BAD_PARAM);
  // The good names are still good afterwards.
  assert.equal(checkParams(GOOD.slice(), 4, true), undefined);
});

test('values are checked on every request, whatever the names', () => {
  for (let i = 0; i < 3; i++) assert.equal(checkParams(GOOD.slice(), 1, true), undefined);
  for (const v of ['/a\r\nX-Injected: 1', '/a\n', '\r']) {
    const p = GOOD.slice();
    p[3] = v;
    const err = checkParams(p, 7, true);
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.code, COMMON_ERRORS.BAD_PARAM);
    assert.equal(err.requestId, 7);
    assert.equal(err.httpStatus, 400);
  }
});

test('NUL in a value is refused unless the decoder already refused it', () => {
  const p = GOOD.slice();
  p[5] = 'exam\0ple.org';
  assert.equal(checkParams(p.slice(), 1, false)?.code, COMMON_ERRORS.BAD_PARAM);
  // FastCGI and SCGI never deliver one (their decoders refuse NUL): not searched again.
  assert.equal(checkParams(p.slice(), 1, true), undefined);
});

test('CONTENT_LENGTH is checked at every position and every request', () => {
  const p = GOOD.slice();
  p[7] = '12x';
  assert.equal(checkParams(p, 1, true)?.code, COMMON_ERRORS.BAD_CONTENT_LENGTH);
  const twice = [...GOOD.slice(0, 6), 'CONTENT_LENGTH', '5', 'CONTENT_LENGTH', '6'];
  assert.equal(checkParams(twice, 1, true)?.code, COMMON_ERRORS.BAD_CONTENT_LENGTH);
  assert.equal(checkParams([...GOOD.slice(0, 6), 'CONTENT_LENGTH', '5', 'CONTENT_LENGTH', '5'], 1, true), undefined);
});

test('more params than the remembered names are all checked', () => {
  const many: string[] = [];
  for (let i = 0; i < 300; i++) many.push(`HTTP_X_${String(i)}`, 'v');
  assert.equal(checkParams(many.slice(), 1, true), undefined);
  const bad = many.slice();
  bad[2 * 299 + 1] = 'v\r\n';
  assert.equal(checkParams(bad, 1, true)?.code, COMMON_ERRORS.BAD_PARAM);
  const badName = many.slice();
  badName[2 * 250] = 'HTTP X';
  assert.equal(checkParams(badName, 1, true)?.code, COMMON_ERRORS.BAD_PARAM);
});

const text = (b: Buffer): string => b.toString('latin1');

test('the same head twice: the same bytes', () => {
  const headers: HeaderList = [['Content-Type', 'text/plain'], ['Content-Length', '11']];
  const a = encodeResponseHead('cgi', 200, 'OK', headers);
  const b = encodeResponseHead('cgi', 200, 'OK', [['Content-Type', 'text/plain'], ['Content-Length', String(11)]]);
  assert.equal(text(b), 'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n');
  assert.equal(text(a), text(b));
});

test('a head that differs in anything is encoded anew', () => {
  const headers: Array<[string, string]> = [['Content-Type', 'text/plain'], ['Content-Length', '11']];
  assert.equal(text(encodeResponseHead('cgi', 200, 'OK', headers)), 'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n');
  // The app changes the same list in place.
  headers[1] = ['Content-Length', '12'];
  assert.equal(text(encodeResponseHead('cgi', 200, 'OK', headers)), 'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n');
  headers[1][1] = '13';
  assert.equal(text(encodeResponseHead('cgi', 200, 'OK', headers)), 'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n');
  headers.push(['X-A', 'b']);
  assert.equal(text(encodeResponseHead('cgi', 200, 'OK', headers)), 'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nX-A: b\r\n\r\n');
  assert.equal(text(encodeResponseHead('cgi', 201, 'OK', headers)).slice(0, 16), 'Status: 201 OK\r\n');
  assert.equal(text(encodeResponseHead('cgi', 201, 'Created', headers)).slice(0, 21), 'Status: 201 Created\r\n');
  // The other form keeps its own.
  assert.equal(text(encodeResponseHead('http', 201, 'Created', headers)).slice(0, 22), 'HTTP/1.1 201 Created\r\n');
  assert.equal(text(encodeResponseHead('cgi', 201, 'Created', headers)).slice(0, 21), 'Status: 201 Created\r\n');
});

test('a refused head neither is remembered nor lets a bad one through later', () => {
  const good: HeaderList = [['Content-Type', 'text/plain']];
  encodeResponseHead('cgi', 200, 'OK', good);
  assert.throws(() => encodeResponseHead('cgi', 200, 'OK', [['Content-Type', 'text/plain\r\nSet-Cookie: x=1']]), (e: unknown) => e instanceof ProtocolError && e.code === HEAD_ERRORS.BAD_HEADER_VALUE);
  assert.throws(() => encodeResponseHead('cgi', 200, 'OK', [['Content Type', 'text/plain']]), (e: unknown) => e instanceof ProtocolError && e.code === HEAD_ERRORS.BAD_HEADER_NAME);
  assert.throws(() => encodeResponseHead('cgi', 200, 'OK', [['Content-Type', 'text/plain\r\nSet-Cookie: x=1']]), (e: unknown) => e instanceof ProtocolError && e.code === HEAD_ERRORS.BAD_HEADER_VALUE);
  assert.equal(text(encodeResponseHead('cgi', 200, 'OK', good)), 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n');
});

test('FastCGI names remembered from the previous request are reused only when the bytes match', () => {
  const first: Array<[string, string]> = [['REQUEST_METHOD', 'GET'], ['HTTP_X_AAAA', '1'], ['QUERY_STRING', '']];
  assert.deepEqual(decodeNameValuePairs(encodeNameValuePairs(first)), first.flat());
  // Same lengths, other bytes, at the same places; then fewer and more pairs.
  const second: Array<[string, string]> = [['REQUEST_METHOX', 'GET'], ['HTTP_X_AAAB', '2'], ['QUERY_STRINH', 'a=1']];
  assert.deepEqual(decodeNameValuePairs(encodeNameValuePairs(second)), second.flat());
  assert.deepEqual(decodeNameValuePairs(encodeNameValuePairs(first.slice(0, 1))), first.slice(0, 1).flat());
  const longer: Array<[string, string]> = [...first, ['HTTP_HOST', 'h'], ['HTTP_X_AAAA', '3']];
  assert.deepEqual(decodeNameValuePairs(encodeNameValuePairs(longer)), longer.flat());
  assert.deepEqual(decodeNameValuePairs(encodeNameValuePairs(first)), first.flat());
});

test('a remembered name does not let a NUL through, whole or split across writes', () => {
  assert.deepEqual(decodeNameValuePairs(encodeNameValuePairs([['HTTP_A', 'x']])), ['HTTP_A', 'x']);
  const bad = Buffer.from(encodeNameValuePairs([['HTTP_A', 'x']]));
  bad[2 + 5] = 0; // the name's last byte
  assert.equal(decodeNameValuePairs(bad), NV_NUL);
  for (let cut = 1; cut < bad.length; cut++) {
    const d = new NameValueDecoder(1024, 10);
    const a = d.write(bad, 0, cut);
    const status = a === NV_OK ? d.write(bad, cut, bad.length) : a;
    assert.equal(status, NV_NUL, `split at ${String(cut)}`);
  }
});

test('internalized names keep their content, past the cache cap too', () => {
  for (let i = 0; i < 5000; i++) {
    const name = `HTTP_X_${String(i)}`;
    const fresh = `${name} `.slice(0, name.length);
    assert.equal(internalized(fresh), name);
  }
  // Names met again after the cap still come back equal.
  assert.equal(internalized('HTTP_X_4999'), 'HTTP_X_4999');
  assert.equal(internalized(''), '');
});

test('SCGI and uwsgi names remembered from the previous request are reused only when the bytes match', () => {
  const first: Array<[string, string]> = [['CONTENT_LENGTH', '0'], ['SCGI', '1'], ['HTTP_X_AAAA', 'a']];
  const second: Array<[string, string]> = [['CONTENT_LENGTX', '0'], ['SCGX', '1'], ['HTTP_X_AAAB', 'b'], ['HTTP_HOST', 'h']];
  for (const pairs of [first, second, first.slice(0, 2), second, first]) {
    assert.deepEqual(parseHeaderBlock(encodeHeaderBlock(pairs), 100), pairs.flat());
    assert.deepEqual(parseVars(encodeVars(pairs), 100), pairs.flat());
  }
});

test('isFieldValue: HTAB, visible ASCII, SP and obs-text pass; every other code unit fails, anywhere in the value', () => {
  for (let c = 0; c <= 0x1ff; c++) {
    const want = c === 0x09 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
    const ch = String.fromCharCode(c);
    assert.equal(isFieldValue(ch), want, `U+${c.toString(16)}`);
    assert.equal(isFieldValue(`text/html; q=0.9${ch}`), want, `U+${c.toString(16)} at the end`);
    assert.equal(isFieldValue(`${ch}gzip`), want, `U+${c.toString(16)} at the start`);
  }
  assert.equal(isFieldValue(''), true);
  assert.equal(isFieldValue('\u{1F600}'), false);
});
