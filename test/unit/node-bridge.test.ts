// The direct Node bridge's own promises, from a mounting user's side: genuine node:http objects,
// the request emitted where APM agents look, Node's event order, the internals it leans on, and
// the response forms a head reader could get wrong (1xx, explicit chunking, heads in turn).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import express from 'express';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { runNative } from '../../src/app/run.ts';
import { fromNodeHandler } from '../../src/app/adapters/node.ts';
import { dumpUnreadRequest, emitResponseDrain, hasNeedDrainSymbol, hasRequestDump } from '../../src/app/adapters/node-internals.ts';
import { bytesOf, makeEnviron, sha256, TestResponder } from './adapter-kit.ts';

function mounted(handler: Parameters<typeof fromNodeHandler>[0]): Tree {
  return new Tree().mount(fromNodeHandler(handler), '/', { kind: 'native' });
}

test('node internals the bridge touches are where it looks, on this Node', async (t) => {
  await t.test('kNeedDrain appears on a ServerResponse after a refused write, and clearing it works', () => {
    const req = new IncomingMessage(new Readable({ read() {} }) as never);
    req.method = 'GET';
    const res = new ServerResponse(req);
    assert.equal(res.writableNeedDrain, false);
    // No socket: OutgoingMessage buffers and refuses once past its high-water mark.
    res.write(Buffer.alloc(res.writableHighWaterMark + 1));
    assert.equal(res.writableNeedDrain, true);
    assert.equal(hasNeedDrainSymbol(res), true, `kNeedDrain not found on Node ${process.version}`);
    let drains = 0;
    res.on('drain', () => drains++);
    emitResponseDrain(res);
    assert.equal(drains, 1);
    assert.equal(res.writableNeedDrain, false);
    emitResponseDrain(res);
    assert.equal(drains, 1, 'a second drain without a refused write in between');
  });

  await t.test('IncomingMessage._dump is there, and dumping an unread complete request ends it', async () => {
    const req = new IncomingMessage(new Readable({ read() {} }) as never);
    assert.equal(hasRequestDump(req), true, `_dump not found on Node ${process.version}`);
    req.push(Buffer.from('unread'));
    req.push(null);
    req.complete = true;
    const ended = new Promise<void>((resolve) => req.once('end', resolve));
    let data = 0;
    req.on('data', () => data++);
    dumpUnreadRequest(req);
    await ended;
    assert.equal(data, 0, "_dump removes 'data' listeners before the bytes are dropped");
  });
});

