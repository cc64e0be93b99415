// The floor under any `(req, res)` bridge that hands an app genuine node:http objects (issue 12):
// what Node itself spends, in process, to build an IncomingMessage and a ServerResponse on a
// socket, deliver them through an http.Server's 'request', let a hello handler set a header and
// end('Hello World'), and see 'finish'. No gateway, no environ, no parsing, nothing of postern's.
// Three modes, interleaved round by round so each meets the same moments of the machine:
//   loop            the harness alone: the handler called with plain objects, a promise settled
//                   per request as 'finish' settles one in the other modes;
//   objects         new IncomingMessage + ServerResponse per request on one kept Duplex (what a
//                   keep-alive socket gives node:http), detached after 'finish';
//   objects+socket  the same with a new Duplex per request, destroyed after 'finish' (postern's
//                   bridge today, one socket per bridged request).
// objects − loop is Node's own cost per request for the two objects and the response's trip onto
// the socket: a bridge that gives apps these objects cannot cost less than that over a native app.
// Run: node --import tsx bench/node-objects.ts [--n 50000] [--rounds 5]
// Production codegen: npx tsc -p tsconfig.test.json --outDir /tmp/pb && node /tmp/pb/bench/node-objects.js

import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { median } from './wrk.ts';

const args = process.argv.slice(2);
function opt(name: string, fallback: number): number {
  const i = args.indexOf(name);
  const value = i === -1 ? fallback : Number(args[i + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} takes a positive integer`);
  return value;
}
const N = opt('--n', 50_000);
const ROUNDS = opt('--rounds', 5);
// Bounded whatever the arguments: a round stops early past this, and its figure is per request done.
const ROUND_BUDGET_MS = 15_000;

// Every byte the responses wrote, over all sockets, and (outside the timed loop) the text of one
// response: a mode whose responses never reached a socket would measure nothing, so each round
// checks both (below).
let written = 0;
let captured: string[] | undefined;

/** A socket that takes every write at once and carries nothing to read. */
class SinkSocket extends Duplex {
  override _read(): void {
    // nothing to read: the request has no body
  }
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    written += chunk.length;
    captured?.push(chunk.toString());
    callback();
  }
}

type Res = Pick<ServerResponse, 'setHeader' | 'end'>;
const hello = (_req: unknown, res: Res): void => {
  res.setHeader('Content-Type', 'text/plain');
  res.end('Hello World');
};

const server = createServer(hello);
const HEADERS = ['Host', 'localhost', 'User-Agent', 'wrk', 'Accept', '*/*'];

function objectsRequest(socket: SinkSocket): Promise<void> {
  const req = new IncomingMessage(socket as never);
  req.method = 'GET';
  req.url = '/hello';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.httpVersion = '1.1';
  req.rawHeaders = HEADERS;
  req.complete = true;
  req.push(null);
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  const done = new Promise<void>((resolve) => res.once('finish', resolve));
  server.emit('request', req, res);
  return done.then(() => res.detachSocket(socket as never));
}

// The loop mode's stand-ins: the same call shape and one promise per request, nothing of node:http.
const plainRes = {
  headers: new Map<string, string>(),
  done: undefined as (() => void) | undefined,
  setHeader(name: string, value: string) {
    this.headers.set(name, value);
    return this;
  },
  end(_chunk: string) {
    const done = this.done;
    process.nextTick(() => done?.());
    return this;
  },
};

async function run(mode: string): Promise<number> {
  const kept = new SinkSocket();
  const deadline = performance.now() + ROUND_BUDGET_MS;
  const before = written;
  const start = process.cpuUsage();
  let done = 0;
  for (; done < N && (done % 1000 !== 0 || performance.now() < deadline); done++) {
    if (mode === 'loop') {
      await new Promise<void>((resolve) => {
        plainRes.done = resolve;
        hello({}, plainRes as unknown as Res);
      });
    } else if (mode === 'objects') {
      await objectsRequest(kept);
    } else {
      const socket = new SinkSocket();
      await objectsRequest(socket);
      socket.destroy();
    }
  }
  const used = process.cpuUsage(start);
  if (mode !== 'loop') {
    // A head and a body for every request, and one more response read back whole.
    captured = [];
    await objectsRequest(mode === 'objects' ? kept : new SinkSocket());
    const text = captured.join('');
    captured = undefined;
    if (written - before < done * 60 || !/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nHello World$/.test(text)) {
      throw new Error(`${mode}: ${written - before} bytes written for ${done} responses; one response read back: ${JSON.stringify(text)}`);
    }
  }
  return (used.user + used.system) / done;
}

const MODES = ['loop', 'objects', 'objects+socket'];
const results = new Map<string, number[]>(MODES.map((m) => [m, []]));
for (const mode of MODES) await run(mode); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? MODES : [...MODES].reverse();
  for (const mode of order) results.get(mode)?.push(await run(mode));
}
const med = (mode: string): number => median(results.get(mode) ?? []);
console.log(`node ${process.version}, ${N} requests × ${ROUNDS} rounds, µs CPU per request (median; rounds)`);
for (const mode of MODES) {
  console.log(`${mode.padEnd(15)} ${med(mode).toFixed(2).padStart(6)}  (${(results.get(mode) ?? []).map((x) => x.toFixed(2)).join(' ')})`);
}
console.log(`objects − loop           ${(med('objects') - med('loop')).toFixed(2)} µs: Node's own request and response objects on a kept socket`);
console.log(`objects+socket − loop    ${(med('objects+socket') - med('loop')).toFixed(2)} µs: the same with a socket per request`);
