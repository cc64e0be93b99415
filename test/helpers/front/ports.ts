// Free loopback ports for front servers the tests start: ask the kernel (listen on 0), then release.
// Other servers may listen on loopback, so never assume a fixed port.
import { createServer } from 'node:net';

// The kernel may hand the same port to two listen(0) calls in a row once the first is closed: a
// config with two `Listen` lines on one port then fails to start (seen once in CI: httpd's
// "Cannot define multiple Listeners on the same IP:port"). A port is handed out once per process.
const given = new Set<number>();

function ask(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await ask(host);
    if (!given.has(port)) {
      given.add(port);
      return port;
    }
  }
  throw new Error('freePort: the kernel kept offering ports already handed out');
}
