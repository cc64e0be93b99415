// The Node (req, res) adapter against the real Express 5 and plain node:http handlers, from a
// mounting user's side: through Tree + inject, and through runNative with a slow Responder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { runNative } from '../../src/app/run.ts';
import { environOf, fromNodeHandler, NODE_ADAPTER_ERRORS } from '../../src/app/adapters/node.ts';
import { nodeHandler } from '../../src/app/resolve.ts';
import { bytesOf, CountingInput, delay, makeEnviron, sha256, TestResponder } from './adapter-kit.ts';

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer'];

function assertNoHopByHop(headers: ReadonlyArray<readonly [string, string]>): void {
  for (const [name] of headers) assert.ok(!HOP_BY_HOP.includes(name.toLowerCase()), `hop-by-hop ${name} leaked`);
}

function expressApp(errors: unknown[]): express.Express {
  const app = express();
  app.use(express.json());
  app.use(express.urlencoded({ extended: false }));
  app.get('/users/:id', (req, res) => {
    res.json({
      url: req.url, baseUrl: req.baseUrl, originalUrl: req.originalUrl, path: req.path, id: req.params.id,
      q: req.query.q, ip: req.ip, protocol: req.protocol, hostname: req.hostname,
      scriptName: environOf(req)?.SCRIPT_NAME, pathInfo: environOf(req)?.PATH_INFO,
    });
  });
  app.post('/json', (req, res) => {
    res.status(201).json({ got: req.body as unknown });
  });
  app.post('/form', (req, res) => {
    res.json(req.body);
  });
  app.get('/redirect', (_req, res) => {
    res.redirect('/login');
  });
  app.get('/cookies', (_req, res) => {
    res.cookie('a', '1', { httpOnly: true });
    res.cookie('b', '2', { path: '/api' });
    res.send('ok');
  });
  app.delete('/thing', (_req, res) => {
    res.sendStatus(204);
  });
  app.get('/throws', () => {
    const err = new Error('route failed');
    errors.push(err);
    throw err;
  });
  app.get('/rejects', async () => {
    await delay(1);
    const err = new Error('async route failed');
    errors.push(err);
    throw err;
  });
  app.get('/text', (_req, res) => {
    res.type('text/plain').send('hello from express');
  });
  app.get('/stream', (_req, res) => {
    res.type('text/plain');
    let i = 0;
    const tick = (): void => {
      if (i === 5) return void res.end();
      res.write(`line ${i++}\n`);
      setImmediate(tick);
    };
    tick();
  });
  return app;
}

