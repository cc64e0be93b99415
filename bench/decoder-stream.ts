// Decoder throughput for SCGI and uwsgi, from the application's side: how many request heads per
// second a decoder turns into events, and how fast it streams a body. No sockets; a no-op sink.
// Run: node --import tsx bench/decoder-stream.ts [msPerCase]   (default 300 ms per case)

import type { DecoderSink, Decoder, RequestHead } from '../protocols/common/events.ts';
import { ScgiDecoder, encodeScgiRequest, scgiParams } from '../protocols/scgi/index.ts';
import { UwsgiDecoder, encodeUwsgiRequest } from '../protocols/uwsgi/index.ts';

// The params nginx 1.22.1 sends with Debian's scgi_params/uwsgi_params for a small GET, as
// captured in test/protocols/{scgi,uwsgi}.test.ts.
const NGINX_PARAMS: Array<[string, string]> = [
  ['REQUEST_METHOD', 'GET'],
  ['REQUEST_URI', '/s/app/par?x=1&y=%20z'],
  ['QUERY_STRING', 'x=1&y=%20z'],
  ['CONTENT_TYPE', ''],
  ['DOCUMENT_URI', '/s/app/par'],
  ['DOCUMENT_ROOT', '/var/www/html'],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['REQUEST_SCHEME', 'http'],
  ['REMOTE_ADDR', '127.0.0.1'],
  ['REMOTE_PORT', '52998'],
  ['SERVER_PORT', '80'],
  ['SERVER_NAME', 'localhost'],
  ['HTTP_HOST', 'example.test'],
  ['HTTP_USER_AGENT', 'curl/7.88.1'],
  ['HTTP_ACCEPT', '*/*'],
  ['HTTP_COOKIE', 'a=1'],
];

class NullSink implements DecoderSink {
  requests = 0;
  bodyBytes = 0;
  request(head: RequestHead): void {
    this.requests += head.params.length > 0 ? 1 : 0;
  }
  body(_id: number, chunk: Buffer): void {
    this.bodyBytes += chunk.length;
  }
  bodyEnd(): void {}
  data(): void {}
  dataEnd(): void {}
  abort(): void {}
  reply(): void {}
  error(err: Error): void {
    throw err;
  }
}

type Make = (sink: DecoderSink) => Decoder;

/** Decodes `pieces` with a fresh decoder, repeatedly, for about `ms`; returns runs per second. */
function rate(make: Make, pieces: readonly Buffer[], ms: number): { perSec: number; sink: NullSink } {
  const sink = new NullSink();
  let runs = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 200; i++) {
      const d = make(sink);
      for (const p of pieces) d.push(p);
      d.end();
    }
    runs += 200;
    elapsed = process.hrtime.bigint() - start;
  }
  return { perSec: (runs * 1e9) / Number(elapsed), sink };
}

function splitInThree(bytes: Buffer): Buffer[] {
  const a = Math.floor(bytes.length / 3);
  return [bytes.subarray(0, a), bytes.subarray(a, 2 * a), bytes.subarray(2 * a)];
}

function main(): void {
  const ms = Number(process.argv[2] ?? 300);
  const scgiGet = encodeScgiRequest(scgiParams(NGINX_PARAMS, 0));
  const uwsgiGet = encodeUwsgiRequest([...NGINX_PARAMS, ['CONTENT_LENGTH', '']]);
  const mib = Buffer.alloc(1 << 20, 0x61);
  const scgiPost = encodeScgiRequest(scgiParams(NGINX_PARAMS, mib.length), mib);
  const uwsgiPost = encodeUwsgiRequest([...NGINX_PARAMS, ['CONTENT_LENGTH', String(mib.length)]], mib);
  const chunks = (bytes: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 65536) out.push(bytes.subarray(i, i + 65536));
    return out;
  };
  const scgi: Make = (s) => new ScgiDecoder(s);
  const uwsgi: Make = (s) => new UwsgiDecoder(s);

  const rows: Array<[string, string]> = [];
  for (const [name, make, get, post] of [
    ['scgi', scgi, scgiGet, scgiPost],
    ['uwsgi', uwsgi, uwsgiGet, uwsgiPost],
  ] as const) {
    const whole = rate(make, [get], ms);
    rows.push([`${name} GET head, ${String(get.length)} B in one chunk`, `${(whole.perSec / 1000).toFixed(0)}k req/s`]);
    const split = rate(make, splitInThree(get), ms);
    rows.push([`${name} GET head, ${String(get.length)} B in three chunks (copied)`, `${(split.perSec / 1000).toFixed(0)}k req/s`]);
    const body = rate(make, chunks(post), ms);
    // Body pieces are views, so a body costs per chunk, not per byte: report requests, not bytes.
    rows.push([`${name} POST head + 1 MiB body in 16 chunks (views)`, `${(body.perSec / 1000).toFixed(0)}k req/s`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`node ${process.version}, ${String(ms)} ms per case`);
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}

main();
