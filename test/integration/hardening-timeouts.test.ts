// Timeouts against hostile or broken peers, from the front server's side over real sockets:
// slowloris (1000 connections dribbling their heads while normal requests are timed), a body that
// stops arriving, an idle keep-alive connection, and a client that never reads its response
// (writeTimeoutMs) next to one that reads slowly but steadily. The FastCGI header, body-idle and
// keep-alive timeouts on their own are in socket-fastcgi.test.ts; the SCGI/uwsgi/HTTP header
// timeouts in socket-stream.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { native } from '../../src/app/resolve.ts';
import type { Environ, NativeApp, Protocol } from '../../src/app/types.ts';
import { SERVER_ERRORS } from '../../src/server/errors.ts';
import { eventually, MIB, SpyTree, startTestServer, treeOf } from '../helpers/servers.ts';
import { dialRaw, exchange, median, percentile, PROTOCOLS, rawRequest, reply, sleep } from './hardening-helpers.ts';

function codeOf(err: unknown): string {
  return String((err as { code?: unknown } | null)?.code ?? err);
}

const hello: NativeApp = (_environ, start) => {
  start('200 OK', [['Content-Type', 'text/plain']]);
  return 'hello';
};

/** Sequential requests on fresh connections, round-robin over the protocols; the latency of each in ms. */
async function timeRequests(port: (p: Protocol) => number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const protocol = PROTOCOLS[i % PROTOCOLS.length]!;
    const r = await exchange({ port: port(protocol) }, rawRequest(protocol, { uri: '/' }));
    assert.equal(reply(protocol, r.bytes).response?.status, 200, `${protocol} request ${String(i)}`);
    out.push(r.ms);
  }
  return out;
}

describe('slowloris', () => {
  test('1000 connections dribbling their request heads do not slow a normal request by more than 2x, and headerTimeoutMs closes them all', async () => {
    const HEADER_TIMEOUT_MS = 6000;
    const srv = await startTestServer({ tree: treeOf(hello), headerTimeoutMs: HEADER_TIMEOUT_MS });
    const dribblers: Array<{ socket: Socket; bytes: Buffer; sent: number; closedAt: number }> = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      await timeRequests((p) => srv.port(p), 40); // warm-up (JIT, first connections)
      const before = await timeRequests((p) => srv.port(p), 200);

      // 250 per protocol, each with a whole request it sends one byte at a time, every 500 ms.
      const started = performance.now();
      for (let i = 0; i < 1000; i += 50) {
        await Promise.all(Array.from({ length: 50 }, async (_, j) => {
          const protocol = PROTOCOLS[(i + j) % 4]!;
          const socket = await dialRaw(srv.target(protocol));
          const d = { socket, bytes: rawRequest(protocol, { uri: '/' }), sent: 0, closedAt: 0 };
          socket.on('error', () => undefined);
          socket.on('data', () => undefined);
          socket.on('close', () => { d.closedAt = performance.now(); });
          dribblers.push(d);
        }));
      }
      let turn = 0;
      const drip = (): void => {
        // A tenth of them per 50 ms tick: each sends a byte every 500 ms, 2000 writes/s in all.
        for (let k = turn % 10; k < dribblers.length; k += 10) {
          const d = dribblers[k]!;
          if (d.closedAt === 0 && d.sent < d.bytes.length - 1) d.socket.write(d.bytes.subarray(d.sent, ++d.sent));
        }
        turn++;
      };
      drip();
      timer = setInterval(drip, 50);
      await eventually(() => srv.server.stats().connections >= 1000, 5000, 'all 1000 connections registered');

      const during = await timeRequests((p) => srv.port(p), 200);
      const measuredFor = performance.now() - started;
      assert.equal(dribblers.filter((d) => d.closedAt !== 0).length, 0, 'every dribbler was still open while the requests were timed');
      assert.ok(measuredFor < HEADER_TIMEOUT_MS, `timed within the header timeout (${measuredFor.toFixed(0)} ms)`);
      const base = median(before);
      const attacked = median(during);
      process.stderr.write(`# slowloris: median ${base.toFixed(2)} ms -> ${attacked.toFixed(2)} ms, p90 ${percentile(before, 90).toFixed(2)} -> ${percentile(during, 90).toFixed(2)} ms\n`);
      assert.ok(attacked <= 2 * base, `median latency ${attacked.toFixed(2)} ms under attack vs ${base.toFixed(2)} ms before: more than 2x`);

      // Every dribbler is cut off by headerTimeoutMs (each one's clock started at accept or its first byte).
      await eventually(() => dribblers.every((d) => d.closedAt !== 0), HEADER_TIMEOUT_MS + 4000, 'every dribbler closed');
      // The coarse clock that drives the timeouts is good to one sweep interval (1 s at this timeout).
      const first = Math.min(...dribblers.map((d) => d.closedAt)) - started;
      assert.ok(first >= HEADER_TIMEOUT_MS - 1100, `none closed long before headerTimeoutMs (first after ${first.toFixed(0)} ms)`);
      await eventually(() => srv.server.stats().connections === 0, 3000, 'the registry empty');
      assert.deepEqual(await timeRequests((p) => srv.port(p), 4).then((t) => t.length), 4, 'still serving');
    } finally {
      clearInterval(timer);
      for (const d of dribblers) d.socket.destroy();
      await srv.close();
    }
  });
});

