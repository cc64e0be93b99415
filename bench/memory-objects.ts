// What one FastCGI decoder or connection keeps in memory, in process, from the server's side: N
// of them made and kept alive, the heap measured after gc before and after. The idle-connection
// phase of bench/memory.ts measures the whole process; this isolates postern's part of it.
// Run the tsc build (under tsx, esbuild's keepNames gives each arrow-function class field a
// property dictionary and inflates the figures):
//   npx tsc -p tsconfig.test.json --outDir /tmp/pbn && node --expose-gc /tmp/pbn/bench/memory-objects.js
//     [decoder|decoder-served|socket|connection|connection-served] [N=20000]
// `socket` is the stand-in socket alone, to subtract from the connection figures.
import type { Socket } from 'node:net';
import type { DecoderSink } from '../protocols/common/events.ts';
import { encodeBeginRequest, encodeParams, encodeStdinEnd, FastCgiDecoder } from '../protocols/fastcgi/index.ts';
import { Tree } from '../src/app/tree.ts';
import { ServeContext } from '../src/server/context.ts';
import { FastCgiConnection } from '../src/server/fastcgi-connection.ts';
import { benchApps } from './apps.ts';
import { nginxGetParams } from './hot-path-params.ts';
import { StandInSocket } from './stand-in-socket.ts';

const what = process.argv[2] ?? 'connection-served';
const N = Number(process.argv[3] ?? 20000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const request = Buffer.concat([encodeBeginRequest(1, 1, true), ...encodeParams(1, nginxGetParams('/bench/hello')), encodeStdinEnd(1)]);

const noop = (): void => {};
const sink: DecoderSink = { request: noop, body: noop, bodyEnd: noop, data: noop, dataEnd: noop, abort: noop, reply: noop, error: noop };

const tree = new Tree({ onError: () => undefined });
tree.mount(benchApps.bench, '/bench');
const ctx = new ServeContext({ tree, headerTimeoutMs: 0, bodyIdleTimeoutMs: 0, keepAliveTimeoutMs: 0 });

function make(): unknown {
  switch (what) {
    case 'decoder':
      return new FastCgiDecoder(sink, { maxConns: 10100 });
    case 'decoder-served': {
      const d = new FastCgiDecoder(sink, { maxConns: 10100 });
      d.push(request);
      d.release(1);
      return d;
    }
    case 'socket':
      return new StandInSocket();
    case 'connection': {
      const s = new StandInSocket();
      new FastCgiConnection(s as unknown as Socket, ctx);
      return s;
    }
    case 'connection-served': {
      const s = new StandInSocket();
      new FastCgiConnection(s as unknown as Socket, ctx);
      s.emit('data', request);
      return s;
    }
    default:
      throw new Error('decoder, decoder-served, socket, connection or connection-served');
  }
}

const settle = async (): Promise<void> => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  gc();
  gc();
};
// Warm-up: code, type feedback, the young generation.
{
  const warm: unknown[] = [];
  for (let i = 0; i < 2000; i++) warm.push(make());
}
await settle();
const m0 = process.memoryUsage();
const keep = new Array<unknown>(N);
for (let i = 0; i < N; i++) keep[i] = make();
await settle();
const m1 = process.memoryUsage();
const kib = (bytes: number): string => (bytes / N / 1024).toFixed(2);
console.log(`${process.version} ${what}, ${String(N)} kept: heap ${kib(m1.heapUsed - m0.heapUsed)} KiB, external ${kib(m1.external - m0.external)} KiB per object (${String(keep.length)})`);
ctx.close();
