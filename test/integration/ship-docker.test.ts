// The container image without a Docker engine, from the image builder's side: the Dockerfile's
// steps replayed in order in a scratch directory per stage (the context filtered by .dockerignore,
// the same RUN commands, COPY between stages), then the ENTRYPOINT started with the image's ENV as
// its USER, the HEALTHCHECK run until healthy, one FastCGI request, and the STOPSIGNAL.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { repoRoot } from '../helpers/front/root.ts';
import { freePort } from '../helpers/front/ports.ts';
import { fcgiRequest } from '../helpers/clients.ts';
import { fcgiParams } from '../helpers/servers.ts';
import {
  execForm, finalStage, isIgnored, last, mayReinclude, parseDockerfile, parseDockerignore, parseEnv, type Stage,
} from '../unit/dockerfile-parse.ts';
import { cleanEnv, jsonLines, retry, run, start, type Running } from './ship-helpers.ts';

const root = repoRoot();
const df = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const fin = finalStage(df);
let scratch = '';
const servers: Running[] = [];

/** Where an image path lives in the scratch copy of a stage's filesystem. */
function inStage(stageDir: string, imagePath: string): string {
  return join(stageDir, imagePath);
}

// Build-context paths, as `docker build .` sends them after .dockerignore.
function copyContext(dest: string): string[] {
  const rules = parseDockerignore(readFileSync(join(root, '.dockerignore'), 'utf8'));
  const copied: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const isDir = statSync(join(root, path)).isDirectory();
      if (isIgnored(rules, path)) {
        if (isDir && mayReinclude(rules, path)) walk(path);
        continue;
      }
      if (isDir) walk(path);
      else {
        cpSync(join(root, path), join(dest, path));
        copied.push(path);
      }
    }
  };
  walk('');
  return copied;
}

interface Image {
  readonly dir: string;
  readonly workdir: string;
  readonly env: Map<string, string>;
  readonly user: string | undefined;
}

