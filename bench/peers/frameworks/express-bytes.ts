// An Express app for bench/memory.ts --app express, from the app's side: the same routes as the
// native bench app, written as Express users write them. Mounted at /bench: `/hello`, `/sink`
// (reads the request body with 'data' events and answers its size), `/stream/N` (N bytes in
// 64 KiB writes, waiting for 'drain' whenever res.write() says so).
import express from 'express';

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

export const app = express();

app.get('/hello', (_req, res) => {
  res.type('text/plain').send('Hello World');
});

app.post('/sink', (req, res) => {
  let n = 0;
  req.on('data', (c: Buffer) => (n += c.length));
  req.on('end', () => {
    res.type('text/plain').send(`${n}\n`);
  });
});

app.get('/stream/:n', (req, res) => {
  let left = Math.max(0, Number(req.params.n) || 0);
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(left) });
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});
