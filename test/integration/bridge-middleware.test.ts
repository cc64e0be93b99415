// Real middleware through both Node bridges behind a real nginx, from a browser's side: Express
// (express.static, sendFile with Range and If-None-Match, download, compression, multer,
// cookie-parser, server-sent events), Koa with @koa/bodyparser, Fastify with plugins and an
// onSend hook, and Hono streaming through the Fetch adapter. Two nginx sites from config/nginx:
// fastcgi-keepalive (buffered; the SSE handlers send X-Accel-Buffering: no, as apps behind nginx
// do) and fastcgi-unbuffered. nginx 1.22 forwarded each event at once through the buffered site
// even without that header (tried): the handshake below is what tests the bridge, on both sites.
// Every response through the direct bridge is then compared with the replay's.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Tree } from '../../src/app/tree.ts';
import { startServer, type PosternServer } from '../../src/server/server.ts';
import { startNginx, type FrontServer, type NginxMode } from '../helpers/front/nginx.ts';
import { RecordingLog } from '../helpers/servers.ts';
import { BRIDGES, nodeApp, type Bridge } from '../helpers/bridges.ts';
import { send, type Reply, type SendOptions } from '../fixtures/front/client.ts';
import { fcgiStream, nginxParams } from '../helpers/clients.ts';
import {
  Acks, BIG_DOWNLOAD_BYTES, BIG_TEXT, bigPieces, expressApp, fastifyApp, honoApp, koaApp, pattern, sha256, SSE_EVENTS, staticFiles, STREAM_PIECES, type StaticFiles,
} from './bridge-middleware-apps.ts';

const BUFFERED = 0;
const UNBUFFERED = 1;
const MODES: readonly NginxMode[] = ['fastcgi-keepalive', 'fastcgi-unbuffered'];

interface Running {
  server: PosternServer;
  front: FrontServer<NginxMode>;
  files: StaticFiles;
  errors: unknown[];
}

let running: Running | undefined;

function env(): Running {
  if (running === undefined) throw new Error('postern or nginx did not start (see the first test of this file)');
  return running;
}

function url(site: number, path: string): string {
  const s = env().front.sites[site];
  if (s === undefined) throw new Error(`no site ${site}`);
  return s.url(path);
}

/** Each response, per bridge and check, for the comparison at the end. */
const seen: Record<Bridge, Map<string, string>> = { replay: new Map(), direct: new Map() };

// Headers that legitimately differ between two requests for the same thing.
const VOLATILE = new Set(['date', 'connection', 'keep-alive']);

function remember(bridge: Bridge, name: string, r: Reply): void {
  const headers = Object.entries(r.headers).filter(([n]) => !VOLATILE.has(n)).sort(([a], [b]) => a.localeCompare(b));
  seen[bridge].set(name, JSON.stringify({ status: r.status, headers, bytes: r.bytes, sha256: r.sha256 }));
}

async function get(bridge: Bridge, name: string, site: number, path: string, options: SendOptions = {}): Promise<Reply> {
  const r = await send(url(site, path), { timeoutMs: 10_000, ...options });
  remember(bridge, name, r);
  return r;
}

function why(r: Reply): string {
  return `status ${r.status}, headers ${JSON.stringify(r.headers)}, body ${JSON.stringify(r.body.subarray(0, 300).toString('latin1'))}\n--- nginx error log ---\n${env().front.errorLog().slice(-2000)}`;
}

function cookiesOf(headers: IncomingHttpHeaders): string {
  return (headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
}

function multipart(boundary: string, fields: Record<string, string>, files: Array<{ name: string; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${f.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    parts.push(f.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

/**
 * Reads a response pausing 20 ms after every 512 KiB, so nginx's and postern's buffers fill and
 * every layer's backpressure is exercised; bounded at 20 s.
 */
function slowRead(site: number, path: string): Promise<{ status: number; bytes: number; sha256: string; pauses: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url(site, path), { agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`${path}: no end in 20 s`)), 20_000);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      let mark = 0;
      let pauses = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (bytes - mark >= 512 * 1024) {
          mark = bytes;
          pauses++;
          res.pause();
          setTimeout(() => res.resume(), 20);
        }
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex'), pauses });
      });
    });
    req.end();
  });
}

interface SseRun {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Events acknowledged, in order: each ack let the handler write the next event. */
  acked: number[];
}

/**
 * Reads an event stream; as each event but the last arrives, acknowledges it with a second
 * request. The handler writes event n+1 only after ack n, so a stream that the bridge or nginx
 * holds back never completes (the handler then writes a `timeout` event).
 */
