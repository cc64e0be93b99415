// FastCGI at the byte level over real sockets, from the web server's side: KEEP_CONN, multiplexing
// and CANT_MPX_CONN, ABORT_REQUEST, peer close, GET_VALUES, UNKNOWN_ROLE, broken connections,
// limits, timeouts, the access log, graceful stop, and one cross-check with libfcgi's cgi-fcgi.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  decodeNameValuePairs,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeData,
  encodeDataEnd,
  encodeGetValues,
  encodeParams,
  encodeStdin,
  encodeStdinEnd,
  FCGI_PROTOCOL_STATUS,
  FCGI_TYPE,
} from '../../protocols/fastcgi/index.ts';
import { COMMON_ERRORS } from '../../protocols/common/errors.ts';
import { native } from '../../src/app/resolve.ts';
import { Tree } from '../../src/app/tree.ts';
import { SERVER_ERRORS } from '../../src/server/errors.ts';
import { FcgiClient, dial, fcgiRequest, parseResponse } from '../helpers/clients.ts';
import {
  controlApp,
  eventually,
  fcgiParams,
  readAll,
  RecordingAccessLog,
  startTestServer,
  treeOf,
  type ControlEvents,
  type TestServer,
} from '../helpers/servers.ts';

function freshEvents(): ControlEvents {
  return { aborts: [], inputErrors: [] };
}

const endRequests = (c: FcgiClient, id: number): number => c.records.filter((r) => r.type === FCGI_TYPE.END_REQUEST && r.requestId === id).length;

