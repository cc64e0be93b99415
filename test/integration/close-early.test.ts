// One connection per request, closed by postern as soon as its answer is out (issue 17), from the
// front server's side: when the whole request has arrived (SCGI, uwsgi, FastCGI without
// KEEP_CONN), the socket is closed once the response and the FIN have left, without waiting for
// the peer's FIN; when the peer may still be sending (an unread body, a KEEP_CONN connection), the
// connection keeps reading instead, so that no RST cuts the response short.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { encodeBeginRequest, encodeParams, encodeStdin, encodeStdinEnd } from '../../protocols/fastcgi/index.ts';
import { encodeScgiRequest, scgiParams } from '../../protocols/scgi/index.ts';
import { encodeUwsgiRequest } from '../../protocols/uwsgi/index.ts';
import { parseResponse, type Target } from '../helpers/clients.ts';
import { native } from '../../src/app/adapters/marker.ts';
import { Tree } from '../../src/app/tree.ts';
import { controlApp, eventually, fcgiParams, startTestServer, type TestServer } from '../helpers/servers.ts';

/**
 * A client that keeps its side open after the server's FIN (a front server closes its end only
 * once it has read the response; node:net's default would close at once and hide the difference).
 */
function dial(target: Target): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if ('path' in target) throw new Error('TCP targets only');
    const s = connect({ port: target.port, host: target.host ?? '127.0.0.1', allowHalfOpen: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** What the server sent until its FIN, and whether an error (a reset) came instead. */
interface Read {
  readonly bytes: Buffer;
  readonly error: string | undefined;
}

function readToEnd(s: Socket): Promise<Read> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve({ bytes: Buffer.concat(chunks), error: undefined }));
    s.once('error', (err: NodeJS.ErrnoException) => resolve({ bytes: Buffer.concat(chunks), error: err.code ?? err.message }));
  });
}

/** The server's stdout bytes out of FastCGI records (padding dropped), and whether END_REQUEST came. */
function fastcgiStdout(bytes: Buffer): { stdout: Buffer; ended: boolean } {
  const out: Buffer[] = [];
  let ended = false;
  for (let at = 0; at + 8 <= bytes.length;) {
    const type = bytes[at + 1]!;
    const length = bytes.readUInt16BE(at + 4);
    if (type === 6) out.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === 3) ended = true;
    at += 8 + length + bytes[at + 6]!;
  }
  return { stdout: Buffer.concat(out), ended };
}

function fastcgiRequest(path: string, keepConn: boolean, extra: ReadonlyArray<readonly [string, string]> = []): Buffer {
  // encodeParams ends the params with their empty record.
  return Buffer.concat([encodeBeginRequest(1, 1, keepConn), ...encodeParams(1, fcgiParams(path, extra))]);
}

