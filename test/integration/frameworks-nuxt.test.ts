// A real Nuxt app (test/fixtures/frameworks/nuxt, pinned in its own lockfile; installed and built by
// the set-up, both cached) served by the `postern` command behind real nginx over FastCGI two ways:
// Nitro's node-server build, `.output/server/index.mjs`, which starts its own server, through the
// listen() takeover (the app serves its static assets), and the node-listener build's `listener`
// mounted from a config file with `kind: node` (nginx serves .output-listener/public). Each answers
// as the node-server build does on its own server. And why the docs ask for NITRO_SHUTDOWN_DISABLED
// with the node-server entry: without it Nitro ends the process at SIGTERM, cutting a request in flight.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/front/ports.ts';
import { prepareFixture } from '../helpers/framework-fixture.ts';
import { buildFixture, costLine } from '../helpers/framework-build.ts';
import { ask, sameAnswers, startTwoWays, startOwnServer, type Ask, type OwnServer, type TwoWays } from '../helpers/framework-compare.ts';
import { ROOT, startCli, type Cli } from './hardening-helpers.ts';

/** The SIGTERM tests' posterns. */
const clis: Cli[] = [];
let own: OwnServer | undefined;
let ways: TwoWays | undefined;
let asset = '';
let listenerAsset = '';
let listenerPublic = '';
let entry = '';

before(async () => {
  const prepared = prepareFixture(ROOT, 'nuxt');
  const dir = prepared.dir;
  const nuxt = 'node_modules/nuxt/bin/nuxt.mjs';
  const server = buildFixture({ dir, out: '.output', command: [nuxt, 'build'] });
  const listener = buildFixture({ dir, out: '.output-listener', command: [nuxt, 'build'], env: { FIXTURE_NITRO_PRESET: 'node-listener' } });
  // The cost of the fixture, for the CI budget (0 ms when the cached install or builds were reused).
  console.log(`# ${costLine('nuxt', dir, prepared.installMs, [server, listener])}`);
  const js = readdirSync(join(server.out, 'public', '_nuxt')).find((f) => f.endsWith('.js'));
  assert.ok(js !== undefined, 'the build has a client chunk');
  asset = `/_nuxt/${js}`;
  // The two builds are separate Vite runs: their client chunks may be named differently.
  listenerPublic = join(listener.out, 'public');
  const ljs = readdirSync(join(listenerPublic, '_nuxt')).find((f) => f.endsWith('.js'));
  assert.ok(ljs !== undefined, 'the listener build has a client chunk');
  listenerAsset = `/_nuxt/${ljs}`;
  entry = join(server.out, 'server', 'index.mjs');
  own = await startOwnServer(entry, dir, /Listening on/);

  ways = await startTwoWays({
    staticDir: listenerPublic,
    // (a) The node-server entry, as `node .output/server/index.mjs` would run: its listen() is taken
    // over. Its default export is an empty object, which postern passes over for the server.
    takeover: { entry, env: () => ({ NITRO_SHUTDOWN_DISABLED: 'true' }) },
    // (b) The node-listener build's listener, mounted from a config file with kind: node.
    handler: { module: join(listener.out, 'server', 'index.mjs'), export: 'listener' },
  });
});

after(async () => {
  await Promise.all([ways?.stop(), ...clis.map((c) => c.stop()), own?.running.stop()]);
});

const JSON_POST: RequestInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'nuxt', n: [1, 2] }) };
const isStatic = (path: string): boolean => path === '/hello.txt' || path.startsWith('/_nuxt/');

