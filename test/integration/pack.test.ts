// The npm package, from a user's side: `npm pack` on a scratch copy of the sources (its `prepare`
// compiles them), the tarball installed into an empty directory, `npx postern --help`, the example
// tree served, and apps written against the published types — including every example of
// docs/apps.md — compiled with tsc and served by the installed `postern` command.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/front/root.ts';
import { cleanEnv, retry, run, start, type Running } from './ship-helpers.ts';

const root = repoRoot();
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; files: string[]; dependencies: Record<string, string> };
const npmEnv = cleanEnv({ npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' });
let scratch = '';
let app = '';
let packed: { filename: string; files: Array<{ path: string }>; unpackedSize: number } | undefined;
const running: Running[] = [];

// The sources a publisher's checkout has, with the dev tools (tsc) taken from this checkout's
// node_modules by link, and a .bin of its own so `prepare` links postern there, not here.
function scratchCheckout(dest: string): void {
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'LICENSE', 'bin', 'src', 'protocols', 'config', 'scripts']) {
    cpSync(join(root, p), join(dest, p), { recursive: true });
  }
  const modules = join(dest, 'node_modules');
  mkdirSync(join(modules, '.bin'), { recursive: true });
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name !== '.bin' && !name.startsWith('.')) symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
  for (const name of readdirSync(join(root, 'node_modules', '.bin'))) {
    if (name !== 'postern') symlinkSync(join(root, 'node_modules', '.bin', name), join(modules, '.bin', name));
  }
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'postern-pack-'));
  const checkout = join(scratch, 'checkout');
  scratchCheckout(checkout);
  const r = await run('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: checkout, env: npmEnv, timeoutMs: 120_000 });
  assert.equal(r.code, 0, `npm pack failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<NonNullable<typeof packed>>;
  packed = out[0];
  assert.ok(packed !== undefined);
  app = join(scratch, 'app');
  mkdirSync(app);
  const install = await run('npm', ['install', join(scratch, packed.filename)], { cwd: app, env: npmEnv, timeoutMs: 120_000 });
  assert.equal(install.code, 0, `npm install failed:\n${install.stderr}`);
});

after(async () => {
  for (const s of running) await s.stop();
  if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
});

test('the tarball holds the compiled package and nothing else', () => {
  assert.ok(packed !== undefined);
  assert.equal(packed.filename, `${pkg.name}-${pkg.version}.tgz`);
  const files = packed.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/postern.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli.js', 'dist/src/health.js', 'dist/protocols/index.js', 'dist/protocols/index.d.ts', 'config/nginx/fastcgi.conf', 'config/systemd/postern.service']) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
  const stray = files.filter((f) => /^(src|protocols|test|build|bench|fuzz|examples|scripts|docs|node_modules)\//.test(f) || f.endsWith('.map') || f.endsWith('.test.js') || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
  assert.deepEqual(stray, []);
  assert.ok(packed.unpackedSize < 1_500_000, `unpacked ${packed.unpackedSize} bytes`);
});

test('installed in an empty directory: the runtime dependencies only, and `npx postern --help` works', async () => {
  const installed = readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'));
  for (const d of Object.keys(pkg.dependencies)) assert.ok(installed.includes(d), `${d} installed`);
  for (const d of ['typescript', 'tsx', 'eslint', 'express', 'koa', 'hono', 'fast-check']) assert.ok(!installed.includes(d), `${d} not installed`);
  const help = await run('npx', ['--no-install', 'postern', '--help'], { cwd: app, env: npmEnv, timeoutMs: 60_000 });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: postern \[options\] \[command\]/);
  assert.match(help.stdout, /check-config/);
  assert.match(help.stdout, /health/);
  const version = await run(join(app, 'node_modules/.bin/postern'), ['--version'], { cwd: app, env: npmEnv, timeoutMs: 30_000 });
  assert.equal(version.stdout.trim(), pkg.version);
});

async function serve(args: readonly string[]): Promise<{ server: Running; port: number }> {
  const server = start(join(app, 'node_modules/.bin/postern'), ['--http', '127.0.0.1:0', ...args], { cwd: app, env: cleanEnv({ POSTERN_LOG_FORMAT: 'json' }) });
  running.push(server);
  const port = await retry(() => {
    if (server.child.exitCode !== null) throw new Error('postern exited');
    const m = /http listening on 127\.0\.0\.1:(\d+)/.exec(server.stderr());
    return m === null ? undefined : Number(m[1]);
  }, 20_000, () => `postern did not listen:\n${server.stderr()}`);
  return { server, port };
}

test('the installed postern serves the example tree', async () => {
  const { server, port } = await serve([]);
  const res = await fetch(`http://127.0.0.1:${port}/par/a?x=1`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^Positional arguments\n\na\n\nKeyword arguments\n\nx: 1\n/);
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'Hello World');
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
});

const APP_TS = `import { tree, native, objectApp, expose, inject, type Environ, type NativeApp, type StartResponse } from 'postern';
import { fastcgi } from 'postern/protocols';

const hello: NativeApp = (environ: Environ, startResponse: StartResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return \`hello \${environ.SCRIPT_NAME}|\${environ.PATH_INFO} over \${environ['postern.protocol']}\\n\`;
};
class Root {
  index = expose(() => 'object root\\n');
}
tree.mount(native(hello), '/hello').mount(objectApp(new Root()), '/');
export { tree };

export const fcgiHeaderLength: number = fastcgi.FCGI_HEADER_LEN;
export async function selfTest(): Promise<number> {
  return (await inject(tree, { url: '/hello/x' })).status;
}
`;

