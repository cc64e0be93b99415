// The frameworks bench's Express 5 hello, from the app's side: one route, `Hello World` as
// text/plain, written the way Express users write it. Served on its own by serve.ts and mounted
// in postern as it is (`--mount /=bench/peers/frameworks/express.ts#app`).
import express from 'express';

export const app = express();
app.get('/', (_req, res) => {
  res.type('text/plain').send('Hello World');
});