describe('FastCGI over a socket', () => {
  let srv: TestServer;
  let events: ControlEvents;
  let access: RecordingAccessLog;

  before(async () => {
    events = freshEvents();
    access = new RecordingAccessLog();
    srv = await startTestServer({ tree: treeOf(controlApp(events)), protocols: ['fastcgi'], accessLog: access, maxConnections: 50 });
  });
  after(() => srv.close());

  test('KEEP_CONN: several requests on one connection, which stays open', async () => {
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      for (let i = 0; i < 5; i++) {
        const r = await c.request({ params: fcgiParams('/echo', [['HTTP_X_TEST', `n${String(i)}`]]), keepConn: true });
        assert.equal(r.protocolStatus, FCGI_PROTOCOL_STATUS.REQUEST_COMPLETE);
        assert.equal(r.appStatus, 0);
        const body = JSON.parse(parseResponse(r.stdout).text) as Record<string, unknown>;
        assert.equal(body['HTTP_X_TEST'], `n${String(i)}`);
        // §6.1: the STDOUT stream is terminated by an empty record before END_REQUEST.
        const last = r.records.at(-2);
        assert.equal(last?.type, FCGI_TYPE.STDOUT);
        assert.equal(last?.content.length, 0);
      }
      assert.equal(c.ended, false, 'the application did not close a KEEP_CONN connection');
    } finally {
      c.destroy();
    }
  });

  test('without KEEP_CONN the application closes after the response', async () => {
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    const r = await c.request({ params: fcgiParams('/echo'), keepConn: false });
    assert.equal(parseResponse(r.stdout).status, 200);
    await c.closed;
    assert.equal(endRequests(c, 1), 1);
  });

  test('ABORT_REQUEST reaches the app signal and gets exactly one END_REQUEST', async () => {
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      const before = events.aborts.length;
      c.begin({ id: 1, params: fcgiParams('/hang'), keepConn: true });
      await new Promise((r) => setTimeout(r, 30));
      c.send(encodeAbortRequest(1));
      const r = await c.result(1);
      assert.equal(r.protocolStatus, FCGI_PROTOCOL_STATUS.REQUEST_COMPLETE);
      assert.notEqual(r.appStatus, 0, 'an aborted request does not claim success');
      await eventually(() => events.aborts.length > before, 2000, 'the abort to reach the app');
      assert.equal(events.aborts.at(-1)?.code, SERVER_ERRORS.ABORTED);
      await new Promise((res) => setTimeout(res, 50));
      assert.equal(endRequests(c, 1), 1, 'exactly one END_REQUEST');
      // The id is free again and the connection still serves.
      const again = await c.request({ id: 1, params: fcgiParams('/echo'), keepConn: true });
      assert.equal(parseResponse(again.stdout).status, 200);
    } finally {
      c.destroy();
    }
  });

  test('the peer closing the connection aborts its requests', async () => {
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    const before = events.aborts.length;
    c.begin({ id: 1, params: fcgiParams('/hang'), keepConn: true });
    await eventually(() => srv.server.stats().inFlight > 0, 2000, 'the request to start');
    c.destroy();
    await eventually(() => events.aborts.length > before, 2000, 'the abort to reach the app');
    assert.equal(events.aborts.at(-1)?.code, SERVER_ERRORS.CONNECTION_CLOSED);
    await eventually(() => srv.server.stats().inFlight === 0, 2000, 'the request to be gone');
  });

  test('GET_VALUES is answered truthfully over the socket, unknown names left out', async () => {
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      c.send(encodeGetValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS', 'POSTERN_NOT_A_VALUE']));
      await c.until((rs) => rs.some((r) => r.type === FCGI_TYPE.GET_VALUES_RESULT));
      const results = c.records.filter((r) => r.type === FCGI_TYPE.GET_VALUES_RESULT);
      assert.equal(results.length, 1);
      assert.equal(results[0]?.requestId, 0);
      assert.deepEqual(decodeNameValuePairs(results[0].content), ['FCGI_MAX_CONNS', '50', 'FCGI_MAX_REQS', '50', 'FCGI_MPXS_CONNS', '0']);
    } finally {
      c.destroy();
    }
  });

  test('a role with no app mounted gets END_REQUEST(UNKNOWN_ROLE); the connection serves on', async () => {
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      const r = await c.request({ id: 1, params: fcgiParams('/echo'), role: 2, keepConn: true });
      assert.equal(r.protocolStatus, FCGI_PROTOCOL_STATUS.UNKNOWN_ROLE);
      assert.equal(r.stdout.length, 0);
      const ok = await c.request({ id: 1, params: fcgiParams('/echo'), keepConn: true });
      assert.equal(parseResponse(ok.stdout).status, 200);
    } finally {
      c.destroy();
    }
  });

  test('a bad version byte closes that connection; another connection keeps working', async () => {
    const good = await FcgiClient.connect(srv.target('fastcgi'));
    const bad = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      const header = encodeBeginRequest(1, 1, true);
      header[0] = 2;
      bad.send(header);
      await bad.closed;
      assert.equal(bad.records.length, 0);
      const logged = srv.log.withCode('POSTERN_ERR_FCGI_BAD_VERSION');
      assert.equal(logged.length, 1);
      assert.equal(logged[0]?.level, 'warn');
      assert.match(String(logged[0]?.meta['peer']), /^127\.0\.0\.1:\d+$/);
      const r = await good.request({ params: fcgiParams('/echo'), keepConn: true });
      assert.equal(parseResponse(r.stdout).status, 200);
    } finally {
      good.destroy();
    }
  });

  test('a body shorter than CONTENT_LENGTH fails the app input with a code', async () => {
    const r = await fcgiRequest(srv.target('fastcgi'), {
      params: fcgiParams('/body-error', [['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '10']]),
      body: 'abcd',
    });
    assert.equal(r.text, `error:${SERVER_ERRORS.BODY_TRUNCATED}`);
  });

  test('a body of exactly CONTENT_LENGTH bytes arrives whole, in several records', async () => {
    const body = Buffer.alloc(200_000, 0x61);
    const r = await fcgiRequest(srv.target('fastcgi'), {
      params: fcgiParams('/body-error', [['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', String(body.length)]]),
      body,
    });
    assert.equal(r.text, 'ok:200000');
  });

  test('params split across records and pairs split mid-name reach the app intact', async () => {
    const r = await fcgiRequest(srv.target('fastcgi'), { params: fcgiParams('/echo', [['HTTP_X_TEST', 'x'.repeat(300)]]), paramsRecordBytes: 7 });
    const env = JSON.parse(r.text) as Record<string, unknown>;
    assert.equal(env['HTTP_X_TEST'], 'x'.repeat(300));
  });

  test('the access log gets one record per finished request', async () => {
    const before = access.records.length;
    const r = await fcgiRequest(srv.target('fastcgi'), { params: fcgiParams('/echo', [['HTTP_USER_AGENT', 'test-agent'], ['REQUEST_URI', '/echo?q=1']]) });
    assert.equal(r.status, 200);
    await eventually(() => access.records.length === before + 1, 2000, 'the access record');
    const rec = access.records.at(-1)!;
    assert.equal(rec.protocol, 'fastcgi');
    assert.equal(rec.status, 200);
    assert.equal(rec.method, 'GET');
    assert.equal(rec.uri, '/echo?q=1');
    assert.equal(rec.userAgent, 'test-agent');
    assert.equal(rec.bytes, r.body.length);
    assert.equal(rec.remoteAddr, '127.0.0.1');
    assert.ok(rec.durationMs >= 0);
  });
});

describe('FastCGI multiplexing', () => {
  test('two interleaved request ids are served independently (maxRequestsPerConnection 2)', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'], maxRequestsPerConnection: 2 });
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      const post = (id: number): Array<readonly [string, string]> => fcgiParams('/echo', [['REQUEST_METHOD', 'POST'], ['HTTP_X_TEST', `id${String(id)}`]]);
      c.send([encodeBeginRequest(1, 1, true), ...encodeParams(1, post(1))]);
      c.send([encodeBeginRequest(2, 1, true), ...encodeParams(2, post(2))]);
      c.send([...encodeStdin(1, Buffer.from('one-')), ...encodeStdin(2, Buffer.from('two-')), ...encodeStdin(1, Buffer.from('uno'))]);
      c.send([...encodeStdin(2, Buffer.from('dos')), encodeStdinEnd(2)]);
      const r2 = await c.result(2);
      c.send(encodeStdinEnd(1));
      const r1 = await c.result(1);
      const e1 = JSON.parse(parseResponse(r1.stdout).text) as Record<string, unknown>;
      const e2 = JSON.parse(parseResponse(r2.stdout).text) as Record<string, unknown>;
      assert.deepEqual([e1['HTTP_X_TEST'], e1['body']], ['id1', 'one-uno']);
      assert.deepEqual([e2['HTTP_X_TEST'], e2['body']], ['id2', 'two-dos']);
      assert.equal(r1.protocolStatus, 0);
      assert.equal(r2.protocolStatus, 0);
    } finally {
      c.destroy();
      await srv.close();
    }
  });

  test('without multiplexing a second id gets CANT_MPX_CONN and the first completes', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'], maxRequestsPerConnection: 1 });
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      c.begin({ id: 1, params: fcgiParams('/echo', [['REQUEST_METHOD', 'POST']]), keepConn: true, openBody: true });
      c.begin({ id: 2, params: fcgiParams('/echo'), keepConn: true });
      const r2 = await c.result(2);
      assert.equal(r2.protocolStatus, FCGI_PROTOCOL_STATUS.CANT_MPX_CONN);
      c.send([...encodeStdin(1, Buffer.from('body')), encodeStdinEnd(1)]);
      const r1 = await c.result(1);
      assert.equal((JSON.parse(parseResponse(r1.stdout).text) as Record<string, unknown>)['body'], 'body');
    } finally {
      c.destroy();
      await srv.close();
    }
  });
});

