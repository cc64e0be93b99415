// Admission control over real sockets, from the front server's side: past maxInflightRequests a
// request is refused at once (FastCGI: a 503 on STDOUT and END_REQUEST(FCGI_OVERLOADED); SCGI,
// uwsgi, HTTP: 503 with Retry-After), counted in stats() and logged once per interval; past
// maxConnections a connection is closed at accept on every protocol. A burst far past the cap
// leaves at most the cap in flight: nothing queues.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { encodeEndRequest, FCGI_PROTOCOL_STATUS } from '../../protocols/fastcgi/index.ts';
import type { NativeApp, Protocol } from '../../src/app/types.ts';
import { SERVER_ERRORS } from '../../src/server/errors.ts';
import { FcgiClient, httpFetch, parseResponse } from '../helpers/clients.ts';
import { startNginx } from '../helpers/front/nginx.ts';
import { eventually, fcgiParams, startTestServer, treeOf, type TestServer } from '../helpers/servers.ts';
import { dialRaw, exchange, PROTOCOLS, rawRequest, reply, sleep } from './hardening-helpers.ts';

/** `/gate` waits until `open()`; `/slow` answers after 40 ms; anything else answers at once. */
function gatedApp(): { app: NativeApp; open: () => void } {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  const app: NativeApp = async (environ, start) => {
    if (environ.PATH_INFO === '/gate') await gate;
    if (environ.PATH_INFO === '/slow') await sleep(40);
    start('200 OK', [['Content-Type', 'text/plain']]);
    return `ok ${environ.PATH_INFO}`;
  };
  return { app, open: () => release() };
}

/** Starts a request that stays in flight; resolves with its reply once the gate opens. */
async function holdOne(srv: TestServer, protocol: Protocol): Promise<{ reply: Promise<Buffer> }> {
  const before = srv.server.stats().inFlight;
  const pending = exchange(srv.target(protocol), rawRequest(protocol, { uri: '/gate' })).then((r) => r.bytes);
  await eventually(() => srv.server.stats().inFlight === before + 1, 2000, 'the request in flight');
  // Wrapped: an async function returning the promise itself would wait for it.
  return { reply: pending };
}

describe('maxInflightRequests', () => {
  test('past the cap: 503 with Retry-After on every protocol, FastCGI also END_REQUEST(OVERLOADED); counted, logged once, nothing left behind', async () => {
    const { app, open } = gatedApp();
    const srv = await startTestServer({ tree: treeOf(app), maxInflightRequests: 2, retryAfterSeconds: 7 });
    try {
      const held = [await holdOne(srv, 'http'), await holdOne(srv, 'fastcgi')];
      for (const protocol of PROTOCOLS) {
        const r = await exchange(srv.target(protocol), rawRequest(protocol, { uri: '/' }));
        const v = reply(protocol, r.bytes);
        assert.equal(v.response?.status, 503, protocol);
        assert.equal(v.response.header('Retry-After'), '7', protocol);
        assert.equal(v.response.text, '503 Service Unavailable\n');
        if (protocol === 'fastcgi') {
          assert.equal(v.protocolStatus, FCGI_PROTOCOL_STATUS.OVERLOADED);
          assert.equal(v.appStatus, 0);
        }
      }
      const stats = srv.server.stats();
      assert.equal(stats.overloaded, 4);
      assert.equal(stats.inFlight, 2, 'a refused request never counts as in flight');
      const lines = srv.log.withCode(SERVER_ERRORS.OVERLOADED);
      assert.equal(lines.length, 1, 'one line per interval, not one per refusal');
      assert.equal(lines[0]?.meta['limit'], 'maxInflightRequests');
      open();
      for (const h of held) assert.match((await h.reply).toString('latin1'), /ok \/gate/);
      for (const protocol of PROTOCOLS) {
        const r = await exchange(srv.target(protocol), rawRequest(protocol, { uri: '/' }));
        assert.equal(reply(protocol, r.bytes).response?.status, 200, `${protocol} after the load is gone`);
      }
      assert.equal(srv.server.stats().overloaded, 4);
    } finally {
      open();
      await srv.close();
    }
  });

  test('FastCGI KEEP_CONN: the refused request id is free again at once and the connection serves on', async () => {
    const { app, open } = gatedApp();
    const srv = await startTestServer({ tree: treeOf(app), protocols: ['fastcgi'], maxInflightRequests: 1 });
    const client = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      const held = await holdOne(srv, 'fastcgi');
      const refused = await client.request({ id: 1, params: fcgiParams('/'), keepConn: true });
      assert.equal(refused.protocolStatus, FCGI_PROTOCOL_STATUS.OVERLOADED);
      assert.equal(parseResponse(refused.stdout).status, 503);
      assert.equal(parseResponse(refused.stdout).header('Retry-After'), '5', 'the default retryAfterSeconds');
      open();
      await held.reply;
      const ok = await client.request({ id: 1, params: fcgiParams('/'), keepConn: true });
      assert.equal(ok.protocolStatus, FCGI_PROTOCOL_STATUS.REQUEST_COMPLETE);
      assert.equal(parseResponse(ok.stdout).text, 'ok /');
      assert.equal(client.socket.destroyed, false, 'the connection stayed open');
    } finally {
      open();
      client.destroy();
      await srv.close();
    }
  });

  test('retryAfterSeconds 0 sends no Retry-After; maxInflightRequests 0 is no cap', async () => {
    const { app, open } = gatedApp();
    const capped = await startTestServer({ tree: treeOf(app), protocols: ['http'], maxInflightRequests: 1, retryAfterSeconds: 0 });
    try {
      const held = await holdOne(capped, 'http');
      const r = reply('http', (await exchange(capped.target('http'), rawRequest('http', { uri: '/' }))).bytes);
      assert.equal(r.response?.status, 503);
      assert.equal(r.response.header('Retry-After'), undefined);
      open();
      await held.reply;
    } finally {
      open();
      await capped.close();
    }
    const gated = gatedApp();
    const uncapped = await startTestServer({ tree: treeOf(gated.app), protocols: ['scgi'], maxInflightRequests: 0 });
    try {
      const pending = Array.from({ length: 60 }, () => exchange(uncapped.target('scgi'), rawRequest('scgi', { uri: '/gate' })));
      await eventually(() => uncapped.server.stats().inFlight === 60, 5000, '60 in flight');
      gated.open();
      for (const r of await Promise.all(pending)) assert.equal(reply('scgi', r.bytes).response?.status, 200);
      assert.equal(uncapped.server.stats().overloaded, 0);
    } finally {
      gated.open();
      await uncapped.close();
    }
  });

  test('a burst of 300 concurrent requests against a cap of 20: each answered 200 or 503, never more than 20 in flight', async () => {
    const { app } = gatedApp();
    const srv = await startTestServer({ tree: treeOf(app), maxInflightRequests: 20 });
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, srv.server.stats().inFlight); }, 2);
    try {
      const results = await Promise.all(Array.from({ length: 300 }, (_, i) => {
        const protocol = PROTOCOLS[i % 4]!;
        return exchange(srv.target(protocol), rawRequest(protocol, { uri: '/slow' })).then((r) => reply(protocol, r.bytes).response?.status);
      }));
      const ok = results.filter((s) => s === 200).length;
      const refused = results.filter((s) => s === 503).length;
      assert.equal(ok + refused, 300, `every request answered: ${JSON.stringify(results.filter((s) => s !== 200 && s !== 503))}`);
      assert.ok(ok >= 20, `${String(ok)} served`);
      assert.ok(refused > 0, 'the cap was reached');
      assert.equal(srv.server.stats().overloaded, refused);
      assert.ok(peak <= 20, `peak in flight ${String(peak)}`);
    } finally {
      clearInterval(sampler);
      await srv.close();
    }
  });
});

