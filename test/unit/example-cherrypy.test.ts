// Byte vectors for the built-in example tree, measured against the reference: seed_app.py
// (CherryPy 18.8.0) under uWSGI 2.0.21 (`uwsgi --plugin python3 --http-socket 127.0.0.1:PORT
// --wsgi-file seed_app.py`), asked with curl 7.88 (`--path-as-is`). Status, Content-Type and body are
// CherryPy's byte for byte where CherryPy answers 200. For its errors (HTML pages from CherryPy) only
// the status is the reference's; postern's error bodies are its own short text/plain ones.
// Known difference, left alone: CherryPy reads `?12,34` as a server-side image map (x=12, y=34 as
// ints, so the example answers 500); postern reads it as a name `12,34` with an empty value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleTree } from '../../src/examples/tree.ts';
import { Tree } from '../../src/app/tree.ts';
import { inject, type InjectRequest } from '../../src/app/inject.ts';
import { one, two } from '../../examples/cherrypy-style.ts';
import hello from '../../examples/hello.ts';

interface Vector {
  readonly name: string;
  readonly request: InjectRequest;
  readonly status: number;
  /** The body CherryPy sent, for 200s (Content-Type is then `text/plain;charset=utf-8`). */
  readonly body?: string;
}

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const P = 'Positional arguments\n\n';
const K = '\nKeyword arguments\n\n';

