// SCGI, uwsgi and HTTP listeners at the byte level, from the front server's side: response
// framing per protocol, one request per connection, half-closed clients, wrong-protocol and
// limit errors, uwsgi PING, timeouts, HTTP keep-alive and abort, and responses still being written.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { COMMON_ERRORS } from '../../protocols/common/errors.ts';
import { encodeScgiRequest, scgiParams } from '../../protocols/scgi/index.ts';
import { encodeUwsgiRequest, UWSGI_ERRORS, UWSGI_PING, UWSGI_PONG } from '../../protocols/uwsgi/index.ts';
import { SERVER_ERRORS } from '../../src/server/errors.ts';
import { Tree } from '../../src/app/tree.ts';
import { native, nodeHandler } from '../../src/app/adapters/marker.ts';
import { dial, exchangeRaw, httpFetch, parseResponse, scgiRequest, uwsgiRequest } from '../helpers/clients.ts';
import { controlApp, eventually, fcgiParams, RecordingAccessLog, startTestServer, treeOf, type ControlEvents, type TestServer } from '../helpers/servers.ts';

describe('SCGI and uwsgi over a socket', () => {
  let srv: TestServer;
  let events: ControlEvents;

  before(async () => {
    events = { aborts: [], inputErrors: [] };
    srv = await startTestServer({ tree: treeOf(controlApp(events)), protocols: ['scgi', 'uwsgi', 'http'], maxBodyBytes: 1000 });
  });
  after(() => srv.close());

  test('SCGI answers with a CGI Status header, then closes the connection', async () => {
    const raw = await exchangeRaw(srv.target('scgi'), encodeScgiRequest(scgiParams(fcgiParams('/sleep/1'), 0)));
    assert.match(raw.toString('latin1'), /^Status: 200 OK\r\n/);
    assert.equal(parseResponse(raw).text, 'slept');
  });

  test('uwsgi answers with an HTTP/1.1 status line (Apache mod_proxy_uwsgi needs it)', async () => {
    const raw = await exchangeRaw(srv.target('uwsgi'), encodeUwsgiRequest(fcgiParams('/sleep/1')));
    assert.match(raw.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(parseResponse(raw).text, 'slept');
  });

  test('a client that half-closes after its request still gets the answer', async () => {
    const s = await scgiRequest(srv.target('scgi'), fcgiParams('/sleep/20'), undefined, true);
    assert.equal(s.text, 'slept');
    const u = await uwsgiRequest(srv.target('uwsgi'), fcgiParams('/sleep/20'), undefined, true);
    assert.equal(u.text, 'slept');
  });

  test('request bodies arrive whole', async () => {
    const body = 'b'.repeat(999);
    const s = await scgiRequest(srv.target('scgi'), fcgiParams('/body-error', [['REQUEST_METHOD', 'POST']]), body);
    assert.equal(s.text, 'ok:999');
    const u = await uwsgiRequest(srv.target('uwsgi'), fcgiParams('/body-error', [['REQUEST_METHOD', 'POST']]), body);
    assert.equal(u.text, 'ok:999');
  });

  test('a body over maxBodyBytes is answered 413 on both', async () => {
    const body = 'b'.repeat(1001);
    const s = await scgiRequest(srv.target('scgi'), fcgiParams('/body-error', [['REQUEST_METHOD', 'POST']]), body);
    assert.equal(s.status, 413);
    const u = await uwsgiRequest(srv.target('uwsgi'), fcgiParams('/body-error', [['REQUEST_METHOD', 'POST']]), body);
    assert.equal(u.status, 413);
    assert.equal(srv.log.withCode(COMMON_ERRORS.BODY_TOO_LARGE).length, 2);
  });

  test('a uwsgi port receiving HTTP answers 400 and logs a code that names the mistake', async () => {
    const raw = await exchangeRaw(srv.target('uwsgi'), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const r = parseResponse(raw);
    assert.equal(r.status, 400);
    const logged = srv.log.withCode(UWSGI_ERRORS.HTTP_ON_UWSGI_PORT);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.level, 'warn');
    assert.match(String(logged[0]?.meta['peer']), /^127\.0\.0\.1:\d+$/);
  });

  test('uwsgi PING is answered with PONG and the connection closed', async () => {
    const raw = await exchangeRaw(srv.target('uwsgi'), UWSGI_PING);
    assert.deepEqual(raw, UWSGI_PONG);
  });

  test('a peer that resets the connection mid-request aborts the app', async () => {
    const before = events.aborts.length;
    const s = await dial(srv.target('scgi'));
    s.on('error', () => undefined);
    s.write(encodeScgiRequest(scgiParams(fcgiParams('/hang'), 0)));
    await eventually(() => srv.server.stats().inFlight === 1, 2000, 'the request to start');
    s.resetAndDestroy();
    await eventually(() => events.aborts.length > before, 2000, 'the abort');
    assert.equal(events.aborts.at(-1)?.code, SERVER_ERRORS.CONNECTION_CLOSED);
    await eventually(() => srv.server.stats().inFlight === 0, 2000, 'the request to end');
  });

  test('a peer that closes in the middle of the body aborts the app and fails its input', async () => {
    const before = events.inputErrors.length;
    const s = await dial(srv.target('uwsgi'));
    s.on('error', () => undefined);
    const full = encodeUwsgiRequest([...fcgiParams('/body-error', [['REQUEST_METHOD', 'POST']]), ['CONTENT_LENGTH', '500']], Buffer.alloc(500, 0x62));
    s.end(full.subarray(0, full.length - 200));
    await eventually(() => events.inputErrors.length > before, 2000, 'the input error');
    assert.equal(events.inputErrors.at(-1)?.code, SERVER_ERRORS.CONNECTION_CLOSED);
    await eventually(() => srv.server.stats().inFlight === 0, 2000, 'the request to end');
  });

  test('HTTP keep-alive: several requests on one connection', async () => {
    const agentless = async (): Promise<number[]> => {
      const ports: number[] = [];
      const { Agent } = await import('node:http');
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let i = 0; i < 3; i++) {
          await new Promise<void>((resolve, reject) => {
            const req = httpRequest({ host: '127.0.0.1', port: srv.port('http'), path: '/echo', agent }, (res) => {
              ports.push(res.socket.localPort ?? 0);
              res.resume();
              res.on('end', resolve);
            });
            req.on('error', reject);
            req.end();
          });
        }
      } finally {
        agent.destroy();
      }
      return ports;
    };
    const ports = await agentless();
    assert.equal(new Set(ports).size, 1, 'one connection served all three');
  });

  test('HTTP: headers over maxHeadersBytes are answered 431', async () => {
    const small = await startTestServer({ tree: treeOf(controlApp(events)), protocols: ['http'], maxHeadersBytes: 2048 });
    try {
      const r = await httpFetch(small.target('http'), { path: '/echo', headers: { 'X-Big': 'z'.repeat(4000) } });
      assert.equal(r.status, 431);
      assert.equal(small.log.entries.filter((e) => e.meta['limit'] === 'maxHeadersBytes').length, 1);
    } finally {
      await small.close();
    }
  });
});