describe('maxConnections on every protocol', () => {
  test('connections past the limit are closed at accept, with nothing written, and counted', async () => {
    const { app } = gatedApp();
    const srv = await startTestServer({ tree: treeOf(app), maxConnections: 2 });
    const idle: Socket[] = [];
    try {
      idle.push(await dialRaw(srv.target('fastcgi')), await dialRaw(srv.target('http')));
      await eventually(() => srv.server.stats().connections === 2, 2000, 'two connections registered');
      for (const protocol of PROTOCOLS) {
        const r = await exchange(srv.target(protocol), rawRequest(protocol, { uri: '/' }));
        assert.equal(r.bytes.length, 0, `${protocol}: nothing written`);
      }
      assert.equal(srv.server.stats().rejectedConnections, 4);
      for (const s of idle) s.destroy();
      await eventually(() => srv.server.stats().connections === 0, 2000, 'the idle ones gone');
      const r = await exchange(srv.target('uwsgi'), rawRequest('uwsgi', { uri: '/' }));
      assert.equal(reply('uwsgi', r.bytes).response?.status, 200);
    } finally {
      for (const s of idle) s.destroy();
      await srv.close();
    }
  });
});

describe('behind nginx', () => {
  test('the refusal reaches the client as 503 with Retry-After through nginx (FastCGI, SCGI, uwsgi); a bare END_REQUEST(OVERLOADED) would be a 502', async () => {
    const { app, open } = gatedApp();
    const srv = await startTestServer({ tree: treeOf(app), protocols: ['fastcgi', 'scgi', 'uwsgi', 'http'], maxInflightRequests: 1, retryAfterSeconds: 9 });
    // What the spec alone prescribes: END_REQUEST(FCGI_OVERLOADED) and no output. nginx never
    // reads protocolStatus, so this is why postern puts a 503 on STDOUT first.
    const bare = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => sock.end(encodeEndRequest(1, 0, FCGI_PROTOCOL_STATUS.OVERLOADED)));
    });
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    const barePort = (bare.address() as { port: number }).port;
    const nginx = await startNginx([
      { mode: 'fastcgi', backend: `127.0.0.1:${String(srv.port('fastcgi'))}` },
      { mode: 'scgi', backend: `127.0.0.1:${String(srv.port('scgi'))}` },
      { mode: 'uwsgi', backend: `127.0.0.1:${String(srv.port('uwsgi'))}` },
      { mode: 'fastcgi', backend: `127.0.0.1:${String(barePort)}` },
    ]);
    try {
      const held = await holdOne(srv, 'http');
      for (const site of nginx.sites.slice(0, 3)) {
        const r = await httpFetch({ port: site.port }, { path: '/' });
        assert.equal(r.status, 503, `nginx ${site.mode}`);
        assert.equal(r.header('Retry-After'), '9', `nginx ${site.mode}`);
      }
      assert.equal(srv.server.stats().overloaded, 3);
      const viaBare = await httpFetch({ port: nginx.sites[3]!.port }, { path: '/' });
      assert.equal(viaBare.status, 502);
      open();
      await held.reply;
      assert.equal((await httpFetch({ port: nginx.sites[0]!.port }, { path: '/' })).status, 200);
    } finally {
      open();
      await nginx.stop();
      bare.close();
      await srv.close();
    }
  });
});
