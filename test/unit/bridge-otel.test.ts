// The real OpenTelemetry http instrumentation through postern's Node bridges, from an operator's
// side: a request served by a mounted (req, res) handler yields one SERVER span with the method,
// target, route and status code, and the handler runs inside that span's context. This file
// installs a global tracer provider and patches http.Server.prototype.emit: it runs on its own
// and undoes both.
//
// What it takes for the ESM build to be instrumented: HttpInstrumentation hooks `require` (via
// require-in-the-middle) and patches the `http` module object when it is next required; an ESM
// `import 'node:http'` is not seen without the import-in-the-middle loader (`--import
// @opentelemetry/instrumentation/hook.mjs`). So after enabling, the test requires `http` once
// through `createRequire`: that patches `Server.prototype.emit`, and the class is the same object
// the ESM `node:http` namespace exports (asserted below), so the private `http.Server` each bridge
// emits 'request' on is covered too. A `node --require` preload of the SDK does the same in production.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Server } from 'node:http';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { Tree } from '../../src/app/tree.ts';
import { inject } from '../../src/app/inject.ts';
import { BRIDGES, nodeApp } from '../helpers/bridges.ts';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const instrumentation = new HttpInstrumentation();
let unregister: (() => void) | undefined;
// Read, not called: the function an agent's wrapper replaces (EventEmitter's, inherited).
const currentEmit = (): unknown => Reflect.get(Server.prototype, 'emit');
const plainEmit = currentEmit();

before(() => {
  provider.register();
  unregister = registerInstrumentations({ tracerProvider: provider, instrumentations: [instrumentation] });
  const cjsHttp = createRequire(import.meta.url)('http') as { Server: unknown };
  assert.equal(cjsHttp.Server, Server, 'the CJS http module and the ESM node:http share one Server class');
  assert.notEqual(currentEmit(), plainEmit, 'HttpInstrumentation patched http.Server.prototype.emit');
});

after(async () => {
  unregister?.();
  instrumentation.disable();
  await provider.shutdown();
  trace.disable();
  context.disable();
  assert.equal(currentEmit(), plainEmit, 'http.Server.prototype.emit restored');
});

for (const bridge of BRIDGES) {
  test(`bridge ${bridge}: a SERVER span per request, with method, target, route and status`, async () => {
    exporter.reset();
    const inSpan: boolean[] = [];
    // The instrumentation ends a SERVER span on the response's 'close', which a bridge may emit
    // after the gateway has the whole response: wait for it rather than for the gateway.
    const closed: Array<Promise<void>> = [];
    const tree = new Tree({ onError: () => undefined }).mount(
      nodeApp((req, res) => {
        inSpan.push(trace.getActiveSpan() !== undefined);
        closed.push(new Promise((resolve) => res.once('close', () => resolve())));
        // What a framework instrumentation (Express, Koa) does to name the route.
        const rpc = getRPCMetadata(context.active());
        if (rpc?.type === RPCType.HTTP) rpc.route = '/users/:id';
        res.statusCode = req.method === 'POST' ? 201 : 404;
        res.end('done');
      }, bridge),
      '/api',
      { kind: 'native' },
    );
    const a = await inject(tree, { method: 'GET', url: '/api/users/7?full=1', headers: { 'User-Agent': 'otel-test' } });
    const b = await inject(tree, { method: 'POST', url: '/api/users/8', body: 'x' });
    assert.deepEqual([a.status, b.status], [404, 201]);
    assert.deepEqual(inSpan, [true, true], 'the handler runs inside the SERVER span context');
    await Promise.all(closed);
    const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER);
    assert.equal(spans.length, 2, `SERVER spans: ${spans.map((s) => s.name).join(', ')}`);
    const facts = spans.map((s) => ({
      name: s.name,
      method: s.attributes['http.request.method'] ?? s.attributes['http.method'],
      target: s.attributes['url.path'] ?? s.attributes['http.target'],
      query: s.attributes['url.query'],
      route: s.attributes['http.route'],
      status: s.attributes['http.response.status_code'] ?? s.attributes['http.status_code'],
    }));
    assert.deepEqual(facts, [
      { name: 'GET /users/:id', method: 'GET', target: '/users/7', query: 'full=1', route: '/users/:id', status: 404 },
      { name: 'POST /users/:id', method: 'POST', target: '/users/8', query: undefined, route: '/users/:id', status: 201 },
    ]);
  });
}
