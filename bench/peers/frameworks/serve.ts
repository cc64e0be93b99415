// A framework's hello app on its own node:http server, the way its users run it today: Express
// `app.listen`, Koa `app.listen`, `fastify.listen`, Hono through @hono/node-server's `serve`, and the
// plain (req, res) hello on node:http's createServer.
// Usage: node --import tsx bench/peers/frameworks/serve.ts express|koa|fastify|hono|node PORT
import { createServer } from 'node:http';
import { serve } from '@hono/node-server';

const [name, portText] = process.argv.slice(2);
const port = Number(portText);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: serve.ts express|koa|fastify|hono|node PORT');
const host = '127.0.0.1';

if (name === 'express') {
  const { app } = await import('./express.ts');
  app.listen(port, host);
} else if (name === 'koa') {
  const { app } = await import('./koa.ts');
  app.listen(port, host);
} else if (name === 'fastify') {
  const { app } = await import('./fastify.ts');
  await app.listen({ port, host });
} else if (name === 'node') {
  const { app } = await import('./node.ts');
  createServer(app).listen(port, host);
} else if (name === 'hono') {
  const { app } = await import('./hono.ts');
  serve({ fetch: app.fetch, port, hostname: host });
} else {
  throw new Error(`unknown framework ${String(name)}`);
}

// The bench stops each backend with SIGTERM: exit normally then, so that `--cpu-prof` (run.ts's
// option, set on every backend) writes this process's profile too.
process.once('SIGTERM', () => process.exit(0));
