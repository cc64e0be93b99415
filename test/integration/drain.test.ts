// Graceful stop at the socket level, from the front server's side: a connection accepted just
// before close() whose request arrives after it is still answered, then closed, on every protocol
// (what nginx meets on every worker reload and recycle); a request already arriving on an idle
// keep-alive connection is served; an idle keep-alive connection with nothing arriving closes at
// once; a connection that never sends its request is closed after headerTimeoutMs.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { encodeBeginRequest, encodeParams, encodeStdinEnd, FCGI_TYPE } from '../../protocols/fastcgi/index.ts';
import { encodeScgiRequest, scgiParams } from '../../protocols/scgi/index.ts';
import { encodeUwsgiRequest } from '../../protocols/uwsgi/index.ts';
import type { Protocol } from '../../src/app/types.ts';
import { dial, FcgiClient, parseResponse, type ParsedResponse } from '../helpers/clients.ts';
import { controlApp, eventually, fcgiParams, startTestServer, treeOf, type TestServer, type TestServerOptions } from '../helpers/servers.ts';

const PROTOCOLS: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi', 'http'];

function start(protocol: Protocol, over: Partial<TestServerOptions> = {}): Promise<TestServer> {
  return startTestServer({ tree: treeOf(controlApp({ aborts: [], inputErrors: [] })), protocols: [protocol], ...over });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function httpGet(path: string): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: example.test\r\n\r\n`, 'latin1');
}

/** One request for `path` as each front server frames it (FastCGI with KEEP_CONN, HTTP keep-alive). */
function requestBytes(protocol: Protocol, path: string): Buffer {
  switch (protocol) {
    case 'fastcgi':
      return Buffer.concat([encodeBeginRequest(1, 1, true), ...encodeParams(1, fcgiParams(path)), encodeStdinEnd(1)]);
    case 'scgi':
      return encodeScgiRequest(scgiParams(fcgiParams(path), 0));
    case 'uwsgi':
      return encodeUwsgiRequest(fcgiParams(path));
    case 'http':
      return httpGet(path);
  }
}

/** A raw connection that keeps everything it receives; `closed` resolves with it once the server closes. */
interface RawConn {
  readonly socket: Socket;
  readonly received: () => Buffer;
  readonly closed: Promise<Buffer>;
}

async function rawConnect(srv: TestServer, protocol: Protocol): Promise<RawConn> {
  const socket = await dial(srv.target(protocol));
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<Buffer>((resolve, reject) => {
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (chunks.length === 0 || err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** The STDOUT of request 1 and whether its END_REQUEST (REQUEST_COMPLETE) arrived, from raw FastCGI bytes. */
function fcgiAnswer(bytes: Buffer): { response: ParsedResponse; ended: boolean } {
  const { stdout, ended } = fcgiRecords(bytes);
  return { response: parseResponse(stdout), ended };
}

function fcgiRecords(bytes: Buffer): { stdout: Buffer; ended: boolean } {
  const stdout: Buffer[] = [];
  let ended = false;
  for (let at = 0; at + 8 <= bytes.length;) {
    const type = bytes[at + 1];
    const length = bytes.readUInt16BE(at + 4);
    const padding = bytes[at + 6] ?? 0;
    const content = bytes.subarray(at + 8, at + 8 + length);
    if (type === FCGI_TYPE.STDOUT) stdout.push(content);
    if (type === FCGI_TYPE.END_REQUEST) ended = content[4] === 0;
    at += 8 + length + padding;
  }
  return { stdout: Buffer.concat(stdout), ended };
}

function answerOf(protocol: Protocol, bytes: Buffer): ParsedResponse {
  if (protocol !== 'fastcgi') return parseResponse(bytes);
  const a = fcgiAnswer(bytes);
  assert.ok(a.ended, 'END_REQUEST with REQUEST_COMPLETE');
  return a.response;
}

/** Resolves once `conn` holds one whole HTTP response (the control app's answers carry Content-Length). */
async function httpResponse(conn: RawConn): Promise<ParsedResponse> {
  await eventually(() => {
    const b = conn.received();
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const r = parseResponse(b);
    return r.body.length >= Number(r.header('content-length') ?? 'NaN');
  }, 3000, 'an HTTP response');
  return parseResponse(conn.received());
}

describe('graceful stop: a connection accepted before close(), its request sent after', () => {
  for (const protocol of PROTOCOLS) {
    test(`${protocol}: the request is answered, then the connection closes`, async () => {
      const srv = await start(protocol);
      const conn = await rawConnect(srv, protocol);
      try {
        await eventually(() => srv.server.stats().connections === 1, 2000, 'the connection registered');
        const closing = srv.close();
        await sleep(50);
        assert.equal(conn.socket.readableEnded, false, 'the fresh connection is still open after close() began');
        conn.socket.write(requestBytes(protocol, '/sleep/20'));
        const r = answerOf(protocol, await conn.closed);
        assert.equal(r.status, 200);
        assert.equal(r.text, 'slept');
        if (protocol === 'http') assert.equal(r.header('connection'), 'close');
        await closing;
        assert.equal(srv.server.stats().requests, 1);
        await assert.rejects(dial(srv.target(protocol)), { code: 'ECONNREFUSED' });
      } finally {
        conn.socket.destroy();
        await srv.close();
      }
    });
  }

  for (const protocol of PROTOCOLS) {
    test(`${protocol}: one that never sends its request is closed after headerTimeoutMs, and close() resolves`, async () => {
      const srv = await start(protocol, { headerTimeoutMs: 200, shutdownTimeoutMs: 10_000 });
      const conn = await rawConnect(srv, protocol);
      try {
        await eventually(() => srv.server.stats().connections === 1, 2000, 'the connection registered');
        const t0 = Date.now();
        await srv.close();
        const took = Date.now() - t0;
        await conn.closed;
        assert.ok(took < 3000, `close() took ${String(took)} ms; headerTimeoutMs is 200, shutdownTimeoutMs 10000`);
        assert.equal(srv.server.stats().requests, 0);
      } finally {
        conn.socket.destroy();
        await srv.close();
      }
    });
  }
});

describe('graceful stop: idle keep-alive connections', () => {
  test('FastCGI KEEP_CONN: a request written into the idle connection as close() begins is served, then the connection closes', async () => {
    const srv = await start('fastcgi');
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      assert.equal((await c.request({ params: fcgiParams('/sleep/1'), keepConn: true })).protocolStatus, 0);
      // The same tick: the request is in the kernel, not yet read, when the stop begins (nginx
      // taking a pooled connection at the moment the worker is told to stop).
      c.begin({ params: fcgiParams('/sleep/20'), keepConn: true });
      const closing = srv.close();
      const r = await c.result(1);
      assert.equal(r.protocolStatus, 0);
      assert.equal(parseResponse(r.stdout).text, 'slept');
      await c.closed;
      await closing;
      assert.equal(srv.server.stats().requests, 2);
    } finally {
      c.destroy();
      await srv.close();
    }
  });

  test('FastCGI KEEP_CONN: a request partly received when close() begins is served, then the connection closes', async () => {
    const srv = await start('fastcgi');
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      await c.request({ params: fcgiParams('/sleep/1'), keepConn: true });
      const whole = Buffer.concat([encodeBeginRequest(1, 1, true), ...encodeParams(1, fcgiParams('/sleep/20')), encodeStdinEnd(1)]);
      c.send(whole.subarray(0, 20));
      await sleep(50);
      const closing = srv.close();
      await sleep(50);
      assert.equal(c.ended, false, 'the connection with a request arriving stays open');
      c.send(whole.subarray(20));
      const r = await c.result(1);
      assert.equal(parseResponse(r.stdout).text, 'slept');
      await c.closed;
      await closing;
    } finally {
      c.destroy();
      await srv.close();
    }
  });

  test('HTTP keep-alive: a request written into the idle connection as close() begins is answered with Connection: close', async () => {
    const srv = await start('http');
    const conn = await rawConnect(srv, 'http');
    try {
      conn.socket.write(httpGet('/sleep/1'));
      const first = await httpResponse(conn);
      assert.equal(first.header('connection'), 'keep-alive');
      const firstBytes = conn.received().length;
      conn.socket.write(httpGet('/sleep/20'));
      const closing = srv.close();
      const rest = (await conn.closed).subarray(firstBytes);
      const second = parseResponse(rest);
      assert.equal(second.status, 200);
      assert.equal(second.text, 'slept');
      assert.equal(second.header('connection'), 'close');
      await closing;
    } finally {
      conn.socket.destroy();
      await srv.close();
    }
  });

  for (const protocol of ['fastcgi', 'http'] as const) {
    test(`${protocol}: an idle keep-alive connection with nothing arriving closes at once, not after headerTimeoutMs`, async () => {
      const srv = await start(protocol, { headerTimeoutMs: 5000 });
      const conn = await rawConnect(srv, protocol);
      try {
        conn.socket.write(requestBytes(protocol, '/sleep/1'));
        if (protocol === 'http') await httpResponse(conn);
        else await eventually(() => fcgiRecords(conn.received()).ended, 3000, 'END_REQUEST');
        const t0 = Date.now();
        await srv.close();
        await conn.closed;
        const took = Date.now() - t0;
        assert.ok(took < 1000, `the idle connection took ${String(took)} ms to close`);
      } finally {
        conn.socket.destroy();
        await srv.close();
      }
    });
  }
});
