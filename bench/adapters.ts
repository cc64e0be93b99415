// Per-request cost of the app adapters against the native path, from the runner's side: the same
// "hello" answer through runNative, no sockets, concurrent in-flight requests, each case time-boxed.
// Side by side: native; each (req, res) app through the direct Node bridge and through the replay
// (`bridge: 'replay'`); each Fetch app with the lazy and the eager Request; the listen() takeover.
// Run: node --import tsx bench/adapters.ts   (BENCH_MS per case, default 1500; about 30 s in all)
//      node --import tsx bench/adapters.ts 1 2 (only the native baseline and cases 1 and 2)
// Takeover vs the same handlers mounted directly: node --import tsx bench/adapters.ts 1 3 5 14 15 16

import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import express from 'express';
import Koa from 'koa';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { runNative } from '../src/app/run.ts';
import { prepareApp, toNativeApp } from '../src/app/resolve.ts';
import { fromFetchHandler } from '../src/app/adapters/fetch.ts';
import { fromNodeHandler } from '../src/app/adapters/node.ts';
import { ListenCapture, serveTakenServer } from '../src/app/takeover.ts';
import type { Environ, HeaderList, NativeApp, Responder, StartResponse } from '../src/app/types.ts';

const CASE_MS = Number(process.env.BENCH_MS ?? 1500);
const WARMUP_MS = Math.min(300, CASE_MS / 4);
const IN_FLIGHT = 16;