describe('access log on the stream listeners', () => {
  test('one record per request on SCGI, uwsgi and HTTP, with the protocol named', async () => {
    const access = new RecordingAccessLog();
    const srv = await startTestServer({ tree: treeOf(controlApp({ aborts: [], inputErrors: [] })), protocols: ['scgi', 'uwsgi', 'http'], accessLog: access });
    try {
      await scgiRequest(srv.target('scgi'), fcgiParams('/sleep/1'));
      await uwsgiRequest(srv.target('uwsgi'), fcgiParams('/sleep/1'));
      await httpFetch(srv.target('http'), { path: '/sleep/1?x=1', headers: { 'User-Agent': 'ua', Referer: 'http://ref/' } });
      await eventually(() => access.records.length === 3, 2000, 'three records');
      assert.deepEqual(access.records.map((r) => [r.protocol, r.status, r.bytes]), [['scgi', 200, 5], ['uwsgi', 200, 5], ['http', 200, 5]]);
      const h = access.records[2]!;
      assert.deepEqual([h.method, h.uri, h.userAgent, h.referer, h.remoteAddr, h.mount], ['GET', '/sleep/1?x=1', 'ua', 'http://ref/', '127.0.0.1', '/'], 'the root mount is named `/`');
      assert.deepEqual(access.records.map((r) => r.requestId), ['0-1', '0-2', '0-3']);
    } finally {
      await srv.close();
    }
  });
});