function sse(site: number, base: string, id: string): Promise<SseRun> {
  return new Promise((resolve, reject) => {
    const req = request(url(site, `${base}/sse?id=${id}`), { agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`${base}/sse: no end in 10 s`)), 10_000);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      let text = '';
      const acked: number[] = [];
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        // Only whole events (a blank line ends one); Hono writes `data:` before `id:`.
        const whole = text.split('\n\n').slice(0, -1);
        for (const m of whole.map((e) => /^data: event (\d+)$/m.exec(e)).filter((x) => x !== null)) {
          const n = Number(m[1]);
          if (n < SSE_EVENTS - 1 && !acked.includes(n)) {
            acked.push(n);
            send(url(site, `${base}/ack?id=${id}:${n}`), { timeoutMs: 5000 }).catch((err: unknown) => req.destroy(err as Error));
          }
        }
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, acked });
      });
    });
    req.end();
  });
}

function assertSse(run: SseRun): void {
  assert.equal(run.status, 200);
  assert.match(String(run.headers['content-type']), /^text\/event-stream/);
  assert.equal(run.headers['x-accel-buffering'], undefined, 'nginx takes X-Accel-Buffering for itself');
  assert.doesNotMatch(run.text, /timeout/, 'an event was held back: the handler was never acknowledged');
  assert.deepEqual(run.acked, Array.from({ length: SSE_EVENTS - 1 }, (_, i) => i));
  assert.deepEqual([...run.text.matchAll(/data: event (\d+)/g)].map((m) => Number(m[1])), Array.from({ length: SSE_EVENTS }, (_, i) => i));
}

