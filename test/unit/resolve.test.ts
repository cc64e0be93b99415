// toNativeApp's kind detection, from the mounting side: which adapter each app shape gets, and
// the coded TypeError for shapes it must not guess.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import { Hono } from 'hono';
import Fastify from 'fastify';
import {
  APP_KIND_ERROR, APP_SHAPES, fetchHandler, isExpressLike, isFastify, isNestApplication, isNextServer, isFetchFunction, isFetchObject, isKoaLike, isMarked,
  isModuleWrapper, native, nodeHandler, toNativeApp, type AppKind,
} from '../../src/app/resolve.ts';
import { runNative } from '../../src/app/run.ts';
import type { Environ, NativeApp, StartResponse } from '../../src/app/types.ts';
import { makeEnviron, TestResponder } from './adapter-kit.ts';

async function answer(app: NativeApp, env: Environ = makeEnviron()): Promise<TestResponder> {
  const r = new TestResponder();
  await runNative(app, env, r);
  return r;
}

function assertKindError(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof TypeError && (err as { code?: unknown }).code === APP_KIND_ERROR);
}

const nativeFn = (_env: Environ, start: StartResponse): string => {
  start('200 OK', [['X-Kind', 'native']]);
  return 'native';
};

test('auto: each app shape reaches its adapter', async (t) => {
  await t.test('a native() app is called as it is', async () => {
    const app = native(nativeFn);
    assert.equal(toNativeApp(app), app);
    assert.equal((await answer(toNativeApp(app))).text, 'native');
  });

  await t.test('a nodeHandler() function goes through the Node adapter', async () => {
    const h = nodeHandler((_req: IncomingMessage, res: ServerResponse) => {
      res.end('node');
    });
    assert.equal((await answer(toNativeApp(h))).text, 'node');
  });

  await t.test('a fetchHandler() function and a one-parameter function are Fetch handlers', async () => {
    assert.equal((await answer(toNativeApp(fetchHandler(() => new Response('fetch'))))).text, 'fetch');
    assert.equal((await answer(toNativeApp((_req: Request) => new Response('one-param')))).text, 'one-param');
  });

  await t.test('Hono and { fetch } objects', async () => {
    const hono = new Hono();
    hono.get('/', (c) => c.text('hono'));
    assert.equal((await answer(toNativeApp(hono))).text, 'hono');
    assert.equal((await answer(toNativeApp({ fetch: () => new Response('obj') }))).text, 'obj');
    // A function that carries fetch() (some frameworks export one) mounts through its fetch().
    const callable = Object.assign((_a: unknown, _b: unknown) => undefined, { fetch: () => new Response('fn.fetch') });
    assert.equal((await answer(toNativeApp(callable))).text, 'fn.fetch');
  });

  await t.test('Koa via callback()', async () => {
    const koa = new Koa();
    koa.use((ctx) => {
      ctx.body = 'koa';
    });
    assert.equal((await answer(toNativeApp(koa))).text, 'koa');
  });

  await t.test('an Express app and an Express router', async () => {
    const app = express();
    app.get('/', (_req, res) => {
      res.send('express');
    });
    const router = express.Router();
    // A bare router has no app to lend it res.send(): it is a plain (req, res, next) handler.
    router.get('/', (_req, res) => {
      res.end('router');
    });
    assert.equal((await answer(toNativeApp(app))).text, 'express');
    assert.equal((await answer(toNativeApp(router))).text, 'router');
  });

  await t.test('a module namespace with a default export', async () => {
    const koaRouter = new Router();
    const koa = new Koa();
    koa.use(koaRouter.routes());
    koaRouter.get('/', (ctx) => {
      ctx.body = 'default';
    });
    assert.equal((await answer(toNativeApp({ default: koa }))).text, 'default');
  });
});

test('explicit kinds', async (t) => {
  await t.test('a two-parameter function is whatever the kind says', async () => {
    const both = (a: unknown, b: unknown): unknown => {
      if (typeof (b as ServerResponse).end === 'function' && typeof (a as IncomingMessage).url === 'string') return (b as ServerResponse).end('as node');
      (b as StartResponse)('200 OK', []);
      return 'as native';
    };
    assert.equal((await answer(toNativeApp(both, 'native'))).text, 'as native');
    assert.equal((await answer(toNativeApp(both, 'node'))).text, 'as node');
  });

  await t.test('an explicit kind wins over a marker', () => {
    const marked = fetchHandler(() => new Response('x'));
    assertKindError(() => toNativeApp({ notAFunction: marked }, 'native'));
    assert.equal(typeof toNativeApp(marked, 'native'), 'function');
  });

  await t.test('kind node accepts Koa, kind fetch accepts Hono', async () => {
    const koa = new Koa();
    koa.use((ctx) => {
      ctx.body = 'k';
    });
    const hono = new Hono();
    hono.get('/', (c) => c.text('h'));
    assert.equal((await answer(toNativeApp(koa, 'node'))).text, 'k');
    assert.equal((await answer(toNativeApp(hono, 'fetch'))).text, 'h');
  });
});

