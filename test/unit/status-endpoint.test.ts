// The status and ping endpoints: format negotiation, methods, health, exact-path matching ahead of
// the tree (a root-mounted app cannot shadow them, and they do not swallow neighbouring paths), and
// the status-only app for a dedicated statusListen listener.

import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { inject } from '../../src/app/inject.ts';
import { Tree } from '../../src/app/tree.ts';
import type { Environ, NativeApp, Responder } from '../../src/app/types.ts';
import { STATUS_PATH_ERROR, StatusRoutes, dispatchWithStatus, statusFormat, statusResponse } from '../../src/status/endpoint.ts';
import { Metrics } from '../../src/status/metrics.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../../src/status/render.ts';
import { buildStatusReport, type StatusReport } from '../../src/status/report.ts';

const SCRAPER_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

function sampleReport(): StatusReport {
  const m = new Metrics({ worker: 1 });
  m.requestStarted();
  m.requestFinished('/app', 200, 4);
  return buildStatusReport({ snapshots: [m.snapshot()] });
}

describe('statusFormat', () => {
  test('query wins, then Accept, JSON by default', () => {
    assert.equal(statusFormat('', undefined), 'json');
    assert.equal(statusFormat('format=prometheus', undefined), 'prometheus');
    assert.equal(statusFormat('a=1&format=prom', 'application/json'), 'prometheus');
    assert.equal(statusFormat('format=json', 'text/plain'), 'json');
    assert.equal(statusFormat('', 'text/plain'), 'prometheus');
    assert.equal(statusFormat('', SCRAPER_ACCEPT), 'prometheus');
    assert.equal(statusFormat('', BROWSER_ACCEPT), 'json');
    assert.equal(statusFormat('', '*/*'), 'json');
    assert.equal(statusFormat('', 'application/json, text/plain'), 'json');
    assert.equal(statusFormat('formatx=prometheus', undefined), 'json');
  });
});

