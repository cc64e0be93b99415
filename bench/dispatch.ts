// The CherryPy-style dispatch alone, from the benchmark's side: the example tree's `One` (what
// postern serves at `/` with no --mount) called as the runner calls it, awaited only when it
// returns a promise, with a fixed GET environ and a start_response that keeps nothing. CPU ns per
// call, median of the rounds. Compare builds by compiling each (tsx adds esbuild's helpers):
//   npx tsc -p tsconfig.test.json --outDir /tmp/pb && ln -s "$PWD/node_modules" /tmp/pb/
//   node /tmp/pb/bench/dispatch.js [--calls 500000] [--rounds 5]
import { objectApp } from '../src/app/dispatch.ts';
import type { Environ, StartResponse } from '../src/app/types.ts';
import { One } from '../src/examples/tree.ts';

const args = process.argv.slice(2);
function opt(name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1] ?? fallback);
}
const CALLS = opt('--calls', 500_000);
const ROUNDS = opt('--rounds', 5);

const app = objectApp(new One());
const environ = { REQUEST_METHOD: 'GET', PATH_INFO: '/', QUERY_STRING: '', SCRIPT_NAME: '', CONTENT_TYPE: '', CONTENT_LENGTH: '' } as unknown as Environ;
const ignore = (): void => undefined;
const startResponse: StartResponse = () => ignore;

async function batch(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const body: unknown = app(environ, startResponse);
    if (body instanceof Promise) await body;
  }
}

await batch(Math.min(CALLS, 200_000));
const ns: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.cpuUsage();
  await batch(CALLS);
  const t = process.cpuUsage(t0);
  ns.push(((t.user + t.system) * 1000) / CALLS);
}
const sorted = [...ns].sort((a, b) => a - b);
console.log(`${process.version} objectApp(One) GET /: ${(sorted[Math.floor(ROUNDS / 2)] ?? 0).toFixed(0)} ns per call (median of ${String(ROUNDS)}; rounds ${ns.map((x) => x.toFixed(0)).join(' ')})`);