test('Express under /api: routing, body parsing, redirect, cookies, status codes, HEAD', async (t) => {
  const errors: unknown[] = [];
  const seen: unknown[] = [];
  const tree = new Tree({ onError: (err) => seen.push(err) }).mount(expressApp(errors), '/api');

  await t.test('routes relative to the mount, with baseUrl/originalUrl as under app.use()', async () => {
    const res = await inject(tree, { url: '/api/users/42?q=x%20y', headers: { Host: 'shop.example:8080' }, remoteAddress: '203.0.113.9' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), {
      url: '/users/42?q=x%20y', baseUrl: '/api', originalUrl: '/api/users/42?q=x%20y', path: '/users/42', id: '42',
      q: 'x y', ip: '203.0.113.9', protocol: 'http', hostname: 'shop.example', scriptName: '/api', pathInfo: '/users/42',
    });
    assertNoHopByHop(res.headers);
  });

  await t.test('https comes from the environ, not from headers', async () => {
    const res = await inject(tree, { url: 'https://secure.example/api/users/1' });
    assert.equal((JSON.parse(res.text) as { protocol: string }).protocol, 'https');
  });

  await t.test('JSON body, 201', async () => {
    const res = await inject(tree, { method: 'POST', url: '/api/json', headers: { 'Content-Type': 'application/json' }, body: '{"n":[1,2,3],"s":"é"}' });
    assert.equal(res.status, 201);
    assert.deepEqual(JSON.parse(res.text), { got: { n: [1, 2, 3], s: 'é' } });
  });

  await t.test('urlencoded body', async () => {
    const res = await inject(tree, { method: 'POST', url: '/api/form', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=two+words&c=%C3%A9' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { a: '1', b: 'two words', c: 'é' });
  });

  await t.test('res.redirect: 302 + Location', async () => {
    const res = await inject(tree, { url: '/api/redirect' });
    assert.equal(res.status, 302);
    assert.equal(res.header('location'), '/login');
  });

  await t.test('several Set-Cookie fields stay separate', async () => {
    const res = await inject(tree, { url: '/api/cookies' });
    const cookies = res.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v);
    assert.deepEqual(cookies, ['a=1; Path=/; HttpOnly', 'b=2; Path=/api']);
  });

  await t.test('204 carries no body and no Content-Length', async () => {
    const res = await inject(tree, { method: 'DELETE', url: '/api/thing' });
    assert.equal(res.status, 204);
    assert.equal(res.body.length, 0);
    assert.equal(res.header('content-length'), undefined);
  });

  await t.test('no route: 404', async () => {
    const res = await inject(tree, { url: '/api/missing' });
    assert.equal(res.status, 404);
  });

  await t.test('a throwing route and a rejecting route: 500 through the runner', async () => {
    seen.length = 0;
    errors.length = 0;
    const a = await inject(tree, { url: '/api/throws' });
    const b = await inject(tree, { url: '/api/rejects' });
    assert.equal(a.status, 500);
    assert.equal(b.status, 500);
    assert.equal(a.appStatus, 1);
    assert.equal(errors.length, 2);
    assert.deepEqual(seen, errors);
  });

  await t.test('HEAD: the GET head without a body', async () => {
    const get = await inject(tree, { url: '/api/text' });
    const head = await inject(tree, { method: 'HEAD', url: '/api/text' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.header('content-length'), String(get.body.length));
    assert.equal(get.text, 'hello from express');
  });

  await t.test('a response written in pieces arrives whole, with no chunked framing', async () => {
    const res = await inject(tree, { url: '/api/stream' });
    assert.equal(res.text, 'line 0\nline 1\nline 2\nline 3\nline 4\n');
    assertNoHopByHop(res.headers);
  });
});

test('Express: a streaming response is paced by a slow responder (write() false → drain)', async () => {
  const total = 4 * 1024 * 1024;
  const piece = bytesOf(16 * 1024, 7);
  let written = 0;
  let refusedByRes = 0;
  let maxAhead = 0;
  const responder = new TestResponder({ capacityBytes: 64 * 1024, drainMs: 1 });
  const app = express();
  app.get('/big', (_req, res) => {
    res.setHeader('Content-Type', 'application/octet-stream');
    const pump = (): void => {
      while (written < total) {
        written += piece.length;
        maxAhead = Math.max(maxAhead, written - responder.bytes);
        if (!res.write(piece)) {
          refusedByRes++;
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  await runNative(fromNodeHandler(app), makeEnviron({ pathInfo: '/big' }), responder);
  assert.equal(responder.appStatus, 0);
  assert.equal(responder.bytes, total);
  const expected = createHash('sha256');
  for (let i = 0; i < total / piece.length; i++) expected.update(piece);
  assert.equal(sha256(responder.body), expected.digest('hex'));
  assert.ok(responder.refusals > 10, `responder refused ${responder.refusals} times`);
  assert.ok(refusedByRes > 10, `res.write() returned false ${refusedByRes} times`);
  // Never more than the adapter's mark + node's socket buffer + a piece ahead of the gateway.
  assert.ok(maxAhead <= 256 * 1024, `app ran ${maxAhead} bytes ahead`);
  assert.equal(responder.writesWhileFull, 0, 'the runner wrote while the responder said wait');
  assertNoHopByHop(responder.headers);
});

test('Express: 8 MiB request body echoed back, checksummed in and out, read only as fast as the app reads', async () => {
  const data = bytesOf(8 * 1024 * 1024, 3);
  const input = new CountingInput(data);
  let pulledWhileStalled = -1;
  const app = express();
  app.post('/echo', (req, res) => {
    // Stall before reading: the adapter must not pull the whole body into memory meanwhile.
    setTimeout(() => {
      pulledWhileStalled = input.pulled;
      res.setHeader('Content-Type', 'application/octet-stream');
      req.pipe(res);
    }, 40);
  });
  const responder = new TestResponder({ capacityBytes: 256 * 1024 });
  await runNative(fromNodeHandler(app), makeEnviron({ method: 'POST', pathInfo: '/echo', body: input, contentLength: String(data.length) }), responder);
  assert.equal(responder.status, 200);
  assert.equal(responder.bytes, data.length);
  assert.equal(sha256(responder.body), sha256(data));
  assert.ok(pulledWhileStalled >= 0 && pulledWhileStalled <= 256 * 1024, `pulled ${pulledWhileStalled} bytes before the app read any`);
});

test('Express: abort reaches the app (req and res close) and the stream stops', async () => {
  const controller = new AbortController();
  let ticks = 0;
  const events: string[] = [];
  let stopped!: () => void;
  const stoppedP = new Promise<void>((resolve) => {
    stopped = resolve;
  });
  const app = express();
  app.get('/forever', (req, res) => {
    res.type('text/plain');
    const timer = setInterval(() => {
      ticks++;
      res.write(`tick ${ticks}\n`);
      if (ticks === 3) controller.abort();
    }, 2);
    req.on('close', () => events.push('req close'));
    res.on('close', () => {
      events.push('res close');
      clearInterval(timer);
      stopped();
    });
  });
  const tree = new Tree({ onError: () => undefined }).mount(app, '/');
  const res = await inject(tree, { url: '/forever', signal: controller.signal });
  await stoppedP;
  const at = ticks;
  await delay(20);
  assert.equal(ticks, at, 'the app kept writing after the abort');
  assert.equal(res.appStatus, 2);
  assert.ok(events.includes('res close') && events.includes('req close'), events.join());
});

test('Express: abort before the app answers rejects quietly and closes the request', async () => {
  const controller = new AbortController();
  let closed = false;
  const app = express();
  app.get('/slow', (req) => {
    req.on('close', () => {
      closed = true;
    });
    setTimeout(() => controller.abort(), 5);
  });
  const seen: unknown[] = [];
  const tree = new Tree({ onError: (err) => seen.push(err) }).mount(app, '/');
  const res = await inject(tree, { url: '/slow', signal: controller.signal });
  assert.equal(res.appStatus, 2);
  assert.equal(res.status, 0);
  await delay(5);
  assert.ok(closed);
  assert.deepEqual(seen, []);
});

test('plain http handler: writeHead/trailers/early hints, chunked request body, socket facts', async (t) => {
  await t.test('interim responses and trailers are not forwarded; the final head is', async () => {
    const handler = nodeHandler((_req: IncomingMessage, res: ServerResponse) => {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' });
      res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Sum', 'X-Custom': 'yes' });
      res.write('part1,');
      res.addTrailers({ 'X-Sum': 'abc' });
      res.end('part2');
    });
    const tree = new Tree().mount(handler, '/p');
    const res = await inject(tree, { url: '/p/x' });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'part1,part2');
    assert.equal(res.header('x-custom'), 'yes');
    assert.equal(res.header('x-sum'), undefined);
    assertNoHopByHop(res.headers);
  });

  await t.test('a custom reason phrase survives', async () => {
    const app = fromNodeHandler((_req, res) => {
      res.statusCode = 299;
      res.statusMessage = 'Fine Enough';
      res.end();
    });
    const r = new TestResponder();
    await runNative(app, makeEnviron(), r);
    assert.equal(r.status, 299);
    assert.equal(r.reason, 'Fine Enough');
  });

  await t.test('a body of unknown length (Transfer-Encoding: chunked) is replayed whole', async () => {
    const app = fromNodeHandler((req, res) => {
      const h = createHash('sha256');
      req.on('data', (c: Buffer) => h.update(c));
      req.on('end', () => res.end(JSON.stringify({ te: req.headers['transfer-encoding'], sum: h.digest('hex') })));
    });
    const data = bytesOf(200_000, 5);
    const r = new TestResponder();
    await runNative(app, makeEnviron({ method: 'PUT', body: new CountingInput(data, 7000), headers: { 'transfer-encoding': 'chunked' } }), r);
    assert.deepEqual(JSON.parse(r.text), { te: 'chunked', sum: sha256(data) });
  });

  await t.test('headers come from HTTP_*, CONTENT_TYPE, CONTENT_LENGTH; hop-by-hop ones are dropped', async () => {
    let seen: Record<string, unknown> = {};
    const app = fromNodeHandler((req, res) => {
      seen = { ...req.headers, method: req.method, url: req.url, remote: req.socket.remoteAddress, port: req.socket.remotePort, version: req.httpVersion };
      req.resume();
      req.on('end', () => res.end());
    });
    await runNative(app, makeEnviron({
      method: 'PATCH', scriptName: '/m', pathInfo: '/a b', requestUri: '/m/a%20b?x=%zz', query: 'x=%zz', body: 'xyz', contentType: 'text/x',
      headers: { 'x-forwarded-for': '10.0.0.1', connection: 'close', 'keep-alive': '5', expect: '100-continue', accept: '*/*' },
    }), new TestResponder());
    assert.deepEqual(seen, {
      host: 'example.test', 'x-forwarded-for': '10.0.0.1', accept: '*/*', 'content-type': 'text/x', 'content-length': '3',
      method: 'PATCH', url: '/a%20b?x=%zz', remote: '192.0.2.7', port: 51515, version: '1.1',
    });
  });

  await t.test("path: 'full' keeps the mount in req.url", async () => {
    let url = '';
    const app = fromNodeHandler((req, res) => {
      url = req.url ?? '';
      res.end();
    }, { path: 'full' });
    await runNative(app, makeEnviron({ scriptName: '/m', pathInfo: '/x', query: 'a=1' }), new TestResponder());
    assert.equal(url, '/m/x?a=1');
  });

  await t.test('a header value with CR/LF is a 400, an unknown method a 501; the app is not called', async () => {
    let called = 0;
    const app = fromNodeHandler((_req, res) => {
      called++;
      res.end();
    });
    const a = new TestResponder();
    await runNative(app, makeEnviron({ headers: { 'x-evil': 'a\r\nx-injected: 1' } }), a);
    const b = new TestResponder();
    await runNative(app, makeEnviron({ method: 'BREW' }), b);
    assert.equal(a.status, 400);
    assert.equal(b.status, 501);
    assert.equal(called, 0);
  });

  await t.test('a truncated request body fails the request with a code', async () => {
    const codes: unknown[] = [];
    let aborted = false;
    const app = fromNodeHandler((req, res) => {
      req.on('aborted', () => {
        aborted = true;
      });
      req.on('error', () => undefined);
      req.on('end', () => res.end('unexpected'));
      req.resume();
    });
    const r = new TestResponder();
    await runNative(app, makeEnviron({ method: 'POST', body: new CountingInput(bytesOf(10)), contentLength: '100' }), r, {
      onError: (err) => codes.push((err as { code?: unknown }).code),
    });
    assert.equal(r.status, 500);
    assert.deepEqual(codes, [NODE_ADAPTER_ERRORS.TRUNCATED]);
    assert.ok(aborted);
  });

  await t.test('an app that destroys its response mid-way ends the request with an error', async () => {
    const codes: unknown[] = [];
    const app = fromNodeHandler((_req, res) => {
      res.write('partial');
      setTimeout(() => res.destroy(), 2);
    });
    const r = new TestResponder();
    await runNative(app, makeEnviron(), r, { onError: (err) => codes.push((err as { code?: unknown }).code) });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'partial');
    assert.equal(r.appStatus, 1);
    assert.deepEqual(codes, [NODE_ADAPTER_ERRORS.CLOSED]);
  });

  await t.test('next() answers 404; next(err) fails the request', async () => {
    const notFound = new TestResponder();
    await runNative(fromNodeHandler((_req, _res, next) => next?.()), makeEnviron(), notFound);
    assert.equal(notFound.status, 404);
    const boom = new Error('via next');
    const seen: unknown[] = [];
    const failed = new TestResponder();
    await runNative(fromNodeHandler((_req, _res, next) => next?.(boom)), makeEnviron(), failed, { onError: (err) => seen.push(err) });
    assert.equal(failed.status, 500);
    assert.deepEqual(seen, [boom]);
  });

  await t.test('an app that ignores backpressure still delivers everything', async () => {
    const data = bytesOf(2 * 1024 * 1024, 9);
    const app = fromNodeHandler((_req, res) => {
      for (let i = 0; i < data.length; i += 4096) res.write(data.subarray(i, i + 4096));
      res.end();
    });
    const r = new TestResponder({ capacityBytes: 32 * 1024 });
    await runNative(app, makeEnviron(), r);
    assert.equal(sha256(r.body), sha256(data));
    assert.equal(r.writesWhileFull, 0);
  });
});

test('socket ports: REMOTE_PORT and SERVER_PORT become numbers only when they are 1 to 15 decimal digits', async () => {
  const cases: Array<[string, number | undefined]> = [
    ['50000', 50000], ['0', 0], ['007', 7], ['999999999999999', 999999999999999],
    ['', undefined], ['1234567890123456', undefined], ['1e3', undefined], [' 80', undefined], ['80 ', undefined],
    ['-1', undefined], ['+1', undefined], ['0x50', undefined], ['8.0', undefined], ['\u0663', undefined], ['８０', undefined],
  ];
  for (const [param, want] of cases) {
    let seen: unknown = 'not called';
    const app = fromNodeHandler((req: IncomingMessage, res: ServerResponse) => {
      seen = [req.socket.remotePort, req.socket.localPort];
      res.end();
    });
    await runNative(app, makeEnviron({ extra: { REMOTE_PORT: param, SERVER_PORT: param } }), new TestResponder());
    assert.deepEqual(seen, [want, want], `port param ${JSON.stringify(param)}`);
  }
});