/** Replays one stage; returns its filesystem and final state. */
async function replayStage(stage: Stage, context: string, stages: ReadonlyMap<string, string>): Promise<Image> {
  const dir = join(scratch, `stage-${stage.name ?? 'final'}`);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  let workdir = '/';
  let user: string | undefined;
  const env = new Map<string, string>();
  for (const ins of stage.instructions) {
    switch (ins.keyword) {
      case 'WORKDIR':
        workdir = ins.rest.trim();
        mkdirSync(inStage(dir, workdir), { recursive: true });
        break;
      case 'ENV':
        for (const [k, v] of parseEnv(ins.rest)) env.set(k, v);
        break;
      case 'USER':
        user = ins.rest.trim();
        break;
      case 'COPY': {
        const parts = ins.rest.split(/\s+/);
        const dest = parts.pop() ?? '';
        const from = ins.flags['from'];
        const base = from === undefined ? context : stages.get(from);
        assert.ok(base !== undefined, `line ${ins.line}: COPY --from=${String(from)} names no earlier stage`);
        const target = inStage(dir, dest.startsWith('/') ? dest : join(workdir, dest));
        for (const src of parts) {
          const source = from === undefined ? join(base, src) : inStage(base, src);
          assert.ok(existsSync(source), `line ${ins.line}: COPY source ${src} is missing`);
          // A directory's contents go into the destination; a file goes into it when it ends in `/`.
          const to = statSync(source).isDirectory() || !dest.endsWith('/') ? target : join(target, basename(src));
          cpSync(source, to, { recursive: true });
        }
        break;
      }
      case 'RUN': {
        const r = await run('sh', ['-c', ins.rest], {
          cwd: inStage(dir, workdir),
          // The npm cache on this machine is warm: same commands, served from it.
          env: cleanEnv({ ...Object.fromEntries(env), npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' }),
          timeoutMs: 120_000,
        });
        assert.equal(r.code, 0, `line ${ins.line}: RUN ${ins.rest} failed (${String(r.signal)}):\n${r.stdout}\n${r.stderr}`);
        break;
      }
      default:
        break;
    }
  }
  return { dir, workdir, env, user };
}

let image: Image;
let ports: Map<string, number>;
let runEnv: Record<string, string>;
let asUser: { uid: number; gid: number } | Record<string, never> = {};

/** An image argv with its paths moved into the scratch stage, and `node` as this test's node. */
function hostArgv(argv: readonly string[]): [string, string[]] {
  const mapped = argv.map((a, i) => (i === 0 && a === 'node' ? process.execPath : a.startsWith('/') && existsSync(inStage(image.dir, a)) ? inStage(image.dir, a) : a));
  return [mapped[0] ?? '', mapped.slice(1)];
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'postern-docker-'));
  chmodSync(scratch, 0o755);
  const context = join(scratch, 'context');
  const files = copyContext(context);
  assert.ok(files.includes('package-lock.json') && !files.some((f) => f.startsWith('node_modules/') || f.startsWith('test/')));
  const built = new Map<string, string>();
  let last: Image | undefined;
  for (const stage of df.stages) {
    last = await replayStage(stage, context, built);
    if (stage.name !== undefined) built.set(stage.name, last.dir);
  }
  assert.ok(last !== undefined);
  image = last;
  // `docker run -p`: each EXPOSEd port is published on a free loopback port; the listeners that
  // bind it in the image are pointed there, as `-e POSTERN_…=127.0.0.1:PORT` would.
  ports = new Map();
  for (const p of fin.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.rest.split(/\s+/))) ports.set(p, await freePort());
  runEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/home/node' };
  for (const [k, v] of image.env) {
    const m = /^:(\d+)$/.exec(v);
    const published = m === null ? undefined : ports.get(m[1] ?? '');
    runEnv[k] = published === undefined ? v : `127.0.0.1:${published}`;
  }
  // USER node is uid 1000 in the official node images; switching needs root, which CI has.
  if (process.getuid?.() === 0 && image.user === 'node') asUser = { uid: 1000, gid: 1000 };
});

after(async () => {
  for (const s of servers) await s.stop();
  if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
});

test('the runtime image holds the compiled output and production dependencies only', () => {
  const app = inStage(image.dir, image.workdir);
  for (const p of ['bin/postern.js', 'dist/src/cli.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/protocols/index.js', 'node_modules/commander', 'node_modules/winston', 'node_modules/yaml']) {
    assert.ok(existsSync(join(app, p)), `${p} is in the image`);
  }
  for (const p of ['src', 'protocols', 'test', 'tsconfig.json', 'node_modules/typescript', 'node_modules/tsx', 'node_modules/eslint', 'node_modules/express']) {
    assert.ok(!existsSync(join(app, p)), `${p} is not in the image`);
  }
  const deps = readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'));
  assert.ok(deps.length < 60, `${deps.length} top-level packages: ${deps.join(' ')}`);
  assert.equal(relative(image.dir, app), 'app');
});

