// A Fastify instance mounted as it is, from a mounting user's side: `tree.mount(fastify(), '/f')`
// with real plugins and hooks, ready() awaited once, and a failed ready() reported.
/* eslint-disable @typescript-eslint/require-await -- async handlers and hooks are Fastify's documented style */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import cookie from '@fastify/cookie';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { native, prepareApp, toNativeApp } from '../../src/app/resolve.ts';
import { FASTIFY_READY_ERROR } from '../../src/app/adapters/fastify.ts';
import { buildTree } from '../../src/config/mounts.ts';
import { ConfigError } from '../../src/config/errors.ts';

function fastifyApp(events: string[]): FastifyInstance {
  const app = Fastify();
  app.register(formbody);
  app.register(cookie);
  app.addHook('onRequest', async (req) => {
    events.push(`onRequest ${req.method} ${req.url}`);
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-on-send', 'yes');
    return payload;
  });
  app.get('/hello', async () => 'Hello World');
  app.get('/users/:id', async (req) => ({ id: (req.params as { id: string }).id, q: (req.query as { q?: string }).q ?? null, ip: req.ip }));
  app.post('/json', async (req, reply) => reply.code(201).send({ got: req.body }));
  app.post('/form', async (req) => req.body);
  app.get('/cookies', async (req, reply) => {
    reply.setCookie('a', '1', { httpOnly: true, path: '/' }).setCookie('b', '2', { path: '/f' });
    return { seen: req.cookies.seen ?? null };
  });
  return app;
}

test('a Fastify instance mounts as it is: routes, plugins, hooks, its own 404', async (t) => {
  const events: string[] = [];
  const app = fastifyApp(events);
  const tree = new Tree().mount(app, '/f');

  await t.test('ready() is awaited at the first request; routes answer with the hooks run', async () => {
    const res = await inject(tree, { url: '/f/hello' });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'Hello World');
    assert.equal(res.header('x-on-send'), 'yes');
    assert.deepEqual(events, ['onRequest GET /hello']);
  });

  await t.test('params, query and the client address', async () => {
    const res = await inject(tree, { url: '/f/users/7?q=x', remoteAddress: '203.0.113.9' });
    assert.deepEqual(JSON.parse(res.text), { id: '7', q: 'x', ip: '203.0.113.9' });
  });

  await t.test('a JSON body', async () => {
    const res = await inject(tree, { method: 'POST', url: '/f/json', headers: { 'Content-Type': 'application/json' }, body: '{"k":[1,2]}' });
    assert.equal(res.status, 201);
    assert.deepEqual(JSON.parse(res.text), { got: { k: [1, 2] } });
  });

  await t.test('@fastify/formbody parses a form POST', async () => {
    const res = await inject(tree, { method: 'POST', url: '/f/form', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=x+y' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { a: '1', b: 'x y' });
  });

  await t.test('@fastify/cookie reads and sets cookies, each Set-Cookie apart', async () => {
    const res = await inject(tree, { url: '/f/cookies', headers: { Cookie: 'seen=yes' } });
    assert.deepEqual(JSON.parse(res.text), { seen: 'yes' });
    const cookies = res.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v);
    assert.deepEqual(cookies, ['a=1; Path=/; HttpOnly; SameSite=Lax', 'b=2; Path=/f; SameSite=Lax']);
  });

  await t.test("Fastify's own not-found handler answers 404", async () => {
    const res = await inject(tree, { url: '/f/nowhere' });
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.text) as { message: string }).message, 'Route GET:/nowhere not found');
  });

  await app.close();
});

test('a Fastify app whose ready() fails', async (t) => {
  function broken(): FastifyInstance {
    const app = Fastify();
    app.register(async () => {
      throw new Error('plugin exploded');
    });
    app.get('/', async () => 'never');
    return app;
  }

  await t.test('fails the first request and every later one, with a coded error told to onError', async () => {
    const seen: unknown[] = [];
    const tree = new Tree({ onError: (err) => seen.push(err) }).mount(broken(), '/');
    assert.equal((await inject(tree, { url: '/' })).status, 500);
    assert.equal((await inject(tree, { url: '/' })).status, 500);
    assert.equal(seen.length, 2);
    for (const err of seen) {
      assert.equal((err as { code?: unknown }).code, FASTIFY_READY_ERROR);
      assert.match((err as Error).message, /plugin exploded/);
    }
  });

  await t.test('prepareApp rejects with the same coded error; a sound app prepares', async () => {
    await assert.rejects(prepareApp(broken()), (err: unknown) => (err as { code?: unknown }).code === FASTIFY_READY_ERROR);
    const sound = Fastify();
    sound.get('/', async () => 'ok');
    await prepareApp({ default: sound });
    const res = await inject(new Tree().mount(native(toNativeApp(sound)), '/'), { url: '/' });
    assert.equal(res.text, 'ok');
    await sound.close();
  });

  await t.test('buildTree (the CLI and config loader) fails the start naming the module', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-fastify-'));
    try {
      const file = join(dir, 'broken.mjs');
      const fastifyUrl = import.meta.resolve('fastify');
      writeFileSync(file, `import Fastify from ${JSON.stringify(fastifyUrl)};\nconst app = Fastify();\napp.register(async () => { throw new Error('no database'); });\nexport default app;\n`);
      await assert.rejects(
        buildTree([{ prefix: '/', module: file, export: 'default', kind: 'auto', role: 'responder', baseDir: dir }]),
        (err: unknown) => err instanceof ConfigError && /broken\.mjs/.test(err.issues[0]?.origin ?? '') && /no database/.test(err.issues[0]?.message ?? ''),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