describe('real middleware through both Node bridges behind nginx', () => {
  const acks = new Acks();

  // Started by a test, not a hook: a front server that cannot start is a counted failure.
  test('postern and nginx start', async () => {
    const files = staticFiles();
    const errors: unknown[] = [];
    const tree = new Tree({ onError: (err) => errors.push(err) });
    for (const bridge of BRIDGES) {
      tree.mount(nodeApp(expressApp(files, acks), bridge), `/${bridge}/express`, { kind: 'native' });
      tree.mount(nodeApp(koaApp(), bridge), `/${bridge}/koa`, { kind: 'native' });
      tree.mount(nodeApp(await fastifyApp(), bridge), `/${bridge}/fastify`, { kind: 'native' });
    }
    tree.mount(honoApp(acks), '/hono');
    const server = await startServer({ tree, log: new RecordingLog(), env: {}, listeners: [{ protocol: 'fastcgi', address: '127.0.0.1:0' }] });
    const port = server.listeners[0]?.port;
    const front = await startNginx(MODES.map((mode) => ({ mode, backend: `127.0.0.1:${String(port)}` }))).catch(async (err: unknown) => {
      await server.close();
      files.remove();
      throw err;
    });
    running = { server, front, files, errors };
  });

  after(async () => {
    await running?.front.stop();
    await running?.server.close();
    running?.files.remove();
  });

  for (const bridge of BRIDGES) {
    const ex = `/${bridge}/express`;
    describe(`bridge ${bridge}`, () => {
      test('express.static: GET, HEAD, and 304 to If-None-Match', async () => {
        const { hello } = env().files;
        const r = await get(bridge, 'static GET', BUFFERED, `${ex}/static/hello.txt`);
        assert.equal(r.status, 200, why(r));
        assert.equal(r.text(), hello);
        assert.match(String(r.headers['content-type']), /^text\/plain/);
        const etag = r.headers.etag;
        assert.ok(typeof etag === 'string' && etag !== '', 'an ETag');
        const h = await get(bridge, 'static HEAD', BUFFERED, `${ex}/static/hello.txt`, { method: 'HEAD' });
        assert.equal(h.status, 200, why(h));
        assert.equal(h.bytes, 0);
        assert.equal(h.headers['content-length'], String(hello.length));
        const n = await get(bridge, 'static 304', BUFFERED, `${ex}/static/hello.txt`, { headers: { 'If-None-Match': etag } });
        assert.equal(n.status, 304, why(n));
        assert.equal(n.bytes, 0);
      });

      test('res.sendFile: whole, Range (206), and If-None-Match (304)', async () => {
        const { big } = env().files;
        const r = await get(bridge, 'sendFile GET', BUFFERED, `${ex}/file`);
        assert.equal(r.status, 200, why(r));
        assert.equal(r.sha256, sha256(big));
        assert.equal(r.headers['accept-ranges'], 'bytes');
        const p = await get(bridge, 'sendFile Range', BUFFERED, `${ex}/file`, { headers: { Range: 'bytes=1000-70999' } });
        assert.equal(p.status, 206, why(p));
        assert.equal(p.headers['content-range'], `bytes 1000-70999/${big.length}`);
        assert.equal(p.headers['content-length'], '70000');
        assert.equal(p.sha256, sha256(big.subarray(1000, 71000)));
        const tail = await get(bridge, 'sendFile suffix Range', UNBUFFERED, `${ex}/file`, { headers: { Range: 'bytes=-10' } });
        assert.equal(tail.status, 206, why(tail));
        assert.deepEqual(tail.body, big.subarray(big.length - 10));
        const etag = String(r.headers.etag);
        const n = await get(bridge, 'sendFile 304', BUFFERED, `${ex}/file`, { headers: { 'If-None-Match': etag } });
        assert.equal(n.status, 304, why(n));
        assert.equal(n.bytes, 0);
      });

      test('res.download: Content-Disposition and the bytes', async () => {
        const r = await get(bridge, 'download', BUFFERED, `${ex}/download`);
        assert.equal(r.status, 200, why(r));
        assert.equal(r.headers['content-disposition'], 'attachment; filename="greeting report.txt"');
        assert.equal(r.text(), env().files.hello);
      });

      test('compression: a gzip body and a flushed gzip stream decode to the original', async () => {
        const r = await get(bridge, 'gzip text', BUFFERED, `${ex}/gz/text`, { headers: { 'Accept-Encoding': 'gzip' } });
        assert.equal(r.status, 200, why(r));
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.match(String(r.headers.vary), /Accept-Encoding/i);
        assert.ok(r.bytes < BIG_TEXT.length / 4, `compressed to ${r.bytes} bytes`);
        assert.equal(gunzipSync(r.body).toString('utf8'), BIG_TEXT);
        for (const site of [BUFFERED, UNBUFFERED]) {
          const s = await get(bridge, `gzip stream ${site}`, site, `${ex}/gz/stream`, { headers: { 'Accept-Encoding': 'gzip' } });
          assert.equal(s.status, 200, why(s));
          assert.equal(s.headers['content-encoding'], 'gzip');
          assert.equal(gunzipSync(s.body).toString('utf8'), STREAM_PIECES.join(''));
        }
      });

      test('multer: a multipart upload of three files up to 3 MiB, bytes verified', async () => {
        const files = [
          { name: 'small.bin', data: pattern(1024, 1) },
          { name: 'medium.bin', data: pattern(300 * 1024, 2) },
          { name: 'large.bin', data: pattern(3 * 1024 * 1024 + 17, 3) },
        ];
        const boundary = '----postern-bridge-boundary';
        const body = multipart(boundary, { title: 'three files', note: 'caf\u00e9' }, files);
        for (const site of [BUFFERED, UNBUFFERED]) {
          const r = await get(bridge, `multer ${site}`, site, `${ex}/upload`, {
            method: 'POST',
            headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
            body,
          });
          assert.equal(r.status, 200, why(r));
          assert.deepEqual(r.json(), {
            fields: { title: 'three files', note: 'caf\u00e9' },
            files: files.map((f) => ({ field: 'files', name: f.name, type: 'application/octet-stream', size: f.data.length, sha256: sha256(f.data) })),
          });
        }
      });

      test('cookie-parser: a signed cookie round trip', async () => {
        const set = await get(bridge, 'cookie set', BUFFERED, `${ex}/cookie/set`);
        assert.equal(set.status, 200, why(set));
        assert.equal(set.headers['set-cookie']?.length, 2, 'two Set-Cookie headers');
        const r = await get(bridge, 'cookie get', BUFFERED, `${ex}/cookie/get`, { headers: { Cookie: cookiesOf(set.headers) } });
        assert.deepEqual(r.json(), { signed: { session: 'abc 123' }, plain: { plain: 'p1' } });
        const forged = await send(url(BUFFERED, `${ex}/cookie/get`), { headers: { Cookie: cookiesOf(set.headers).replace('abc%20123', 'abc%20124') } });
        assert.deepEqual(forged.json(), { signed: { session: false }, plain: { plain: 'p1' } });
      });

      test('server-sent events reach the client as they are written, through both sites', async () => {
        assertSse(await sse(BUFFERED, ex, `${bridge}-buffered`));
        assertSse(await sse(UNBUFFERED, ex, `${bridge}-unbuffered`));
      });

      test('a slow client: 8 MiB streamed with backpressure through nginx, read with pauses', async () => {
        const r = await slowRead(UNBUFFERED, `${ex}/big`);
        assert.equal(r.status, 200);
        assert.equal(r.bytes, BIG_DOWNLOAD_BYTES);
        assert.equal(r.sha256, sha256(Buffer.concat([...bigPieces()])));
        assert.ok(r.pauses > 0, 'the client paused');
      });

      // Not through nginx: once nginx has sent a response's head to its client it stops sending
      // the rest of the request body upstream (ngx_http_upstream_send_request_handler switches to
      // a dummy handler when header_sent, unless preserve_output, which only grpc_pass sets), so an
      // echo larger than what nginx pushed before the head arrived hangs there, with either
      // request-buffering setting (seen: nginx idle with 235 KiB of the body unsent, postern
      // waiting for it with nothing unread). The FastCGI connection nginx would use, driven
      // directly, carries the body in while the echo goes out, with backpressure both ways.
      test('streaming both ways over one FastCGI connection: req.pipe(res) of 4 MiB', async () => {
        const body = pattern(4 << 20, 9);
        const port = env().server.listeners[0]?.port ?? 0;
        const hash = createHash('sha256');
        const params = nginxParams('fastcgi', {
          method: 'POST', uri: `${ex}/echo`, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) },
        }, port);
        const pieces = function* (): Generator<Buffer> {
          for (let at = 0; at < body.length; at += 60_000) yield body.subarray(at, at + 60_000);
        };
        const r = await fcgiStream({ port, host: '127.0.0.1' }, { params, body: pieces() }, (chunk) => hash.update(chunk));
        assert.equal(r.head.status, 200);
        assert.equal(r.bodyBytes, body.length);
        assert.equal(hash.digest('hex'), sha256(body));
        assert.equal(r.appStatus, 0);
        seen[bridge].set('echo 4 MiB', JSON.stringify({ status: r.head.status, bytes: r.bodyBytes }));
      });

      test('Koa with @koa/bodyparser: JSON and form POST', async () => {
        const j = await get(bridge, 'koa json', BUFFERED, `/${bridge}/koa/items`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ a: 1, b: ['x', 'y'] }),
        });
        assert.equal(j.status, 200, why(j));
        assert.deepEqual(j.json(), { method: 'POST', path: '/items', type: 'application/json', body: { a: 1, b: ['x', 'y'] } });
        const f = await get(bridge, 'koa form', UNBUFFERED, `/${bridge}/koa/form`, {
          method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=caf%C3%A9&n=2',
        });
        assert.deepEqual(f.json(), { method: 'POST', path: '/form', type: 'application/x-www-form-urlencoded', body: { name: 'caf\u00e9', n: '2' } });
      });

      test('Fastify (routing after ready): formbody, a signed cookie round trip, an onSend hook', async () => {
        const base = `/${bridge}/fastify`;
        const f = await get(bridge, 'fastify form', BUFFERED, `${base}/form`, {
          method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=two',
        });
        assert.equal(f.status, 200, why(f));
        assert.equal(f.headers['x-on-send'], 'seen');
        assert.deepEqual(f.json(), { form: { a: '1', b: 'two' } });
        const first = await get(bridge, 'fastify cookie set', BUFFERED, `${base}/cookie`);
        assert.deepEqual(first.json(), { fast: null });
        assert.equal(first.headers['x-on-send'], 'seen');
        const again = await get(bridge, 'fastify cookie get', BUFFERED, `${base}/cookie`, { headers: { Cookie: cookiesOf(first.headers) } });
        assert.deepEqual(again.json(), { fast: { valid: true, renew: false, value: 'f1' } });
      });
    });
  }

  describe('Hono through the Fetch adapter', () => {
    test('hono/streaming stream(): the pieces in order', async () => {
      const r = await send(url(UNBUFFERED, '/hono/stream'), { timeoutMs: 10_000 });
      assert.equal(r.status, 200, why(r));
      assert.equal(r.text(), STREAM_PIECES.join(''));
    });

    test('hono/streaming streamSSE(): events reach the client as they are written', async () => {
      assertSse(await sse(BUFFERED, '/hono', 'hono-buffered'));
      assertSse(await sse(UNBUFFERED, '/hono', 'hono-unbuffered'));
    });
  });

  test('every response through the direct bridge equals the replay\u2019s', () => {
    assert.ok(seen.replay.size >= 20, `only ${seen.replay.size} responses recorded`);
    assert.deepEqual([...seen.direct.keys()], [...seen.replay.keys()]);
    for (const [name, oracle] of seen.replay) assert.equal(seen.direct.get(name), oracle, `${name}: direct (actual) differs from replay (expected)`);
  });

  test('no app error was reported', () => {
    assert.deepEqual(env().errors, []);
  });
});