test('the ENTRYPOINT starts as USER with the image ENV, becomes healthy, serves FastCGI and stops on STOPSIGNAL', async () => {
  const entry = execForm(last(fin, 'ENTRYPOINT')?.rest ?? '') ?? [];
  const cmd = execForm(last(fin, 'CMD')?.rest ?? '[]') ?? [];
  const [command, args] = hostArgv([...entry, ...cmd]);
  const server = start(command, args, { cwd: inStage(image.dir, image.workdir), env: runEnv, ...asUser });
  servers.push(server);
  try {
    // Docker's health loop: the HEALTHCHECK command, in the container, until it first succeeds.
    const hc = last(fin, 'HEALTHCHECK');
    const hcArgv = execForm(/^CMD\s+(.*)$/i.exec(hc?.rest ?? '')?.[1] ?? '') ?? [];
    const [hcCommand, hcArgs] = hostArgv(hcArgv);
    let lastCheck = '';
    const healthy = await retry(async () => {
      if (server.child.exitCode !== null) throw new Error('postern exited');
      const r = await run(hcCommand, hcArgs, { cwd: inStage(image.dir, image.workdir), env: runEnv, timeoutMs: 10_000, ...asUser });
      lastCheck = `exit ${String(r.code)}: ${r.stdout}${r.stderr}`;
      return r.code === 0 ? r : undefined;
    }, 20_000, () => `HEALTHCHECK never passed (last: ${lastCheck}); postern stderr:\n${server.stderr()}`, 250);
    assert.match(healthy.stdout, /^ok: /);

    const fastcgiPort = ports.get('9000');
    assert.ok(fastcgiPort !== undefined);
    const res = await fcgiRequest({ port: fastcgiPort }, { params: fcgiParams('/') });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'Hello World');

    const stopSignal = last(fin, 'STOPSIGNAL')?.rest.trim() as NodeJS.Signals;
    const t0 = Date.now();
    server.child.kill(stopSignal);
    const exit = await server.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, server.stderr());
    assert.ok(Date.now() - t0 < Number(runEnv['POSTERN_SHUTDOWN_TIMEOUT_MS'] ?? 10_000));

    // Logs are JSON lines: the event log on stderr, the access log on stdout.
    const events = jsonLines(server.stderr());
    assert.ok(events.some((e) => typeof e['message'] === 'string' && e['message'].includes('ready')), server.stderr());
    assert.ok(events.every((e) => typeof e['level'] === 'string' && typeof e['time'] === 'string'));
    const access = jsonLines(server.stdout());
    assert.ok(access.some((a) => a['method'] === 'GET' && a['uri'] === '/' && a['status'] === 200 && a['protocol'] === 'fastcgi'), server.stdout());
  } finally {
    await server.stop();
  }
});

test('configured by a mounted file instead: POSTERN_CONFIG names it, and it mounts an app mounted beside it', async () => {
  // docker run -v ./postern.yaml:/etc/postern/postern.yaml:ro -v ./app:/srv/app:ro -e POSTERN_CONFIG=/etc/postern/postern.yaml
  const etc = inStage(image.dir, '/etc/postern');
  const srv = inStage(image.dir, '/srv/app');
  mkdirSync(etc, { recursive: true });
  mkdirSync(srv, { recursive: true });
  writeFileSync(join(srv, 'app.mjs'), "export default (request) => new Response('from the mounted app, path ' + new URL(request.url).pathname);\n");
  writeFileSync(join(etc, 'postern.yaml'), `mount:\n  - { prefix: /app, module: ${join(srv, 'app.mjs')} }\nmaxBodyBytes: 1MiB\n`);
  for (const d of [inStage(image.dir, '/etc'), etc, inStage(image.dir, '/srv'), srv]) chmodSync(d, 0o755);
  const entry = execForm(last(fin, 'ENTRYPOINT')?.rest ?? '') ?? [];
  const [command, args] = hostArgv(entry);
  const withFile = start(command, args, { cwd: inStage(image.dir, image.workdir), env: { ...runEnv, POSTERN_CONFIG: join(etc, 'postern.yaml') }, ...asUser });
  servers.push(withFile);
  try {
    await retry(() => {
      if (withFile.child.exitCode !== null) throw new Error('postern exited');
      return /"message":"postern [^ ]+ ready /.test(withFile.stderr()) ? true : undefined;
    }, 20_000, () => `postern never got ready:\n${withFile.stderr()}`);
    const res = await fcgiRequest({ port: ports.get('9000') ?? 0 }, { params: fcgiParams('/app/x') });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'from the mounted app, path /x');
    withFile.child.kill('SIGTERM');
    assert.deepEqual(await withFile.exited, { code: 0, signal: null }, withFile.stderr());
  } finally {
    await withFile.stop();
  }
});