describe('closing a one-request connection once its answer is out', () => {
  let srv: TestServer;

  before(async () => {
    // `/now` answers while the decoder is still inside the chunk that carried the request (what a
    // synchronous hello does behind nginx); the control app's `/sleep/1` answers a moment later.
    const now = native((_environ, start) => {
      start('200 OK', [['Content-Type', 'text/plain']]);
      return 'now';
    });
    const tree = new Tree().mount(native(controlApp({ aborts: [], inputErrors: [] })), '/').mount(now, '/now');
    srv = await startTestServer({ tree, protocols: ['fastcgi', 'scgi', 'uwsgi'] });
  });
  after(() => srv.close());

  const open = (): number => srv.server.stats().connections;

  test('SCGI and uwsgi: a request read whole is answered, then the connection is gone while the peer has not closed', async () => {
    for (const [protocol, bytes, text] of [
      ['scgi', encodeScgiRequest(scgiParams(fcgiParams('/sleep/1'), 0)), 'slept'],
      ['uwsgi', encodeUwsgiRequest(fcgiParams('/sleep/1')), 'slept'],
      ['scgi', encodeScgiRequest(scgiParams(fcgiParams('/now'), 0)), 'now'],
      ['uwsgi', encodeUwsgiRequest(fcgiParams('/now')), 'now'],
    ] as const) {
      const s = await dial(srv.target(protocol));
      try {
        const reading = readToEnd(s);
        s.write(bytes);
        const r = await reading;
        assert.equal(r.error, undefined, protocol);
        assert.equal(parseResponse(r.bytes).text, text, protocol);
        // Our end is still open: the server did not wait for it.
        assert.equal(s.writableEnded, false);
        await eventually(() => open() === 0, 1000, `${protocol}: the server closed its socket`);
      } finally {
        s.destroy();
      }
    }
  });

  test('SCGI: an answer sent before the body was read keeps the connection reading until the peer is done, with no reset', async () => {
    const body = 'x'.repeat(20_000);
    const s = await dial(srv.target('scgi'));
    try {
      const reading = readToEnd(s);
      const head = encodeScgiRequest(scgiParams(fcgiParams('/sleep/1', [['REQUEST_METHOD', 'POST']]), body.length));
      s.write(head);
      s.write(body.slice(0, 1000));
      const r = await reading;
      assert.equal(parseResponse(r.bytes).text, 'slept');
      // The rest of the body is still to come: the connection stays, reading it.
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(open(), 1, 'the connection keeps reading the unread body');
      const errors: string[] = [];
      s.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
      await new Promise<void>((resolve) => s.end(body.slice(1000), resolve));
      await eventually(() => open() === 0, 3000, 'the connection closed after the peer did');
      assert.deepEqual(errors, []);
    } finally {
      s.destroy();
    }
  });

  /** Sends `bytes` on a FastCGI connection that stays half-open; the answer must be `text`, then the server gone. */
  async function answeredThenClosed(bytes: Buffer, text: string, what: string): Promise<void> {
    const s = await dial(srv.target('fastcgi'));
    try {
      const reading = readToEnd(s);
      s.write(bytes);
      const r = await reading;
      assert.equal(r.error, undefined, what);
      const { stdout, ended } = fastcgiStdout(r.bytes);
      assert.equal(ended, true, what);
      assert.equal(parseResponse(stdout).text, text, what);
      assert.equal(s.writableEnded, false);
      await eventually(() => open() === 0, 1000, `${what}: the server closed its socket`);
    } finally {
      s.destroy();
    }
  }

  test('FastCGI without KEEP_CONN: once STDIN ended and the answer is out, the connection is gone while the peer has not closed', async () => {
    // /sleep/1 answers after STDIN's end was read; /now inside the chunk that also carries it.
    await answeredThenClosed(Buffer.concat([fastcgiRequest('/sleep/1', false), encodeStdinEnd(1)]), 'slept', '/sleep/1');
    await answeredThenClosed(Buffer.concat([fastcgiRequest('/now', false), encodeStdinEnd(1)]), 'now', '/now');
  });

  test('FastCGI without KEEP_CONN: records after the answer in the same chunk are ignored, as for a released id', async () => {
    // A body past CONTENT_LENGTH for a request already answered: no second answer, no error logged.
    const before = srv.log.withCode('POSTERN_ERR_BODY_TOO_LONG').length;
    const post = fastcgiRequest('/now', false, [['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '2']]);
    await answeredThenClosed(Buffer.concat([post, ...encodeStdin(1, Buffer.from('12345')), encodeStdinEnd(1)]), 'now', 'a body past CONTENT_LENGTH');
    assert.equal(srv.log.withCode('POSTERN_ERR_BODY_TOO_LONG').length, before);
  });

  test('FastCGI without KEEP_CONN, STDIN still open when the app answered: the connection keeps reading until the peer is done', async () => {
    const s = await dial(srv.target('fastcgi'));
    try {
      const reading = readToEnd(s);
      s.write(Buffer.concat([fastcgiRequest('/sleep/1', false, [['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '10']]), ...encodeStdin(1, Buffer.from('12345'))]));
      const r = await reading;
      assert.equal(fastcgiStdout(r.bytes).ended, true);
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(open(), 1, 'the connection keeps reading the rest of STDIN');
      const errors: string[] = [];
      s.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
      await new Promise<void>((resolve) => s.end(Buffer.concat([...encodeStdin(1, Buffer.from('67890')), encodeStdinEnd(1)]), resolve));
      await eventually(() => open() === 0, 3000, 'the connection closed after the peer did');
      assert.deepEqual(errors, []);
    } finally {
      s.destroy();
    }
  });

  test('FastCGI with KEEP_CONN: the connection stays open after the answer', async () => {
    const s = await dial(srv.target('fastcgi'));
    try {
      let got = Buffer.alloc(0);
      s.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
      s.write(Buffer.concat([fastcgiRequest('/sleep/1', true), encodeStdinEnd(1)]));
      await eventually(() => fastcgiStdout(got).ended, 3000, 'END_REQUEST');
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(open(), 1);
      assert.equal(s.readableEnded, false);
    } finally {
      s.destroy();
    }
  });
});