test('direct bridge', async (t) => {
  await t.test('genuine IncomingMessage and ServerResponse, emitted as request on an http.Server', async () => {
    const seen: Array<[boolean, boolean]> = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- restored as it was, then called with its server
    const original = Server.prototype.emit;
    // What OpenTelemetry's http instrumentation, dd-trace and Sentry do: wrap emit, watch 'request'.
    Server.prototype.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'request') seen.push([args[0] instanceof IncomingMessage, args[1] instanceof ServerResponse]);
      return Reflect.apply(original, this, [event, ...args]) as boolean;
    } as typeof original;
    try {
      const r = await inject(mounted((req, res) => {
        res.end(`${req instanceof IncomingMessage} ${res instanceof ServerResponse}`);
      }), { url: '/x' });
      assert.equal(r.text, 'true true');
    } finally {
      Server.prototype.emit = original;
    }
    assert.deepEqual(seen, [[true, true]]);
  });

  await t.test('the event order a server gives: finish, then close with writableFinished', async () => {
    const events: string[] = [];
    let done!: () => void;
    const closed = new Promise<void>((resolve) => (done = resolve));
    const r = await inject(mounted((req, res) => {
      req.on('end', () => events.push('req end'));
      req.on('close', () => events.push('req close'));
      res.on('finish', () => events.push('res finish'));
      res.on('close', () => {
        events.push(`res close ${res.writableFinished}`);
        done();
      });
      res.end('ok');
    }), { url: '/' });
    assert.equal(r.text, 'ok');
    await closed;
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(events.indexOf('res finish') < events.indexOf('res close true'), events.join(', '));
    assert.ok(events.includes('req end') && events.includes('req close'), `an unread GET body is dumped: ${events.join(', ')}`);
  });

  await t.test('an abort destroys the request as node:http does, and closes the response unfinished', async () => {
    const controller = new AbortController();
    const events: string[] = [];
    let done!: () => void;
    const closed = new Promise<void>((resolve) => (done = resolve));
    const running = inject(mounted((req, res) => {
      req.on('aborted', () => events.push('aborted'));
      req.on('error', (err: Error & { code?: string }) => events.push(`error ${err.code}`));
      res.on('close', () => {
        events.push(`res close ${res.writableFinished}`);
        done();
      });
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('partial');
      setTimeout(() => controller.abort(), 5);
    }), { url: '/', method: 'POST', body: 'x'.repeat(10), signal: controller.signal });
    await closed;
    const r = await running;
    assert.notEqual(r.appStatus, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(events.includes('res close false'), events.join(', '));
    assert.ok(events.includes('error ECONNRESET'), events.join(', '));
  });

  await t.test('an explicit Transfer-Encoding: chunked is taken off, the body de-chunked', async () => {
    const r = await inject(mounted((_req, res) => {
      res.setHeader('Transfer-Encoding', 'chunked');
      res.write('hello ');
      setImmediate(() => res.end('world'));
    }), { url: '/' });
    assert.equal(r.text, 'hello world');
    assert.equal(r.header('transfer-encoding'), undefined);
  });

  await t.test('1xx heads before the final one are not taken for it', async () => {
    const r = await inject(mounted((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeContinue();
      res.writeHead(201, { 'X-Final': 'yes' });
      res.end('made');
    }), { url: '/' });
    assert.equal(r.status, 201);
    assert.equal(r.header('x-final'), 'yes');
    assert.equal(r.header('link'), undefined);
    assert.equal(r.text, 'made');
  });

  await t.test('heads in turn are read each for itself (the last-head cache)', async () => {
    const tree = mounted((req, res) => {
      const n = req.url === '/a' ? 'a' : 'b';
      res.setHeader('X-Which', n);
      res.statusCode = n === 'a' ? 200 : 202;
      res.end(n);
    });
    for (const path of ['/a', '/b', '/a', '/a', '/b']) {
      const r = await inject(tree, { url: path });
      assert.equal(r.header('x-which'), path.slice(1));
      assert.equal(r.status, path === '/a' ? 200 : 202);
      assert.equal(r.text, path.slice(1));
    }
  });

  await t.test('a latin1 header value beside a UTF-8 body string reads as the wire carries it', async () => {
    const replay = await inject(new Tree().mount(fromNodeHandler((_req, res) => {
      res.setHeader('X-Name', 'caf\u00e9');
      res.end('ünïcode');
    }, { bridge: 'replay' }), '/', { kind: 'native' }), { url: '/' });
    const direct = await inject(mounted((_req, res) => {
      res.setHeader('X-Name', 'caf\u00e9');
      res.end('ünïcode');
    }), { url: '/' });
    assert.equal(direct.header('x-name'), replay.header('x-name'));
    assert.equal(direct.text, 'ünïcode');
  });

  await t.test('a method node:http does not know is answered 501, as with the replay', async () => {
    let called = false;
    const r = await inject(mounted((_req, res) => {
      called = true;
      res.end();
    }), { url: '/', method: 'BREW' });
    assert.equal(r.status, 501);
    assert.equal(called, false);
  });

  await t.test('backpressure: drain after a refused write, then a second pipe into the same response', async () => {
    const part = bytesOf(256 * 1024, 3);
    const app = fromNodeHandler((_req, res) => {
      const first = Readable.from([part.subarray(0, 128 * 1024), part.subarray(128 * 1024, 192 * 1024)]);
      first.pipe(res, { end: false });
      const second = (): void => {
        // Once drained, the response must say so: a stale needDrain makes the next pipe wait
        // for a 'drain' that nothing sends.
        assert.equal(res.writableNeedDrain, false);
        Readable.from([part.subarray(192 * 1024)]).pipe(res);
      };
      first.on('end', () => {
        if (res.writableNeedDrain) res.once('drain', second);
        else second();
      });
    });
    const r = new TestResponder({ capacityBytes: 16 * 1024, drainMs: 1 });
    await runNative(app, makeEnviron(), r);
    assert.equal(sha256(r.body), sha256(part));
    assert.ok(r.refusals > 0);
    assert.equal(r.writesWhileFull, 0);
  });

  await t.test('Express re-parents req and res: the body still streams through the own _read', async () => {
    const app = express();
    app.use(express.text({ type: '*/*', limit: '4mb' }));
    app.post('/echo', (req, res) => {
      res.type('text/plain').send(`${Object.getPrototypeOf(req) !== IncomingMessage.prototype} ${(req.body as string).length}`);
    });
    const r = await inject(new Tree().mount(fromNodeHandler(app), '/', { kind: 'native' }), { url: '/echo', method: 'POST', body: 'z'.repeat(3 * 1024 * 1024), headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, `true ${3 * 1024 * 1024}`);
  });

  await t.test('an unknown bridge name is refused', () => {
    assert.throws(() => fromNodeHandler(() => undefined, { bridge: 'fast' as never }), TypeError);
  });
});
