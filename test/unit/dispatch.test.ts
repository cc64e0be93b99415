// CherryPy-style object dispatch: handler lookup, index/default, argument limits, kwargs from the
// query string and form bodies, the response object, and errors — driven through inject().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tree } from '../../src/app/tree.ts';
import { inject, type InjectRequest } from '../../src/app/inject.ts';
import { expose, findHandler, HTTPError, objectApp, ResponseHeaders, type DispatchContext, type Kwargs } from '../../src/app/dispatch.ts';

function show(kwargs: Kwargs): unknown {
  return [...kwargs].map(([k, v]) => [k, Array.isArray(v) ? v.map(part) : part(v)]);
}
function part(v: unknown): unknown {
  if (typeof v === 'string') return v;
  const f = v as { name: string; filename: string; contentType: string; data: Buffer };
  return { name: f.name, filename: f.filename, contentType: f.contentType, data: f.data.toString('latin1') };
}

class Blog {
  title = 'blog';
  index(this: Blog): string {
    return `${this.title} index`;
  }
  post(args: string[]): string {
    return `post ${args.join('|')}`;
  }
  hidden(): string {
    return 'never';
  }
}
// Methods on a prototype can be exposed too; they run with `this` = their node.
// eslint-disable-next-line @typescript-eslint/unbound-method
expose(Blog.prototype.index);
// eslint-disable-next-line @typescript-eslint/unbound-method
expose(Blog.prototype.post, { maxArgs: 1 });

class Root {
  blog = new Blog();
  page_html = expose(() => 'page.html');
  strict = expose((_a: string[], kwargs: Kwargs) => `strict ${JSON.stringify(kwargs.get('a')) ?? 'none'}`, { maxArgs: 0, kwargs: ['a'] });
  echo = expose((args: string[], kwargs: Kwargs, ctx: DispatchContext) => JSON.stringify({ args, kwargs: show(kwargs), method: ctx.request.method }));
  raw = expose(async (_a: string[], kwargs: Kwargs, ctx: DispatchContext) => {
    let n = 0;
    for await (const chunk of ctx.request.body) n += (chunk as Buffer).length;
    return `kwargs=${kwargs.size} raw=${n}`;
  });
  status = expose((_a: string[], _k: Kwargs, { response }: DispatchContext) => {
    response.status = '418 Short And Stout';
    response.headers.set('content-type', 'application/json');
    response.headers.append('Set-Cookie', 'a=1');
    response.headers.append('Set-Cookie', 'b=2');
    return '{}';
  });
  bytes = expose((_a: string[], _k: Kwargs, { response }: DispatchContext) => {
    response.headers.set('Content-Type', 'text/plain');
    return new Uint8Array([0x68, 0x69]);
  });
  signal = expose((_a: string[], _k: Kwargs, ctx: DispatchContext) => {
    const first = ctx.signal;
    // The same signal on every read, and the environ's own.
    return `${String(first instanceof AbortSignal)} ${String(first.aborted)} ${String(first === ctx.signal && first === ctx.environ['postern.signal'])}`;
  });
  stream = expose(function* () {
    yield 'a';
    yield 'b';
  });
  teapot = expose(() => {
    throw new HTTPError(403, 'no entry');
  });
  crash = expose(() => {
    throw new Error('bug');
  });
  index = expose(() => 'root index');
  default = expose((args: string[]) => `root default ${args.join('|')}`);
}

const errors: unknown[] = [];
const tree = new Tree({ onError: (e) => errors.push(e) }).mount(objectApp(new Root(), { maxFormBytes: 64 }), '/').mount(objectApp(new Blog()), '/mounted').mount(objectApp(new Root()), '/big');

async function req(r: InjectRequest): Promise<Awaited<ReturnType<typeof inject>>> {
  return inject(tree, r);
}

