// Decoder benchmark, from the application's side: postern's FastCGI decoder against fastcgi-stream
// 1.0.0 on the same bytes, fed in 64 KiB chunks. Run: node --import tsx bench/decoder-fastcgi.ts

import { EventEmitter } from 'node:events';
import fcgi from 'fastcgi-stream';
import type { StreamRecord } from 'fastcgi-stream';
import type { DecoderSink, RequestHead } from '../protocols/common/events.ts';
import type { ProtocolError } from '../protocols/common/errors.ts';
import { FastCgiDecoder, encodeBeginRequest, encodeParams, encodeStdin, encodeStdinEnd } from '../protocols/fastcgi/index.ts';

const CHUNK = 64 * 1024;
const RUNS = 5;
// Keeps the whole run bounded even on a slow, shared machine.
const DEADLINE_MS = 50_000;
const started = performance.now();

/** What nginx sends for a browser GET with the stock fastcgi_params (PROTOCOLS.md B.2), ~1 KB. */
function nginxParams(i: number): Array<[string, string]> {
  const path = `/app/items/${i % 977}`;
  return [
    ['QUERY_STRING', `page=${i % 13}&sort=name`], ['REQUEST_METHOD', 'GET'], ['CONTENT_TYPE', ''], ['CONTENT_LENGTH', ''],
    ['SCRIPT_NAME', path], ['REQUEST_URI', `${path}?page=${i % 13}&sort=name`], ['DOCUMENT_URI', path],
    ['DOCUMENT_ROOT', '/usr/share/nginx/html'], ['SERVER_PROTOCOL', 'HTTP/1.1'], ['REQUEST_SCHEME', 'https'], ['HTTPS', 'on'],
    ['GATEWAY_INTERFACE', 'CGI/1.1'], ['SERVER_SOFTWARE', 'nginx/1.22.1'], ['REMOTE_ADDR', `10.0.${i % 250}.${i % 200}`],
    ['REMOTE_PORT', String(30000 + (i % 30000))], ['SERVER_ADDR', '10.0.0.1'], ['SERVER_PORT', '443'], ['SERVER_NAME', 'example.com'],
    ['REDIRECT_STATUS', '200'], ['HTTP_HOST', 'example.com'],
    ['HTTP_USER_AGENT', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'],
    ['HTTP_ACCEPT', 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'],
    ['HTTP_ACCEPT_LANGUAGE', 'en-US,en;q=0.9,de;q=0.8'], ['HTTP_ACCEPT_ENCODING', 'gzip, deflate, br'],
    ['HTTP_COOKIE', `session=${'s'.repeat(40)}${i}; theme=dark; consent=yes; _ga=GA1.2.${1000000 + i}.1700000000`],
    ['HTTP_REFERER', 'https://example.com/app/items'], ['HTTP_CONNECTION', 'keep-alive'],
  ];
}

/** nginx framing: id 1, KEEP_CONN, one PARAMS record, STDIN in ≤ 32 KiB records padded to 8. */
function nginxRequest(i: number, body: Buffer): Buffer[] {
  const parts = [encodeBeginRequest(1, 1, true), ...encodeParams(1, nginxParams(i))];
  for (let o = 0; o < body.length; o += 32 * 1024) parts.push(...encodeStdin(1, body.subarray(o, o + 32 * 1024)));
  parts.push(encodeStdinEnd(1));
  return parts;
}

interface Workload {
  readonly name: string;
  readonly input: Buffer;
  readonly requests: number;
  readonly bodyBytes: number;
}

function workload(name: string, requests: number, bodySize: number): Workload {
  const body = Buffer.alloc(bodySize, 0x61);
  const parts: Buffer[] = [];
  for (let i = 0; i < requests; i++) parts.push(...nginxRequest(i, body));
  return { name, input: Buffer.concat(parts), requests, bodyBytes: requests * bodySize };
}

function chunks(input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < input.length; o += CHUNK) out.push(input.subarray(o, o + CHUNK));
  return out;
}

interface Result {
  requests: number;
  bodyBytes: number;
}

/** A sink doing what a connection must at least do: look at the head, count body bytes, release. */
class CountingSink implements DecoderSink {
  requests = 0;
  params = 0;
  bodyBytes = 0;
  decoder: FastCgiDecoder | null = null;
  request(head: RequestHead): void {
    this.requests++;
    this.params += head.params.length;
  }
  body(_id: number, chunk: Buffer): void {
    this.bodyBytes += chunk.length;
  }
  bodyEnd(id: number): void {
    this.decoder!.release(id);
  }
  data(): void {}
  dataEnd(): void {}
  abort(): void {}
  reply(): void {}
  error(err: ProtocolError): void {
    throw err;
  }
}

function runPostern(pieces: readonly Buffer[]): Result {
  const sink = new CountingSink();
  const decoder = new FastCgiDecoder(sink);
  sink.decoder = decoder;
  for (const p of pieces) decoder.push(p);
  decoder.end();
  return { requests: sink.requests, bodyBytes: sink.bodyBytes };
}

function runFastcgiStream(pieces: readonly Buffer[]): Result {
  const socket = new EventEmitter() as EventEmitter & { write(): boolean };
  socket.write = () => true;
  const stream = new fcgi.FastCGIStream(socket);
  let requests = 0;
  let bodyBytes = 0;
  stream.on('record', (_id, record) => {
    // A request is complete at its empty STDIN; params are decoded by the record itself.
    if (record.TYPE === fcgi.records.StdIn.TYPE) {
      const n = (record as StreamRecord).data.length;
      if (n === 0) requests++;
      else bodyBytes += n;
    }
  });
  for (const p of pieces) socket.emit('data', p);
  return { requests, bodyBytes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function measure(name: string, w: Workload, run: (pieces: readonly Buffer[]) => Result): number {
  const pieces = chunks(w.input);
  const check = run(pieces); // warm-up, and a correctness check
  if (check.requests !== w.requests || check.bodyBytes !== w.bodyBytes) {
    throw new Error(`${name} decoded ${check.requests} requests / ${check.bodyBytes} body bytes, expected ${w.requests} / ${w.bodyBytes}`);
  }
  const times: number[] = [];
  for (let i = 0; i < RUNS && performance.now() - started < DEADLINE_MS; i++) {
    const t0 = performance.now();
    run(pieces);
    times.push(performance.now() - t0);
  }
  return median(times);
}

const workloads = [workload('nginx-like GET, 27 params, 64 B body', 20_000, 64), workload('upload, 256 KiB body in 32 KiB records', 400, 256 * 1024)];

console.log(`node ${process.version}; input fed in ${CHUNK / 1024} KiB chunks; median of ${RUNS} runs after one warm-up`);
for (const w of workloads) {
  const ours = measure('postern', w, runPostern);
  const theirs = measure('fastcgi-stream', w, runFastcgiStream);
  const row = (name: string, ms: number): string =>
    `  ${name.padEnd(15)} ${ms.toFixed(1).padStart(8)} ms  ${Math.round(w.requests / (ms / 1000)).toLocaleString('en-US').padStart(11)} req/s  ` +
    `${(w.bodyBytes / 1e6 / (ms / 1000)).toFixed(1).padStart(8)} body MB/s  ${(w.input.length / 1e6 / (ms / 1000)).toFixed(1).padStart(8)} wire MB/s`;
  console.log(`${w.name}: ${w.requests} requests, ${(w.input.length / 1e6).toFixed(1)} MB on the wire`);
  console.log(row('postern', ours));
  console.log(row('fastcgi-stream', theirs));
  console.log(`  ratio: postern is ${(theirs / ours).toFixed(1)}x faster`);
}
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