// Each line must fail to compile: the types are real, not `any`.
const BAD_TS = `import { tree, type Environ, type StartResponse } from 'postern';
export const a: number = tree;
export const b: Environ = { REQUEST_METHOD: 'GET' };
export const c: StartResponse = (status: number) => () => undefined;
`;

/** The complete examples of a document: fenced `ts` blocks opening with `// NAME.ts — …`. */
function docExamples(doc: string): Map<string, string> {
  const text = readFileSync(join(root, doc), 'utf8');
  const out = new Map<string, string>();
  for (const m of text.matchAll(/```ts\n(\/\/ ([\w-]+\.ts) — [^]*?)```/g)) out.set(m[2] ?? '', m[1] ?? '');
  return out;
}

test('an app written against the published types compiles, docs/apps.md\'s examples too, and type errors are caught', async () => {
  writeFileSync(join(app, 'app.ts'), APP_TS);
  writeFileSync(join(app, 'bad.ts'), BAD_TS);
  const examples = docExamples('docs/apps.md');
  assert.deepEqual([...examples.keys()].sort(), ['api.ts', 'blog.ts', 'edge.ts', 'forms.ts', 'hello.ts', 'server.ts', 'shop.ts', 'site.ts']);
  const readme = docExamples('README.md');
  assert.deepEqual([...readme.keys()], ['app.ts']);
  examples.set('readme-app.ts', readme.get('app.ts') ?? '');
  for (const [name, code] of examples) writeFileSync(join(app, name), code);
  // The frameworks the examples use, as the app's own dependencies would be.
  for (const dep of ['express', 'koa', 'hono', '@koa', 'fastify', '@fastify']) symlinkSync(join(root, 'node_modules', dep), join(app, 'node_modules', dep));
  mkdirSync(join(app, 'node_modules/@types'), { recursive: true });
  for (const t of readdirSync(join(root, 'node_modules/@types'))) {
    const to = join(app, 'node_modules/@types', t);
    if (!existsSync(to)) symlinkSync(join(root, 'node_modules/@types', t), to);
  }
  const tsconfig = (files: string[]): string => JSON.stringify({
    compilerOptions: {
      module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2023', lib: ['ES2023'], strict: true, exactOptionalPropertyTypes: true,
      types: ['node'], outDir: 'out', declaration: false, skipLibCheck: true,
    },
    files,
  });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as object, type: 'module' }));
  // One program for both files (one tsc start): every error must be one of bad.ts's, and app.ts is emitted.
  writeFileSync(join(app, 'tsconfig.json'), tsconfig(['app.ts', 'bad.ts', ...examples.keys()]));
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const r = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, timeoutMs: 60_000 });
  const errors = [...r.stdout.matchAll(/^(\S+)\((\d+),\d+\): error (TS\d+)/gm)].map((m) => `${m[1]}:${m[2]} ${m[3]}`);
  assert.deepEqual(errors, ['bad.ts:2 TS2322', 'bad.ts:3 TS2740', 'bad.ts:4 TS2322'], r.stdout);
  for (const f of ['app.js', 'site.js', 'server.js', 'readme-app.js']) assert.ok(existsSync(join(app, 'out', f)), `out/${f}`);
});

test('`postern --mount /=./out/app.js#tree` serves the tree the app built on the default instance', async () => {
  const { server, port } = await serve(['--mount', '/=./out/app.js#tree']);
  const hello = await fetch(`http://127.0.0.1:${port}/hello/x`);
  assert.equal(await hello.text(), 'hello /hello|/x over http\n');
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'object root\n');
  assert.equal((await fetch(`http://127.0.0.1:${port}/nothing`)).status, 404);
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
});

test('the docs/apps.md and README examples, served by the installed postern, answer as the docs say', async () => {
  const { server, port } = await serve(['--mount', '/=./out/site.js#tree', '--mount', '/upload=./out/hello.js#upload', '--mount', '/readme=./out/readme-app.js', '--mount', '/forms=./out/forms.js']);
  const ask = async (path: string, init?: RequestInit): Promise<[number, string]> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
    return [res.status, await res.text()];
  };
  assert.deepEqual(await ask('/hello/world'), [200, 'Hello from /hello|/world over http\n']);
  assert.deepEqual(await ask('/readme/x'), [200, 'Hello from /x\n']);
  assert.deepEqual(await ask('/upload', { method: 'POST', body: 'abcdef' }), [200, '6 bytes\n']);
  assert.deepEqual(await ask('/shop/'), [200, 'shop home\n']);
  assert.deepEqual(await ask('/shop/items/7?x=1'), [200, '{"id":"7","protocol":"http","originalUrl":"/shop/items/7?x=1"}']);
  assert.deepEqual(await ask('/shop/cart', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }), [201, '{"added":{"a":1}}']);
  assert.deepEqual(await ask('/api/users/bob'), [200, '{"hello":"bob","path":"/users/bob"}']);
  assert.deepEqual(await ask('/edge/'), [200, 'Hono under /edge, asked for /\n']);
  assert.deepEqual(await ask('/edge/whoami'), [200, '{"remoteAddr":"127.0.0.1","scheme":"http"}']);
  assert.deepEqual(await ask('/posts/'), [200, 'post 1\npost 2\n']);
  assert.deepEqual(await ask('/posts/2'), [200, 'Second post\n']);
  assert.equal((await ask('/posts/9'))[0], 404);
  assert.deepEqual(await ask('/search?q=x'), [200, 'you searched for x\n']);
  assert.equal((await ask('/search?z=x'))[0], 404);
  assert.deepEqual(await ask('/forms/'), [200, 'Fastify, asked for /\n']);
  assert.deepEqual(await ask('/forms/signup', { method: 'POST', body: 'name=ada', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), [200, '{"welcome":"ada"}']);
  assert.equal((await ask('/forms/nowhere'))[0], 404);
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
});
