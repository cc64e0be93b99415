// A real React Router 7 framework-mode app (test/fixtures/frameworks/react-router, pinned in its
// own lockfile, installed by `npm ci` and built by `react-router build` on first run, both cached)
// served by the `postern` command behind real nginx over FastCGI three ways: an Express server with
// @react-router/express that calls app.listen() (through the listen() takeover; it serves
// build/client itself), the same Express app exported (recognised), and @react-router/node's
// createRequestListener mounted with kind node
// (nginx serves build/client: config/nginx/frameworks/react-router.conf). Each answers as
// react-router-serve does on its own port: a loader page, its single-fetch data, an action form POST
// (redirect, then the re-rendered list; a 400 for bad input), a resource route (GET, POST JSON),
// a 404, and the build's assets.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startNginx, type FrontServer, type NginxMode } from '../helpers/front/nginx.ts';
import { freePort } from '../helpers/front/ports.ts';
import { buildFixture, prepareFixture } from '../helpers/framework-fixture.ts';
import { ask, readableRoot, type Answer } from '../helpers/framework-site.ts';
import { writeMountConfig } from '../helpers/framework-compare.ts';
import { ROOT, sleep, startCli, type Cli } from './hardening-helpers.ts';
import { start, type Running } from './ship-helpers.ts';

interface Entry {
  readonly name: string;
  readonly args: (dir: string, tmp: string) => string[];
  readonly site: NginxMode;
  /** Who serves build/client: nginx from the build, or the app through postern. */
  readonly statics: 'nginx' | 'app';
  /**
   * The same app on its own server: react-router-serve (Express, which adds `; charset=utf-8` to
   * text types), or the listener alone on node:http (listen.mjs), which sends the types as the app
   * set them.
   */
  readonly own: 'serve' | 'listener';
  readonly takeover?: boolean;
}

const ENTRIES: readonly Entry[] = [
  {
    name: 'Express server calling app.listen() (takeover)',
    args: (dir) => ['--mount', `/=${join(dir, 'serve.mjs')}`],
    site: 'fastcgi',
    statics: 'app',
    own: 'serve',
    takeover: true,
  },
  {
    name: 'Express app exported (recognised)',
    args: (dir) => ['--mount', `/=${join(dir, 'app.mjs')}`],
    site: 'fastcgi',
    statics: 'app',
    own: 'serve',
  },
  {
    name: 'createRequestListener, kind node',
    args: (dir, tmp) => ['--config', writeMountConfig(tmp, join(dir, 'listener.mjs'), 'listener', 'node')],
    site: 'frameworks/react-router',
    statics: 'nginx',
    own: 'listener',
  },
];

const clis: Cli[] = [];
const owns: Running[] = [];
const ownBases = { serve: '', listener: '' };
let nginx: FrontServer<NginxMode> | undefined;
let dir = '';
let tmp = '';
let staticCopy: string | undefined;
const lists: string[] = [];
const ownLists = { serve: '', listener: '' };

