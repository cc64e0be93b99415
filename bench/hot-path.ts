// CPU per request on postern's FastCGI hot path, in process, from the server's side: what nginx
// sends for one GET (BEGIN_REQUEST with KEEP_CONN, the stock fastcgi_params plus browser headers,
// the empty PARAMS and STDIN records, in one chunk) is pushed into a real FastCgiConnection over a
// stand-in socket, through the decoder, environ, tree, app runner and encoder, until END_REQUEST is
// written; then the next request on that connection. No syscalls, no nginx: the µs here are the
// part of a request postern itself can change. Medians of several timed rounds after a warm-up.
// With --protocol fastcgi-close, scgi or uwsgi every request comes on a new connection (nginx
// without keep_conn), so the per-connection cost is in the figure too.
// Run: node --import tsx bench/hot-path.ts [--app hello|hello-async|object|bytes-1m|hono|hono-eager|fetch|fetch-eager|response-cost
//        |node|node-replay|express|express-replay|koa|fastify] [--conns 32]
//        [--protocol fastcgi|fastcgi-close|scgi|uwsgi] [--requests 200000] [--rounds 5] [--warmup 20000] [--json out.json]
//        [--access-log combined|json|TEMPLATE] (the batched access log on, into a temp file)
//        [--layouts 1|3] (3: three clients' header orders in turn, so by-position name caches miss)
// Figures that match production codegen come from the tsc build: npx tsc -p tsconfig.test.json
//   --outDir /tmp/pb && node /tmp/pb/bench/hot-path.js (tsx adds esbuild's helpers to hot functions).
// Profile: node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/hot-path.ts, then
//        node --import tsx bench/flame.ts /tmp/prof/*.cpuprofile

import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccessLog } from '../src/log/access-log.ts';
import type { Socket } from 'node:net';
import { encodeBeginRequest, encodeParams, encodeStdinEnd } from '../protocols/fastcgi/index.ts';
import { encodeScgiRequest } from '../protocols/scgi/encoder.ts';
import { encodeUwsgiRequest } from '../protocols/uwsgi/encoder.ts';
import { Tree } from '../src/app/tree.ts';
import { ServeContext } from '../src/server/context.ts';
import { FastCgiConnection } from '../src/server/fastcgi-connection.ts';
import { StreamConnection } from '../src/server/stream-connection.ts';
import { benchApps } from './apps.ts';
import { Hono } from 'hono';
import express from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fromNodeHandler } from '../src/app/adapters/node.ts';
import { toNativeApp } from '../src/app/resolve.ts';
import { fromFetchHandler } from '../src/app/adapters/fetch.ts';
import { native } from '../src/app/adapters/marker.ts';
import type { Environ, StartResponse } from '../src/app/types.ts';
import { nginxGetParams } from './hot-path-params.ts';
import { app as koaApp } from './peers/frameworks/koa.ts';
import { app as fastifyApp } from './peers/frameworks/fastify.ts';
import { StandInSocket } from './stand-in-socket.ts';

const args = process.argv.slice(2);
function opt(name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i === -1 ? fallback : (args[i + 1] ?? fallback);
}
const APP = opt('--app', 'hello');
const CONNS = Number(opt('--conns', '32'));
const REQUESTS = Number(opt('--requests', APP === 'bytes-1m' ? '5000' : '200000'));
const ROUNDS = Number(opt('--rounds', '5'));
const JSON_OUT = args.includes('--json') ? opt('--json', '') : undefined;
const PROTOCOL = opt('--protocol', 'fastcgi');
const ACCESS_LOG = opt('--access-log', '');
// 1: every request with the same headers; 3: three clients' header layouts in turn (hot-path-params.ts).
const LAYOUTS = Math.max(1, Number(opt('--layouts', '1')));
if (!['fastcgi', 'fastcgi-close', 'scgi', 'uwsgi'].includes(PROTOCOL)) throw new Error('--protocol is fastcgi, fastcgi-close, scgi or uwsgi');
const PER_CONNECTION = PROTOCOL !== 'fastcgi';
// Bounded whatever the arguments: a round stops early past this.
const ROUND_BUDGET_MS = 15_000;

