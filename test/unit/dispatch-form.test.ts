// Query-string and form-body parsing for the object dispatcher: tables per parser, errors by code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { FORM_ERRORS, parseHeaderParams, parseMultipart, parseQuery, parseUrlencoded, readBody } from '../../src/app/form.ts';
import { ProtocolError } from '../../protocols/common/errors.ts';

const entries = (m: Map<string, unknown>): unknown[] => [...m];

function code(expected: string, status: number): (err: unknown) => boolean {
  return (err) => err instanceof ProtocolError && err.code === expected && err.httpStatus === status;
}

test('parseQuery: CherryPy _parse_qs rules, on a byte string', () => {
  const cases: ReadonlyArray<[string, unknown[]]> = [
    ['', []],
    ['a=1', [['a', '1']]],
    ['a=1&a=2;a=3', [['a', ['1', '2', '3']]]],
    ['a=&b', [['a', ''], ['b', '']]],
    ['&&;a=1&&', [['a', '1']]],
    ['=v', [['', 'v']]],
    ['a=b=c', [['a', 'b=c']]],
    ['a+b=c+d', [['a b', 'c d']]],
    ['%41%2b=%26%3D', [['A+', '&=']]],
    ['k=%C3%A9', [['k', 'é']]],
    ['k=\u00c3\u00a9', [['k', 'é']]],
    ['k=%zz%4', [['k', '%zz%4']]],
    ['2=x&1=y&b=z', [['2', 'x'], ['1', 'y'], ['b', 'z']]],
    ['__proto__=x', [['__proto__', 'x']]],
  ];
  for (const [qs, out] of cases) assert.deepEqual(entries(parseQuery(qs)), out, qs);
  assert.throws(() => parseQuery('x=%FF'), code(FORM_ERRORS.BAD_QUERY, 404));
  assert.throws(() => parseQuery('x=\u00ff'), code(FORM_ERRORS.BAD_QUERY, 404));
});

test('parseUrlencoded: UTF-8 by default, charset honoured (latin1 is ISO-8859-1, not windows-1252)', () => {
  assert.deepEqual(entries(parseUrlencoded(Buffer.from('a=1&b=%E2%82%AC'))), [['a', '1'], ['b', '€']]);
  assert.deepEqual(entries(parseUrlencoded(Buffer.from('b=%80%E9'), 'latin1')), [['b', '\u0080é']]);
  assert.deepEqual(entries(parseUrlencoded(Buffer.from('b=%41%00%AC%20'), 'utf-16le')), [['b', 'A€']]);
  assert.throws(() => parseUrlencoded(Buffer.from('x=%FF')), code(FORM_ERRORS.BAD_CHARSET, 400));
  assert.throws(() => parseUrlencoded(Buffer.from('x=1'), 'no-such-charset'), code(FORM_ERRORS.BAD_CHARSET, 400));
});

test('parseHeaderParams: type lower-cased, quoted strings unescaped, first of a repeated name wins', () => {
  const cases: ReadonlyArray<[string, string, Array<[string, string]>]> = [
    ['text/plain', 'text/plain', []],
    ['Multipart/Form-Data; Boundary=abc', 'multipart/form-data', [['boundary', 'abc']]],
    ['form-data; name="a;b"; filename="x\\"y.txt"', 'form-data', [['name', 'a;b'], ['filename', 'x"y.txt']]],
    ['a/b; charset = utf-8 ; x="1"; charset=latin1', 'a/b', [['charset', 'utf-8'], ['x', '1']]],
    ['a/b; novalue; c=d', 'a/b', [['novalue; c', 'd']]],
  ];
  for (const [value, type, params] of cases) {
    const parsed = parseHeaderParams(value);
    assert.equal(parsed.type, type, value);
    assert.deepEqual([...parsed.params], params, value);
  }
});

test('parseMultipart: preamble, epilogue, transport padding, empty parts; malformed bodies refused', () => {
  const b = 'XyZ';
  const ok = `preamble\r\n--${b}  \r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n--${b}\r\n` +
    `content-disposition: form-data; name="f"; filename=""\r\n\r\n\r\n--${b}--\r\nepilogue`;
  const parsed = parseMultipart(Buffer.from(ok), b);
  assert.equal(parsed.get('a'), '');
  const f = parsed.get('f') as { filename: string; data: Buffer; contentType: string };
  assert.equal(f.filename, '');
  assert.equal(f.data.length, 0);
  assert.equal(f.contentType, 'application/octet-stream');
  assert.deepEqual(entries(parseMultipart(Buffer.from(`--${b}--\r\n`), b)), []);
  const bad = [
    `--${b}\nContent-Disposition: form-data; name="a"\n\nx\n--${b}--`,
    `--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx`,
    `--${b}\r\nContent-Disposition: form-data; name="a"`,
    'nothing here',
  ];
  for (const body of bad) assert.throws(() => parseMultipart(Buffer.from(body), b), code(FORM_ERRORS.MALFORMED, 400), JSON.stringify(body));
  assert.throws(() => parseMultipart(Buffer.from('x'), ''), code(FORM_ERRORS.MALFORMED, 400));
  const badText = `--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\n\u00ff\r\n--${b}--`;
  assert.throws(() => parseMultipart(Buffer.from(badText, 'latin1'), b), code(FORM_ERRORS.BAD_CHARSET, 400));
});

test('readBody: refuses past the limit, up front by CONTENT_LENGTH or while counting', async () => {
  assert.deepEqual(await readBody(Readable.from([Buffer.from('ab'), Buffer.from('c')]), 3), Buffer.from('abc'));
  let pulled = 0;
  const lazy = Readable.from((function* () {
    pulled++;
    yield Buffer.from('x');
  })());
  await assert.rejects(readBody(lazy, 10, '11'), code(FORM_ERRORS.TOO_LARGE, 413));
  assert.equal(pulled, 0, 'a declared length past the limit reads nothing');
  const stream = Readable.from([Buffer.alloc(3), Buffer.alloc(3), Buffer.alloc(3)]);
  await assert.rejects(readBody(stream, 5), (err: unknown) => err instanceof ProtocolError && err.limit === 'maxFormBytes');
  // The connection owns the stream: stopping early must leave it readable for draining.
  assert.equal(stream.destroyed, false);
  let rest = 0;
  for await (const chunk of stream) rest += (chunk as Buffer).length;
  assert.equal(rest, 3);
});