async function startOwn(kind: 'serve' | 'listener', args: string[], ready: RegExp): Promise<void> {
  const port = await freePort();
  ownLists[kind] = join(tmp, `own-${kind}.txt`);
  const r = start(process.execPath, args, {
    cwd: dir,
    env: { ...process.env, NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1', TODO_FILE: ownLists[kind] },
  });
  owns.push(r);
  ownBases[kind] = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (!ready.test(r.stdout())) {
    if (r.child.exitCode !== null || Date.now() > deadline) throw new Error(`${kind} did not start:\n${r.stdout()}${r.stderr()}`);
    await sleep(50);
  }
}

before(async () => {
  const prepared = prepareFixture(ROOT, 'react-router');
  dir = prepared.dir;
  const built = buildFixture(dir, {
    args: [join('node_modules', '@react-router', 'dev', 'bin.js'), 'build'],
    sources: ['app', 'public', 'react-router.config.js', 'vite.config.js', 'package.json'],
    output: 'build',
    env: { NODE_ENV: 'production' },
  });
  // The cost of the fixture, for the CI budget (0 when the cached install or build was reused).
  console.log(`# react-router fixture: npm ci ${prepared.installMs} ms, react-router build ${built.buildMs} ms`);
  tmp = mkdtempSync(join(tmpdir(), 'postern-react-router-'));
  await startOwn('serve', [join(dir, 'node_modules', '@react-router', 'serve', 'dist', 'cli.js'), join('build', 'server', 'index.js')], /\[react-router-serve\]/);
  await startOwn('listener', [join(dir, 'listen.mjs')], /listener on/);
  const backends: string[] = [];
  for (const [i, e] of ENTRIES.entries()) {
    lists.push(join(tmp, `site${i}.txt`));
    const env = { NODE_ENV: 'production', PORT: String(await freePort()), TODO_FILE: lists[i] ?? '' };
    const cli = startCli(['--fastcgi', '127.0.0.1:0', ...e.args(dir, tmp)], { env });
    clis.push(cli);
    backends.push(`127.0.0.1:${(await cli.listening(['fastcgi'], 60_000)).get('fastcgi') ?? 0}`);
  }
  const statics = readableRoot(dir, ['build/client']);
  if (statics.copied) staticCopy = statics.root;
  nginx = await startNginx(ENTRIES.map((e, i) => ({ mode: e.site, backend: backends[i] ?? '', values: { APP_DIR: statics.root } })));
});

after(async () => {
  await nginx?.stop();
  await Promise.all([...clis.map((c) => c.stop()), ...owns.map((r) => r.stop())]);
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  if (staticCopy !== undefined) rmSync(staticCopy, { recursive: true, force: true });
});

const PUBLIC_FILES = new Set(['/robots.txt', '/logo.svg']);

const REQUESTS: ReadonlyArray<[string, RequestInit | undefined]> = [
  ['/?name=ada', { headers: { 'x-fixture': 'from the test' } }],
  // A client-side navigation: the loader's data as single-fetch turbo-stream.
  ['/_root.data?name=grace', undefined],
  ['/api/items?q=1', undefined],
  ['/api/items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'grace', n: 3 }) }],
  ['/nowhere', undefined],
  ['/robots.txt', undefined],
  ['/logo.svg', undefined],
];

function byNginx(e: Entry, path: string): boolean {
  return e.statics === 'nginx' && (path.startsWith('/assets/') || PUBLIC_FILES.has(path));
}

/** The own server to compare a path with: a file nginx serves is compared with react-router-serve's. */
function ownBase(e: Entry, path: string): string {
  return ownBases[byNginx(e, path) ? 'serve' : e.own];
}

/**
 * What must match: everything, except that a file nginx serves carries nginx's Content-Type from
 * mime.types, where express.static adds `; charset=UTF-8`: the media type must match.
 */
function comparable(e: Entry, path: string, a: Answer): Answer {
  return byNginx(e, path) ? { ...a, type: a.type?.split(';')[0] ?? null } : a;
}

/** Adds a todo as a browser without JavaScript does (a urlencoded POST), then follows the redirect. */
async function add(base: string, title: string): Promise<{ post: Answer; after: Answer }> {
  const post = await ask(base, '/todos', { method: 'POST', body: new URLSearchParams({ title }) });
  const after = post.location === null ? post : await ask(base, post.location);
  return { post, after };
}

for (const [i, e] of ENTRIES.entries()) {
  test(`React Router, ${e.name}: same answers behind nginx over FastCGI as on its own server`, async () => {
    const site = nginx?.sites[i];
    assert.ok(site !== undefined);
    const base = site.url('');
    for (const [path, init] of REQUESTS) {
      assert.deepEqual(comparable(e, path, await ask(base, path, init)), comparable(e, path, await ask(ownBase(e, path), path, init)), path);
    }
    // And the answers are the app's, not merely two equal errors.
    const home = await ask(base, '/?name=ada', { headers: { 'x-fixture': 'from the test' } });
    assert.equal(home.status, 200);
    assert.match(home.body, /<h1>Hello, <!-- -->ada<!-- -->!<\/h1><p id="header">from the test<\/p><p id="host">HOST<\/p>/);
    assert.deepEqual(JSON.parse((await ask(base, '/api/items?q=1')).body), { method: 'GET', q: '1', path: '/api/items' });
    assert.equal((await ask(base, '/nowhere')).status, 404);
    if (e.takeover === true) assert.match(clis[i]?.output() ?? '', /serving the http\.Server .*serve\.mjs listened on/);
  });

  test(`React Router, ${e.name}: an action form POST runs the action and redirects, as on its own server`, async () => {
    const site = nginx?.sites[i];
    assert.ok(site !== undefined);
    // Both lists start empty, so the re-rendered pages can be compared whole.
    writeFileSync(lists[i] ?? '', '');
    writeFileSync(ownLists[e.own], '');
    const ours = await add(site.url(''), 'milk & honey');
    assert.deepEqual(ours, await add(ownBases[e.own], 'milk & honey'));
    assert.equal(ours.post.status, 302);
    assert.equal(ours.post.location, '/todos?added=milk%20%26%20honey');
    assert.match(ours.after.body, /<ul id="todos"><li>milk &amp; honey<\/li><\/ul>/);
    assert.equal(readFileSync(lists[i] ?? '', 'utf8'), 'milk & honey\n');
    // Bad input: the action's error, rendered with the list, the same on both.
    const bad = await add(site.url(''), ' ');
    assert.deepEqual(bad, await add(ownBases[e.own], ' '));
    assert.match(bad.post.body, /<p id="error">a title is needed<\/p>/);
  });

  test(`React Router, ${e.name}: the build's assets (${e.statics === 'nginx' ? 'nginx from build/client' : 'the app through postern'})`, async () => {
    const site = nginx?.sites[i];
    assert.ok(site !== undefined);
    const base = site.url('');
    const assets = [...new Set([...(await ask(ownBases.serve, '/')).body.matchAll(/\/assets\/[^"?]+\.js/g)].map((m) => m[0]))];
    assert.ok(assets.length > 0, 'the page links no /assets files');
    for (const asset of assets) {
      const ours = await ask(base, asset);
      assert.deepEqual(comparable(e, asset, ours), comparable(e, asset, await ask(ownBase(e, asset), asset)), asset);
      assert.equal(ours.status, 200, asset);
      assert.equal(ours.body, readFileSync(join(dir, 'build', 'client', asset), 'utf8'), asset);
    }
    // Who answered a missing asset tells who serves the folder: nginx's own 404 page, or the app's.
    const missing = await ask(base, '/assets/missing.js');
    assert.equal(missing.status, 404);
    if (e.statics === 'nginx') assert.match(missing.body, /<center>nginx/);
    else assert.deepEqual(missing, await ask(ownBase(e, '/assets/missing.js'), '/assets/missing.js'));
  });
}
