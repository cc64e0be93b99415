// The lazy Fetch bridge, from a handler's side: a Request made as it is read (and equal to the
// eager one wherever it is read), bodies in every form, abort, and Responses sent whole, streamed,
// failed midway or bodiless.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { Hono } from 'hono';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { runNative } from '../../src/app/run.ts';
import type { Environ } from '../../src/app/types.ts';
import { fromFetchHandler, LazyRequest, toRequest } from '../../src/app/adapters/fetch.ts';
import { toNativeApp } from '../../src/app/resolve.ts';
import { percentDecode } from '../../src/app/path.ts';
import { bytesOf, CountingInput, delay, makeEnviron, sha256, TestResponder, type EnvironSpec } from './adapter-kit.ts';

function lazy(spec: EnvironSpec = {}, environ: Environ = makeEnviron(spec)): Request {
  return new LazyRequest(environ, 'relative', 65536) as unknown as Request;
}

/** Runs `handler` through the bridge and returns what it resolved to (or threw). */
async function withRequest<T>(spec: EnvironSpec, use: (req: Request) => Promise<T> | T): Promise<T> {
  let out: { value: T } | { error: unknown } | undefined;
  const app = fromFetchHandler(async (req) => {
    try {
      out = { value: await use(req) };
    } catch (error) {
      out = { error };
    }
    return new Response(null, { status: 204 });
  });
  await runNative(app, makeEnviron(spec), new TestResponder());
  if (out === undefined) throw new Error('handler not called');
  if ('error' in out) throw out.error;
  return out.value;
}

const READ_ONLY_MEMBERS = [
  'method', 'url', 'destination', 'referrer', 'referrerPolicy', 'mode', 'credentials', 'cache', 'redirect', 'integrity',
  'keepalive', 'isReloadNavigation', 'isHistoryNavigation', 'duplex', 'bodyUsed',
] as const;

