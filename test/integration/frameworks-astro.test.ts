// A real Astro app (test/fixtures/frameworks/astro, @astrojs/node, pinned in its own lockfile;
// installed and built by the set-up, both cached) served by the `postern` command behind real nginx
// over FastCGI two ways: the standalone build's `dist/server/entry.mjs`, which starts its own server,
// through the listen() takeover (the app serves its static assets), and the middleware build's
// `handler` mounted from a config file with `kind: node` (nginx serves dist-middleware/client). Each
// answers as the standalone build does on its own server, a form POST to a page included.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { prepareFixture } from '../helpers/framework-fixture.ts';
import { buildFixture, costLine } from '../helpers/framework-build.ts';
import { ask, sameAnswers, startTwoWays, formPost, startOwnServer, type Ask, type OwnServer, type TwoWays } from '../helpers/framework-compare.ts';
import { ROOT } from './hardening-helpers.ts';

let own: OwnServer | undefined;
let ways: TwoWays | undefined;
let asset = '';

before(async () => {
  const prepared = prepareFixture(ROOT, 'astro');
  const dir = prepared.dir;
  const astro = 'node_modules/astro/astro.js';
  const standalone = buildFixture({ dir, out: 'dist', command: [astro, 'build'] });
  const middleware = buildFixture({ dir, out: 'dist-middleware', command: [astro, 'build'], env: { FIXTURE_NODE_MODE: 'middleware' } });
  // The cost of the fixture, for the CI budget (0 ms when the cached install or builds were reused).
  console.log(`# ${costLine('astro', dir, prepared.installMs, [standalone, middleware])}`);
  const css = readdirSync(join(standalone.out, 'client', '_astro')).find((f) => f.endsWith('.css'));
  assert.ok(css !== undefined, 'the build has a stylesheet');
  asset = `/_astro/${css}`;
  own = await startOwnServer(join(standalone.out, 'server', 'entry.mjs'), dir, /listening on/i);

  ways = await startTwoWays({
    staticDir: join(middleware.out, 'client'),
    // (a) The standalone entry, as `node dist/server/entry.mjs` would run: its listen() is taken over.
    takeover: { entry: join(standalone.out, 'server', 'entry.mjs') },
    // (b) The middleware build's handler, mounted from a config file with kind: node.
    handler: { module: join(middleware.out, 'server', 'entry.mjs'), export: 'handler' },
  });
});

after(async () => {
  await Promise.all([ways?.stop(), own?.running.stop()]);
});

const JSON_POST: RequestInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'astro', n: [1, 2] }) };
const isStatic = (path: string): boolean => path === '/hello.txt' || path.startsWith('/_astro/');

for (const [i, name] of ['the standalone entry through the listen() takeover', "the middleware build's handler mounted with kind: node"].entries()) {
  test(`Astro, ${name}: same answers behind nginx over FastCGI as on its own server`, async () => {
    const site = ways?.nginx.sites[i];
    assert.ok(site !== undefined && own !== undefined);
    const ours = site.url('');
    const requests: readonly Ask[] = [
      ['/?q=1', () => undefined],
      ['/contact', () => undefined],
      // A form POST with the browser's Origin passes Astro's checkOrigin; a cross-site one gets 403.
      ['/contact', (base) => formPost(base, { message: 'hi there' })],
      ['/contact', () => formPost('http://evil.example', { message: 'spam' })],
      ['/api/echo?q=x', () => undefined],
      ['/api/echo', () => JSON_POST],
      ['/hello.txt', () => undefined],
      [asset, () => undefined],
      ['/nowhere', () => undefined],
    ];
    await sameAnswers(own.base, ours, requests, isStatic, (answer, theirs, path, what) => {
      // In middleware mode a path no route matches goes to the host's next(): postern's plain 404,
      // where the standalone server renders Astro's 404 page.
      if (i === 1 && path === '/nowhere') assert.equal(answer.status, theirs.status, path);
      else assert.deepEqual(answer, theirs, what);
    });
    // And the answers are the app's, not two equal errors.
    const page = await ask(ours, '/?q=1', undefined, false);
    assert.equal(page.status, 200);
    assert.match(page.body, /<p id="path">\/\?q=1<\/p>/);
    // The Host nginx passes (allowed by the app's security.allowedDomains), port included.
    assert.match(page.body, /<p id="origin">BASE<\/p>/);
    assert.match(page.body, /<p id="client">127\.0\.0\.1<\/p>/);
    const sent = await ask(ours, '/contact', formPost(ours, { message: 'hello' }), false);
    assert.equal(sent.status, 200);
    assert.match(sent.body, /got: hello/);
    assert.equal((await ask(ours, '/contact', formPost('http://evil.example', { message: 'spam' }), false)).status, 403);
    const echo = await ask(ours, '/api/echo', JSON_POST, false);
    assert.equal(echo.status, 201);
    assert.deepEqual(JSON.parse(echo.body), { got: { hello: 'astro', n: [1, 2] }, type: 'application/json' });
    assert.equal((await ask(ours, '/hello.txt', undefined, true)).body, 'static text from the Astro fixture\n');
    if (i === 0) assert.match(ways?.takeover.output() ?? '', /serving the http\.Server .* listened on/);
  });
}
