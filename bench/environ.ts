// Cost of building one environ, from the connection's side: `buildEnviron` over what nginx sends
// for a browser GET, beside what an environ may defer: an AbortController and a body stream.
// Each call gets fresh name and value strings, cut from one latin1 string the way the decoder
// does, since V8 treats a string it has already used as a property key differently (the
// "fresh params" line is that cutting alone, to subtract). Medians of 5 timed loops after
// warm-up, ns per call, in this process.
// Run: node --import tsx bench/environ.ts [--json out.json]
import { writeFileSync } from 'node:fs';
import type { RequestHead } from '../protocols/common/events.ts';
import { FastCgiDecoder, encodeBeginRequest, encodeParams, encodeStdinEnd } from '../protocols/fastcgi/index.ts';
import { buildEnviron } from '../src/environ.ts';
import { RequestInput } from '../src/server/request-input.ts';
import { nginxGetParams } from './hot-path-params.ts';

const N = 200_000;
const heads: RequestHead[] = [];
const sink = {
  request(h: RequestHead): void {
    heads.push(h);
    decoder.release(h.id);
  },
  body(): void {}, bodyEnd(): void {}, data(): void {}, dataEnd(): void {}, abort(): void {}, reply(): void {},
  error(e: unknown): void {
    throw e;
  },
};
const decoder = new FastCgiDecoder(sink, {});
for (let i = 0; i < 1000; i++) {
  decoder.push(Buffer.concat([encodeBeginRequest(1, 1, true), ...encodeParams(1, nginxGetParams(`/app/items/${i}`)), encodeStdinEnd(1)]));
}

// Fresh strings per call, as the decoder makes them: one latin1 string per request, substrings.
const pairs = heads[0]!.params;
const text = pairs.join('');
const bytes = Buffer.from(text, 'latin1');
function freshHead(): RequestHead {
  const t = bytes.toString('latin1');
  const params: string[] = new Array<string>(pairs.length);
  let o = 0;
  for (let i = 0; i < pairs.length; i++) {
    const len = pairs[i]!.length;
    params[i] = t.slice(o, o + len);
    o += len;
  }
  return { id: 1, params, role: 1, keepConn: true, contentLength: -1 };
}

let keep = 0;
function time(name: string, f: (h: RequestHead) => unknown): number {
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if (f(heads[i % heads.length]!) === undefined) keep++;
    runs.push(Number(process.hrtime.bigint() - t) / N);
  }
  const ns = runs.slice(2).sort((a, b) => a - b)[2]!;
  console.log(`${name.padEnd(34)} ${ns.toFixed(0).padStart(6)} ns`);
  return ns;
}

const owner = { unblock(): void {} };
const ctx = { protocol: 'fastcgi' as const, remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 9000 };
const source = { input: undefined as never, signal: undefined as never };
const results = {
  node: process.version,
  freshParams: time('fresh params (to subtract)', () => freshHead()),
  buildEnvironFresh: time('fresh params + buildEnviron', () => buildEnviron(freshHead(), ctx, source)),
  buildEnvironReused: time('buildEnviron, strings reused', (h) => buildEnviron(h, ctx, source)),
  abortController: time('new AbortController().signal', () => new AbortController().signal),
  requestInput: time('new RequestInput() + finish()', () => new RequestInput(owner).finish()),
};
if (keep < 0) console.log(keep);
const json = process.argv.indexOf('--json');
if (json !== -1) writeFileSync(process.argv[json + 1]!, JSON.stringify(results, null, 2) + '\n');
