// Apps the benchmark mounts in postern beside the example tree, from the benchmark's side: the same
// "Hello World" every peer answers, and a few fixed-size routes.
import type { Environ, NativeApp, StartResponse } from '../src/app/types.ts';
import { native } from '../src/app/adapters/marker.ts';
import { one } from '../examples/cherrypy-style.ts';

const MiB = Buffer.alloc(1024 * 1024, 0x61);
const HELLO_HEADERS = [['Content-Type', 'text/plain'], ['Content-Length', '11']] as const;

// Reads the body the way the node:http peer does ('data' events), so that the two servers are
// compared, not two ways of reading a stream; `/sink-await` reads it with `for await`, which costs
// a promise per chunk (see BENCHMARKS.md, 1 MiB request bodies).
function sink(environ: Environ, start: StartResponse): Promise<string> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const input = environ['postern.input'];
    input.on('data', (chunk: Buffer) => (n += chunk.length));
    input.on('error', reject);
    input.on('end', () => {
      start('200 OK', [['Content-Type', 'text/plain']]);
      resolve(`${n}\n`);
    });
  });
}

async function sinkAwait(environ: Environ, start: StartResponse): Promise<string> {
  let n = 0;
  for await (const chunk of environ['postern.input'] as AsyncIterable<Buffer>) n += chunk.length;
  start('200 OK', [['Content-Type', 'text/plain']]);
  return `${n}\n`;
}

// eslint-disable-next-line @typescript-eslint/require-await -- the async shape is what is measured
async function helloAsync(_environ: Environ, start: StartResponse): Promise<string> {
  start('200 OK', HELLO_HEADERS);
  return 'Hello World';
}

/** N bytes in 64 KiB views of one buffer, produced as the connection drains (bench/memory.ts). */
// eslint-disable-next-line @typescript-eslint/require-await -- pulled by the runner, which awaits drain
async function* stream(n: number): AsyncGenerator<Buffer> {
  const chunk = MiB.subarray(0, 64 * 1024);
  for (let left = n; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
}

/**
 * `/hello` answers "Hello World" like the node:http, PHP and Python peers (`/hello-async` the same
 * from an async function); `/bytes/N` answers N bytes (≤ 1 MiB); `/stream/N` streams N bytes of
 * any size; `/sink` reads and counts a body ('data' events), `/sink-await` the same with `for await`.
 */
const benchApp: NativeApp = (environ: Environ, start: StartResponse) => {
  const path = environ.PATH_INFO;
  if (path === '/hello') {
    start('200 OK', HELLO_HEADERS);
    return 'Hello World';
  }
  if (path === '/hello-async') return helloAsync(environ, start);
  if (path.startsWith('/bytes/')) {
    const n = Math.min(Number(path.slice(7)) || 0, MiB.length);
    start('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', String(n)]]);
    return MiB.subarray(0, n);
  }
  if (path.startsWith('/stream/')) {
    const n = Math.max(0, Number(path.slice(8)) || 0);
    start('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', String(n)]]);
    return stream(n);
  }
  if (path === '/sink') return sink(environ, start);
  if (path === '/sink-await') return sinkAwait(environ, start);
  start('404 Not Found', [['Content-Type', 'text/plain']]);
  return 'not found\n';
};

export const bench = native(benchApp);

/** For in-process benches: the bench routes and the CherryPy-style example (`/` → "Hello World"). */
export const benchApps = { bench, object: one } as const;
