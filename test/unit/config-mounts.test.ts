// Mount loading from the start-up side: modules imported by path or package, the named export
// mounted with its kind and role, load failures as coded errors, reload re-imports, and the
// swappable tree a reload swaps; plus the event log the CLI builds (src/operate.ts), as seen from
// its stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTree, importMount, mountUrl } from '../../src/config/mounts.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { CONFIG_ERRORS, ConfigError } from '../../src/config/errors.ts';
import { SwappableTree } from '../../src/config/swappable-tree.ts';
import { createOperatorLogs } from '../../src/operate.ts';
import { inject } from '../../src/app/inject.ts';
import { Tree } from '../../src/app/tree.ts';
import type { NativeApp } from '../../src/app/types.ts';

const APP = (body: string): string => `
export const app = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ${JSON.stringify(body)} + ' ' + environ.SCRIPT_NAME + ' ' + environ.PATH_INFO;
};
export const hono = { fetch: () => new Response(${JSON.stringify(`${body}-fetch`)}) };
export default app;
`;

function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-mounts-'));
  return fn(dir).finally(() => { rmSync(dir, { recursive: true, force: true }); });
}

test('mounts from a config file: path modules, named exports, kind and role', () => withDir(async (dir) => {
  writeFileSync(join(dir, 'a.mjs'), APP('A'));
  writeFileSync(join(dir, 'postern.yaml'), [
    'mount:',
    '  - { prefix: /a, module: ./a.mjs, export: app, kind: native }',
    '  - { prefix: /h, module: ./a.mjs, export: hono }',
    '  - { prefix: /auth, module: ./a.mjs, export: app, kind: native, role: authorizer }',
    '',
  ].join('\n'));
  const config = resolveConfig({ file: join(dir, 'postern.yaml'), cwd: '/' });
  const tree = await buildTree(config.mount);
  assert.equal((await inject(tree, { url: '/a/x?q=1' })).text, 'A /a /x');
  assert.equal((await inject(tree, { url: '/h/y' })).text, 'A-fetch');
  assert.equal(tree.hasRole('authorizer'), true);
  assert.equal((await inject(tree, { url: '/nowhere' })).status, 404);
}));

test('a module that fails to import, or lacks the export, is a MOUNT_LOAD error naming the mount', () => withDir(async (dir) => {
  writeFileSync(join(dir, 'a.mjs'), APP('A'));
  writeFileSync(join(dir, 'broken.mjs'), 'export const = ;\n');
  const config = resolveConfig({ flags: { mount: ['/a=./a.mjs#nope', '/b=./broken.mjs', '/c=./a.mjs#hono'] }, cwd: dir });
  await assert.rejects(buildTree(config.mount), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.issues.map((i) => [i.code, i.key]), [[CONFIG_ERRORS.MOUNT_LOAD, 'mount[0]'], [CONFIG_ERRORS.MOUNT_LOAD, 'mount[1]']]);
    assert.ok(err.issues[0]?.message.includes('app'), 'lists the exports there are');
    return true;
  });
}));

test('an app whose kind cannot be told is a MOUNT_LOAD error', () => withDir(async (dir) => {
  writeFileSync(join(dir, 'two.mjs'), 'export default (a, b) => {};\n');
  const config = resolveConfig({ flags: { mount: ['/=./two.mjs'] }, cwd: dir });
  await assert.rejects(buildTree(config.mount), (err: unknown) => err instanceof ConfigError && err.code === CONFIG_ERRORS.MOUNT_LOAD);
}));

