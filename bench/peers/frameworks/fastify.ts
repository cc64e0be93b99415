// The frameworks bench's Fastify 5 hello, from the app's side: one route, `Hello World` as
// text/plain. The instance is exported as it is; postern mounts it (ready, then its router).
import Fastify from 'fastify';

export const app = Fastify({ logger: false });
app.get('/', (_req, reply) => {
  void reply.type('text/plain').send('Hello World');
});