describe('SCGI and uwsgi timeouts', () => {
  test('headerTimeoutMs closes a connection whose request head never completes', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp({ aborts: [], inputErrors: [] })), protocols: ['scgi', 'uwsgi'], headerTimeoutMs: 150 });
    try {
      for (const p of ['scgi', 'uwsgi'] as const) {
        const t0 = Date.now();
        const raw = await exchangeRaw(srv.target(p), p === 'scgi' ? Buffer.from('70:CONTENT') : Buffer.from([0, 50, 0, 0, 1]));
        assert.equal(raw.length, 0);
        assert.ok(Date.now() - t0 >= 100);
      }
      assert.equal(srv.log.withCode(SERVER_ERRORS.HEADER_TIMEOUT).length, 2);
    } finally {
      await srv.close();
    }
  });

  test('HTTP headerTimeoutMs: a request head that never completes gets 408 and the connection closes', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp({ aborts: [], inputErrors: [] })), protocols: ['http'], headerTimeoutMs: 150 });
    try {
      const t0 = Date.now();
      const raw = await exchangeRaw(srv.target('http'), Buffer.from('GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: '));
      assert.match(raw.toString('latin1'), /^HTTP\/1\.1 408 /);
      assert.ok(Date.now() - t0 >= 100);
    } finally {
      await srv.close();
    }
  });

  test('requestTimeoutMs answers 504 on all three stream listeners', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp({ aborts: [], inputErrors: [] })), protocols: ['scgi', 'uwsgi', 'http'], requestTimeoutMs: 150 });
    try {
      assert.equal((await scgiRequest(srv.target('scgi'), fcgiParams('/hang'))).status, 504);
      assert.equal((await uwsgiRequest(srv.target('uwsgi'), fcgiParams('/hang'))).status, 504);
      assert.equal((await httpFetch(srv.target('http'), { path: '/hang' })).status, 504);
      assert.equal(srv.server.stats().timedOut, 3);
    } finally {
      await srv.close();
    }
  });
});

describe('SCGI and uwsgi: a response that is still being written', () => {
  // The connection holds a response head back to send it with the first body bytes (and a short
  // answer with the end of the connection, in one write); held bytes must still leave while the
  // app waits: a head and chunk written in the app's synchronous run (start_response's write),
  // and ones written after an await (the Node bridge, the native app's async generator).
  let srv: TestServer;
  before(async () => {
    const waitForAbort = (signal: AbortSignal): Promise<void> => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const tree = new Tree({ onError: () => undefined })
      .mount(nodeHandler((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('first-sync');
        res.on('close', () => res.end());
      }), '/node')
      .mount(native((environ, start) => {
        const signal = environ['postern.signal'];
        return (async function* () {
          await Promise.resolve();
          start('200 OK', [['Content-Type', 'text/plain']]);
          yield 'first-async';
          await waitForAbort(signal);
        })();
      }), '/native')
      .mount(native((environ, start) => {
        const signal = environ['postern.signal'];
        start('200 OK', [['Content-Type', 'text/plain']])('first-write');
        return (async function* () {
          await waitForAbort(signal);
          yield '';
        })();
      }), '/write');
    srv = await startTestServer({ tree, protocols: ['scgi', 'uwsgi'] });
  });
  after(() => srv.close());

  for (const protocol of ['scgi', 'uwsgi'] as const) {
    for (const [path, text] of [['/node', 'first-sync'], ['/native', 'first-async'], ['/write', 'first-write']] as const) {
      test(`${protocol} ${path}: the head and first chunk arrive while the app still runs`, async () => {
        const s = await dial(srv.target(protocol));
        s.on('error', () => undefined);
        let got = '';
        const arrived = new Promise<void>((resolve) => {
          s.on('data', (c: Buffer) => {
            got += c.toString('latin1');
            if (got.includes(text)) resolve();
          });
        });
        const params = fcgiParams(path);
        s.write(protocol === 'scgi' ? encodeScgiRequest(scgiParams(params, 0)) : encodeUwsgiRequest(params));
        await Promise.race([arrived, eventually(() => false, 5000, `${text} on ${protocol}`)]);
        assert.match(got, protocol === 'scgi' ? /^Status: 200 OK\r\n/ : /^HTTP\/1\.1 200 OK\r\n/);
        assert.equal(srv.server.stats().inFlight, 1);
        // A reset, not a FIN: a half-closed SCGI/uwsgi client still waits for its answer.
        s.resetAndDestroy();
        await eventually(() => srv.server.stats().inFlight === 0, 3000, 'the request to end');
      });
    }
  }
});