test('lookup: index, sub-object index, exposed leaves, default catching the rest', async () => {
  const cases: ReadonlyArray<[string, number, string]> = [
    ['/', 200, 'root index'],
    ['/index', 200, 'root index'],
    ['/blog/', 200, 'blog index'],
    ['/blog/post/7', 200, 'post 7'],
    ['/blog/post', 200, 'post '],
    ['/blog/post/7/8', 404, 'Not Found\n'],
    ['/page.html', 200, 'page.html'],
    ['/nothing/here', 200, 'root default nothing|here'],
    ['/blog/hidden', 200, 'root default blog|hidden'],
    ['/title', 200, 'root default title'],
    ['/toString', 200, 'root default toString'],
    ['/constructor', 200, 'root default constructor'],
    ['/__proto__', 200, 'root default __proto__'],
    ['/hasOwnProperty/x', 200, 'root default hasOwnProperty|x'],
    ['/default', 200, 'root default '],
  ];
  for (const [url, status, text] of cases) {
    const r = await req({ url });
    assert.equal(r.status, status, url);
    assert.equal(r.text, text, url);
  }
});

test('without a default, unknown paths and non-exposed members are 404', async () => {
  const cases = ['/x', '/hidden', '/title', '/toString', '/post/1/2', '/__proto__/x'];
  for (const url of cases) {
    const r = await req({ url: `/mounted${url}` });
    assert.equal(r.status, 404, url);
  }
  assert.equal(findHandler(new Blog(), '/constructor'), undefined);
});

test('an index reached without its trailing slash redirects (301), keeping the query', async () => {
  const r = await req({ url: '/blog?x=1' });
  assert.equal(r.status, 301);
  assert.equal(r.header('location'), '/blog/?x=1');
  const mounted = await req({ url: '/mounted' });
  assert.equal(mounted.status, 301);
  assert.equal(mounted.header('location'), '/mounted/');
  assert.equal((await req({ url: '/mounted/' })).text, 'blog index');
});

test('kwargs: query string then urlencoded body, repeats as arrays, blanks kept, ; and & both split', async () => {
  const r = await req({
    method: 'POST',
    url: '/echo/a/b?z=0&x=1;x=2&blank=&bare&b=1&2=two&a+b=c+d&%C3%A9=%E2%82%AC',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'x=3&y=%2B&&',
  });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text), {
    args: ['a', 'b'],
    kwargs: [['z', '0'], ['x', ['1', '2', '3']], ['blank', ''], ['bare', ''], ['b', '1'], ['2', 'two'], ['a b', 'c d'], ['é', '€'], ['y', '+']],
    method: 'POST',
  });
});

test('form bodies are parsed for POST, PUT and PATCH only', async () => {
  for (const method of ['PUT', 'PATCH', 'GET', 'DELETE']) {
    const r = await req({ method, url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'k=v' });
    const kwargs = (JSON.parse(r.text) as { kwargs: unknown }).kwargs;
    assert.deepEqual(kwargs, method === 'PUT' || method === 'PATCH' ? [['k', 'v']] : [], method);
  }
});

test('multipart/form-data: text fields, files as {filename, contentType, data}, RFC 5987 names', async () => {
  const boundary = '----postern42';
  const body = [
    `--${boundary}`, 'Content-Disposition: form-data; name="a"', '', '1',
    `--${boundary}`, 'Content-Disposition: form-data; name="f"; filename="h\\"i.txt"', 'Content-Type: text/plain', '', 'file\r\nbody',
    `--${boundary}`, 'Content-Disposition: form-data; name="u"; filename*=UTF-8\'\'%E2%82%AC.bin', '', '\u00ff',
    `--${boundary}`, 'Content-Disposition: form-data; name="l"', 'Content-Type: text/plain; charset=latin1', '', '\u00e9',
    `--${boundary}`, 'Content-Disposition: form-data', '', 'no name: skipped',
    `--${boundary}--`, '',
  ].join('\r\n');
  const r = await req({ method: 'POST', url: '/big/echo?a=0', headers: { 'Content-Type': `multipart/form-data; boundary="${boundary}"` }, body: Buffer.from(body, 'latin1') });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual((JSON.parse(r.text) as { kwargs: unknown }).kwargs, [
    ['a', ['0', '1']],
    ['f', { name: 'f', filename: 'h"i.txt', contentType: 'text/plain', data: 'file\r\nbody' }],
    ['u', { name: 'u', filename: '€.bin', contentType: 'application/octet-stream', data: '\u00ff' }],
    ['l', 'é'],
  ]);
});

