// What Node users run today: a node:http server put behind nginx's proxy_pass. It answers the
// same routes as bench/apps.ts: "Hello World", `/bench/bytes/N` (≤ 1 MiB), `/bench/sink`.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? '0');
const MiB = Buffer.alloc(1024 * 1024, 0x61);
createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/bench/bytes/')) {
    const n = Math.min(Number(url.slice(13)) || 0, MiB.length);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(n) });
    res.end(MiB.subarray(0, n));
    return;
  }
  if (url === '/bench/sink') {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`${n}\n`);
    });
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
  res.end('Hello World');
}).listen(port, '127.0.0.1');
