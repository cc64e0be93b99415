// What Node users run today: a node:http hello world, put behind nginx's proxy_pass.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? '0');
createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
  res.end('Hello World');
}).listen(port, '127.0.0.1');
