// A real SvelteKit app (test/fixtures/frameworks/sveltekit, adapter-node, pinned in its own
// lockfile; installed and built by the set-up, both cached) served by the `postern` command behind
// real nginx over FastCGI two ways: `build/index.js`, which calls listen() itself, through the
// takeover (ORIGIN set; the app serves its static assets), and `build/handler.js`'s `handler`
// mounted from a config file with `kind: node` (PROTOCOL_HEADER from nginx; nginx serves
// build/client). Each answers as the same build does on its own server, form action POST included.
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
  const prepared = prepareFixture(ROOT, 'sveltekit');
  const dir = prepared.dir;
  const built = buildFixture({ dir, out: 'build', command: ['node_modules/vite/bin/vite.js', 'build'] });
  // The cost of the fixture, for the CI budget (0 ms when the cached install or build was reused).
  console.log(`# ${costLine('sveltekit', dir, prepared.installMs, [built])}`);
  const entry = readdirSync(join(built.out, 'client', '_app', 'immutable', 'entry')).find((f) => f.endsWith('.js'));
  assert.ok(entry !== undefined, 'the build has a client entry chunk');
  asset = `/_app/immutable/entry/${entry}`;
  own = await startOwnServer(join(built.out, 'index.js'), dir, /Listening on/, (base) => ({ ORIGIN: base }));

  ways = await startTwoWays({
    staticDir: join(built.out, 'client'),
    // (a) The standalone entry, as `node build/index.js` would run: its listen() is taken over;
    // ORIGIN is the nginx site in front of it.
    takeover: { entry: join(built.out, 'index.js'), env: (site) => ({ ORIGIN: site }) },
    // (b) The handler export, mounted from a config file with kind: node; nginx sends X-Forwarded-Proto.
    handler: { module: join(built.out, 'handler.js'), export: 'handler', env: { PROTOCOL_HEADER: 'x-forwarded-proto' } },
  });
});

after(async () => {
  await Promise.all([ways?.stop(), own?.running.stop()]);
});

const JSON_POST: RequestInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'kit', n: [1, 2] }) };
const isStatic = (path: string): boolean => path === '/hello.txt' || path.startsWith('/_app/');

for (const [i, name] of ['build/index.js through the listen() takeover', "build/handler.js's handler mounted with kind: node"].entries()) {
  test(`SvelteKit, ${name}: same answers behind nginx over FastCGI as on its own server`, async () => {
    const site = ways?.nginx.sites[i];
    assert.ok(site !== undefined && own !== undefined);
    const ours = site.url('');
    const requests: readonly Ask[] = [
      ['/?q=1', () => undefined],
      ['/guestbook', () => undefined],
      // The form action with the browser's Origin: passes SvelteKit's CSRF check on both.
      ['/guestbook', (base) => formPost(base, { name: 'ada' })],
      ['/guestbook', (base) => formPost(base, { name: '' })],
      // A cross-site one: refused (403) on both.
      ['/guestbook', () => formPost('http://evil.example', { name: 'mallory' })],
      ['/api/echo?q=x', () => undefined],
      ['/api/echo', () => JSON_POST],
      ['/hello.txt', () => undefined],
      [asset, () => undefined],
      ['/nowhere', () => undefined],
    ];
    await sameAnswers(own.base, ours, requests, isStatic);
    // And the answers are the app's, not two equal errors.
    const page = await ask(ours, '/?q=1', undefined, false);
    assert.equal(page.status, 200);
    assert.match(page.body, /<p id="path">\/\?q=1<\/p>/);
    assert.match(page.body, /<p id="origin">BASE<\/p>/);
    const signed = await ask(ours, '/guestbook', formPost(ours, { name: 'grace' }), false);
    assert.equal(signed.status, 200);
    assert.match(signed.body, /signed by grace/);
    assert.equal((await ask(ours, '/guestbook', formPost('http://evil.example', { name: 'mallory' }), false)).status, 403);
    const echo = await ask(ours, '/api/echo', JSON_POST, false);
    assert.equal(echo.status, 201);
    assert.deepEqual(JSON.parse(echo.body), { got: { hello: 'kit', n: [1, 2] }, type: 'application/json' });
    assert.deepEqual(JSON.parse((await ask(ours, '/api/echo?q=x', undefined, false)).body), { path: '/api/echo', q: 'x', client: '127.0.0.1' });
    assert.equal((await ask(ours, '/hello.txt', undefined, true)).body, 'static text from the SvelteKit fixture\n');
    if (i === 0) assert.match(ways?.takeover.output() ?? '', /serving the http\.Server .* listened on/);
  });
}