const PATHS: Record<string, string> = {
  hello: '/bench/hello', 'hello-async': '/bench/hello-async', object: '/', 'bytes-1m': '/bench/bytes/1048576',
  // The Fetch bridge: Hono and a plain handler, lazy (default) and eager Request; `response-cost` is a
  // native app that builds the same undici Response and drops it, the handler's own share.
  hono: '/hono/hello', 'hono-eager': '/hono-eager/hello', fetch: '/fetch/hello', 'fetch-eager': '/fetch-eager/hello', 'response-cost': '/response-cost',
  // The Node bridges: a plain (req, res) hello and Express, through the direct bridge and the replay.
  node: '/node/hello', 'node-replay': '/node-replay/hello', express: '/express/hello', 'express-replay': '/express-replay/hello',
  // The frameworks bench's own hello apps (bench/peers/frameworks/), as `npm run bench --scenario frameworks` mounts them.
  koa: '/koa/', fastify: '/fastify/',
};
const path = PATHS[APP];
if (path === undefined) throw new Error(`--app is one of ${Object.keys(PATHS).join(', ')}`);

const hono = new Hono();
hono.get('/hello', (c) => c.text('Hello World'));
const fetchHello = (): Response => new Response('Hello World', { headers: { 'content-type': 'text/plain' } });
const nodeHello = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
  res.end('Hello World');
};
const expressApp = express();
expressApp.get('/hello', (_req, res) => {
  res.type('text/plain').send('Hello World');
});
const responseCost = native((_env: Environ, start: StartResponse) => {
  const res = fetchHello();
  start(`${res.status} OK`, [['Content-Type', res.headers.get('content-type') ?? ''], ['Content-Length', '11']]);
  return 'Hello World';
});

/** One GET as nginx frames it for the protocol, in one chunk. */
function nginxGet(uri: string, layout: number): Buffer {
  const params = nginxGetParams(uri, layout);
  if (PROTOCOL === 'scgi') return encodeScgiRequest([['CONTENT_LENGTH', '0'], ['SCGI', '1'], ...params.filter(([n]) => n !== 'CONTENT_LENGTH')]);
  if (PROTOCOL === 'uwsgi') return encodeUwsgiRequest(params);
  return Buffer.concat([encodeBeginRequest(1, 1, PROTOCOL === 'fastcgi'), ...encodeParams(1, params), encodeStdinEnd(1)]);
}

/**
 * Just enough of net.Socket for the connections: FastCGI writes are scanned for the END_REQUEST
 * record (type 3), an SCGI/uwsgi response ends with end(); the next request is pushed from
 * setImmediate, as libuv would deliver it.
 */
const WRITES = { n: 0 };

class FakeSocket extends StandInSocket {
  bytesOut = 0;
  writes = 0;
  #onEnd: () => void;
  constructor(onEnd: () => void) {
    super();
    this.#onEnd = onEnd;
  }
  override end(): this {
    if (PER_CONNECTION) this.#onEnd();
    return this;
  }
  override write(buf: Buffer): boolean {
    this.bytesOut += buf.length;
    this.writes++;
    WRITES.n++;
    // END_REQUEST is the last 16 bytes of what a finished response writes.
    if (PROTOCOL === 'fastcgi' && buf.length >= 16 && buf[buf.length - 15] === 3) this.#onEnd();
    return true;
  }
}