test('bad forms: malformed multipart 400, bad body charset 400, bad query 404, too large 413', async () => {
  const cases: ReadonlyArray<[InjectRequest, number]> = [
    [{ method: 'POST', url: '/echo', headers: { 'content-type': 'multipart/form-data; boundary=zz' }, body: '--zz\r\nno end' }, 400],
    [{ method: 'POST', url: '/echo', headers: { 'content-type': 'multipart/form-data' }, body: 'x' }, 400],
    [{ method: 'POST', url: '/echo', headers: { 'content-type': 'multipart/form-data; boundary=zz' }, body: 'no boundary at all' }, 400],
    [{ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=%FF' }, 400],
    [{ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=klingon' }, body: 'x=1' }, 400],
    [{ url: '/echo?x=%FF' }, 404],
    [{ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x='.padEnd(65, 'y') }, 413],
    // No CONTENT_LENGTH (a chunked upload): the limit is enforced while reading.
    [{ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x='.padEnd(65, 'y'), params: [['CONTENT_LENGTH', '']] }, 413],
  ];
  for (const [request, status] of cases) {
    const r = await req(request);
    assert.equal(r.status, status, JSON.stringify(request));
    assert.equal(r.appStatus, 0);
  }
  const ok = await req({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }, body: 'x=%E9' });
  assert.deepEqual((JSON.parse(ok.text) as { kwargs: unknown }).kwargs, [['x', 'é']]);
  const fits = await req({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x='.padEnd(64, 'y') });
  assert.equal(fits.status, 200);
});

test('other media types leave the body unread for the handler', async () => {
  const r = await req({ method: 'POST', url: '/raw', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.equal(r.text, 'kwargs=0 raw=7');
});

test('expose limits: extra segments 404, unknown query names 404, unknown body names 400', async () => {
  const cases: ReadonlyArray<[InjectRequest, number, string]> = [
    [{ url: '/strict?a=1' }, 200, 'strict "1"'],
    [{ url: '/strict' }, 200, 'strict none'],
    [{ url: '/strict/x' }, 404, 'Not Found\n'],
    [{ url: '/strict?b=1' }, 404, 'Not Found\n'],
    [{ method: 'POST', url: '/strict', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'b=1' }, 400, 'Bad Request\n'],
    [{ method: 'POST', url: '/strict?c=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'b=1' }, 404, 'Not Found\n'],
  ];
  for (const [request, status, text] of cases) {
    const r = await req(request);
    assert.equal(r.status, status, JSON.stringify(request));
    assert.equal(r.text, text, JSON.stringify(request));
  }
});

test('the response object: status strings, headers set case-insensitively, repeated headers', async () => {
  const r = await req({ url: '/status' });
  assert.equal(r.status, 418);
  assert.equal(r.reason, 'Short And Stout');
  assert.deepEqual(r.headers, [['Content-Type', 'application/json'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Content-Length', '2']]);
});

test('text bodies: text/* gains ;charset=utf-8 (default text/html); bytes are left alone', async () => {
  assert.equal((await req({ url: '/' })).header('content-type'), 'text/html;charset=utf-8');
  const bytes = await req({ url: '/bytes' });
  assert.equal(bytes.header('content-type'), 'text/plain');
  assert.equal(bytes.text, 'hi');
  const stream = await req({ url: '/stream' });
  assert.equal(stream.text, 'ab');
  assert.equal(stream.header('content-type'), 'text/html;charset=utf-8');
});

test('HTTPError answers with its status; other errors are 500s the tree reports', async () => {
  const denied = await req({ url: '/teapot' });
  assert.equal(denied.status, 403);
  assert.equal(denied.text, 'no entry\n');
  const before = errors.length;
  const crash = await req({ url: '/crash' });
  assert.equal(crash.status, 500);
  assert.equal(crash.appStatus, 1);
  assert.equal(errors.length, before + 1);
});

test('HEAD runs the handler and sends only the head, with the GET length', async () => {
  const r = await req({ method: 'HEAD', url: '/' });
  assert.equal(r.status, 200);
  assert.equal(r.header('content-length'), '10');
  assert.equal(r.body.length, 0);
});

test('ResponseHeaders: set replaces every case variant and keeps the first spelling', () => {
  const h = new ResponseHeaders([['Content-Type', 'text/html']]);
  h.append('X-A', '1').append('x-a', '2').set('X-a', '3');
  assert.deepEqual(h.entries(), [['Content-Type', 'text/html'], ['X-A', '3']]);
  h.set('CONTENT-TYPE', 'text/plain');
  assert.deepEqual([...h], [['Content-Type', 'text/plain'], ['X-A', '3']]);
  assert.equal(h.get('content-type'), 'text/plain');
  assert.equal(h.has('x-a'), true);
  h.delete('x-A');
  assert.equal(h.has('X-A'), false);
});

test('ctx.signal is the request\'s AbortSignal, read when the handler asks', async () => {
  const r = await req({ url: '/signal' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'true false true');
  const aborted = new AbortController();
  aborted.abort();
  const late = await req({ url: '/signal', signal: aborted.signal });
  // Aborted before it started: either nothing ran, or the handler saw its signal aborted.
  assert.ok(late.text === '' || late.text === 'true true true', late.text);
});

test('a GET to a handler that answers at once is answered without a promise; async work takes one', async () => {
  const app = objectApp(new Root(), { maxFormBytes: 64 });
  const call = (method: string, path: string, query = ''): { body: unknown; heads: string[] } => {
    const heads: string[] = [];
    const environ = { REQUEST_METHOD: method, PATH_INFO: path, QUERY_STRING: query, SCRIPT_NAME: '', CONTENT_TYPE: '', CONTENT_LENGTH: '' } as unknown as Parameters<typeof app>[0];
    const body = app(environ, (status) => {
      heads.push(status);
      return () => undefined;
    });
    return { body, heads };
  };
  // Answered on return: the head is started and the body is the handler's own value.
  const hello = call('GET', '/');
  assert.equal(hello.body, 'root index');
  assert.deepEqual(hello.heads, ['200 OK']);
  const teapot = call('GET', '/teapot');
  assert.equal(teapot.body, 'no entry\n');
  assert.deepEqual(teapot.heads, ['403 Forbidden']);
  assert.deepEqual(call('GET', '/strict', 'b=1').heads, ['404 Not Found']);
  assert.deepEqual(call('GET', '/nowhere/x/y').heads, ['200 OK']);
  // A handler's synchronous failure reaches the runner as a throw, as a rejection did (a 500).
  assert.throws(() => call('GET', '/crash'), /bug/);
  // A handler's promise is followed: its value, or its HTTPError as the answer.
  class Later {
    index = expose(async () => {
      await Promise.resolve();
      return 'later';
    });
    denied = expose(() => Promise.reject(new HTTPError(401)));
  }
  const later = objectApp(new Later());
  const heads: string[] = [];
  const push = (status: string): (() => void) => {
    heads.push(status);
    return () => undefined;
  };
  const environ = (path: string): Parameters<typeof later>[0] => ({ REQUEST_METHOD: 'GET', PATH_INFO: path, QUERY_STRING: '', SCRIPT_NAME: '' }) as unknown as Parameters<typeof later>[0];
  const pending = later(environ('/'), push);
  assert.ok(pending instanceof Promise);
  assert.deepEqual(heads, [], 'no head before the handler settled');
  assert.equal(await pending, 'later');
  const denied = later(environ('/denied'), push);
  assert.ok(denied instanceof Promise);
  assert.equal(await denied, 'Unauthorized\n');
  assert.deepEqual(heads, ['200 OK', '401 Unauthorized']);
  // A form body is read before the handler runs, so a POST always takes a promise.
  const post = await req({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
  assert.equal(post.status, 200);
  assert.equal(post.text, JSON.stringify({ args: [], kwargs: [['a', '1']], method: 'POST' }));
});

test('findHandler splits the path as split("/") without empty segments', () => {
  const root = new Root();
  for (const [path, args] of [['/', []], ['//a//b/', ['a', 'b']], ['a', ['a']], ['/x/', ['x']], ['', []], ['///', []]] as const) {
    const found = findHandler(root, path);
    assert.ok(found !== undefined, path);
    if (args.length > 0) assert.deepEqual(found.args, args, path);
  }
  assert.deepEqual(findHandler(root, '/blog/post/one')?.args, ['one']);
  assert.deepEqual(findHandler(root, '/q/r//s')?.args, ['q', 'r', 's']);
});
