// The Node adapter against the real Koa 3 + @koa/router + @koa/bodyparser, from a mounting user's
// side: `tree.mount(koaApp, '/koa')` with the app unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import Koa from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { runNative } from '../../src/app/run.ts';
import { toNativeApp } from '../../src/app/resolve.ts';
import { environOf } from '../../src/app/adapters/node.ts';
import { bytesOf, CountingInput, makeEnviron, sha256, TestResponder } from './adapter-kit.ts';

function koaApp(): Koa {
  const app = new Koa();
  // Koa prints errors it handles itself to stderr unless silenced.
  app.silent = true;
  const router = new Router();
  router.get('/items/:id', (ctx) => {
    ctx.body = { path: ctx.path, url: ctx.url, originalUrl: ctx.originalUrl, id: ctx.params.id, q: ctx.query.q, ip: ctx.ip, protocol: ctx.protocol, scriptName: environOf(ctx.req)?.SCRIPT_NAME };
  });
  router.post('/items', (ctx) => {
    ctx.status = 201;
    ctx.body = { created: ctx.request.body };
  });
  router.post('/form', (ctx) => {
    ctx.body = ctx.request.body;
  });
  router.delete('/items/:id', (ctx) => {
    ctx.status = 204;
  });
  router.get('/missing', (ctx) => {
    ctx.throw(404);
  });
  router.get('/throws', () => {
    throw new Error('koa route failed');
  });
  router.get('/redirect', (ctx) => {
    ctx.redirect('/koa/items/1');
  });
  router.get('/cookies', (ctx) => {
    ctx.cookies.set('sid', 'abc', { httpOnly: true });
    ctx.cookies.set('theme', 'dark', { httpOnly: false });
    ctx.body = 'ok';
  });
  router.get('/text', (ctx) => {
    ctx.body = 'hello from koa';
  });
  app.use(bodyParser({ enableTypes: ['json', 'form'] }));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

test('Koa under /koa: router, bodyparser, redirect, cookies, status codes, HEAD', async (t) => {
  const tree = new Tree().mount(koaApp(), '/koa');

  await t.test('routes relative to the mount', async () => {
    const res = await inject(tree, { url: '/koa/items/7?q=1', remoteAddress: '198.51.100.4' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), {
      path: '/items/7', url: '/items/7?q=1', originalUrl: '/items/7?q=1', id: '7', q: '1', ip: '198.51.100.4', protocol: 'http', scriptName: '/koa',
    });
  });

  await t.test('JSON body, 201', async () => {
    const res = await inject(tree, { method: 'POST', url: '/koa/items', headers: { 'content-type': 'application/json' }, body: '{"name":"widget"}' });
    assert.equal(res.status, 201);
    assert.deepEqual(JSON.parse(res.text), { created: { name: 'widget' } });
  });

  await t.test('urlencoded body', async () => {
    const res = await inject(tree, { method: 'POST', url: '/koa/form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=1&y=a+b' });
    assert.deepEqual(JSON.parse(res.text), { x: '1', y: 'a b' });
  });

  await t.test('204, 404, 405, 500 from a throwing route (Koa answers it itself)', async () => {
    assert.equal((await inject(tree, { method: 'DELETE', url: '/koa/items/3' })).status, 204);
    assert.equal((await inject(tree, { url: '/koa/missing' })).status, 404);
    assert.equal((await inject(tree, { url: '/koa/nowhere' })).status, 404);
    const notAllowed = await inject(tree, { method: 'PUT', url: '/koa/items' });
    assert.equal(notAllowed.status, 405);
    assert.match(notAllowed.header('allow') ?? '', /POST/);
    const boom = await inject(tree, { url: '/koa/throws' });
    assert.equal(boom.status, 500);
    assert.equal(boom.appStatus, 0);
  });

  await t.test('redirect: 302 + Location', async () => {
    const res = await inject(tree, { url: '/koa/redirect' });
    assert.equal(res.status, 302);
    assert.equal(res.header('location'), '/koa/items/1');
  });

  await t.test('two cookies, two Set-Cookie fields', async () => {
    const res = await inject(tree, { url: '/koa/cookies' });
    const cookies = res.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v);
    assert.deepEqual(cookies, ['sid=abc; path=/; httponly', 'theme=dark; path=/']);
  });

  await t.test('HEAD', async () => {
    const res = await inject(tree, { method: 'HEAD', url: '/koa/text' });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    assert.equal(res.header('content-length'), String(Buffer.byteLength('hello from koa')));
  });
});

test('Koa: a streamed body is paced by a slow responder; an 8 MiB upload is echoed intact', async (t) => {
  await t.test('ctx.body = stream, read only as fast as the gateway drains', async () => {
    const total = 4 * 1024 * 1024;
    const data = bytesOf(total, 11);
    const source = new CountingInput(data, 16 * 1024);
    const responder = new TestResponder({ capacityBytes: 64 * 1024, drainMs: 1 });
    let maxAhead = 0;
    const watch = setInterval(() => {
      maxAhead = Math.max(maxAhead, source.pulled - responder.bytes);
    }, 1);
    const app = new Koa();
    app.use((ctx) => {
      ctx.type = 'application/octet-stream';
      ctx.body = source;
    });
    try {
      await runNative(toNativeApp(app), makeEnviron(), responder);
    } finally {
      clearInterval(watch);
    }
    assert.equal(responder.appStatus, 0);
    assert.equal(sha256(responder.body), sha256(data));
    assert.ok(responder.refusals > 10);
    assert.ok(maxAhead < 512 * 1024, `source read ${maxAhead} bytes ahead of the gateway`);
  });

  await t.test('8 MiB upload echoed (ctx.body = ctx.req), checksummed in and out', async () => {
    const data = bytesOf(8 * 1024 * 1024, 13);
    const app = new Koa();
    app.use((ctx) => {
      ctx.type = 'application/octet-stream';
      ctx.body = ctx.req;
    });
    const responder = new TestResponder({ capacityBytes: 128 * 1024 });
    await runNative(toNativeApp(app), makeEnviron({ method: 'POST', body: new CountingInput(data, 64 * 1024), contentLength: String(data.length) }), responder);
    assert.equal(responder.status, 200);
    assert.equal(responder.bytes, data.length);
    assert.equal(sha256(responder.body), sha256(data));
  });

  await t.test('abort closes the request Koa is streaming', async () => {
    const controller = new AbortController();
    let closed = false;
    const app = new Koa();
    app.silent = true;
    app.use((ctx) => {
      let n = 0;
      const stream = new Readable({
        read() {
          n++;
          if (n === 4) controller.abort();
          setTimeout(() => this.push(`chunk ${n}\n`), 1);
        },
      });
      ctx.req.on('close', () => {
        closed = true;
      });
      ctx.body = stream;
    });
    const res = await inject(new Tree().mount(app, '/'), { url: '/', signal: controller.signal });
    assert.equal(res.appStatus, 2);
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(closed);
  });
});
