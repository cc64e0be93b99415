// The Fetch adapter against the real Hono and plain `(request) => Response` handlers, from a
// mounting user's side: `tree.mount(honoApp, '/h')` with the app unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { stream } from 'hono/streaming';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { runNative } from '../../src/app/run.ts';
import type { Environ } from '../../src/app/types.ts';
import { FETCH_ADAPTER_ERRORS, fromFetchHandler } from '../../src/app/adapters/fetch.ts';
import { fetchHandler, toNativeApp } from '../../src/app/resolve.ts';
import { bytesOf, CountingInput, delay, makeEnviron, sha256, TestResponder } from './adapter-kit.ts';

function honoApp(): Hono<{ Bindings: Environ }> {
  const app = new Hono<{ Bindings: Environ }>();
  app.get('/users/:id', (c) => c.json({
    url: c.req.url, path: c.req.path, id: c.req.param('id'), q: c.req.query('q'),
    scriptName: c.env.SCRIPT_NAME, remote: c.env.REMOTE_ADDR, forwarded: c.req.header('x-forwarded-for') ?? null,
  }));
  app.post('/json', async (c) => c.json({ got: await c.req.json<unknown>() }, 201));
  app.post('/form', async (c) => c.json(await c.req.parseBody()));
  app.get('/redirect', (c) => c.redirect('/login'));
  app.get('/cookies', (c) => {
    setCookie(c, 'a', '1', { httpOnly: true });
    setCookie(c, 'b', '2', { path: '/h' });
    return c.text('ok');
  });
  app.delete('/thing', (c) => c.body(null, 204));
  app.get('/throws', () => {
    throw new Error('hono route failed');
  });
  app.get('/text', (c) => c.text('hello from hono'));
  // Hono's default onError also prints the error; the status is what is under test.
  app.onError((_err, c) => c.text('Internal Server Error', 500));
  return app;
}

