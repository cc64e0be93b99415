// A real Next.js App Router app (test/fixtures/frameworks/nextjs, pinned in its own lockfile,
// installed by `npm ci` and built by `next build` on first run, both cached) served by the `postern`
// command behind real nginx over FastCGI three ways: the standalone server.js through the listen()
// takeover, the `next()` server exported as it is (recognised), and the docs' custom-server handler
// mounted with kind node. Each answers as the standalone server.js does on its own port: a static
// page, a server-rendered page (search param and header), its RSC payload, a route handler (GET,
// POST JSON), a server action form POST (303, then the re-rendered page), public/ files and
// /_next/static chunks, served by the app, or by nginx from the build (config/nginx/frameworks/nextjs.conf).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  /** postern's arguments after the FastCGI listener. */
  readonly args: (dir: string, tmp: string) => string[];
  readonly site: NginxMode;
  /** Who serves /_next/static and public/: nginx from the build, or the app through postern. */
  readonly statics: 'nginx' | 'app';
  readonly takeover?: boolean;
  readonly env?: Record<string, string>;
}

const ENTRIES: readonly Entry[] = [
  {
    name: 'standalone server.js (takeover)',
    args: (dir) => ['--mount', `/=${join(dir, '.next', 'standalone', 'server.js')}`],
    site: 'fastcgi',
    statics: 'app',
    takeover: true,
    // Next's own SIGTERM/SIGINT handlers exit at once; postern's graceful stop should run instead.
    env: { NEXT_MANUAL_SIG_HANDLE: '1', HOSTNAME: '127.0.0.1' },
  },
  {
    name: 'next() server exported (recognised)',
    args: (dir) => ['--mount', `/=${join(dir, 'next-app.mjs')}`],
    site: 'frameworks/nextjs',
    statics: 'nginx',
  },
  {
    name: 'custom-server handler, kind node',
    args: (dir, tmp) => ['--config', writeMountConfig(tmp, join(dir, 'request-handler.mjs'), 'handler', 'node')],
    site: 'fastcgi',
    statics: 'app',
  },
];

const clis: Cli[] = [];
let own: Running | undefined;
let ownBase = '';
let nginx: FrontServer<NginxMode> | undefined;
let dir = '';
let tmp = '';
let staticCopy: string | undefined;
const books: string[] = [];
let ownBook = '';

