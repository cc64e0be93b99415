// A Next.js server (`next()`) as postern mounts it, from the mounting side: prepared once, served by
// its getRequestHandler() with two arguments only, and a prepare() that fails fails the start and
// every request with a coded error. The real Next.js: test/integration/frameworks-nextjs.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { prepareApp, toNativeApp } from '../../src/app/resolve.ts';
import { NEXT_PREPARE_ERROR } from '../../src/app/adapters/next.ts';
import { runNative } from '../../src/app/run.ts';
import { makeEnviron, TestResponder } from './adapter-kit.ts';

function fakeNext(fail?: Error): { app: object; prepared: () => number; calls: unknown[][] } {
  let prepared = 0;
  const calls: unknown[][] = [];
  const app = {
    async prepare(): Promise<void> {
      prepared++;
      await Promise.resolve();
      if (fail !== undefined) throw fail;
    },
    getRequestHandler() {
      return (req: IncomingMessage, res: ServerResponse, ...rest: unknown[]): void => {
        calls.push(rest);
        res.setHeader('content-type', 'text/plain');
        res.end(`next saw ${req.url ?? ''}`);
      };
    },
    getUpgradeHandler() {},
    close() {},
  };
  return { app, prepared: () => prepared, calls };
}

test('a next() server mounts by auto: prepare() once (start-up and requests share it), the handler gets (req, res) only', async () => {
  const { app, prepared, calls } = fakeNext();
  const mounted = toNativeApp(app);
  await prepareApp(app);
  for (const path of ['/a?x=1', '/b']) {
    const r = new TestResponder();
    await runNative(mounted, makeEnviron({ requestUri: path, pathInfo: path.split('?')[0] ?? '', query: path.split('?')[1] ?? '' }), r);
    assert.equal(r.status, 200);
    assert.equal(Buffer.concat(r.chunks).toString(), `next saw ${path}`);
  }
  assert.equal(prepared(), 1);
  // Next takes a third argument for a parsed URL: the adapter must not pass Express's next() there.
  assert.deepEqual(calls, [[], []]);
});

test('a next() server whose prepare() fails: prepareApp rejects with the coded error, and each request answers 500', async () => {
  const { app, prepared } = fakeNext(new Error('no .next build'));
  await assert.rejects(prepareApp(app), (err: unknown) => (err as { code?: unknown }).code === NEXT_PREPARE_ERROR && /no \.next build/.test((err as Error).message));
  const mounted = toNativeApp(app);
  for (let i = 0; i < 2; i++) {
    const r = new TestResponder();
    await runNative(mounted, makeEnviron(), r);
    assert.equal(r.status, 500);
  }
  assert.equal(prepared(), 1);
});
