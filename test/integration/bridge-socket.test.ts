// Both Node bridges behind postern's real listeners, from the app's side: the same requests over
// the HTTP listener (a real client socket) and the FastCGI listener (params as nginx sends them)
// to a handler mounted at /replay and at /direct. What the app saw (method, url, httpVersion,
// headers, rawHeaders, socket facts, body, the order of events) must be the same through both,
// and the socket facts must be the real ones: the client's own port over HTTP, REMOTE_PORT over FastCGI.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { Tree } from '../../src/app/tree.ts';
import { fcgiRequest, nginxParams } from '../helpers/clients.ts';
import { startTestServer, type TestServer } from '../helpers/servers.ts';
import { BRIDGES, nodeApp, type Bridge } from '../helpers/bridges.ts';

interface Record {
  facts: { [name: string]: unknown };
  events: string[];
  closed: Promise<void>;
}

const records = new Map<string, Record>();

function handler(req: IncomingMessage, res: ServerResponse): void {
  const id = String(req.headers['x-id']);
  const s = req.socket as IncomingMessage['socket'] & { encrypted?: boolean };
  const events: string[] = [];
  const facts: Record['facts'] = {
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    headers: { ...req.headers },
    rawHeaders: [...req.rawHeaders],
    socket: { remoteAddress: s.remoteAddress, remotePort: s.remotePort, localAddress: s.localAddress, localPort: s.localPort, encrypted: s.encrypted },
  };
  const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
  records.set(id, { facts, events, closed });
  req.on('end', () => events.push(`req:end complete=${req.complete}`));
  req.on('close', () => events.push('req:close'));
  res.on('finish', () => events.push('res:finish'));
  res.on('close', () => events.push(`res:close writableFinished=${res.writableFinished}`));
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    bytes += c.length;
    hash.update(c);
  });
  req.on('end', () => {
    facts.body = { bytes, sha256: hash.digest('hex') };
    res.setHeader('Content-Type', 'text/plain');
    res.end(`got ${bytes}`);
  });
}

let server: TestServer | undefined;

before(async () => {
  const tree = new Tree({ onError: () => undefined });
  for (const bridge of BRIDGES) tree.mount(nodeApp(handler, bridge), `/${bridge}`, { kind: 'native' });
  server = await startTestServer({ tree, protocols: ['http', 'fastcgi'] });
});

after(async () => {
  await server?.close();
});

function running(): TestServer {
  if (server === undefined) throw new Error('postern did not start');
  return server;
}

interface Sent {
  status: number;
  body: string;
  /** The client's own port: what the app must see as remotePort over HTTP. */
  clientPort: number;
}

function httpSend(path: string, id: string, body: Buffer | undefined, chunked: boolean): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const headers: { [name: string]: string } = { 'X-Id': id, Accept: 'text/plain', 'X-Latin': 'caf\u00e9' };
    if (body !== undefined && !chunked) headers['Content-Length'] = String(body.length);
    const req = request({ host: '127.0.0.1', port: running().port('http'), path, method: body === undefined ? 'GET' : 'POST', headers, agent: false });
    let clientPort = 0;
    req.once('socket', (sock) => sock.once('connect', () => {
      clientPort = sock.localPort ?? 0;
    }));
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => {
        text += c;
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text, clientPort }));
    });
    if (body === undefined) req.end();
    else if (chunked) {
      req.write(body.subarray(0, 1000));
      req.end(body.subarray(1000));
    } else req.end(body);
  });
}

async function seenBy(id: string): Promise<Record> {
  const r = records.get(id);
  assert.ok(r !== undefined, `the app never saw ${id}`);
  await r.closed;
  return r;
}

// The direct bridge interleaves req and res events after a finished response differently from the
// replay and from a listening node:http server (see bridge-differential.test.ts): per emitter until
// it agrees.
function assertSameEvents(seen: { [bridge in Bridge]?: Record }): void {
  assert.deepEqual(seen.direct?.events ?? [], seen.replay?.events ?? [], 'event order: direct (actual) vs replay (expected)');
  assert.equal(seen.replay?.events.includes('res:finish'), true);
}

const BODY = Buffer.alloc(100 * 1024 + 3, 0xab);
const CASES: ReadonlyArray<{ name: string; body?: Buffer; chunked?: boolean }> = [
  { name: 'GET' },
  { name: 'POST with Content-Length', body: BODY },
  { name: 'POST chunked', body: BODY, chunked: true },
];

for (const c of CASES) {
  test(`HTTP listener, ${c.name}: the app sees the same through both bridges, with the real peer port`, async () => {
    const seen: { [bridge in Bridge]?: Record } = {};
    for (const bridge of BRIDGES) {
      const id = `http-${c.name}-${bridge}`;
      const sent = await httpSend(`/${bridge}/x/y?q=1`, id, c.body, c.chunked === true);
      assert.equal(sent.status, 200);
      assert.equal(sent.body, `got ${c.body?.length ?? 0}`);
      const r = await seenBy(id);
      const socket = r.facts.socket as { remotePort: unknown; localPort: unknown };
      assert.equal(socket.remotePort, sent.clientPort, 'remotePort is the client socket\u2019s port');
      assert.equal(socket.localPort, running().port('http'));
      // The rest must match between bridges: only the id and the port differ by construction.
      socket.remotePort = 'client port';
      (r.facts.headers as { [n: string]: unknown })['x-id'] = 'id';
      r.facts.rawHeaders = (r.facts.rawHeaders as string[]).map((v) => (v === id ? 'id' : v));
      seen[bridge] = r;
    }
    assert.deepEqual(seen.direct?.facts, seen.replay?.facts, 'what the app saw: direct (actual) vs replay (expected)');
    assertSameEvents(seen);
  });
}

test('FastCGI listener, nginx params with HTTPS: socket facts from REMOTE_ADDR/PORT, SERVER_ADDR/PORT, HTTPS', async () => {
  const seen: { [bridge in Bridge]?: Record } = {};
  for (const bridge of BRIDGES) {
    const id = `fcgi-${bridge}`;
    const params = nginxParams('fastcgi', { method: 'POST', uri: `/${bridge}/form?x=%2F`, headers: { 'X-Id': id, 'Content-Type': 'text/plain' }, body: 'hello' }, 8443);
    params.push(['HTTPS', 'on'], ['REQUEST_SCHEME', 'https']);
    const r = await fcgiRequest({ port: running().port('fastcgi'), host: '127.0.0.1' }, { params, body: 'hello' });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'got 5');
    const rec = await seenBy(id);
    assert.deepEqual(rec.facts.socket, { remoteAddress: '127.0.0.1', remotePort: 50000, localAddress: '127.0.0.1', localPort: 8443, encrypted: true });
    (rec.facts.headers as { [n: string]: unknown })['x-id'] = 'id';
    rec.facts.rawHeaders = (rec.facts.rawHeaders as string[]).map((v) => (v === id ? 'id' : v));
    seen[bridge] = rec;
  }
  assert.deepEqual(seen.direct?.facts, seen.replay?.facts, 'what the app saw: direct (actual) vs replay (expected)');
  assertSameEvents(seen);
});