test('Hono under /h: routing, body parsing, redirect, cookies, status codes, HEAD', async (t) => {
  const tree = new Tree().mount(honoApp(), '/h');

  await t.test('request.url is mount-relative; the environ is c.env', async () => {
    const res = await inject(tree, { url: '/h/users/5?q=1', headers: { Host: 'api.example:8443', 'X-Forwarded-For': '10.1.1.1' }, remoteAddress: '203.0.113.5' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), {
      url: 'http://api.example:8443/users/5?q=1', path: '/users/5', id: '5', q: '1', scriptName: '/h', remote: '203.0.113.5', forwarded: '10.1.1.1',
    });
  });

  await t.test('JSON body, 201', async () => {
    const res = await inject(tree, { method: 'POST', url: '/h/json', headers: { 'Content-Type': 'application/json' }, body: '{"k":"v"}' });
    assert.equal(res.status, 201);
    assert.deepEqual(JSON.parse(res.text), { got: { k: 'v' } });
  });

  await t.test('urlencoded body', async () => {
    const res = await inject(tree, { method: 'POST', url: '/h/form', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=x+y' });
    assert.deepEqual(JSON.parse(res.text), { a: '1', b: 'x y' });
  });

  await t.test('redirect: 302 + Location', async () => {
    const res = await inject(tree, { url: '/h/redirect' });
    assert.equal(res.status, 302);
    assert.equal(res.header('location'), '/login');
  });

  await t.test('several Set-Cookie fields stay separate', async () => {
    const res = await inject(tree, { url: '/h/cookies' });
    const cookies = res.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v);
    assert.deepEqual(cookies, ['a=1; Path=/; HttpOnly', 'b=2; Path=/h']);
  });

  await t.test('204, 404, 500 (Hono answers its own errors)', async () => {
    assert.equal((await inject(tree, { method: 'DELETE', url: '/h/thing' })).status, 204);
    assert.equal((await inject(tree, { url: '/h/none' })).status, 404);
    const boom = await inject(tree, { url: '/h/throws' });
    assert.equal(boom.status, 500);
  });

  await t.test('HEAD', async () => {
    const res = await inject(tree, { method: 'HEAD', url: '/h/text' });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
  });
});

test('plain fetch handlers: errors, headers, options', async (t) => {
  await t.test('a throwing handler is a 500 through the runner', async () => {
    const boom = new Error('fetch handler failed');
    const seen: unknown[] = [];
    const tree = new Tree({ onError: (err) => seen.push(err) }).mount(fetchHandler(() => {
      throw boom;
    }), '/');
    const res = await inject(tree, { url: '/' });
    assert.equal(res.status, 500);
    assert.deepEqual(seen, [boom]);
  });

  await t.test('resolving to something that is not a Response fails with a code', async () => {
    const codes: unknown[] = [];
    const r = new TestResponder();
    await runNative(fromFetchHandler(() => ({ status: 'nope' }) as unknown as Response), makeEnviron(), r, {
      onError: (err) => codes.push((err as { code?: unknown }).code),
    });
    assert.equal(r.status, 500);
    assert.deepEqual(codes, [FETCH_ADAPTER_ERRORS.NOT_A_RESPONSE]);
  });

  await t.test('hop-by-hop response fields are dropped; the reason phrase defaults', async () => {
    const r = new TestResponder();
    await runNative(fromFetchHandler(() => new Response('x', { status: 201, headers: { Connection: 'close', 'Keep-Alive': '5', 'X-A': 'b' } })), makeEnviron(), r);
    assert.equal(r.status, 201);
    assert.equal(r.reason, 'Created');
    // content-type comes from the string body; Content-Length from the runner, now that a body
    // complete at once is sent whole.
    assert.deepEqual(r.headers.filter(([n]) => n !== 'content-type' && n !== 'Content-Length'), [['x-a', 'b']]);
  });

  await t.test("path: 'full', the scheme from the environ, a bad Host falling back to SERVER_NAME", async () => {
    const urls: string[] = [];
    const app = fromFetchHandler((req) => {
      urls.push(req.url);
      return new Response(null, { status: 204 });
    }, { path: 'full' });
    await runNative(app, makeEnviron({ scriptName: '/m', pathInfo: '/a b', query: 'x=1', https: true }), new TestResponder());
    await runNative(app, makeEnviron({ scriptName: '/m', pathInfo: '/', headers: { host: 'bad host/../' } }), new TestResponder());
    assert.deepEqual(urls, ['https://example.test/m/a%20b?x=1', 'http://localhost/m/']);
  });

  await t.test('request headers come from HTTP_*, CONTENT_TYPE, CONTENT_LENGTH', async () => {
    let seen: Array<[string, string]> = [];
    const app = fromFetchHandler(async (req) => {
      seen = [...req.headers];
      await req.arrayBuffer();
      return new Response('ok');
    });
    await runNative(app, makeEnviron({ method: 'POST', body: 'hello', contentType: 'text/plain', headers: { 'x-a': '1', connection: 'close' } }), new TestResponder());
    assert.deepEqual(seen.sort(), [['content-length', '5'], ['content-type', 'text/plain'], ['host', 'example.test'], ['x-a', '1']]);
  });

  await t.test('a header value the Fetch API refuses is a 400; the handler is not called', async () => {
    let called = 0;
    const r = new TestResponder();
    await runNative(fromFetchHandler(() => {
      called++;
      return new Response('x');
    }), makeEnviron({ headers: { 'x-evil': 'a\r\nb: c' } }), r);
    assert.equal(r.status, 400);
    assert.equal(called, 0);
  });
});

test('Fetch: streaming is paced by a slow responder; 8 MiB echoed intact; abort reaches the app', async (t) => {
  await t.test('a pull-based ReadableStream body is read only as the gateway drains', async () => {
    const total = 4 * 1024 * 1024;
    const piece = bytesOf(16 * 1024, 17);
    const responder = new TestResponder({ capacityBytes: 64 * 1024, drainMs: 1 });
    let produced = 0;
    let maxAhead = 0;
    const app = fromFetchHandler(() => new Response(new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced >= total) return controller.close();
        produced += piece.length;
        maxAhead = Math.max(maxAhead, produced - responder.bytes);
        controller.enqueue(piece);
      },
    })));
    await runNative(app, makeEnviron(), responder);
    assert.equal(responder.appStatus, 0);
    assert.equal(responder.bytes, total);
    assert.ok(responder.refusals > 10);
    assert.ok(maxAhead <= 128 * 1024, `produced ${maxAhead} bytes ahead`);
    assert.equal(responder.writesWhileFull, 0);
  });

  await t.test("Hono's stream() helper, awaited writes, is paced too", async () => {
    const responder = new TestResponder({ capacityBytes: 32 * 1024, drainMs: 1 });
    const piece = bytesOf(8 * 1024, 19);
    let produced = 0;
    let maxAhead = 0;
    const app = new Hono();
    app.get('/s', (c) => stream(c, async (s) => {
      for (let i = 0; i < 256; i++) {
        await s.write(piece);
        produced += piece.length;
        maxAhead = Math.max(maxAhead, produced - responder.bytes);
      }
    }));
    await runNative(toNativeApp(app), makeEnviron({ pathInfo: '/s' }), responder);
    assert.equal(responder.bytes, 256 * piece.length);
    assert.ok(maxAhead <= 256 * 1024, `hono ran ${maxAhead} bytes ahead`);
  });

  await t.test('8 MiB upload echoed through Hono; the body is not read ahead of the app', async () => {
    const data = bytesOf(8 * 1024 * 1024, 23);
    const input = new CountingInput(data);
    let pulledWhileStalled = -1;
    const app = new Hono();
    app.post('/echo', async (c) => {
      await delay(40);
      pulledWhileStalled = input.pulled;
      return new Response(c.req.raw.body, { headers: { 'content-type': 'application/octet-stream' } });
    });
    const responder = new TestResponder({ capacityBytes: 256 * 1024 });
    await runNative(toNativeApp(app), makeEnviron({ method: 'POST', pathInfo: '/echo', body: input, contentLength: String(data.length) }), responder);
    assert.equal(responder.status, 200);
    assert.equal(responder.bytes, data.length);
    assert.equal(sha256(responder.body), sha256(data));
    assert.ok(pulledWhileStalled >= 0 && pulledWhileStalled <= 256 * 1024, `pulled ${pulledWhileStalled} bytes before the app read`);
  });

  await t.test('abort: request.signal fires and the response stream is cancelled', async () => {
    const controller = new AbortController();
    let requestAborted = false;
    let cancelled = false;
    let n = 0;
    const app = new Hono();
    app.get('/forever', (c) => {
      c.req.raw.signal.addEventListener('abort', () => {
        requestAborted = true;
      });
      return new Response(new ReadableStream<Uint8Array>({
        async pull(ctl) {
          await delay(1);
          if (++n === 3) controller.abort();
          ctl.enqueue(new TextEncoder().encode(`tick ${n}\n`));
        },
        cancel() {
          cancelled = true;
        },
      }));
    });
    const res = await inject(new Tree().mount(app, '/'), { url: '/forever', signal: controller.signal });
    await delay(5);
    assert.equal(res.appStatus, 2);
    assert.ok(requestAborted);
    assert.ok(cancelled);
  });
});