test('shapes that cannot be told apart or used throw TypeError POSTERN_ERR_APP_KIND', () => {
  // (environ, startResponse) and (req, res) look alike: no guessing.
  assertKindError(() => toNativeApp((_a: unknown, _b: unknown) => undefined));
  assertKindError(() => toNativeApp(function threeArgs(_a: unknown, _b: unknown, _c: unknown) {
    return undefined;
  }));
  assertKindError(() => toNativeApp((...args: unknown[]) => args));
  assertKindError(() => toNativeApp(null));
  assertKindError(() => toNativeApp(42));
  assertKindError(() => toNativeApp('app'));
  assertKindError(() => toNativeApp({}));
  assertKindError(() => toNativeApp({ fetch: 'nope' }));
  assertKindError(() => toNativeApp({}, 'node'));
  assertKindError(() => toNativeApp({}, 'fetch'));
  assertKindError(() => toNativeApp({}, 'native'));
  assertKindError(() => toNativeApp(nativeFn, 'wsgi' as AppKind));
});

test('markers do not change the function and are not enumerable', () => {
  const f = (_env: Environ, start: StartResponse): null => {
    start('204 No Content', []);
    return null;
  };
  const marked = native(f);
  assert.equal(marked, f);
  assert.deepEqual(Object.keys(marked), []);
  assertKindError(() => native(42 as unknown as NativeApp));
});

// Every recogniser against every sample: each accepts exactly its own shapes, so no app is taken for
// another (a Fastify instance has `listen` like Koa and `inject` like nothing else; Hono has
// `request`; Express is a function with `handle`).
function samples(): Record<string, unknown> {
  const fastify = Fastify();
  const hono = new Hono();
  const koa = new Koa();
  const expressApp = express();
  return {
    fastify,
    hono,
    fetchObject: { fetch: (_r: Request) => new Response('x') },
    koa,
    expressApp,
    expressRouter: express.Router(),
    oneParam: (_r: Request) => new Response('x'),
    marked: native(nativeFn),
    wrapper: { default: koa },
    twoParams: (_a: unknown, _b: unknown) => undefined,
    // Look-alikes: a part of Fastify's surface without its state, Koa with a stray `ready`.
    fastifyLookAlike: { routing() {}, ready() {}, inject() {}, register() {}, addHook() {}, listen() {}, server: { emit() {} } },
    koaWithReady: Object.assign(new Koa(), { ready() {}, inject() {}, routing() {} }),
    // A NestJS application's surface (the real one, both platforms: test/integration/frameworks-nestjs.test.ts),
    // and a part of it that is not enough.
    nestApp: { init() {}, getHttpAdapter() {}, getHttpServer() {}, listen() {}, enableShutdownHooks() {}, useGlobalPipes() {} },
    nestPartial: { init() {}, getHttpAdapter() {}, listen() {} },
    // Next's custom server as next() returns it (the real one: test/integration/frameworks-nextjs.test.ts),
    // and the part of it an app that only renders would have.
    nextServer: { prepare() {}, getRequestHandler() {}, getUpgradeHandler() {}, close() {}, render() {} },
    nextPartial: { prepare() {}, getRequestHandler() {} },
  };
}

const ACCEPTS: Array<[string, (app: unknown) => boolean, string[]]> = [
  ['isMarked', isMarked, ['marked']],
  ['isNestApplication', isNestApplication, ['nestApp']],
  ['isNextServer', isNextServer, ['nextServer']],
  ['isFastify', isFastify, ['fastify']],
  ['isFetchObject', isFetchObject, ['hono', 'fetchObject']],
  ['isKoaLike', isKoaLike, ['koa', 'koaWithReady']],
  ['isExpressLike', isExpressLike, ['expressApp', 'expressRouter']],
  ['isFetchFunction', isFetchFunction, ['oneParam']],
  ['isModuleWrapper', isModuleWrapper, ['wrapper']],
];

for (const [name, predicate, accepted] of ACCEPTS) {
  test(`recogniser ${name} accepts ${accepted.join(', ')} and nothing else`, () => {
    for (const [sample, app] of Object.entries(samples())) {
      assert.equal(predicate(app), accepted.includes(sample), `${name}(${sample})`);
    }
  });
}

test('APP_SHAPES lists every recogniser once, markers first', () => {
  const tests = APP_SHAPES.map((s) => s.test);
  assert.equal(new Set(tests).size, tests.length);
  assert.deepEqual(new Set(tests), new Set(ACCEPTS.map(([, p]) => p)));
  assert.equal(APP_SHAPES[0]?.test, isMarked);
});

test('a Fastify instance mounts by auto and by kind node; a look-alike does not', async () => {
  const app = Fastify();
  app.get('/', () => 'from fastify');
  assert.equal((await answer(toNativeApp(app))).text, 'from fastify');
  assert.equal((await answer(toNativeApp(app, 'node'))).text, 'from fastify');
  assert.equal((await answer(toNativeApp({ default: app }))).text, 'from fastify');
  assertKindError(() => toNativeApp(samples().fastifyLookAlike));
  await app.close();
});