class NullResponder implements Responder {
  headSent = false;
  readonly aborted = false;
  status = 0;
  bytes = 0;
  head(status: number, _reason: string, _headers: HeaderList): void {
    this.status = status;
    this.headSent = true;
  }
  write(chunk: Uint8Array): boolean {
    this.bytes += chunk.length;
    return true;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  end(): void {
    // counted by the caller
  }
}

const input = Readable.from([]);
const template: Environ = {
  REQUEST_METHOD: 'GET',
  SCRIPT_NAME: '/app',
  PATH_INFO: '/hello',
  QUERY_STRING: 'x=1',
  SERVER_NAME: 'localhost',
  SERVER_PORT: '80',
  SERVER_PROTOCOL: 'HTTP/1.1',
  REQUEST_URI: '/app/hello?x=1',
  REMOTE_ADDR: '127.0.0.1',
  REMOTE_PORT: '40000',
  HTTP_HOST: 'localhost',
  HTTP_USER_AGENT: 'bench/1.0',
  HTTP_ACCEPT: '*/*',
  HTTP_ACCEPT_ENCODING: 'gzip, deflate',
  HTTP_CONNECTION: 'keep-alive',
  'postern.protocol': 'fastcgi',
  'postern.url_scheme': 'http',
  'postern.role': 'responder',
  'postern.input': input,
  'postern.signal': new AbortController().signal,
};

// A fresh environ and signal per request, as a connection makes them: listeners that the runner
// and undici's Request hang on the signal must not pile up on one shared object.
function environ(): Environ {
  return { ...template, 'postern.signal': new AbortController().signal };
}

async function measure(name: string, app: NativeApp): Promise<{ rate: number; cpuUs: number }> {
  // Check once that the case answers as expected before timing it.
  const probe = new NullResponder();
  await runNative(app, environ(), probe);
  if (probe.status !== 200 || probe.bytes !== 5) throw new Error(`${name}: got ${probe.status}, ${probe.bytes} bytes`);
  const run = async (ms: number): Promise<number> => {
    let count = 0;
    const deadline = performance.now() + ms;
    const loop = async (): Promise<void> => {
      while (performance.now() < deadline) {
        await runNative(app, environ(), new NullResponder());
        count++;
        // A server turns its event loop between reads: without this turn, work an adapter defers
        // to setImmediate (node:http's and the bridge's 'close' timing) piles up until the case
        // ends and its garbage is promoted, a cost no server pays.
        await new Promise(setImmediate);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, loop));
    return count;
  };
  await run(WARMUP_MS);
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const n = await run(CASE_MS);
  const cpu = process.cpuUsage(cpu0);
  // CPU time per request is the steadier figure on a machine shared with other work.
  return { rate: n / ((performance.now() - start) / 1000), cpuUs: (cpu.user + cpu.system) / n };
}

const nativeApp: NativeApp = (_env: Environ, start: StartResponse) => {
  start('200 OK', [['Content-Type', 'text/plain']]);
  return 'hello';
};

// What a Fetch handler itself pays before any bridge: undici's Response (18–20 µs on Node 20.20
// on the shared box), so the Fetch cases can be read as (case − this) = the bridge's own cost.
const nativeWithResponse: NativeApp = (_env: Environ, start: StartResponse) => {
  const res = new Response('hello', { headers: { 'content-type': 'text/plain' } });
  start(`${res.status} OK`, [['Content-Type', res.headers.get('content-type') ?? '']]);
  return 'hello';
};

const plainNode = (_req: IncomingMessage, res: ServerResponse): void => {
  res.setHeader('Content-Type', 'text/plain');
  res.end('hello');
};

const expressApp = express();
expressApp.get('/hello', (_req, res) => {
  res.type('text/plain').send('hello');
});

const koaApp = new Koa();
koaApp.use((ctx) => {
  ctx.body = 'hello';
});

const fastifyApp = Fastify({ logger: false });
fastifyApp.get('/hello', (_req, reply) => {
  void reply.type('text/plain').send('hello');
});
await prepareApp(fastifyApp);

const hono = new Hono();
hono.get('/hello', (c) => c.text('hello'));

// The listen() takeover as buildTree does it: the app's own server captured at listen(), each
// request emitted on it. Compare with the same handler mounted directly (the rows above).
function takeOver(listen: () => unknown): NativeApp {
  const capture = ListenCapture.start();
  try {
    listen();
  } finally {
    capture.stop();
  }
  const taken = capture.taken[0];
  if (taken === undefined) throw new Error('takeover: nothing listened');
  return serveTakenServer(taken);
}

const cases: Array<[string, NativeApp]> = [
  ['native (environ, startResponse)', nativeApp],
  ['node direct: plain (req, res)', fromNodeHandler(plainNode)],
  ['node replay: plain (req, res)', fromNodeHandler(plainNode, { bridge: 'replay' })],
  ['node direct: express@5', toNativeApp(expressApp)],
  ['node replay: express@5', toNativeApp(expressApp, 'auto', { bridge: 'replay' })],
  ['node direct: koa@3', toNativeApp(koaApp)],
  ['node replay: koa@3', toNativeApp(koaApp, 'auto', { bridge: 'replay' })],
  ['node direct: fastify@5', toNativeApp(fastifyApp)],
  ['node replay: fastify@5', toNativeApp(fastifyApp, 'auto', { bridge: 'replay' })],
  ['fetch lazy: plain (req) => Response', fromFetchHandler(() => new Response('hello', { headers: { 'content-type': 'text/plain' } }))],
  ['fetch eager: plain (req) => Response', fromFetchHandler(() => new Response('hello', { headers: { 'content-type': 'text/plain' } }), { fetchRequest: 'eager' })],
  ['fetch lazy: hono', toNativeApp(hono)],
  ['fetch eager: hono', toNativeApp(hono, 'auto', { fetchRequest: 'eager' })],
  ['native + new Response (handler\'s own cost)', nativeWithResponse],
  ['takeover: plain createServer().listen()', takeOver(() => createServer(plainNode).listen(0))],
  ['takeover: express@5 app.listen()', takeOver(() => expressApp.listen(0))],
  ['takeover: koa@3 app.listen()', takeOver(() => koaApp.listen(0))],
];

// Each case runs in its own process, so one case's garbage and JIT state do not tax the next.
// `node --import tsx bench/adapters.ts 2 4` runs only the baseline and cases 2 and 4.
const caseArg = process.argv.indexOf('--case');
if (caseArg !== -1) {
  const entry = cases[Number(process.argv[caseArg + 1])];
  if (entry === undefined) throw new Error('no such case');
  console.log(JSON.stringify(await measure(entry[0], entry[1])));
} else {
  const picked = process.argv.slice(2).map(Number);
  console.log(`node ${process.version}, ${IN_FLIGHT} requests in flight, ${CASE_MS} ms per case (+${WARMUP_MS} ms warm-up), one process per case`);
  let base = 0;
  for (const [i, [name]] of cases.entries()) {
    if (picked.length > 0 && i !== 0 && !picked.includes(i)) continue;
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--case', String(i)], { encoding: 'utf8', timeout: 30_000 });
    if (child.status !== 0) throw new Error(`${name}: ${child.stderr}`);
    const { rate, cpuUs } = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { rate: number; cpuUs: number };
    if (i === 0) base = cpuUs;
    const overhead = i === 0 ? '' : `  (+${(cpuUs - base).toFixed(1)} µs CPU vs native)`;
    console.log(`${name.padEnd(40)} ${Math.round(rate).toString().padStart(8)} req/s  ${cpuUs.toFixed(1).padStart(6)} µs CPU/req${overhead}`);
  }
}