test('packages resolve from the directory they were configured in', async () => {
  const m = { prefix: '/', module: 'commander', export: 'Command', kind: 'auto', role: 'responder', baseDir: process.cwd() } as const;
  assert.match(mountUrl(m), /^file:.*node_modules\/commander\//);
  assert.equal(typeof await importMount(m), 'function');
});

test('a .ts module mounts where TypeScript runs (tsx, Node 24); elsewhere the error says how to run it', () => withDir(async (dir) => {
  writeFileSync(join(dir, 'typed.ts'), 'export default { fetch: (_r: Request): Response => new Response("typed") };\n');
  const config = resolveConfig({ flags: { mount: ['/t=./typed.ts'] }, cwd: dir });
  // This file itself is .ts under tsx and .js when compiled: that says which case this run is.
  // (Node 22.10+ also reports native type stripping as process.features.typescript; @types/node 20 lacks it.)
  const typescriptRuns = fileURLToPath(import.meta.url).endsWith('.ts')
    || ((process.features as { typescript?: unknown }).typescript ?? false) !== false;
  if (typescriptRuns) {
    assert.equal((await inject(await buildTree(config.mount), { url: '/t' })).text, 'typed');
  } else {
    await assert.rejects(buildTree(config.mount), (err: unknown) =>
      err instanceof ConfigError && err.code === CONFIG_ERRORS.MOUNT_LOAD && (err.issues[0]?.message.includes('tsx') ?? false));
  }
}));

test('a fresh import on reload sees the module\'s new code', () => withDir(async (dir) => {
  const file = join(dir, 'v.mjs');
  writeFileSync(file, APP('v1'));
  const [m] = resolveConfig({ flags: { mount: ['/=./v.mjs#app'] }, cwd: dir }).mount;
  assert.ok(m !== undefined);
  const first = await importMount(m);
  writeFileSync(file, APP('v2'));
  assert.equal(await importMount(m), first, 'without a token, the module cache answers');
  const second = await importMount(m, 'reload-1');
  assert.notEqual(second, first);
  const tree = new Tree().mount(second, '/', { kind: 'native' });
  assert.equal((await inject(tree, { url: '/x' })).text, 'v2  /x');
}));

test('SwappableTree sends new requests to the tree swapped in', async () => {
  const app = (text: string): NativeApp => (_env, start) => { start('200 OK', [['Content-Type', 'text/plain']]); return text; };
  const t = new SwappableTree(new Tree().mount(app('one'), '/', { kind: 'native' }));
  assert.equal((await inject(t, { url: '/' })).text, 'one');
  t.swap(new Tree().mount(app('two'), '/p', { kind: 'native' }));
  assert.equal((await inject(t, { url: '/p' })).text, 'two');
  assert.equal((await inject(t, { url: '/' })).status, 404);
  assert.equal(t.mounts.length, 1);
  assert.equal(t.match('/p/q')?.prefix, '/p');
  assert.equal(t.hasRole('authorizer'), false);
});

test('the CLI event log: the terminal-ness of stderr picks pretty, levels filter, a file gets JSON lines and follows a rotation', () => withDir(async (dir) => {
  let err = '';
  const logs = createOperatorLogs({ logLevel: 'warn', logFormat: 'auto' }, { stderr: (t) => { err += t; }, isTTY: true });
  logs.info('hidden');
  logs.warn('shown', { key: 1 });
  await new Promise((r) => setImmediate(r));
  assert.ok(err.includes('\x1b['), 'coloured on a terminal');
  // eslint-disable-next-line no-control-regex -- the colour codes are what is being stripped
  const plain = err.replace(/\x1b\[[0-9;]*m/g, '');
  assert.match(plain, /^\S+ WARN +shown key=1\n$/);
  assert.equal(logs.debugEnabled, false);

  err = '';
  logs.configure({ logLevel: 'debug', logFormat: 'json' });
  assert.equal(logs.debugEnabled, true);
  logs.debug('http listening on 127.0.0.1:1', { protocol: 'http' });
  await new Promise((r) => setImmediate(r));
  const line = JSON.parse(err.trim()) as Record<string, unknown>;
  assert.deepEqual([line['level'], line['message'], line['protocol']], ['debug', 'http listening on 127.0.0.1:1', 'http']);

  err = '';
  const file = join(dir, 'p.log');
  logs.configure({ logLevel: 'info', logFormat: 'auto', logFile: file });
  logs.error('to the file');
  renameSync(file, `${file}.1`);
  logs.reopen();
  logs.info('after reopen');
  logs.close();
  await logs.closed;
  const messages = (path: string): string[] =>
    readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { message: string }).message);
  assert.deepEqual(messages(`${file}.1`), ['to the file'], 'JSON lines in a file even though stderr is a terminal');
  assert.deepEqual(messages(file), ['after reopen']);
  assert.equal(err, '', 'nothing leaks to stderr once a file is set');
}));
