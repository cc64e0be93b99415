// The path helpers the tree and the environ share: decoding, normalising, splitting at a mount,
// joining, and encoding back to a URI path. Table tests, one table per function.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodePath, fromByteString, joinPath, normalizePath, normalizePrefix, percentDecode, requestPath, requestQuery,
  splitAtMount, toByteString, underPrefix,
} from '../../src/app/path.ts';

test('percentDecode: %XX to one latin1 char per byte; broken escapes stay; + is not a space', () => {
  const cases: ReadonlyArray<[string, string]> = [
    ['/plain', '/plain'],
    ['/a%20b', '/a b'],
    ['/%C3%A9', '/\u00c3\u00a9'],
    ['/%c3%a9', '/\u00c3\u00a9'],
    ['/a%2Fb', '/a/b'],
    ['/a+b', '/a+b'],
    ['/%', '/%'],
    ['/%4', '/%4'],
    ['/%zz%41', '/%zzA'],
    ['%25%32%35', '%25'],
    ['/raw\u00e9', '/raw\u00e9'],
  ];
  for (const [input, out] of cases) assert.equal(percentDecode(input), out, input);
});

test('normalizePath: dot segments removed, slashes merged, never above the root', () => {
  const cases: ReadonlyArray<[string, string]> = [
    ['/a/b', '/a/b'],
    ['/a/b/', '/a/b/'],
    ['/a//b', '/a/b'],
    ['//a///b//', '/a/b/'],
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/..', '/'],
    ['/../../x', '/x'],
    ['/.', '/'],
    ['//', '/'],
    ['/', '/'],
    ['', ''],
    ['/.hidden/..x/x..', '/.hidden/..x/x..'],
    ['*', '*'],
  ];
  for (const [input, out] of cases) assert.equal(normalizePath(input), out, input);
});

test('requestPath/requestQuery: query split off, absolute-form reduced, decoded and normalised', () => {
  const cases: ReadonlyArray<[string, string, string]> = [
    ['/app/par/m/n?x=1', '/app/par/m/n', 'x=1'],
    ['/app?', '/app', ''],
    ['/a%3Fb?c?d', '/a?b', 'c?d'],
    ['/p%C3%A9r//./x/../m%20n?k=%C3%A9', '/p\u00c3\u00a9r/m n', 'k=%C3%A9'],
    ['http://h.example:8080/a/b?q', '/a/b', 'q'],
    ['https://h.example', '/', ''],
    ['https://h.example?q=1', '/', 'q=1'],
    ['*', '*', ''],
  ];
  for (const [uri, path, query] of cases) {
    assert.equal(requestPath(uri), path, uri);
    assert.equal(requestQuery(uri), query, uri);
  }
});

test('toByteString/fromByteString: UTF-8 bytes as latin1 chars and back; invalid UTF-8 stays latin1', () => {
  assert.equal(toByteString('/café'), '/caf\u00c3\u00a9');
  assert.equal(toByteString('/plain'), '/plain');
  assert.equal(fromByteString('/caf\u00c3\u00a9'), '/café');
  assert.equal(fromByteString('/\u00ff'), '/\u00ff');
  assert.equal(fromByteString('/€'.replace('€', '\u00e2\u0082\u00ac')), '/€');
  for (const s of ['/x', '/é/ü', '/日本']) assert.equal(fromByteString(toByteString(s)), s);
});

test('encodePath: a byte-string path back to an escaped URI path', () => {
  const cases: ReadonlyArray<[string, string]> = [
    ['/a/b', '/a/b'],
    ['/a b', '/a%20b'],
    ['/caf\u00c3\u00a9', '/caf%C3%A9'],
    ['/a?b#c%d', '/a%3Fb%23c%25d'],
    ["/-._~!$&'()*+,;=:@", "/-._~!$&'()*+,;=:@"],
    ['/日', '/%E6%97%A5'],
  ];
  for (const [input, out] of cases) assert.equal(encodePath(input), out, input);
  for (const [input] of cases.slice(0, 5)) assert.equal(percentDecode(encodePath(input)), input);
});

test('underPrefix / splitAtMount: on a segment boundary only', () => {
  const cases: ReadonlyArray<[string, string, [string, string] | undefined]> = [
    ['/par', '/par', ['/par', '']],
    ['/par/', '/par', ['/par', '/']],
    ['/par/x', '/par', ['/par', '/x']],
    ['/parx', '/par', undefined],
    ['/pa', '/par', undefined],
    ['', '/par', undefined],
    ['/anything', '', ['', '/anything']],
    ['', '', ['', '']],
  ];
  for (const [path, prefix, split] of cases) {
    assert.equal(underPrefix(path, prefix), split !== undefined, `${path} under ${prefix}`);
    assert.deepEqual(splitAtMount('', path, prefix), split, `${path} at ${prefix}`);
  }
  assert.deepEqual(splitAtMount('/base', '/par/x', '/par'), ['/base/par', '/x']);
});

test('joinPath: never a doubled slash at the seam', () => {
  const cases: ReadonlyArray<[string, string, string]> = [
    ['', '/x', '/x'],
    ['/par', '', '/par'],
    ['/par', '/x', '/par/x'],
    ['/par/', '/x', '/par/x'],
    ['', '', ''],
  ];
  for (const [a, b, out] of cases) assert.equal(joinPath(a, b), out, `${a} + ${b}`);
});

test('normalizePrefix: leading slash added, trailing slashes stripped, text as UTF-8 bytes', () => {
  const cases: ReadonlyArray<[string, string]> = [
    ['/', ''],
    ['', ''],
    ['/par', '/par'],
    ['par/', '/par'],
    ['/a/b///', '/a/b'],
    ['/café', '/caf\u00c3\u00a9'],
  ];
  for (const [input, out] of cases) assert.equal(normalizePrefix(input), out, input);
});
