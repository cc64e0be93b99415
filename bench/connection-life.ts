// A connection's whole life, in process, from both ends of a real loopback TCP socket: the client
// connects, writes one request as nginx frames it without keep_conn, reads the response to the
// end and closes; postern's listener accepts, serves the native hello app and closes. Beside it the
// same loop against a canned responder (net.createServer that parses nothing and writes a fixed
// answer on the first chunk), so the ratio says what postern's own per-connection work costs.
// Client and server share the process, so the µs are both ends' CPU; only the difference (postern
// − canned) is postern's.
// Run: node --import tsx bench/connection-life.ts [--protocol fastcgi|scgi|uwsgi|http]
//        [--target both|postern|canned] [--n 20000] [--warmup 3000] [--conns 8] [--rounds 3]
//        [--budget-ms 60000]
// Instructions per connection (repeatable on a loaded machine): build with tsc, run the same
// target under callgrind with two --n and subtract (start-up and warm-up cancel):
//   npx tsc -p tsconfig.test.json --outDir /tmp/clb
//   valgrind --tool=callgrind --dump-instr=no --callgrind-out-file=/tmp/cg.%p \
//     node /tmp/clb/bench/connection-life.js --protocol scgi --target postern --rounds 1 --n 500
//   (again with --n 2500; per connection = (Ir(2500) − Ir(500)) / 2000). bench/connection-cost.sh does it.