describe('body idle and keep-alive idle on SCGI, uwsgi and HTTP', () => {
  for (const protocol of ['scgi', 'uwsgi', 'http'] as const) {
    test(`${protocol}: a body that stops arriving gets 408 after bodyIdleTimeoutMs and the app's signal aborts with a code`, async () => {
      const seen: { signal?: string; input?: string } = {};
      const reader: NativeApp = async (environ, start) => {
        const signal = environ['postern.signal'];
        signal.addEventListener('abort', () => { seen.signal = codeOf(signal.reason); }, { once: true });
        try {
          for await (const _ of environ['postern.input']) { /* read it all */ }
        } catch (err) {
          seen.input = codeOf(err);
        }
        start('200 OK', []);
        return 'read it';
      };
      const srv = await startTestServer({ tree: treeOf(reader), protocols: [protocol], bodyIdleTimeoutMs: 300 });
      try {
        const bytes = rawRequest(protocol, { method: 'POST', uri: '/upload', body: Buffer.alloc(10, 0x61), contentLength: '100' });
        const r = await exchange(srv.target(protocol), bytes, 5000);
        assert.equal(reply(protocol, r.bytes).response?.status, 408);
        assert.ok(r.ms >= 280, `after ${r.ms.toFixed(0)} ms`);
        await eventually(() => seen.signal !== undefined, 2000, 'the signal');
        assert.equal(seen.signal, SERVER_ERRORS.BODY_TIMEOUT);
        // The gateways fail the input with the same code; node:http's request stream ends its own way.
        if (protocol !== 'http') assert.equal(seen.input, SERVER_ERRORS.BODY_TIMEOUT);
      } finally {
        await srv.close();
      }
    });
  }

  test('http: an idle keep-alive connection is closed after keepAliveTimeoutMs', async () => {
    const srv = await startTestServer({ tree: treeOf(hello), protocols: ['http'], keepAliveTimeoutMs: 300 });
    try {
      const s = await dialRaw(srv.target('http'));
      let got = '';
      s.on('data', (c: Buffer) => { got += c.toString('latin1'); });
      const closed = new Promise<number>((resolve) => s.on('close', () => resolve(performance.now())));
      s.write(rawRequest('http', { uri: '/', keepConn: true }));
      await eventually(() => got.includes('hello'), 2000, 'the response');
      const answeredAt = performance.now();
      const idleMs = (await closed) - answeredAt;
      assert.ok(idleMs >= 250 && idleMs < 2000, `closed after ${idleMs.toFixed(0)} ms idle`);
      assert.match(got, /^HTTP\/1\.1 200 OK\r\n/);
    } finally {
      await srv.close();
    }
  });
});