async function waitForOutput(r: Running, pattern: RegExp, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!pattern.test(r.stdout())) {
    if (r.child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not start:\n${r.stdout()}${r.stderr()}`);
    await sleep(50);
  }
}

before(async () => {
  const prepared = prepareFixture(ROOT, 'nextjs');
  dir = prepared.dir;
  const built = buildFixture(dir, {
    args: [join('node_modules', 'next', 'dist', 'bin', 'next'), 'build'],
    sources: ['app', 'public', 'next.config.mjs', 'package.json'],
    output: '.next',
    env: { NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' },
    // As Next's docs say for output: 'standalone': the app serves these only once copied in.
    after: (d) => {
      cpSync(join(d, 'public'), join(d, '.next', 'standalone', 'public'), { recursive: true });
      cpSync(join(d, '.next', 'static'), join(d, '.next', 'standalone', '.next', 'static'), { recursive: true });
    },
  });
  // The cost of the fixture, for the CI budget (0 when the cached install or build was reused).
  console.log(`# nextjs fixture: npm ci ${prepared.installMs} ms, next build ${built.buildMs} ms`);
  tmp = mkdtempSync(join(tmpdir(), 'postern-nextjs-'));
  const common = { NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' };
  const port = await freePort();
  ownBook = join(tmp, 'own.txt');
  own = start(process.execPath, [join(dir, '.next', 'standalone', 'server.js')], {
    cwd: dir,
    env: { ...process.env, ...common, PORT: String(port), HOSTNAME: '127.0.0.1', GUESTBOOK_FILE: ownBook },
  });
  ownBase = `http://127.0.0.1:${port}`;
  await waitForOutput(own, /Ready in/, 'the standalone Next.js server');
  const backends: string[] = [];
  for (const [i, e] of ENTRIES.entries()) {
    books.push(join(tmp, `site${i}.txt`));
    const env = { ...common, ...e.env, PORT: String(await freePort()), GUESTBOOK_FILE: books[i] ?? '' };
    const cli = startCli(['--fastcgi', '127.0.0.1:0', ...e.args(dir, tmp)], { env });
    clis.push(cli);
    backends.push(`127.0.0.1:${(await cli.listening(['fastcgi'], 60_000)).get('fastcgi') ?? 0}`);
  }
  const statics = readableRoot(dir, ['.next/static', 'public']);
  if (statics.copied) staticCopy = statics.root;
  nginx = await startNginx(ENTRIES.map((e, i) => ({ mode: e.site, backend: backends[i] ?? '', values: { APP_DIR: statics.root } })));
});

after(async () => {
  await nginx?.stop();
  await Promise.all([...clis.map((c) => c.stop()), own?.stop()]);
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  if (staticCopy !== undefined) rmSync(staticCopy, { recursive: true, force: true });
});

const REQUESTS: ReadonlyArray<[string, RequestInit | undefined]> = [
  ['/', undefined],
  ['/greet?name=ada', { headers: { 'x-fixture': 'from the test' } }],
  // A client-side navigation: the RSC payload (text/x-component) instead of HTML.
  ['/greet?name=grace', { headers: { rsc: '1' } }],
  ['/api/echo?q=1', undefined],
  ['/api/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'grace', n: 3 }) }],
  ['/nowhere', undefined],
  ['/robots.txt', undefined],
  ['/logo.svg', undefined],
];

const PUBLIC_FILES = new Set(['/robots.txt', '/logo.svg']);

/**
 * What must match: everything, except that a file nginx serves carries nginx's Content-Type from
 * mime.types (`application/javascript`), where Next adds `; charset=UTF-8`: the media type must match.
 */
function comparable(e: Entry, path: string, a: Answer): Answer {
  const byNginx = e.statics === 'nginx' && (path.startsWith('/_next/static/') || PUBLIC_FILES.has(path));
  return byNginx ? { ...a, type: a.type?.split(';')[0] ?? null } : a;
}

/** The server action's id, from the hidden field Next renders into the progressive-enhancement form. */
function actionId(page: Answer): string {
  const m = /name="(\$ACTION_ID_[0-9a-f]+)"/.exec(page.body);
  assert.ok(m?.[1] !== undefined, `no server action field in the guestbook page:\n${page.body}`);
  return m[1];
}

/** Signs the guestbook as a browser without JavaScript does: a multipart POST with Origin, then the redirect. */
async function sign(base: string, name: string): Promise<{ post: Answer; after: Answer }> {
  const form = new FormData();
  form.append(actionId(await ask(base, '/guestbook')), '');
  form.append('name', name);
  const post = await ask(base, '/guestbook', { method: 'POST', body: form, headers: { origin: base } });
  const after = await ask(base, post.location ?? '/guestbook');
  return { post, after };
}

for (const [i, e] of ENTRIES.entries()) {
  test(`Next.js, ${e.name}: same answers behind nginx over FastCGI as on its own server`, async () => {
    const site = nginx?.sites[i];
    assert.ok(site !== undefined);
    const base = site.url('');
    for (const [path, init] of REQUESTS) {
      assert.deepEqual(comparable(e, path, await ask(base, path, init)), comparable(e, path, await ask(ownBase, path, init)), path);
    }
    // And the answers are the app's, not merely two equal errors.
    const greet = await ask(base, '/greet?name=ada', { headers: { 'x-fixture': 'from the test' } });
    assert.equal(greet.status, 200);
    assert.match(greet.body, /<p id="greeting">Hello, <!-- -->ada<!-- -->!<\/p><p id="agent">from the test<\/p><p id="host">HOST<\/p>/);
    assert.deepEqual(JSON.parse((await ask(base, '/api/echo?q=1')).body), { method: 'GET', q: '1', path: '/api/echo' });
    assert.equal((await ask(base, '/nowhere')).status, 404);
    if (e.takeover === true) {
      assert.match(clis[i]?.output() ?? '', /serving the http\.Server .*server\.js listened on/);
    }
  });

  test(`Next.js, ${e.name}: a server action form POST runs the action and redirects, as on its own server`, async () => {
    const site = nginx?.sites[i];
    assert.ok(site !== undefined);
    // Both guestbooks start empty, so the re-rendered pages can be compared whole.
    writeFileSync(books[i] ?? '', '');
    writeFileSync(ownBook, '');
    const ours = await sign(site.url(''), 'ada & grace');
    const theirs = await sign(ownBase, 'ada & grace');
    assert.deepEqual(ours, theirs);
    assert.equal(ours.post.status, 303);
    assert.equal(ours.post.location, '/guestbook?signed=ada%20%26%20grace');
    assert.match(ours.after.body, /<p id="thanks">Thanks, <!-- -->ada &amp; grace<\/p><ul id="names"><li>ada &amp; grace<\/li><\/ul>/);
    assert.equal(readFileSync(books[i] ?? '', 'utf8'), 'ada & grace\n');
  });

  test(`Next.js, ${e.name}: static assets (${e.statics === 'nginx' ? 'nginx from the build' : 'the app through postern'})`, async () => {
    const site = nginx?.sites[i];
    assert.ok(site !== undefined);
    const base = site.url('');
    const chunks = [...new Set([...(await ask(ownBase, '/')).body.matchAll(/\/_next\/static\/[^"?]+\.(?:js|css)/g)].map((m) => m[0]))];
    assert.ok(chunks.length > 0, 'the page links no /_next/static files');
    for (const chunk of chunks) {
      const ours = await ask(base, chunk);
      assert.deepEqual(comparable(e, chunk, ours), comparable(e, chunk, await ask(ownBase, chunk)), chunk);
      assert.equal(ours.status, 200, chunk);
      assert.equal(ours.body, readFileSync(join(dir, chunk.replace('/_next/', '.next/')), 'utf8'), chunk);
    }
    // Who answered a missing asset tells who serves the folder: nginx's own 404 page, or Next's.
    const missing = await ask(base, '/_next/static/chunks/missing.js');
    assert.equal(missing.status, 404);
    if (e.statics === 'nginx') assert.match(missing.body, /<center>nginx/);
    else assert.deepEqual(missing, await ask(ownBase, '/_next/static/chunks/missing.js'));
  });
}