describe('FastCGI limits and timeouts', () => {
  test('params over maxParamsBytes: 431 and END_REQUEST, then the connection closes; the log names the knob', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'], maxParamsBytes: 1024 });
    try {
      const c = await FcgiClient.connect(srv.target('fastcgi'));
      const r = await c.request({ params: fcgiParams('/echo', [['HTTP_X_BIG', 'y'.repeat(2000)]]), keepConn: true });
      assert.equal(parseResponse(r.stdout).status, 431);
      assert.equal(r.protocolStatus, 0);
      await c.closed;
      const logged = srv.log.withCode(COMMON_ERRORS.PARAMS_TOO_LARGE);
      assert.equal(logged.length, 1);
      assert.equal(logged[0]?.meta['limit'], 'maxParamsBytes');
    } finally {
      await srv.close();
    }
  });

  test('requestTimeoutMs: 504 when the head is not out; the app signal aborts', async () => {
    const events = freshEvents();
    const srv = await startTestServer({ tree: treeOf(controlApp(events)), protocols: ['fastcgi'], requestTimeoutMs: 150 });
    try {
      const r = await fcgiRequest(srv.target('fastcgi'), { params: fcgiParams('/hang'), keepConn: true });
      assert.equal(r.status, 504);
      await eventually(() => events.aborts.length === 1, 2000, 'the abort');
      assert.equal(events.aborts[0]?.code, SERVER_ERRORS.REQUEST_TIMEOUT);
      assert.equal(srv.server.stats().timedOut, 1);
    } finally {
      await srv.close();
    }
  });

  test('requestTimeoutMs after the head: END_REQUEST with a failure appStatus', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'], requestTimeoutMs: 150 });
    try {
      const r = await fcgiRequest(srv.target('fastcgi'), { params: fcgiParams('/stall'), keepConn: true });
      assert.equal(r.status, 200);
      assert.equal(r.text, 'partial');
      assert.notEqual(r.fcgi.appStatus, 0);
    } finally {
      await srv.close();
    }
  });

  test('headerTimeoutMs: a connection that never completes its params is closed', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'], headerTimeoutMs: 150 });
    try {
      const c = await FcgiClient.connect(srv.target('fastcgi'));
      c.send(encodeBeginRequest(1, 1, true));
      const t0 = Date.now();
      await c.closed;
      assert.ok(Date.now() - t0 >= 100, 'not before the timeout');
      assert.equal(srv.log.withCode(SERVER_ERRORS.HEADER_TIMEOUT).length, 1);
    } finally {
      await srv.close();
    }
  });

  test('keepAliveTimeoutMs: an idle KEEP_CONN connection is closed', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'], keepAliveTimeoutMs: 150 });
    try {
      const c = await FcgiClient.connect(srv.target('fastcgi'));
      await c.request({ params: fcgiParams('/echo'), keepConn: true });
      const t0 = Date.now();
      await c.closed;
      assert.ok(Date.now() - t0 >= 100);
    } finally {
      await srv.close();
    }
  });

  test('bodyIdleTimeoutMs: a body that stops arriving gets 408 and the input fails', async () => {
    const events = freshEvents();
    const srv = await startTestServer({ tree: treeOf(controlApp(events)), protocols: ['fastcgi'], bodyIdleTimeoutMs: 150 });
    try {
      const c = await FcgiClient.connect(srv.target('fastcgi'));
      c.begin({ params: fcgiParams('/body-error', [['REQUEST_METHOD', 'POST']]), body: 'some', keepConn: true, openBody: true });
      const r = await c.result(1);
      assert.equal(parseResponse(r.stdout).status, 408);
      await eventually(() => events.inputErrors.length === 1, 2000, 'the input error');
      assert.equal(events.inputErrors[0]?.code, SERVER_ERRORS.BODY_TIMEOUT);
      await c.closed;
    } finally {
      await srv.close();
    }
  });

  test('maxConnections: connections past the limit are closed at once and counted', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'], maxConnections: 2 });
    const held = [await FcgiClient.connect(srv.target('fastcgi')), await FcgiClient.connect(srv.target('fastcgi'))];
    try {
      await eventually(() => srv.server.stats().connections === 2, 2000, 'two connections');
      const third = await FcgiClient.connect(srv.target('fastcgi'));
      await third.closed;
      assert.equal(srv.server.stats().rejectedConnections, 1);
      assert.equal(srv.log.entries.filter((e) => e.meta['limit'] === 'maxConnections').length, 1);
      const r = await held[0]!.request({ params: fcgiParams('/echo'), keepConn: true });
      assert.equal(parseResponse(r.stdout).status, 200);
    } finally {
      for (const c of held) c.destroy();
      await srv.close();
    }
  });

  test('close(): in-flight requests finish, idle connections close, new ones are refused', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'] });
    const busy = await FcgiClient.connect(srv.target('fastcgi'));
    const idle = await FcgiClient.connect(srv.target('fastcgi'));
    await idle.request({ params: fcgiParams('/echo'), keepConn: true });
    busy.begin({ params: fcgiParams('/sleep/200'), keepConn: true });
    await eventually(() => srv.server.stats().inFlight === 1, 2000, 'the request to start');
    const closing = srv.close();
    await idle.closed;
    const r = await busy.result(1);
    assert.equal(parseResponse(r.stdout).text, 'slept');
    await busy.closed;
    await closing;
    await assert.rejects(dial(srv.target('fastcgi')), { code: 'ECONNREFUSED' });
  });

  test('close() past shutdownTimeoutMs aborts what is still running', async () => {
    const events = freshEvents();
    const srv = await startTestServer({ tree: treeOf(controlApp(events)), protocols: ['fastcgi'], shutdownTimeoutMs: 100 });
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    c.begin({ params: fcgiParams('/hang'), keepConn: true });
    await eventually(() => srv.server.stats().inFlight === 1, 2000, 'the request to start');
    await srv.close();
    await c.closed;
    await eventually(() => events.aborts.length === 1, 2000, 'the abort');
    assert.equal(events.aborts[0]?.code, SERVER_ERRORS.SHUTDOWN);
  });
});