// Non-ASCII is written as the bytes curl sent, one latin1 char per byte (é = \u00c3\u00a9).
const VECTORS: readonly Vector[] = [
  { name: 'One.index', request: { url: '/' }, status: 200, body: 'Hello World' },
  { name: 'One.index by name', request: { url: '/index' }, status: 200, body: 'Hello World' },
  { name: 'any method', request: { method: 'DELETE', url: '/' }, status: 200, body: 'Hello World' },
  { name: 'One has no default', request: { url: '/x' }, status: 404 },
  { name: 'deeper', request: { url: '/x/y' }, status: 404 },
  { name: 'index takes no query args', request: { url: '/?x=1' }, status: 404 },
  { name: 'index by name takes no query args', request: { url: '/index?x=1' }, status: 404 },
  { name: 'index takes no positional args', request: { url: '/index/x' }, status: 404 },
  { name: 'index takes no body args', request: { method: 'POST', url: '/', headers: FORM, body: 'x=1' }, status: 400 },
  { name: '/parx is not under /par', request: { url: '/parx' }, status: 404 },
  { name: '/par', request: { url: '/par' }, status: 200, body: `${P}${K}` },
  { name: '/par/ (no redirect, same answer)', request: { url: '/par/' }, status: 200, body: `${P}${K}` },
  { name: 'positional', request: { url: '/par/m/n' }, status: 200, body: `${P}m\nn\n${K}` },
  { name: 'positional and keyword', request: { url: '/par/m/n?x=1' }, status: 200, body: `${P}m\nn\n${K}x: 1\n` },
  { name: 'repeated key (Python str + list)', request: { url: '/par/m/n?x=1&x=2' }, status: 500 },
  { name: 'empty values', request: { url: '/par/?a=&b' }, status: 200, body: `${P}${K}a: \nb: \n` },
  { name: 'empty name', request: { url: '/par/?=v&k' }, status: 200, body: `${P}${K}: v\nk: \n` },
  { name: 'empty pairs skipped', request: { url: '/par/?&&a=1&&' }, status: 200, body: `${P}${K}a: 1\n` },
  { name: '; separates pairs', request: { url: '/par/?a=1;b=2' }, status: 200, body: `${P}${K}a: 1\nb: 2\n` },
  { name: 'insertion order, integer-like names too', request: { url: '/par/?b=1&2=x' }, status: 200, body: `${P}${K}b: 1\n2: x\n` },
  { name: '+ and %-escapes', request: { url: '/par/a+b/c%20d?q=a+b%26c' }, status: 200, body: `${P}a+b\nc d\n${K}q: a b&c\n` },
  { name: 'escaped names and values', request: { url: '/par/?a+b=c+d&%3D=%26' }, status: 200, body: `${P}${K}a b: c d\n=: &\n` },
  { name: 'UTF-8 escapes', request: { url: '/par/%C3%A9t%C3%A9?k%C3%A9=v%C3%A9' }, status: 200, body: `${P}été\n${K}ké: vé\n` },
  { name: 'raw UTF-8 bytes', request: { url: '/par/\u00c3\u00a9?k=\u00c3\u00a9' }, status: 200, body: `${P}é\n${K}k: é\n` },
  { name: 'not UTF-8 in the path: latin1', request: { url: '/par/%FF' }, status: 200, body: `${P}ÿ\n${K}` },
  { name: 'not UTF-8 in the query', request: { url: '/par/?x=%FF' }, status: 404 },
  { name: 'encoded slash is a separator', request: { url: '/par/a%2Fb' }, status: 200, body: `${P}a\nb\n${K}` },
  { name: 'empty segments dropped', request: { url: '/par//x' }, status: 200, body: `${P}x\n${K}` },
  { name: 'empty segments and trailing slash', request: { url: '/par/a//b/' }, status: 200, body: `${P}a\nb\n${K}` },
  { name: '"index" is just an arg to Two', request: { url: '/par/index' }, status: 200, body: `${P}index\n${K}` },
  { name: '"default" is Two.default itself', request: { url: '/par/default' }, status: 200, body: `${P}${K}` },
  { name: 'query then body', request: { method: 'POST', url: '/par/m?z=0', headers: FORM, body: 'x=1&y=2' }, status: 200, body: `${P}m\n${K}z: 0\nx: 1\ny: 2\n` },
  { name: 'same key in query and body', request: { method: 'POST', url: '/par/m?x=0', headers: FORM, body: 'x=1' }, status: 500 },
  { name: 'PUT bodies are parsed too', request: { method: 'PUT', url: '/par/p', headers: FORM, body: 'x=1' }, status: 200, body: `${P}p\n${K}x: 1\n` },
  { name: 'OPTIONS', request: { method: 'OPTIONS', url: '/par/p' }, status: 200, body: `${P}p\n${K}` },
  { name: 'empty form body', request: { method: 'POST', url: '/par/', headers: FORM, body: '' }, status: 200, body: `${P}${K}` },
  { name: 'body not UTF-8', request: { method: 'POST', url: '/par/', headers: FORM, body: 'x=%FF' }, status: 400 },
  {
    name: 'body charset honoured',
    request: { method: 'POST', url: '/par/', headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=latin1' }, body: 'a=1&b=%E9' },
    status: 200,
    body: `${P}${K}a: 1\nb: é\n`,
  },
  { name: 'JSON body ignored', request: { method: 'POST', url: '/par/j', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' }, status: 200, body: `${P}j\n${K}` },
  { name: 'text/plain body ignored', request: { method: 'POST', url: '/par/j', headers: { 'Content-Type': 'text/plain' }, body: 'x=1' }, status: 200, body: `${P}j\n${K}` },
  {
    name: 'multipart fields after the query',
    request: multipart('/par/?q=1', [['a', '1'], ['b', '2']]),
    status: 200,
    body: `${P}${K}q: 1\na: 1\nb: 2\n`,
  },
  { name: 'multipart UTF-8 field', request: multipart('/par/', [['a', 'é']]), status: 200, body: `${P}${K}a: é\n` },
  { name: 'multipart file (Python str + Part)', request: multipart('/par/', [['a', '1'], ['f', 'data', 'hostname']]), status: 500 },
];

/** A multipart/form-data body like curl -F builds (a third element makes it a file). */
function multipart(url: string, fields: ReadonlyArray<readonly [string, string, string?]>): InjectRequest {
  const boundary = '------------------------d74496d66958873e';
  let body = '';
  for (const [name, value, filename] of fields) {
    body += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"\r\nContent-Type: application/octet-stream`}\r\n\r\n${value}\r\n`;
  }
  body += `--${boundary}--\r\n`;
  return { method: 'POST', url, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body };
}

const trees: ReadonlyArray<[string, Tree]> = [
  ['exampleTree()', exampleTree({ onError: () => undefined })],
  ['examples/cherrypy-style.ts', new Tree({ onError: () => undefined }).mount(one, '/').mount(two, '/par')],
];

for (const [label, tree] of trees) {
  for (const v of VECTORS) {
    test(`${label}: ${v.name} (${v.request.method ?? 'GET'} ${v.request.url}) → ${v.status}`, async () => {
      const r = await inject(tree, v.request);
      assert.equal(r.status, v.status);
      if (v.body !== undefined) {
        const expected = Buffer.from(v.body, 'utf8');
        assert.equal(r.header('Content-Type'), 'text/plain;charset=utf-8');
        assert.equal(r.header('Content-Length'), String(expected.length));
        assert.deepEqual(r.body, expected);
        assert.equal(r.appStatus, 0);
      } else {
        assert.equal(r.header('Content-Type')?.startsWith('text/plain'), true);
        assert.equal(r.appStatus, v.status === 500 ? 1 : 0);
      }
    });
  }
}

test('HEAD keeps the GET Content-Length and sends no body (CherryPy: 44 for /par/m, 11 for /)', async () => {
  const tree = exampleTree();
  for (const [url, length] of [['/par/m', '44'], ['/', '11']] as const) {
    const r = await inject(tree, { method: 'HEAD', url });
    assert.equal(r.status, 200);
    assert.equal(r.header('Content-Type'), 'text/plain;charset=utf-8');
    assert.equal(r.header('Content-Length'), length);
    assert.equal(r.body.length, 0);
  }
});

test('the measured body lengths match the Content-Length CherryPy sent', () => {
  // A guard on the vectors themselves: CherryPy's Content-Length for each, as curl printed it.
  const lengths: Record<string, number> = {
    '/par': 42, '/par/m/n': 46, '/par/m/n?x=1': 51, '/par/?a=&b': 50, '/par/a+b/c%20d?q=a+b%26c': 59,
    '/par/%C3%A9t%C3%A9?k%C3%A9=v%C3%A9': 57, '/par//x': 44, '/par/index': 48, '/par/%FF': 45, '/par/?a=1;b=2': 52,
    '/par/?b=1&2=x': 52, '/par/?a+b=c+d&%3D=%26': 56, '/par/?&&a=1&&': 47, '/par/m?z=0': 59, '/par/?q=1': 57,
  };
  for (const [url, length] of Object.entries(lengths)) {
    const v = VECTORS.find((x) => x.request.url === url && x.body !== undefined);
    assert.ok(v?.body !== undefined, url);
    assert.equal(Buffer.byteLength(v.body, 'utf8'), length, url);
  }
});

test('examples/hello.ts answers text/plain through the tree', async () => {
  const r = await inject(new Tree().mount(hello, '/'), { url: '/', protocol: 'scgi' });
  assert.equal(r.status, 200);
  assert.equal(r.header('content-type'), 'text/plain; charset=utf-8');
  assert.equal(r.text, 'Hello World from scgi\n');
});
