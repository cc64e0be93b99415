// node-fastcgi 2.0.0, the FastCGI server Node users find on npm, answering hello world.
import fcgi from 'node-fastcgi';

const port = Number(process.argv[2] || '0');
fcgi.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
  res.end('Hello World');
}).listen(port, '127.0.0.1');