describe('FastCGI roles', () => {
  test('FILTER: the FCGI_DATA stream reaches the app as postern.data; AUTHORIZER answers through its own mount', async () => {
    const tree = new Tree({ onError: () => undefined })
      .mount(native(async (environ, start) => {
        const data = environ['postern.data'];
        const file = data === undefined ? 'none' : (await readAll(data)).toString('latin1');
        const body = (await readAll(environ['postern.input'])).toString('latin1');
        start('200 OK', [['Content-Type', 'text/plain']]);
        return `${environ['postern.role']} stdin=${body} data=${file.toUpperCase()}`;
      }), '/', { role: 'filter' })
      .mount(native((environ, start) => {
        start('200 OK', [['Variable-USER', 'jane']]);
        return environ['postern.role'];
      }), '/', { role: 'authorizer' });
    const srv = await startTestServer({ tree, protocols: ['fastcgi'] });
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      c.begin({ id: 1, role: 3, params: fcgiParams('/page.html', [['FCGI_DATA_LENGTH', '5']]), body: 'in', keepConn: true });
      c.send([...encodeData(1, Buffer.from('hello')), encodeDataEnd(1)]);
      const f = await c.result(1);
      assert.equal(parseResponse(f.stdout).text, 'filter stdin=in data=HELLO');
      const a = await c.request({ id: 1, role: 2, params: [['REQUEST_METHOD', 'GET'], ['REQUEST_URI', '/private']], keepConn: true });
      const r = parseResponse(a.stdout);
      assert.equal(r.header('Variable-USER'), 'jane');
      assert.equal(r.text, 'authorizer');
      // No responder is mounted in this tree: that role is refused.
      const refused = await c.request({ id: 1, role: 1, params: fcgiParams('/'), keepConn: true });
      assert.equal(refused.protocolStatus, FCGI_PROTOCOL_STATUS.UNKNOWN_ROLE);
    } finally {
      c.destroy();
      await srv.close();
    }
  });
});

