// The V8 settings postern applies to a process that runs apps, from the process's side: set once
// the configuration is read and before the apps are imported (cli.ts loadTree: the single process
// and each reload of it, each worker, a CGI run).
//
// Allocation-site pretenuring (v8Pretenuring, off by default). V8 counts, per object or array
// literal site, how many of the objects it made survive a young-generation GC; once nearly all do
// (two scavenges in a row, 85 % of at least 100), it allocates every later object of that site in
// the old generation, and for good: a site never goes back. node:events' `_events` and listener
// arrays, stream states and IncomingMessage's fields are such sites, shared by every emitter in
// the process. Behind a gateway a warm-up burst is enough to tip them; from then on each request's
// listener arrays are born old and point at that request's young closures, req, res and socket,
// which the scavenger must then keep and promote, so every request's Node objects die in the old
// generation. Measured (Node 20.20, bench/hot-path.ts, 32 connections, median of 5 rounds):
// promoted 1,038 → 312 KB per scavenge for a plain (req, res) hello; CPU per request plain
// 18–21 → 9.5 µs, Koa 26–31 → 14.3 µs, Fastify 20 → 10 µs; a native app 4.1 → 4.3 µs (noise).
// The flag works when set at run time as well as on the command line (same figures), because V8
// reads it at each scavenge; Node calls run-time flag changes unsupported in general, so the test
// (test/integration/v8-tuning.test.ts) checks on each Node version that it still takes.

import { setFlagsFromString } from 'node:v8';

export interface V8Tuning {
  /** V8's allocation-site pretenuring (V8's default: on). */
  readonly v8Pretenuring: boolean;
}

/** Applies the tuning to this process; call before the apps are imported. */
export function applyV8Tuning(tuning: V8Tuning): void {
  setFlagsFromString(tuning.v8Pretenuring ? '--allocation-site-pretenuring' : '--no-allocation-site-pretenuring');
}
