// Backpressure both ways over real sockets (STYLE.md 15), from the front server's side: a client
// that stops reading makes the app's write() return false and the app stall (nothing buffers
// without bound); an app that stops reading makes the server stop reading the socket.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { encodeBeginRequest, encodeParams, encodeStdin, encodeStdinEnd } from '../../protocols/fastcgi/index.ts';
import { native } from '../../src/app/resolve.ts';
import { MPX_INPUT_CAP } from '../../src/server/fastcgi-connection.ts';
import { INPUT_HIGH_WATER_MARK } from '../../src/server/request-input.ts';
import { FcgiClient, fcgiStream, httpStream, parseResponse } from '../helpers/clients.ts';
import { blocks, bulkApp, eventually, fcgiParams, MIB, SpyTree, startTestServer } from '../helpers/servers.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function spyTree(): SpyTree {
  const tree = new SpyTree({ onError: () => undefined });
  tree.mount(native(bulkApp), '/');
  return tree;
}

describe('a client that stops reading', () => {
  for (const protocol of ['fastcgi', 'http'] as const) {
    test(`${protocol}: the app's write() returns false and the app stalls, then finishes when the client reads`, async () => {
      const tree = spyTree();
      const srv = await startTestServer({ tree, protocols: [protocol] });
      const TOTAL_MIB = 256;
      let socket: Socket | undefined;
      let resumed = false;
      const received = createHash('sha256');
      try {
        const onBody = (c: Buffer): void => {
          received.update(c);
        };
        const pending = protocol === 'fastcgi'
          ? fcgiStream(srv.target('fastcgi'), {
            params: fcgiParams('/source', [['REQUEST_URI', `/source?mib=${String(TOTAL_MIB)}`]]),
            onSocket: (s) => {
              socket = s;
              s.pause();
            },
          }, onBody)
          : httpStream(srv.target('http'), { path: `/source?mib=${String(TOTAL_MIB)}` }, onBody);
        if (protocol === 'http') {
          // node's client reads into the response stream; pausing the socket once it exists is the same as not reading.
          await eventually(() => tree.responses.length === 1, 2000, 'the request');
        }
        await eventually(() => (tree.responses[0]?.refused ?? 0) > 0, 5000, 'write() to return false');
        if (protocol === 'fastcgi') {
          await sleep(300);
          const stalledAt = tree.responses[0]!.bytes;
          await sleep(300);
          // The app is parked on drained(): nothing more was accepted while the client did not read.
          assert.equal(tree.responses[0]!.bytes, stalledAt, 'the app made no progress while the client did not read');
          assert.ok(stalledAt < 64 * MIB, `at most socket buffers' worth is outstanding (${String(stalledAt)} bytes)`);
          resumed = true;
          socket?.resume();
        }
        const r = await pending;
        assert.equal(r.head.status, 200);
        assert.equal(r.bodyBytes, TOTAL_MIB * MIB);
        assert.equal(tree.responses[0]!.bytes, TOTAL_MIB * MIB);
        const expected = createHash('sha256');
        for (const b of blocks(TOTAL_MIB)) expected.update(b);
        assert.equal(received.digest('hex'), expected.digest('hex'));
        if (protocol === 'fastcgi') assert.ok(resumed);
      } finally {
        socket?.destroy();
        await srv.close();
      }
    });
  }

  test('http: a client that never reads leaves the app parked, not buffering the whole body', async () => {
    const tree = spyTree();
    const srv = await startTestServer({ tree, protocols: ['http'], shutdownTimeoutMs: 200 });
    const { connect } = await import('node:net');
    const s = connect({ port: srv.port('http'), host: '127.0.0.1' });
    s.on('error', () => undefined);
    try {
      s.pause();
      s.write('GET /source?mib=512 HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually(() => (tree.responses[0]?.refused ?? 0) > 0, 5000, 'write() to return false');
      await sleep(300);
      const stalledAt = tree.responses[0]!.bytes;
      await sleep(300);
      assert.equal(tree.responses[0]!.bytes, stalledAt);
      assert.ok(stalledAt < 64 * MIB, `stalled after ${String(stalledAt)} bytes`);
    } finally {
      s.destroy();
      await srv.close();
    }
  });
});

describe('an app that stops reading its body', () => {
  test('fastcgi without multiplexing: the server stops reading the socket; nothing piles up in the input', async () => {
    const srv = await startTestServer({ tree: spyTree(), protocols: ['fastcgi'] });
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      c.send([encodeBeginRequest(1, 1, true), ...encodeParams(1, fcgiParams('/sink', [['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/sink?delay=600']]))]);
      // Write 64 MiB as fast as the socket takes it, without waiting for 'drain': how much the kernel
      // accepts shows whether the server keeps reading.
      const expected = createHash('sha256');
      let queued = 0;
      for (const b of blocks(64)) {
        expected.update(b);
        c.send(encodeStdin(1, b));
        queued += b.length;
      }
      c.send(encodeStdinEnd(1));
      await sleep(400);
      // bytesWritten counts what is still queued in node; the kernel took the rest.
      const accepted = c.socket.bytesWritten - c.socket.writableLength;
      assert.ok(accepted < 32 * MIB, `the server stopped reading (kernel took ${String(accepted)} of ${String(queued)} bytes)`);
      const r = await c.result(1);
      const out = JSON.parse(parseResponse(r.stdout).text) as { bytes: number; sha256: string; bufferedAtWake: number };
      assert.equal(out.bytes, 64 * MIB);
      assert.equal(out.sha256, expected.digest('hex'));
      // Paused at the high-water mark: at most that plus the socket read in progress.
      assert.ok(out.bufferedAtWake <= INPUT_HIGH_WATER_MARK + 128 * 1024, `input held ${String(out.bufferedAtWake)} bytes`);
    } finally {
      c.destroy();
      await srv.close();
    }
  });

  test('fastcgi with multiplexing: a slow reader buffers at most its cap while another request flows', async () => {
    const srv = await startTestServer({ tree: spyTree(), protocols: ['fastcgi'], maxRequestsPerConnection: 2 });
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      c.send([encodeBeginRequest(1, 1, true), ...encodeParams(1, fcgiParams('/sink', [['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/sink?delay=700']]))]);
      c.send([encodeBeginRequest(2, 1, true), ...encodeParams(2, fcgiParams('/sink', [['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/sink']]))]);
      // Request 2 completes while request 1's app is asleep: under the cap, sharing the socket works.
      c.send([...encodeStdin(2, Buffer.alloc(100_000, 1)), encodeStdinEnd(2)]);
      c.send(encodeStdin(1, Buffer.alloc(200_000, 2)));
      const r2 = await c.result(2);
      assert.equal((JSON.parse(parseResponse(r2.stdout).text) as { bytes: number }).bytes, 100_000);
      // Past the cap the socket is paused anyway.
      for (const b of blocks(32)) c.send(encodeStdin(1, b));
      c.send(encodeStdinEnd(1));
      const r1 = await c.result(1);
      const out = JSON.parse(parseResponse(r1.stdout).text) as { bytes: number; bufferedAtWake: number };
      assert.equal(out.bytes, 200_000 + 32 * MIB);
      assert.ok(out.bufferedAtWake <= MPX_INPUT_CAP + 128 * 1024, `input held ${String(out.bufferedAtWake)} bytes`);
      assert.ok(out.bufferedAtWake > INPUT_HIGH_WATER_MARK, 'with multiplexing the input may run past the high-water mark');
    } finally {
      c.destroy();
      await srv.close();
    }
  });

  test('http: the server stops reading the socket while the app sleeps', async () => {
    const srv = await startTestServer({ tree: spyTree(), protocols: ['http'] });
    const { connect } = await import('node:net');
    const s = connect({ port: srv.port('http'), host: '127.0.0.1' });
    s.on('error', () => undefined);
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    try {
      await new Promise((r) => s.once('connect', r));
      s.write(`POST /sink?delay=600 HTTP/1.1\r\nHost: x\r\nContent-Length: ${String(64 * MIB)}\r\nConnection: close\r\n\r\n`);
      for (const b of blocks(64)) s.write(b);
      await sleep(400);
      const accepted = s.bytesWritten - s.writableLength;
      assert.ok(accepted < 32 * MIB, `the server stopped reading (kernel took ${String(accepted)} bytes)`);
      await new Promise((r) => s.once('close', r));
      const r = parseResponse(Buffer.concat(chunks));
      assert.equal((JSON.parse(r.text.slice(r.text.indexOf('{'), r.text.lastIndexOf('}') + 1)) as { bytes: number }).bytes, 64 * MIB);
    } finally {
      s.destroy();
      await srv.close();
    }
  });
});