describe('FastCGI against libfcgi cgi-fcgi', () => {
  test('cgi-fcgi -bind -connect gets the app response (POST body on stdin)', async () => {
    const srv = await startTestServer({ tree: treeOf(controlApp(freshEvents())), protocols: ['fastcgi'] });
    try {
      const body = 'from cgi-fcgi';
      // cgi-fcgi sends its whole environment as params: start it from an empty one.
      const child = spawn('env', [
        '-i',
        'REQUEST_METHOD=POST',
        'SCRIPT_NAME=/echo',
        'REQUEST_URI=/echo?via=libfcgi',
        'QUERY_STRING=via=libfcgi',
        'SERVER_PROTOCOL=HTTP/1.1',
        'CONTENT_TYPE=text/plain',
        `CONTENT_LENGTH=${String(body.length)}`,
        'HTTP_X_TEST=cgi-fcgi',
        '/usr/bin/cgi-fcgi',
        '-bind',
        '-connect',
        `127.0.0.1:${String(srv.port('fastcgi'))}`,
      ], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stdin.end(body);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0);
      const r = parseResponse(Buffer.concat(out));
      assert.equal(r.status, 200);
      const env = JSON.parse(r.text) as Record<string, unknown>;
      assert.equal(env['REQUEST_METHOD'], 'POST');
      assert.equal(env['QUERY_STRING'], 'via=libfcgi');
      assert.equal(env['HTTP_X_TEST'], 'cgi-fcgi');
      assert.equal(env['CONTENT_LENGTH'], String(body.length));
      assert.equal(env['body'], body);
    } finally {
      await srv.close();
    }
  });
});
