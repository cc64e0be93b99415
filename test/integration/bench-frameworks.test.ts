// The frameworks benchmark's stand, checked for what it serves rather than how fast: every hello
// app (Express, Koa, Fastify, Hono, and a plain (req, res) one) answers `Hello World` as text/plain through each path the bench
// measures: its own server behind nginx proxy_pass, and postern behind nginx fastcgi_pass keep_conn
// with each bridge (direct and replay for the (req, res) apps, lazy and eager Request for Hono).
// Real nginx and real processes, started as `npm run bench -- --scenario frameworks` starts them.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { BRIDGES, FRAMEWORKS, frameworkBackends, frameworkTargets } from '../../bench/frameworks.ts';
import { startStand, type Stand } from '../../bench/stand.ts';

describe('frameworks bench apps', { timeout: 180_000 }, () => {
  const targets = frameworkTargets(FRAMEWORKS, BRIDGES);
  let stand: Stand | undefined;
  after(async () => {
    await stand?.stop();
  });

  test('the bench starts one backend per row and nginx in front of them', async () => {
    const backends = new Map(frameworkBackends(process.execPath, FRAMEWORKS, BRIDGES).map((b) => [b.name, b]));
    stand = await startStand(backends, targets);
    // Own server and two bridges for each of Express, Koa, Fastify, Hono and the plain (req, res) hello.
    assert.deepEqual(targets.map((t) => t.name), [
      'express/own', 'express/direct', 'express/replay', 'koa/own', 'koa/direct', 'koa/replay',
      'fastify/own', 'fastify/direct', 'fastify/replay', 'hono/own', 'hono/lazy', 'hono/eager',
      'node/own', 'node/direct', 'node/replay',
    ]);
  });

  for (const t of targets) {
    test(`${t.name} answers Hello World through nginx`, async () => {
      assert.ok(stand !== undefined, 'the stand did not start');
      const port = stand.listens.get(t.name);
      assert.ok(port !== undefined);
      // Two requests: the second goes over nginx's kept upstream connection.
      for (let i = 0; i < 2; i++) {
        const res: Response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
        assert.equal(await res.text(), 'Hello World');
      }
      const missing = await fetch(`http://127.0.0.1:${port}/nowhere`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(missing.status, 404);
      await missing.arrayBuffer();
    });
  }
});