/** `/stream`: 64 KiB chunks until the request is aborted, honouring backpressure; notes the abort code. */
function streamApp(aborts: string[]): NativeApp {
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  return (environ: Environ, start) => {
    const signal = environ['postern.signal'];
    signal.addEventListener('abort', () => aborts.push(String((signal.reason as { code?: unknown }).code)), { once: true });
    const mib = Number(/mib=([0-9]+)/.exec(environ.QUERY_STRING)?.[1] ?? '0');
    start('200 OK', [['Content-Type', 'application/octet-stream'], ...(mib > 0 ? [['Content-Length', String(mib * MIB)] as [string, string]] : [])]);
    return (function* () {
      for (let sent = 0; (mib === 0 || sent < mib * MIB) && !signal.aborted; sent += chunk.length) yield chunk;
    })();
  };
}

describe('writeTimeoutMs: a client that never reads', () => {
  for (const protocol of PROTOCOLS) {
    test(`${protocol}: the connection is closed after writeTimeoutMs, the app's signal aborts with a code, and it is counted`, async () => {
      const aborts: string[] = [];
      const srv = await startTestServer({ tree: treeOf(streamApp(aborts)), protocols: [protocol], writeTimeoutMs: 400 });
      const s = await dialRaw(srv.target(protocol));
      try {
        s.on('error', () => undefined);
        s.pause();
        const t0 = performance.now();
        s.write(rawRequest(protocol, { uri: '/stream' }));
        // The client reads nothing, so it cannot see the close either: watch the server's side.
        await eventually(() => aborts.length > 0, 6000, 'the app aborted');
        const after = performance.now() - t0;
        assert.ok(after >= 400, `not before writeTimeoutMs (${after.toFixed(0)} ms)`);
        assert.deepEqual(aborts, [SERVER_ERRORS.WRITE_TIMEOUT]);
        assert.equal(srv.server.stats().writeTimeouts, 1);
        const line = srv.log.withCode(SERVER_ERRORS.WRITE_TIMEOUT)[0];
        assert.equal(line?.meta['limit'], 'writeTimeoutMs');
        assert.equal(line?.meta['protocol'], protocol);
        await eventually(() => srv.server.stats().inFlight === 0 && srv.server.stats().connections === 0, 2000, 'nothing left');
      } finally {
        s.destroy();
        await srv.close();
      }
    });
  }

  for (const protocol of PROTOCOLS) {
    test(`${protocol}: a client that reads in bursts, pausing for less than writeTimeoutMs, gets the whole response`, async () => {
      const aborts: string[] = [];
      const tree = new SpyTree({ onError: () => undefined }).mount(native(streamApp(aborts)), '/');
      // Pauses of 300 ms against a 2 s limit: the margin absorbs a loaded machine's late timers, and
      // the pauses still stall the server's output (asserted below), so the limit is what is tested.
      const srv = await startTestServer({ tree, protocols: [protocol], writeTimeoutMs: 2000 });
      try {
        const s = await dialRaw(srv.target(protocol));
        let bytes = 0;
        s.on('data', (c: Buffer) => { bytes += c.length; });
        const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
        s.pause();
        s.write(rawRequest(protocol, { uri: '/stream?mib=48' }));
        // Nothing read for 300 ms at a time (the server's output stalls), then everything there is.
        while (!s.destroyed && s.readyState !== 'closed') {
          await sleep(300);
          s.resume();
          await sleep(15);
          s.pause();
          if (srv.server.stats().inFlight === 0 && bytes > 48 * MIB) break;
        }
        s.resume();
        await closed;
        assert.ok(bytes > 48 * MIB, `received ${String(bytes)} bytes`);
        assert.deepEqual(aborts, []);
        assert.equal(srv.server.stats().writeTimeouts, 0);
        assert.ok((tree.responses[0]?.refused ?? 0) >= 2, `the output stalled ${String(tree.responses[0]?.refused)} times`);
      } finally {
        await srv.close();
      }
    });
  }
});