describe('statusResponse', () => {
  const report = sampleReport();

  test('ping: pong when healthy, 503 when draining', () => {
    const ok = statusResponse('ping', { method: 'GET', query: '' });
    assert.deepEqual([ok.status, ok.body], [200, 'pong\n']);
    assert.ok(ok.headers.some(([k, v]) => k === 'Cache-Control' && v === 'no-store'));
    const down = statusResponse('ping', { method: 'HEAD', query: '' }, undefined, false);
    assert.equal(down.status, 503);
  });

  test('status: JSON by default, Prometheus on request; Content-Length is the byte length', () => {
    const j = statusResponse('status', { method: 'GET', query: '' }, report);
    assert.equal(j.status, 200);
    assert.match(j.headers.find(([k]) => k === 'Content-Type')?.[1] ?? '', /^application\/json/);
    assert.equal((JSON.parse(j.body) as StatusReport).kind, 'postern.status');
    const p = statusResponse('status', { method: 'GET', query: '', accept: SCRAPER_ACCEPT }, report);
    assert.equal(p.headers.find(([k]) => k === 'Content-Type')?.[1], PROMETHEUS_CONTENT_TYPE);
    assert.match(p.body, /^# HELP /);
    for (const r of [j, p]) assert.equal(r.headers.find(([k]) => k === 'Content-Length')?.[1], String(Buffer.byteLength(r.body)));
  });

  test('other methods are 405 with Allow; no report is 503', () => {
    const r = statusResponse('status', { method: 'POST', query: '' }, report);
    assert.equal(r.status, 405);
    assert.equal(r.headers.find(([k]) => k === 'Allow')?.[1], 'GET, HEAD');
    assert.equal(statusResponse('ping', { method: 'DELETE', query: '' }).status, 405);
    assert.equal(statusResponse('status', { method: 'GET', query: '' }).status, 503);
  });
});

/** A tree whose root app answers everything: what the status paths must not be shadowed by. */
function greedyTree(): Tree {
  const app: NativeApp = (environ, start) => {
    start('200 OK', [['Content-Type', 'text/plain']]);
    return `app saw ${environ.SCRIPT_NAME}|${environ.PATH_INFO}`;
  };
  return new Tree({ onError: () => {} }).mount(app, '/', { kind: 'native' });
}

/** The server's dispatch, as a Tree for inject(): the routes first, then the apps. */
class GuardedTree extends Tree {
  readonly #routes: StatusRoutes | undefined;
  readonly #apps: Tree;
  constructor(routes: StatusRoutes | undefined, apps: Tree) {
    super();
    this.#routes = routes;
    this.#apps = apps;
  }
  override handle(environ: Environ, responder: Responder): Promise<void> {
    return dispatchWithStatus(this.#routes, this.#apps, environ, responder);
  }
}

describe('StatusRoutes', () => {
  test('status and ping are answered before the tree, exact paths only', async () => {
    let calls = 0;
    const routes = new StatusRoutes({ statusPath: '/_postern/status', pingPath: '/_ping', report: () => { calls++; return sampleReport(); } });
    const tree = new GuardedTree(routes, greedyTree());
    const ping = await inject(tree, { url: '/_ping' });
    const seen: Environ = { REQUEST_METHOD: 'GET', PATH_INFO: '/_ping', SCRIPT_NAME: '', QUERY_STRING: '' } as Environ;
    await routes.match(seen)?.(seen, () => () => {});
    assert.equal(seen['postern.mount'], '/_ping', 'probe traffic is named in metrics and the access log');
    assert.deepEqual([ping.status, ping.text], [200, 'pong\n']);
    const status = await inject(tree, { url: '/_postern/status' });
    assert.equal(status.status, 200);
    assert.equal((JSON.parse(status.text) as StatusReport).mounts[0]?.mount, '/app');
    const prom = await inject(tree, { url: '/_postern/status?format=prometheus' });
    assert.match(prom.header('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(calls, 2);
    for (const url of ['/_postern/status/x', '/_postern/statusx', '/_pingx', '/_ping/', '/', '/_postern']) {
      const r = await inject(tree, { url });
      assert.match(r.text, /^app saw /, url);
    }
    const head = await inject(tree, { url: '/_postern/status', method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
  });

  test('unconfigured, nothing is intercepted', async () => {
    const routes = new StatusRoutes({ report: sampleReport });
    assert.equal(routes.enabled, false);
    const tree = new GuardedTree(routes, greedyTree());
    assert.match((await inject(tree, { url: '/status' })).text, /^app saw /);
    assert.match((await inject(new GuardedTree(undefined, greedyTree()), { url: '/ping' })).text, /^app saw /);
  });

  test('a failing report is a 503 and goes to onError', async () => {
    const errors: unknown[] = [];
    const routes = new StatusRoutes({ statusPath: '/s', report: () => Promise.reject(new Error('no pool')), onError: (e) => errors.push(e) });
    const r = await inject(new GuardedTree(routes, greedyTree()), { url: '/s' });
    assert.equal(r.status, 503);
    assert.equal(errors.length, 1);
  });

  test('ping follows healthy()', async () => {
    let healthy = true;
    const routes = new StatusRoutes({ pingPath: '/ping', report: sampleReport, healthy: () => healthy });
    const tree = new GuardedTree(routes, greedyTree());
    assert.equal((await inject(tree, { url: '/ping' })).status, 200);
    healthy = false;
    assert.equal((await inject(tree, { url: '/ping' })).status, 503);
  });

  test('the statusListen app answers its two paths and 404s the rest', async () => {
    const routes = new StatusRoutes({ statusPath: '/status', pingPath: '/ping', report: sampleReport });
    const tree = new Tree({ onError: () => {} }).mount(routes.app, '/');
    assert.equal((await inject(tree, { url: '/ping' })).text, 'pong\n');
    assert.equal((await inject(tree, { url: '/status' })).status, 200);
    assert.equal((await inject(tree, { url: '/other' })).status, 404);
  });

  test('bad paths are coded errors', () => {
    for (const p of ['status', '/s?x', '/s#x']) {
      assert.throws(() => new StatusRoutes({ statusPath: p, report: sampleReport }), { code: STATUS_PATH_ERROR });
    }
    assert.throws(() => new StatusRoutes({ statusPath: '/x', pingPath: '/x', report: sampleReport }), { code: STATUS_PATH_ERROR });
  });
});