test('lazy Request: nothing is read from the environ until the handler asks', () => {
  const reads: PropertyKey[] = [];
  const environ = new Proxy(makeEnviron({ query: 'q=1', headers: { 'x-a': '1' } }), {
    get(target, key, receiver) {
      if (typeof key === 'string') reads.push(key);
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  const req = lazy({}, environ);
  assert.equal(reads.length, 0);
  assert.equal(req.method, 'GET');
  assert.equal(reads.join(), 'REQUEST_METHOD');
  reads.length = 0;
  assert.equal(req.url, 'http://example.test/?q=1');
  assert.ok(reads.includes('QUERY_STRING') && !reads.includes('HTTP_X_A'), reads.join());
  reads.length = 0;
  assert.equal(req.headers.get('x-a'), '1');
  assert.ok(reads.includes('HTTP_X_A'));
  assert.equal(req.headers, req.headers, 'the same Headers each time');
});

test('lazy Request: every member reads as on the eager Request', async (t) => {
  const cases: Array<[string, EnvironSpec]> = [
    ['GET with query and headers', { pathInfo: '/a/b', query: 'x=1&y=%20', headers: { 'x-a': '1', accept: '*/*' } }],
    ['POST with a body', { method: 'POST', body: 'k=v', contentType: 'application/x-www-form-urlencoded' }],
    ['lower-case method, escaped path, https', { method: 'delete', pathInfo: '/a b/ü', https: true }],
    ['an unusual method kept as it is', { method: 'PROPFIND', pathInfo: '/dav' }],
    ['a Host with a port, dot segments in REQUEST_URI', { requestUri: '/x/../y?z', pathInfo: '/y', query: 'z', headers: { host: 'Example.TEST:8080' } }],
    ['a Host that is no authority falls back to SERVER_NAME', { headers: { host: 'bad host/../' } }],
    ['a Host with credentials falls back to SERVER_NAME', { headers: { host: 'user:pw@evil.test' } }],
  ];
  for (const [name, spec] of cases) {
    await t.test(name, async () => {
      const eager = toRequest(makeEnviron(spec));
      const l = lazy(spec);
      for (const key of READ_ONLY_MEMBERS) assert.deepEqual(Reflect.get(l, key), Reflect.get(eager, key), key);
      assert.deepEqual([...l.headers], [...eager.headers]);
      assert.equal(l.body === null, eager.body === null);
      assert.equal(await l.text(), await eager.text());
    });
  }
});

test('lazy Request: url is what new Request makes of it, for any target and Host, in any order', () => {
  // The lazy URL skips the parser for plain targets and remembers the last origin: whatever the
  // order of Hosts and targets, it must serialise as the real Request does.
  const ALPHABET = ['a', 'Z', '0', '/', '.', '..', '%', '%2e', '%2E', '%2F', '%41', '%zz', '?', '#', ' ', "'", '^', '|', '[', ']', '\\', '"', '<', '>',
    '`', '{', '}', '~', '!', '$', '&', '(', ')', '*', '+', ',', ';', '=', ':', '@', '-', '_', 'ü', '\t', '\x7f', '\u2028'];
  const HOSTS = ['example.test', 'Example.TEST:8080', 'example.test:80', 'example.test:443', '127.0.0.1:9', '[::1]:8080', '[0:0::1]', 'bücher.test',
    'EXAMPLE.test.', 'user:pw@evil.test', 'bad host', 'a?b', 'a#b', 'a/b', 'a\\b', '', 'x:99999', '0x7f.1'];
  const text = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 12 }).map((parts) => parts.join(''));
  fc.assert(fc.property(fc.constantFrom(...HOSTS), text, fc.option(text, { nil: undefined }), fc.boolean(), fc.boolean(),
    (host, rawPath, query, https, viaUri) => {
      const path = '/' + rawPath;
      const spec: EnvironSpec = { pathInfo: viaUri ? percentDecode(path.split('?')[0] ?? '') : path, query: query ?? '', headers: { host }, https };
      if (viaUri) spec.requestUri = query === undefined ? path : `${path}?${query}`;
      const environ = makeEnviron(spec);
      let expected: string;
      try {
        expected = toRequest(environ).url;
      } catch {
        assert.throws(() => lazy(spec, environ).url);
        return;
      }
      assert.equal(lazy(spec, environ).url, expected);
    }), { numRuns: 3000 });
});

test('lazy Request: instanceof, inspection, clone(), and new Request(url, req) as Hono mount() does', async (t) => {
  await t.test('instanceof Request holds and the global is untouched', () => {
    const req = lazy();
    assert.ok(req instanceof Request);
    assert.equal(Object.prototype.toString.call(req), '[object Request]');
    assert.equal(Request.name, 'Request');
    assert.equal(Object.getPrototypeOf(new Request('http://x/')), Request.prototype);
    assert.match(inspect(req), /Request/);
  });

  await t.test('clone() is a real Request with the same head and body; both bodies readable', async () => {
    const req = lazy({ method: 'PUT', body: 'payload', contentType: 'text/plain', headers: { 'x-a': '1' } });
    const copy = req.clone();
    assert.equal(Object.getPrototypeOf(copy), Request.prototype);
    assert.equal(copy.url, req.url);
    assert.equal(copy.method, 'PUT');
    assert.equal(copy.headers.get('x-a'), '1');
    assert.equal(await copy.text(), 'payload');
    assert.equal(await req.text(), 'payload');
    assert.equal(req.bodyUsed, true);
  });

  await t.test('clone() after the body was read throws TypeError', async () => {
    const req = lazy({ method: 'POST', body: 'x' });
    await req.text();
    assert.throws(() => req.clone(), TypeError);
  });

  await t.test("Hono's mount(): new Request(url, c.req.raw) carries method, headers and body", async () => {
    const sub = new Hono();
    sub.post('/echo', async (c) => c.json({ url: c.req.url, body: await c.req.text(), a: c.req.header('x-a') ?? null }));
    const app = new Hono();
    app.mount('/sub', sub.fetch);
    const res = await inject(new Tree().mount(app, '/'), { method: 'POST', url: '/sub/echo?q=1', headers: { 'x-a': 'A' }, body: 'hi' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { url: 'http://localhost/echo?q=1', body: 'hi', a: 'A' });
  });
});

test('lazy Request: the body as text, json, arrayBuffer, bytes, blob, stream and formData', async (t) => {
  const post = (body: string, contentType = 'text/plain'): EnvironSpec => ({ method: 'POST', body, contentType });

  await t.test('text() strips a UTF-8 BOM and decodes; a second read rejects with TypeError', async () => {
    await withRequest(post('\ufeffhé'), async (req) => {
      assert.equal(req.bodyUsed, false);
      assert.equal(await req.text(), 'hé');
      assert.equal(req.bodyUsed, true);
      await assert.rejects(req.text(), TypeError);
      await assert.rejects(req.arrayBuffer(), TypeError);
    });
  });

  await t.test('json(), and a JSON SyntaxError as undici gives', async () => {
    assert.deepEqual(await withRequest(post('{"a":[1]}', 'application/json'), (req) => req.json()), { a: [1] });
    await assert.rejects(withRequest(post('{nope'), (req) => req.json()), SyntaxError);
  });

  await t.test('arrayBuffer() and bytes() hold exactly the body', async () => {
    const data = bytesOf(100_000, 5);
    const ab = await withRequest({ method: 'POST', body: data }, (req) => req.arrayBuffer());
    assert.equal(ab.byteLength, data.length);
    assert.equal(sha256(new Uint8Array(ab)), sha256(data));
    const small = await withRequest(post('abc'), (req) => req.arrayBuffer());
    assert.equal(small.byteLength, 3, 'not a view into a shared pool');
    const bytes = await withRequest(post('xyz'), (req) => req.bytes());
    assert.deepEqual([...bytes], [0x78, 0x79, 0x7a]);
  });

  await t.test('blob() carries the content type', async () => {
    const blob = await withRequest(post('b', 'application/x-thing'), (req) => req.blob());
    assert.equal(blob.type, 'application/x-thing');
    assert.equal(await blob.text(), 'b');
  });

  await t.test('body as a stream, read to the end; bodyUsed once locked', async () => {
    const data = bytesOf(300_000, 9);
    const got = await withRequest({ method: 'POST', body: data }, async (req) => {
      const body = req.body;
      assert.ok(body instanceof ReadableStream);
      assert.equal(req.body, body, 'the same stream each time');
      const chunks: Uint8Array[] = [];
      for await (const chunk of body) chunks.push(chunk);
      assert.equal(req.bodyUsed, true);
      await assert.rejects(req.text(), TypeError);
      return Buffer.concat(chunks);
    });
    assert.equal(sha256(got), sha256(data));
  });

  await t.test('formData(): urlencoded and multipart', async () => {
    const form = await withRequest(post('a=1&b=x+y', 'application/x-www-form-urlencoded'), (req) => req.formData());
    assert.deepEqual([...form], [['a', '1'], ['b', 'x y']]);
    const boundary = 'XyZ';
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n--${boundary}\r\nContent-Disposition: form-data; name="n"\r\n\r\nv\r\n--${boundary}--\r\n`;
    const parts = await withRequest(post(multipart, `multipart/form-data; boundary=${boundary}`), async (req) => {
      const fd = await req.formData();
      const file = fd.get('f') as File;
      return { name: file.name, text: await file.text(), n: fd.get('n') };
    });
    assert.deepEqual(parts, { name: 'a.txt', text: 'file body', n: 'v' });
  });

  await t.test('GET has no body: body null, text() empty, bodyUsed false', async () => {
    await withRequest({}, async (req) => {
      assert.equal(req.body, null);
      assert.equal(await req.text(), '');
      assert.equal(req.bodyUsed, false);
    });
  });

  await t.test('a handler that never reads the body: the input is not read ahead past the read-ahead', async () => {
    const input = new CountingInput(bytesOf(4 * 1024 * 1024, 3));
    const r = new TestResponder();
    await runNative(fromFetchHandler(() => new Response('ignored')), makeEnviron({ method: 'POST', body: input, contentLength: String(4 * 1024 * 1024) }), r);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ignored');
    assert.ok(input.pulled <= 64 * 1024, `pulled ${input.pulled}`);
  });
});

test('lazy Request: signal aborts with the request; refused methods are a 400 in both modes', async (t) => {
  await t.test('request.signal fires when the request is aborted', async () => {
    const controller = new AbortController();
    let aborted = false;
    const app = new Hono();
    app.get('/wait', async (c) => {
      await new Promise<void>((resolve) => {
        c.req.raw.signal.addEventListener('abort', () => resolve(), { once: true });
        setTimeout(() => controller.abort(), 5);
      });
      aborted = c.req.raw.signal.aborted;
      return c.text('late');
    });
    const res = await inject(new Tree().mount(app, '/'), { url: '/wait', signal: controller.signal });
    assert.equal(aborted, true);
    assert.equal(res.appStatus, 2);
  });

  await t.test('TRACE and a method that is no token: 400, handler not called', async () => {
    for (const fetchRequest of ['lazy', 'eager'] as const) {
      for (const method of ['TRACE', 'GE T']) {
        let called = 0;
        const r = new TestResponder();
        await runNative(fromFetchHandler(() => {
          called++;
          return new Response('x');
        }, { fetchRequest }), makeEnviron({ method }), r);
        assert.equal(r.status, 400, `${fetchRequest} ${method}`);
        assert.equal(called, 0);
      }
    }
  });

  await t.test("fetchRequest: 'eager' hands a real Request; an unknown mode throws", async () => {
    let proto: unknown;
    await runNative(fromFetchHandler((req) => {
      proto = Object.getPrototypeOf(req);
      return new Response('x');
    }, { fetchRequest: 'eager' }), makeEnviron(), new TestResponder());
    assert.equal(proto, Request.prototype);
    assert.throws(() => fromFetchHandler(() => new Response('x'), { fetchRequest: 'sometimes' as 'lazy' }), TypeError);
  });
});

test('Response: sent whole when complete at once, streamed otherwise, bodiless where HTTP says', async (t) => {
  await t.test("new Response('hello') and Hono's c.text() go out whole with a Content-Length", async () => {
    const r = new TestResponder();
    await runNative(fromFetchHandler(() => new Response('hello')), makeEnviron(), r);
    assert.equal(r.text, 'hello');
    assert.deepEqual(r.headers.find(([n]) => n.toLowerCase() === 'content-length'), ['Content-Length', '5']);
    const app = new Hono();
    app.get('/', (c) => c.text('hi'));
    const h = new TestResponder();
    await runNative(toNativeApp(app), makeEnviron(), h);
    assert.equal(h.text, 'hi');
    assert.deepEqual(h.headers.find(([n]) => n.toLowerCase() === 'content-length'), ['Content-Length', '2']);
  });

  await t.test('an event stream: the first event reaches the gateway before the second is produced', async () => {
    const r = new TestResponder();
    let seenBeforeSecond = -1;
    const enc = new TextEncoder();
    const app = fromFetchHandler(() => new Response(new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(enc.encode('data: 1\n\n'));
        await delay(30);
        seenBeforeSecond = r.bytes;
        controller.enqueue(enc.encode('data: 2\n\n'));
        controller.close();
      },
    }), { headers: { 'content-type': 'text/event-stream' } }));
    await runNative(app, makeEnviron(), r);
    assert.equal(seenBeforeSecond, 9);
    assert.equal(r.text, 'data: 1\n\ndata: 2\n\n');
    assert.equal(r.headers.some(([n]) => n.toLowerCase() === 'content-length'), false);
  });

  await t.test('a stream with a slow consumer is pulled only as the gateway drains', async () => {
    const responder = new TestResponder({ capacityBytes: 16 * 1024, drainMs: 1 });
    const piece = bytesOf(8 * 1024, 4);
    let produced = 0;
    let maxAhead = 0;
    const app = fromFetchHandler(() => new Response(new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced >= 1024 * 1024) return controller.close();
        produced += piece.length;
        maxAhead = Math.max(maxAhead, produced - responder.bytes);
        controller.enqueue(piece);
      },
    })));
    await runNative(app, makeEnviron(), responder);
    assert.equal(responder.bytes, 1024 * 1024);
    assert.ok(maxAhead <= 32 * 1024, `produced ${maxAhead} bytes ahead`);
    assert.equal(responder.writesWhileFull, 0);
  });

  await t.test('a stream that errors midway: what was sent stays, the request ends with an error status', async () => {
    const seen: unknown[] = [];
    const boom = new Error('source failed');
    let n = 0;
    const app = fromFetchHandler(() => new Response(new ReadableStream<Uint8Array>({
      async pull(controller) {
        await delay(1);
        if (++n === 3) controller.error(boom);
        else controller.enqueue(new TextEncoder().encode(`part${n};`));
      },
    })));
    const r = new TestResponder();
    await runNative(app, makeEnviron(), r, { onError: (err) => seen.push(err) });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'part1;part2;');
    assert.equal(r.appStatus, 1);
    assert.deepEqual(seen, [boom]);
  });

  await t.test('a stream that errors before its first chunk is a 500', async () => {
    const r = new TestResponder();
    await runNative(fromFetchHandler(() => new Response(new ReadableStream({
      pull(controller) {
        controller.error(new Error('at once'));
      },
    }))), makeEnviron(), r, { onError: () => undefined });
    assert.equal(r.status, 500);
  });

  await t.test('204, 304 and HEAD send no body; the body stream is cancelled', async () => {
    for (const [method, status] of [['GET', 204], ['GET', 304], ['HEAD', 200]] as const) {
      let cancelled = false;
      const app = fromFetchHandler(() => new Response(status === 204 || status === 304 ? null : new ReadableStream({
        pull(controller) {
          controller.enqueue(new Uint8Array(10));
        },
        cancel() {
          cancelled = true;
        },
      }), { status }));
      const r = new TestResponder();
      await runNative(app, makeEnviron({ method }), r);
      assert.equal(r.status, status);
      assert.equal(r.bytes, 0, `${method} ${status}`);
      if (method === 'HEAD') assert.ok(cancelled);
    }
  });
});
