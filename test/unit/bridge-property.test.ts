// The Node bridges compared on generated handlers, from the gateway's side: fast-check writes a
// small script (method and request body, status, headers including hop-by-hop ones, how the body
// is written: sizes, pauses, waits for 'drain', flushHeaders, 103 Early Hints, end with or
// without a last chunk)
// and the outcome through the direct bridge must equal the replay's, as in bridge-differential.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ServerResponse } from 'node:http';
import { bytesOf } from './adapter-kit.ts';
import { runFixture, runOnNodeServer, type Fixture, type Outcome } from './bridge-fixtures.ts';
import { eventsByEmitter } from '../helpers/bridges.ts';

type Step =
  | { readonly kind: 'write'; readonly bytes: number }
  | { readonly kind: 'tick' }
  | { readonly kind: 'flush' }
  | { readonly kind: 'hints' };

interface Script {
  readonly method: 'GET' | 'HEAD' | 'POST';
  readonly requestBytes: number;
  readonly readBody: boolean;
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly setLength: boolean;
  readonly steps: readonly Step[];
  readonly last: number;
  readonly slow: boolean;
}

const header = fc.constantFrom<readonly [string, string]>(
  ['Content-Type', 'text/plain'], ['X-A', 'a'], ['X-A', 'again'], ['Set-Cookie', 's=1'], ['Cache-Control', 'no-store'],
  ['Connection', 'close'], ['Keep-Alive', 'timeout=5'], ['Transfer-Encoding', 'chunked'], ['X-Latin', 'caf\u00e9'],
);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 70_000 }).map((bytes) => ({ kind: 'write' as const, bytes })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'tick' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'hints' as const }) },
);
// No res.destroy() step: what a destroyed response delivers depends on how far the gateway had
// read when the socket went (a race on a real socket too); bridge-differential holds the two
// deterministic cases (destroy in the tick of the writes, chunked and with a Content-Length).

const script: fc.Arbitrary<Script> = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'POST'),
  requestBytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200_000 })),
  readBody: fc.boolean(),
  status: fc.constantFrom(200, 201, 204, 304, 404, 500),
  headers: fc.array(header, { maxLength: 4 }),
  setLength: fc.boolean(),
  steps: fc.array(step, { maxLength: 6 }),
  last: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 })),
  slow: fc.boolean(),
});

function total(s: Script): number {
  return s.steps.reduce((n, st) => n + (st.kind === 'write' ? st.bytes : 0), 0) + s.last;
}

/** Runs the steps, waiting for 'drain' whenever write() says so. */
function play(res: ServerResponse, s: Script, data: Buffer): void {
  let pos = 0;
  let i = 0;
  const next = (): void => {
    while (i < s.steps.length) {
      const st = s.steps[i++] as Step;
      if (st.kind === 'tick') return void setImmediate(next);
      if (st.kind === 'flush') {
        res.flushHeaders();
        continue;
      }
      if (st.kind === 'hints') {
        if (!res.headersSent) res.writeEarlyHints({ link: '</a.css>; rel=preload; as=style' });
        continue;
      }
      const piece = data.subarray(pos, pos + st.bytes);
      pos += st.bytes;
      if (!res.write(piece)) return void res.once('drain', next);
    }
    res.end(data.subarray(pos, pos + s.last));
  };
  next();
}

/**
 * A response whose head says how long the body is (none: HEAD, 204, 304; or the app's own
 * Content-Length). The replay ends such a response once that many bytes arrived and closes the
 * socket, even when the app has yet to call end() (res 'close' with writableFinished false).
 */
function replayEndsEarly(s: Script): boolean {
  return s.method === 'HEAD' || s.status === 204 || s.status === 304
    || (s.setLength && !s.headers.some(([n]) => n === 'Transfer-Encoding'));
}

function fixtureOf(s: Script): Fixture {
  const data = bytesOf(total(s), 5);
  const body = s.method === 'POST' ? bytesOf(s.requestBytes, 6) : undefined;
  return {
    name: JSON.stringify(s),
    request: { method: s.method, url: '/generated', ...(body === undefined ? {} : { body }) },
    ...(s.slow ? { slow: { capacityBytes: 32 * 1024, drainMs: 0 } } : {}),
    handler: () => (req, res) => {
      res.statusCode = s.status;
      for (const [n, v] of s.headers) res.appendHeader(n, v);
      // A Content-Length the app states must be right; a wrong one is its own fixture.
      if (s.setLength && !res.hasHeader('transfer-encoding')) res.setHeader('Content-Length', String(data.length));
      if (s.readBody) req.resume();
      play(res, s, data);
    },
  };
}

test('generated handlers: the direct bridge gives what the replay gives', { timeout: 60_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(script, async (s) => {
      const fixture = fixtureOf(s);
      const [o] = await runFixture(fixture, 'replay');
      const [d] = await runFixture(fixture, 'direct');
      assert.ok(o !== undefined && d !== undefined);
      assert.equal(o.client.stalled, false, 'the oracle stalled');
      assert.deepEqual(d.client, o.client, 'what the gateway received (actual: direct, expected: replay)');
      assert.deepEqual(d.app.facts, o.app.facts, 'what the app saw (actual: direct, expected: replay)');
      if (replayEndsEarly(s)) {
        // With Connection: close a node:http client hangs up once the head says the body is
        // complete, so node:http's events then depend on the client's timing: not compared.
        if (s.headers.some(([n]) => n === 'Connection')) return;
        // node:http is the reference for these (see replayEndsEarly).
        // On res and the app's own only: node:http's events on an unread upload depend on the client.
        const { res, app } = eventsByEmitter(await runOnNodeServer(fixture));
        const direct = eventsByEmitter(d.app.events);
        assert.deepEqual({ res: direct.res, app: direct.app }, { res, app }, 'events (actual: direct, expected: node:http)');
        return;
      }
      // Interleaving after a finished response: see bridge-differential.test.ts.
      const same = (x: Outcome): unknown => (x.app.events.includes('res:finish') ? eventsByEmitter(x.app.events) : x.app.events);
      assert.deepEqual(same(d), same(o), 'events (actual: direct, expected: replay)');
    }),
    // A fixed seed: the same scripts on every run, so the suite is stable; change it to explore.
    { seed: 20261206, numRuns: 100 },
  );
});
