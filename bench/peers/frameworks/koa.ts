// The frameworks bench's Koa 3 hello, from the app's side: `Hello World` as text/plain for GET /.
import Koa from 'koa';

export const app = new Koa();
app.use((ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/') {
    ctx.type = 'text/plain';
    ctx.body = 'Hello World';
  }
});