for (const [i, name] of ['the node-server entry through the listen() takeover', "the node-listener build's listener mounted with kind: node"].entries()) {
  test(`Nuxt, ${name}: same answers behind nginx over FastCGI as on its own server`, async () => {
    const site = ways?.nginx.sites[i];
    assert.ok(site !== undefined && own !== undefined);
    const ours = site.url('');
    const requests: readonly Ask[] = [
      ['/?q=1', () => undefined],
      ['/api/hello?from=test', () => undefined],
      ['/api/echo', () => JSON_POST],
      ['/api/echo', () => undefined],
      ['/hello.txt', () => undefined],
      [asset, () => undefined],
      ['/nowhere', () => undefined],
    ];
    // The node-listener build is compared with the node-server build's own server: the same app,
    // but a separate Vite run, so only the hashed client chunk names in its pages may differ.
    const chunks = (a: Awaited<ReturnType<typeof ask>>): typeof a => (i === 1 ? { ...a, body: a.body.replace(/\/_nuxt\/[\w-]+\.js/g, '/_nuxt/CHUNK.js') } : a);
    await sameAnswers(own.base, ours, requests.filter(([path]) => i === 0 || path !== asset), isStatic,
      (answer, theirs, _path, what) => assert.deepEqual(chunks(answer), chunks(theirs), what));
    if (i === 1) {
      // Its own chunk, as nginx serves it from the build's public directory.
      const chunk = await ask(ours, listenerAsset, undefined, true);
      assert.deepEqual(chunk, { status: 200, type: null, body: readFileSync(join(listenerPublic, listenerAsset), 'utf8') });
    }
    // And the answers are the app's, not two equal errors.
    const page = await ask(ours, '/?q=1', undefined, false);
    assert.equal(page.status, 200);
    assert.match(page.body, /<p id="path">\/\?q=1<\/p>/);
    assert.match(page.body, /<p id="origin">BASE<\/p>/);
    assert.match(page.body, /<p id="api">hello page<\/p>/);
    assert.deepEqual(JSON.parse((await ask(ours, '/api/hello?from=test', undefined, false)).body), { greeting: 'hello test', path: '/api/hello?from=test', ip: '127.0.0.1' });
    const echo = await ask(ours, '/api/echo', JSON_POST, false);
    assert.equal(echo.status, 201);
    assert.deepEqual(JSON.parse(echo.body), { got: { hello: 'nuxt', n: [1, 2] }, type: 'application/json' });
    assert.equal((await ask(ours, '/hello.txt', undefined, true)).body, 'static text from the Nuxt fixture\n');
    if (i === 0) assert.match(ways?.takeover.output() ?? '', /serving the http\.Server .* listened on/);
  });
}

/** Rejects naming `what` when `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: not within ${ms} ms`)); }, ms); });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const SLOW_BODY = Buffer.from(JSON.stringify({ part: 'one and two' }));

/** A POST to /api/slow with the first bytes of its body sent; `finish()` sends the rest. */
function slowPost(port: number): { finish(): void; answer: Promise<{ status: number; body: string }> } {
  const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/slow', headers: { 'content-type': 'application/json', 'content-length': String(SLOW_BODY.length) } });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.once('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
      res.once('error', reject);
    });
    req.once('error', reject);
  });
  // The answer may fail before the test awaits it (the process ended): that is an outcome, not a crash.
  answer.catch(() => undefined);
  req.write(SLOW_BODY.subarray(0, 5));
  return { finish: () => { req.end(SLOW_BODY.subarray(5)); }, answer };
}

/** postern serving the node-server entry on an HTTP listener, with a request in flight when SIGTERM comes. */
async function sigtermWithRequestInFlight(env: Record<string, string>): Promise<{ cli: Cli; slow: ReturnType<typeof slowPost> }> {
  const port = await freePort();
  const cli = startCli(['--http', `127.0.0.1:${port}`, '--mount', `/=${entry}`], { env: { PORT: String(await freePort()), ...env } });
  clis.push(cli);
  await cli.listening(['http'], 60_000);
  const slow = slowPost(port);
  await cli.waitFor('slow request: reading the body');
  cli.child.kill('SIGTERM');
  await cli.waitFor('stopping gracefully');
  return { cli, slow };
}

test('Nuxt node-server entry through the takeover with NITRO_SHUTDOWN_DISABLED=true: a request in flight at SIGTERM gets its answer, then postern exits', async () => {
  const { cli, slow } = await sigtermWithRequestInFlight({ NITRO_SHUTDOWN_DISABLED: 'true' });
  slow.finish();
  const answer = await within(slow.answer, 20_000, 'the answer to the request in flight');
  assert.equal(answer.status, 201);
  assert.deepEqual(JSON.parse(answer.body), { got: { part: 'one and two' } });
  assert.equal(await within(cli.exited, 20_000, 'postern exiting after the drain'), 0);
});

test('Nuxt node-server entry through the takeover without NITRO_SHUTDOWN_DISABLED: Nitro ends the process at SIGTERM and the request in flight gets no answer', async () => {
  const { cli, slow } = await sigtermWithRequestInFlight({});
  // Nothing more is sent: postern alone would wait for the body (its drain lasts 30 s).
  await within(cli.exited, 20_000, 'the process ending');
  await assert.rejects(within(slow.answer, 5_000, 'the request in flight'), (err: Error) => !/not within/.test(err.message));
});
