// Closing mounted apps on stop, from the stopping side: which apps have a closer (a real Fastify
// instance, as exported or wrapped; not Express or a handler), and Tree.closeApps running them all,
// naming each mount whose closer throws or is still running at the deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import express from 'express';
import { Tree } from '../../src/app/tree.ts';
import { APP_CLOSE_ERRORS, appCloser, closeApps, type AppCloseProblem } from '../../src/app/shutdown.ts';
import { native } from '../../src/app/resolve.ts';

const hello = native((_environ, start) => {
  start('200 OK', []);
  return 'hi';
});

test('appCloser: a Fastify instance (as it is or as a { default }) closes with its own close(); Express and handlers have none', async () => {
  const app = Fastify();
  let hooks = 0;
  app.addHook('onClose', (_instance, done) => { hooks++; done(); });
  await app.ready();
  const close = appCloser(app);
  assert.ok(close !== undefined);
  await close();
  assert.equal(hooks, 1);
  assert.ok(appCloser({ default: Fastify() }) !== undefined);
  assert.equal(appCloser(express()), undefined);
  assert.equal(appCloser(hello), undefined);
  assert.equal(appCloser({ fetch: () => new Response('x') }), undefined);
});

test('Tree.closeApps closes every mount at once, subtrees included; a throwing or hung closer is named, and the deadline holds', async () => {
  const fastify = Fastify();
  const order: string[] = [];
  fastify.addHook('onClose', (_instance, done) => { order.push('fastify onClose'); done(); });
  fastify.get('/', () => 'f');
  const inner = new Tree().mount(hello, '/deep', { close: () => { order.push('inner'); } });
  const tree = new Tree()
    .mount(fastify, '/f')
    .mount(hello, '/plain')
    .mount(hello, '/throws', { close: () => { throw new Error('already closed'); } })
    .mount(hello, '/rejects', { close: () => Promise.reject(new Error('pool error')) })
    .mount(hello, '/hangs', { close: () => new Promise(() => undefined) })
    .mount(inner, '/sub');
  assert.deepEqual(tree.closers().map((c) => c.name), ['mount /f', 'mount /throws', 'mount /rejects', 'mount /hangs', 'mount /sub/deep']);
  await fastify.ready();
  const problems: AppCloseProblem[] = [];
  await tree.closeApps({ timeoutMs: 300, onProblem: (p) => { problems.push(p); } });
  assert.deepEqual(order.sort(), ['fastify onClose', 'inner']);
  assert.deepEqual(problems.map((p) => [p.name, p.code]).sort(), [
    ['mount /hangs', APP_CLOSE_ERRORS.TIMEOUT],
    ['mount /rejects', APP_CLOSE_ERRORS.FAILED],
    ['mount /throws', APP_CLOSE_ERRORS.FAILED],
  ]);
  assert.match(String(problems.find((p) => p.name === 'mount /throws')?.error), /already closed/);
  // Once: a second call is the first call's promise, and closes nothing again.
  await tree.closeApps({ timeoutMs: 300, onProblem: (p) => { problems.push(p); } });
  assert.equal(order.length, 2);
  assert.equal(problems.length, 3);
});

test('closeApps with nothing to close resolves at once and reports nothing', async () => {
  const problems: AppCloseProblem[] = [];
  await closeApps([], { timeoutMs: 10, onProblem: (p) => { problems.push(p); } });
  await closeApps([{ name: 'mount /', close: () => undefined }], { timeoutMs: 10, onProblem: (p) => { problems.push(p); } });
  assert.deepEqual(problems, []);
});
