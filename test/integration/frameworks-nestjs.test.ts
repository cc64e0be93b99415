// A real NestJS app (test/fixtures/frameworks/nestjs, pinned in its own lockfile, installed by
// `npm ci` on first run and cached) on both platforms, served by the `postern` command behind real
// nginx over FastCGI four ways: the application from NestFactory.create() exported as it is
// (Express and Fastify), and main scripts that call app.listen() (through the takeover). Each
// answers with the same status and body as the same app on its own server.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { startNginx, type FrontServer, type NginxMode } from '../helpers/front/nginx.ts';
import { freePort } from '../helpers/front/ports.ts';
import { prepareFixture } from '../helpers/framework-fixture.ts';
import { ROOT, sleep, startCli, type Cli } from './hardening-helpers.ts';
import { start, type Running } from './ship-helpers.ts';

const ENTRIES = [
  { name: 'Express platform, the application exported', mount: 'express-app.mjs', platform: 'express' },
  { name: 'Fastify platform, the application exported', mount: 'fastify-app.mjs', platform: 'fastify' },
  { name: 'Express platform, main calls app.listen() (takeover)', mount: 'express-listen.cjs', platform: 'express' },
  { name: 'Fastify platform, main calls app.listen() (takeover)', mount: 'fastify-listen.mjs', platform: 'fastify' },
] as const;

const clis: Cli[] = [];
const refs: Running[] = [];
let nginx: FrontServer<NginxMode> | undefined;
const reference = new Map<string, number>();
let dir = '';

async function referencePort(r: Running): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /standalone listening on (\d+)/.exec(r.stdout());
    if (m !== null) return Number(m[1]);
    if (r.child.exitCode !== null || Date.now() > deadline) throw new Error(`the standalone Nest app did not start:\n${r.stdout()}${r.stderr()}`);
    await sleep(50);
  }
}

before(async () => {
  const prepared = prepareFixture(ROOT, 'nestjs');
  dir = prepared.dir;
  // The cost of the fixture, for the CI budget (0 when the cached install was reused).
  console.log(`# nestjs fixture: npm ci ${prepared.installMs} ms`);
  for (const platform of ['express', 'fastify']) {
    const r = start(process.execPath, [join(dir, 'standalone.mjs'), platform], { cwd: dir });
    refs.push(r);
    reference.set(platform, await referencePort(r));
  }
  const backends: string[] = [];
  for (const e of ENTRIES) {
    const cli = startCli(['--fastcgi', '127.0.0.1:0', '--mount', `/=${join(dir, e.mount)}`], { env: { PORT: String(await freePort()) } });
    clis.push(cli);
    backends.push(`127.0.0.1:${(await cli.listening(['fastcgi'], 60_000)).get('fastcgi') ?? 0}`);
  }
  nginx = await startNginx(backends.map((backend) => ({ mode: 'fastcgi' as const, backend })));
});

after(async () => {
  await nginx?.stop();
  await Promise.all([...clis.map((c) => c.stop()), ...refs.map((r) => r.stop())]);
});

interface Answer { status: number; type: string | null; body: string }

async function ask(base: string, path: string, init?: RequestInit): Promise<Answer> {
  const r = await fetch(`${base}${path}`, init);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

const REQUESTS: ReadonlyArray<[string, RequestInit | undefined]> = [
  ['/hello/ada?x=1', undefined],
  ['/hello', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'grace', n: 3 }) }],
  ['/nowhere', undefined],
];

for (const [i, e] of ENTRIES.entries()) {
  test(`NestJS, ${e.name}: same answers behind nginx over FastCGI as on its own server`, async () => {
    const site = nginx?.sites[i];
    assert.ok(site !== undefined);
    const own = `http://127.0.0.1:${reference.get(e.platform) ?? 0}`;
    for (const [path, init] of REQUESTS) {
      const theirs = await ask(own, path, init);
      const ours = await ask(site.url(''), path, init);
      assert.deepEqual(ours, theirs, `${path} (${e.platform})`);
    }
    // And the answer is what the app says, not merely two equal errors.
    const hello = await ask(site.url(''), '/hello/ada?x=1');
    assert.equal(hello.status, 200);
    assert.deepEqual(JSON.parse(hello.body), { hello: 'ada', url: '/hello/ada?x=1', ip: '127.0.0.1' });
    if (e.mount.includes('listen')) assert.match(clis[i]?.output() ?? '', /serving the http\.Server .* listened on/);
  });
}

for (const platform of ['express', 'fastify'] as const) {
  test(`NestJS (${platform} platform) exported: SIGTERM runs onModuleDestroy, beforeApplicationShutdown and onApplicationShutdown`, async () => {
    const markers = mkdtempSync(join(tmpdir(), 'postern-nest-shutdown-'));
    try {
      const cli = startCli(['--fastcgi', '127.0.0.1:0', '--mount', `/=${join(dir, 'shutdown-app.mjs')}`], { env: { MARKER_DIR: markers, NEST_PLATFORM: platform } });
      clis.push(cli);
      const port = (await cli.listening(['fastcgi'], 60_000)).get('fastcgi') ?? 0;
      const nest = await startNginx([{ mode: 'fastcgi', backend: `127.0.0.1:${port}` }]);
      try {
        const r = await ask(nest.sites[0]?.url('') ?? '', '/hello/ada');
        assert.equal(r.status, 200);
        assert.equal((JSON.parse(r.body) as { hello: string }).hello, 'ada');
      } finally {
        await nest.stop();
      }
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0, cli.output());
      const hooks = readFileSync(join(markers, `nest-${platform}-${cli.child.pid ?? 0}`), 'utf8');
      assert.equal(hooks, 'onModuleDestroy\nbeforeApplicationShutdown\nonApplicationShutdown\n');
      assert.match(cli.output(), /closed the apps \(mount \/\)/);
    } finally {
      rmSync(markers, { recursive: true, force: true });
    }
  });
}