async function round(requests: number): Promise<{ wallUs: number; cpuUs: number; done: number; writes: number }> {
  const tree = new Tree({ onError: () => undefined });
  tree.mount(benchApps.object, '/');
  tree.mount(benchApps.bench, '/bench');
  tree.mount(hono, '/hono');
  tree.mount(native(fromFetchHandler(hono.fetch, { fetchRequest: 'eager' })), '/hono-eager');
  tree.mount(native(fromFetchHandler(fetchHello)), '/fetch');
  tree.mount(native(fromFetchHandler(fetchHello, { fetchRequest: 'eager' })), '/fetch-eager');
  tree.mount(responseCost, '/response-cost');
  tree.mount(native(fromNodeHandler(nodeHello)), '/node');
  tree.mount(native(fromNodeHandler(nodeHello, { bridge: 'replay' })), '/node-replay');
  tree.mount(native(toNativeApp(expressApp)), '/express');
  tree.mount(native(toNativeApp(expressApp, 'auto', { bridge: 'replay' })), '/express-replay');
  tree.mount(koaApp, '/koa');
  tree.mount(fastifyApp, '/fastify');
  const logFile = join(tmpdir(), `postern-hot-path-${String(process.pid)}.log`);
  const accessLog = ACCESS_LOG === '' ? undefined : createAccessLog({ format: ACCESS_LOG, file: logFile });
  const ctx = new ServeContext({ tree, headerTimeoutMs: 0, bodyIdleTimeoutMs: 0, keepAliveTimeoutMs: 0, ...(accessLog === undefined ? {} : { accessLog }) });
  const wires = Array.from({ length: LAYOUTS }, (_, i) => nginxGet(path!, i));
  let nth = 0;
  let started = 0;
  let done = 0;
  WRITES.n = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const deadline = Date.now() + ROUND_BUDGET_MS;
    const connect = (s: FakeSocket): void => {
      const sock = s as unknown as Socket;
      if (PROTOCOL === 'fastcgi' || PROTOCOL === 'fastcgi-close') new FastCgiConnection(sock, ctx);
      else new StreamConnection(sock, ctx, PROTOCOL as 'scgi' | 'uwsgi');
    };
    const socket = (): FakeSocket => {
      const s: FakeSocket = new FakeSocket(() => {
        done++;
        setImmediate(next, PER_CONNECTION ? undefined : s);
      });
      return s;
    };
    const next = (reuse: FakeSocket | undefined): void => {
      if (started >= requests || Date.now() > deadline) {
        if (done === started) resolve();
        return;
      }
      started++;
      const s = reuse ?? socket();
      if (reuse === undefined) connect(s);
      s.emit('data', wires[nth++ % LAYOUTS]);
    };
    for (let i = 0; i < CONNS; i++) {
      if (PER_CONNECTION) {
        next(undefined);
      } else {
        const s = socket();
        connect(s);
        next(s);
      }
    }
  });
  // The lines still pending are part of the cost: written (and their CPU counted) before the clock stops.
  await accessLog?.close();
  const cpu = process.cpuUsage(c0);
  ctx.close();
  if (accessLog !== undefined) rmSync(logFile, { force: true });
  return { wallUs: (performance.now() - t0) * 1000, cpuUs: cpu.user + cpu.system, done, writes: WRITES.n };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

await round(Number(opt('--warmup', String(Math.min(REQUESTS, 20_000)))));
const per: number[] = [];
const wall: number[] = [];
let writesPer = 0;
for (let r = 0; r < ROUNDS; r++) {
  const x = await round(REQUESTS);
  per.push(x.cpuUs / x.done);
  // Socket writes per request: each is a syscall on a real connection (writev when corked).
  writesPer = x.writes / x.done;
  wall.push(x.wallUs / x.done);
}
const result = { node: process.version, app: APP, protocol: PROTOCOL, conns: CONNS, layouts: LAYOUTS, accessLog: ACCESS_LOG === '' ? 'off' : ACCESS_LOG, requests: REQUESTS, writesPerRequest: writesPer, cpuUsPerRequest: median(per), wallUsPerRequest: median(wall), rounds: per };
console.log(`${process.version} ${PROTOCOL} app=${APP} conns=${CONNS}${LAYOUTS > 1 ? ` layouts=${String(LAYOUTS)}` : ''} access log ${result.accessLog}: ${result.cpuUsPerRequest.toFixed(2)} µs CPU/request (median of ${ROUNDS}; rounds ${per.map((x) => x.toFixed(2)).join(' ')}), ${(1e6 / result.wallUsPerRequest).toFixed(0)} req/s in process, ${writesPer.toFixed(2)} socket writes/request`);
if (JSON_OUT !== undefined) writeFileSync(JSON_OUT, JSON.stringify(result, null, 2) + '\n');