import { createServer, connect, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { encodeBeginRequest, encodeParams, encodeStdinEnd } from '../protocols/fastcgi/index.ts';
import { encodeScgiRequest } from '../protocols/scgi/encoder.ts';
import { encodeUwsgiRequest } from '../protocols/uwsgi/encoder.ts';
import type { Protocol } from '../src/app/types.ts';
import { Tree } from '../src/app/tree.ts';
import { ServeContext } from '../src/server/context.ts';
import { createProtocolServer, listenOn } from '../src/server/listen.ts';
import { benchApps } from './apps.ts';
import { nginxGetParams } from './hot-path-params.ts';

const args = process.argv.slice(2);
function opt(name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i === -1 ? fallback : (args[i + 1] ?? fallback);
}
const PROTOCOL = opt('--protocol', 'fastcgi') as Protocol;
if (!['fastcgi', 'scgi', 'uwsgi', 'http'].includes(PROTOCOL)) throw new Error('--protocol is fastcgi, scgi, uwsgi or http');
const TARGET = opt('--target', 'both');
if (!['both', 'postern', 'canned'].includes(TARGET)) throw new Error('--target is both, postern or canned');
const N = Number(opt('--n', '20000'));
const WARMUP = Number(opt('--warmup', '3000'));
const CONNS = Number(opt('--conns', '8'));
const ROUNDS = Number(opt('--rounds', '3'));
// Bounded whatever the arguments: a batch stops early past this (--budget-ms; under callgrind on a
// loaded machine 700 connections take longer than the 60 s default, and a batch cut short made
// the per-connection count meaningless: bench/connection-cost.sh raises it and checks the count).
const BATCH_BUDGET_MS = Number(opt('--budget-ms', '60000'));

const URI = '/bench/hello';

/** One GET as nginx frames it upstream without keep_conn. */
function request(): Buffer {
  const params = nginxGetParams(URI);
  switch (PROTOCOL) {
    case 'scgi':
      return encodeScgiRequest([['CONTENT_LENGTH', '0'], ['SCGI', '1'], ...params.filter(([n]) => n !== 'CONTENT_LENGTH')]);
    case 'uwsgi':
      return encodeUwsgiRequest(params);
    case 'http': {
      // nginx's proxy_pass: HTTP/1.0-style close, the browser's headers passed on.
      const headers = params.filter(([n]) => n.startsWith('HTTP_') && n !== 'HTTP_HOST').map(([n, v]) => `${n.slice(5).toLowerCase().replace(/_/g, '-')}: ${v}\r\n`);
      return Buffer.from(`GET ${URI} HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n${headers.join('')}\r\n`, 'latin1');
    }
    default:
      return Buffer.concat([encodeBeginRequest(1, 1, false), ...encodeParams(1, params), encodeStdinEnd(1)]);
  }
}

function record(type: number, content: Buffer): Buffer {
  const pad = (8 - (content.length % 8)) % 8;
  return Buffer.concat([Buffer.from([1, type, 0, 1, content.length >> 8, content.length & 0xff, pad, 0]), content, Buffer.alloc(pad)]);
}

/** What the canned responder writes: the hello answer in the protocol's framing. */
function cannedAnswer(): Buffer {
  const cgi = 'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nHello World';
  switch (PROTOCOL) {
    case 'fastcgi':
      return Buffer.concat([record(6, Buffer.from(cgi)), record(6, Buffer.alloc(0)), record(3, Buffer.alloc(8))]);
    case 'scgi':
      return Buffer.from(cgi, 'latin1');
    default:
      return Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nHello World', 'latin1');
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function startCanned(): Promise<{ port: number; close: () => void }> {
  const answer = cannedAnswer();
  const server = createServer({ noDelay: true }, (sock) => {
    sock.on('error', () => {});
    sock.once('data', () => sock.end(answer));
  });
  const port = await listen(server);
  return { port, close: () => server.close() };
}

async function startPostern(): Promise<{ port: number; close: () => void }> {
  const tree = new Tree({ onError: () => undefined });
  tree.mount(benchApps.bench, '/bench');
  // Production defaults for every limit and timeout (the sweep runs as it would).
  const ctx = new ServeContext({ tree });
  const server = createProtocolServer(PROTOCOL, ctx);
  const bound = await listenOn(server, PROTOCOL, { kind: 'tcp', host: '127.0.0.1', port: 0 });
  return { port: bound.port!, close: () => { server.close(); ctx.destroyAll(); ctx.close(); } };
}

/** `n` connections, `CONNS` at a time: connect, write, read to the end, close. Bytes read, in total. */
function batch(port: number, wire: Buffer, n: number): Promise<{ done: number; bytes: number }> {
  let started = 0;
  let done = 0;
  let bytes = 0;
  const deadline = Date.now() + BATCH_BUDGET_MS;
  return new Promise((resolve, reject) => {
    const one = (): void => {
      if (started >= n || Date.now() > deadline) {
        if (done === started) resolve({ done, bytes });
        return;
      }
      started++;
      const s = connect({ port, host: '127.0.0.1', noDelay: true });
      s.on('connect', () => s.write(wire));
      s.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      s.on('error', reject);
      s.on('close', () => {
        done++;
        one();
      });
    };
    for (let i = 0; i < CONNS && i < n; i++) one();
  });
}

async function measure(name: string, start: () => Promise<{ port: number; close: () => void }>): Promise<number> {
  const target = await start();
  const wire = request();
  try {
    const warm = await batch(target.port, wire, WARMUP);
    if (warm.bytes === 0 && WARMUP > 0) throw new Error(`${name}: no response bytes`);
    console.log(`  ${name} warm-up: ${String(warm.done)} connections`);
    const per: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const x = await batch(target.port, wire, N);
      const cpu = process.cpuUsage(c0);
      const wallUs = (performance.now() - t0) * 1000;
      per.push((cpu.user + cpu.system) / x.done);
      console.log(`  ${name} round ${String(r + 1)}: ${((cpu.user + cpu.system) / x.done).toFixed(1)} µs CPU/connection (user ${(cpu.user / x.done).toFixed(1)}, sys ${(cpu.system / x.done).toFixed(1)}), ${(1e6 / (wallUs / x.done)).toFixed(0)} conn/s, ${String(x.done)} connections`);
    }
    return [...per].sort((a, b) => a - b)[per.length >> 1] ?? NaN;
  } finally {
    target.close();
  }
}

console.log(`${process.version} ${PROTOCOL} connection life: ${String(N)} connections × ${String(ROUNDS)} rounds, ${String(CONNS)} at a time, after ${String(WARMUP)}`);
const results: Record<string, number> = {};
if (TARGET !== 'canned') results['postern'] = await measure('postern', startPostern);
if (TARGET !== 'postern') results['canned'] = await measure('canned', startCanned);
const p = results['postern'];
const c = results['canned'];
if (p !== undefined && c !== undefined) {
  console.log(`${PROTOCOL}: postern ${p.toFixed(1)} µs, canned ${c.toFixed(1)} µs CPU/connection (both ends); postern's own ${(p - c).toFixed(1)} µs; canned/postern ${(c / p).toFixed(2)}`);
}
