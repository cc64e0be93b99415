// APM agents through the Node bridges, from an agent's side: dd-trace, Sentry and OpenTelemetry
// wrap `http.Server.prototype.emit` and watch for 'request'. Both bridges must deliver every
// request through it, with genuine IncomingMessage/ServerResponse, and let the agent see the
// response finish. This file patches a global prototype: it restores it and runs on its own.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { BRIDGES, nodeApp } from '../helpers/bridges.ts';

interface Seen {
  method: string | undefined;
  url: string | undefined;
  genuine: boolean;
  finished: Promise<number>;
}

const seen: Seen[] = [];
const originalEmit = Object.getOwnPropertyDescriptor(Server.prototype, 'emit');

before(() => {
  // What an agent does (shape of OpenTelemetry's `_getPatchIncomingRequestFunction`): wrap emit,
  // look at 'request', watch the response, call through.
  const emit = Reflect.get(Server.prototype, 'emit') as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
  Server.prototype.emit = function patchedEmit(this: Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'request') {
      const [req, res] = args as [IncomingMessage, ServerResponse];
      seen.push({
        method: req.method,
        url: req.url,
        genuine: req instanceof IncomingMessage && res instanceof ServerResponse,
        finished: new Promise((resolve) => res.once('finish', () => resolve(res.statusCode))),
      });
    }
    return emit.call(this, event, ...args);
  } as typeof Server.prototype.emit;
});

after(() => {
  // The emit a Server uses is inherited from EventEmitter: an own property is the patch.
  if (originalEmit !== undefined) Object.defineProperty(Server.prototype, 'emit', originalEmit);
  else Reflect.deleteProperty(Server.prototype, 'emit');
});

for (const bridge of BRIDGES) {
  test(`bridge ${bridge}: a hook on http.Server.prototype.emit sees every request and its finish`, async () => {
    seen.length = 0;
    const tree = new Tree({ onError: () => undefined }).mount(
      nodeApp((req, res) => {
        res.statusCode = req.method === 'POST' ? 201 : 200;
        res.end(`${String(req.method)} ${String(req.url)}`);
      }, bridge),
      '/app',
      { kind: 'native' },
    );
    const requests = [
      { method: 'GET', url: '/app/one?x=1' },
      { method: 'POST', url: '/app/two', body: 'payload' },
      { method: 'HEAD', url: '/app/three' },
    ];
    for (const r of requests) {
      const out = await inject(tree, r);
      assert.equal(out.status, r.method === 'POST' ? 201 : 200);
    }
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.genuine]),
      [['GET', '/one?x=1', true], ['POST', '/two', true], ['HEAD', '/three', true]],
    );
    assert.deepEqual(await Promise.all(seen.map((s) => s.finished)), [200, 201, 200]);
  });
}
