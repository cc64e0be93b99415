// Apps the benchmark mounts in postern beside the example tree: a few fixed-size routes.
import type { Environ, NativeApp, StartResponse } from '../src/app/types.ts';
import { native } from '../src/app/adapters/marker.ts';

const MiB = Buffer.alloc(1024 * 1024, 0x61);

/** `/bytes/N` answers N bytes (≤ 1 MiB); `/sink` reads and counts a request body. */
const benchApp: NativeApp = async (environ: Environ, start: StartResponse) => {
  const path = environ.PATH_INFO;
  if (path.startsWith('/bytes/')) {
    const n = Math.min(Number(path.slice(7)) || 0, MiB.length);
    start('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', String(n)]]);
    return MiB.subarray(0, n);
  }
  if (path === '/sink') {
    let n = 0;
    for await (const chunk of environ['postern.input'] as AsyncIterable<Buffer>) n += chunk.length;
    start('200 OK', [['Content-Type', 'text/plain']]);
    return `${n}\n`;
  }
  start('404 Not Found', [['Content-Type', 'text/plain']]);
  return 'not found\n';
};

export const bench = native(benchApp);
