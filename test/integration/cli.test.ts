// The real `postern` command in a child process, as an operator runs it: listeners on port 0 read
// back from the start-up log, requests over HTTP and FastCGI, mounts, SIGHUP reload, SIGTERM/SIGINT
// stops with exit 0, check-config on the shipped examples, and the exit status of each failure.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fcgiRequest } from '../helpers/clients.ts';
import { fcgiParams } from '../helpers/servers.ts';

const here = fileURLToPath(import.meta.url);
const compiled = here.endsWith('.js');
const root = (() => {
  let dir = dirname(here);
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();
// The CLI as this test run built it: build/src/cli.js when compiled, src/cli.ts under tsx.
const cliUrl = new URL(`../../src/cli.${compiled ? 'js' : 'ts'}`, import.meta.url).href;
// What bin/postern.js does, against this run's build; a script file, so supervised workers can
// re-run it (the supervisor forks process.argv[1] with the master's arguments).
const launcherDir = mkdtempSync(join(tmpdir(), 'postern-cli-bin-'));
const launcher = join(launcherDir, 'postern.mjs');
writeFileSync(launcher, `import { main } from ${JSON.stringify(cliUrl)};\nawait main(process.argv);\n`);
after(() => { rmSync(launcherDir, { recursive: true, force: true }); });
const nodeArgs = [...(compiled ? [] : ['--import', import.meta.resolve('tsx')]), launcher];

/** The environment without any POSTERN_* variable of the test runner's own. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('POSTERN_')) env[k] = v;
  return { ...env, ...extra };
}

interface Cli {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code (128+n for a signal). */
  readonly exited: Promise<number>;
  /** `protocol → host:port` from the `… listening on …` lines, waited for. */
  listening(protocols: readonly string[], ms?: number): Promise<Map<string, string>>;
  stop(): Promise<void>;
}

function startCli(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Cli {
  const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: options.cwd ?? root, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => { resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)); });
  });
  return {
    child,
    output: () => out,
    exited,
    async listening(protocols, ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = new Map<string, string>();
        for (const m of out.matchAll(/(fastcgi|scgi|uwsgi|http) listening on ([^\s"]+)/g)) found.set(m[1] ?? '', m[2] ?? '');
        if (protocols.every((p) => found.has(p))) return found;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`postern did not report ${protocols.join(', ')} listening:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs the CLI to completion (check-config, --version, failures). */
function runCli(args: readonly string[], options: { cwd?: string; bin?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
  const argv = options.bin === true ? [join(root, 'bin', 'postern.js'), ...args] : [...nodeArgs, ...args];
  const r = spawnSync(process.execPath, argv, { cwd: options.cwd ?? root, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function port(hostPort: string | undefined): number {
  const p = Number(/:(\d+)$/.exec(hostPort ?? '')?.[1]);
  assert.ok(p > 0, `a bound port in ${String(hostPort)}`);
  return p;
}

async function get(p: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${p}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}

/** Waits (bounded) until the child's output holds `text`. */
async function waitFor(cli: Cli, text: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cli.output().includes(text)) {
    if (Date.now() > deadline || cli.child.exitCode !== null) throw new Error(`no ${JSON.stringify(text)} in:\n${cli.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Exits within `ms`, or the test fails (the child is then killed by stop()). */
async function exitWithin(cli: Cli, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<number>((_, reject) => { timer = setTimeout(() => { reject(new Error(`no exit within ${ms} ms:\n${cli.output()}`)); }, ms); });
  try {
    return await Promise.race([cli.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const NATIVE_APP = (body: string): string => `
const app = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ${JSON.stringify(body)} + ' SCRIPT_NAME=' + environ.SCRIPT_NAME + ' PATH_INFO=' + environ.PATH_INFO;
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
export { app };
export default app;
`;

test('with no --mount: the example tree over HTTP and FastCGI on port 0; SIGTERM stops it with 0', async () => {
  const cli = startCli(['--http', '127.0.0.1:0', '--fastcgi', '127.0.0.1:0', '--log-format', 'pretty']);
  try {
    const bound = await cli.listening(['http', 'fastcgi']);
    const http = port(bound.get('http'));
    assert.ok(cli.output().includes(`http listening on 127.0.0.1:${http}`), cli.output());
    assert.deepEqual(await get(http, '/'), { status: 200, text: 'Hello World' });
    const par = await get(http, '/par/a/b?x=1');
    assert.equal(par.status, 200);
    assert.equal(par.text, 'Positional arguments\n\na\nb\n\nKeyword arguments\n\nx: 1\n');
    const fcgi = await fcgiRequest({ port: port(bound.get('fastcgi')) }, { params: fcgiParams('/') });
    assert.equal(fcgi.status, 200);
    assert.equal(fcgi.text, 'Hello World');
    cli.child.kill('SIGTERM');
    assert.equal(await exitWithin(cli, 10_000), 0);
    assert.ok(cli.output().includes('stopped'));
  } finally {
    await cli.stop();
  }
});

test('--mount imports a module relative to the cwd and mounts its export; SIGINT stops it with 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-mount-'));
  writeFileSync(join(dir, 'app.mjs'), NATIVE_APP('mounted'));
  const cli = startCli(['--http', '127.0.0.1:0', '--mount', '/app=./app.mjs#app', '--log-format', 'json'], { cwd: dir });
  try {
    const http = port((await cli.listening(['http'])).get('http'));
    assert.deepEqual(await get(http, '/app/x/y'), { status: 200, text: 'mounted SCRIPT_NAME=/app PATH_INFO=/x/y' });
    assert.equal((await get(http, '/')).status, 404, 'no example tree once something is mounted');
    cli.child.kill('SIGINT');
    assert.equal(await exitWithin(cli, 10_000), 0);
  } finally {
    await cli.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// The module imports Fastify by URL: the temporary directory has no node_modules of its own.
const FASTIFY_APP = (failReady: boolean): string => `
import Fastify from ${JSON.stringify(import.meta.resolve('fastify'))};
const app = Fastify();
${failReady ? "app.register(async () => { throw new Error('no database'); });" : ''}
app.get('/hello', async (req) => 'Hello from Fastify at ' + req.url);
export default app;
`;

test('--mount /f=./fastify-app.mjs mounts a Fastify instance exported as it is; one that cannot be ready fails the start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-fastify-'));
  writeFileSync(join(dir, 'fastify-app.mjs'), FASTIFY_APP(false));
  writeFileSync(join(dir, 'broken-fastify.mjs'), FASTIFY_APP(true));
  const cli = startCli(['--http', '127.0.0.1:0', '--mount', '/f=./fastify-app.mjs', '--log-format', 'json'], { cwd: dir });
  try {
    const http = port((await cli.listening(['http'])).get('http'));
    assert.deepEqual(await get(http, '/f/hello'), { status: 200, text: 'Hello from Fastify at /hello' });
    assert.equal((await get(http, '/f/none')).status, 404);
    cli.child.kill('SIGINT');
    assert.equal(await exitWithin(cli, 10_000), 0);
    const broken = runCli(['--http', '127.0.0.1:0', '--mount', '/=./broken-fastify.mjs'], { cwd: dir });
    assert.notEqual(broken.status, 0);
    const said = broken.stdout + broken.stderr;
    assert.ok(said.includes('broken-fastify.mjs') && said.includes('no database'), said);
  } finally {
    await cli.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP re-reads the config and re-imports the apps; a broken config is refused and the old one kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-hup-'));
  const config = join(dir, 'postern.yaml');
  writeFileSync(join(dir, 'v.mjs'), NATIVE_APP('v1'));
  writeFileSync(config, 'http: 127.0.0.1:0\nmount:\n  - { prefix: /, module: ./v.mjs, export: app }\n');
  const cli = startCli(['--config', config, '--log-format', 'json']);
  try {
    const http = port((await cli.listening(['http'])).get('http'));
    assert.equal((await get(http, '/x')).text, 'v1 SCRIPT_NAME= PATH_INFO=/x');
    writeFileSync(join(dir, 'v.mjs'), NATIVE_APP('v2'));
    cli.child.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    let text = '';
    while (!text.startsWith('v2') && Date.now() < deadline) {
      text = (await get(http, '/x')).text;
      if (!text.startsWith('v2')) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(text, 'v2 SCRIPT_NAME= PATH_INFO=/x', 'the same listener serves the reloaded module');

    // A listener change restarts the listeners (one process cannot bind an address twice).
    writeFileSync(config, `scgi: 127.0.0.1:0\n${readFileSync(config, 'utf8')}`);
    cli.child.kill('SIGHUP');
    await waitFor(cli, 'reloaded (listeners restarted)');
    const restarted = await cli.listening(['http', 'scgi']);
    const http2 = port(restarted.get('http'));
    assert.equal((await get(http2, '/x')).text, 'v2 SCRIPT_NAME= PATH_INFO=/x');

    writeFileSync(config, `${readFileSync(config, 'utf8')}workerz: 2\n`);
    cli.child.kill('SIGHUP');
    await waitFor(cli, 'POSTERN_ERR_CONFIG_UNKNOWN_KEY');
    assert.ok(cli.output().includes('reload failed'), cli.output());
    assert.equal((await get(http2, '/x')).text, 'v2 SCRIPT_NAME= PATH_INFO=/x', 'still serving');
    cli.child.kill('SIGTERM');
    assert.equal(await exitWithin(cli, 10_000), 0);
  } finally {
    await cli.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--workers 2: a master and two workers serve the same listener; SIGHUP reloads them, SIGTERM stops all', async () => {
  const cli = startCli(['--workers', '2', '--http', '127.0.0.1:0', '--log-format', 'json']);
  try {
    const http = port((await cli.listening(['http'])).get('http'));
    await waitFor(cli, '2 worker(s) ready', 20_000);
    assert.deepEqual(await get(http, '/'), { status: 200, text: 'Hello World' });
    cli.child.kill('SIGHUP');
    await waitFor(cli, 'reloaded: generation 2', 20_000);
    assert.deepEqual(await get(http, '/par/z'), { status: 200, text: 'Positional arguments\n\nz\n\nKeyword arguments\n\n' });
    cli.child.kill('SIGTERM');
    assert.equal(await exitWithin(cli, 15_000), 0);
  } finally {
    await cli.stop();
  }
});

test('--workers 1 with maxRequestsPerWorker: one worker under a master, recycled after N requests; plain --workers 1 is one process', async () => {
  const cli = startCli(['--workers', '1', '--max-requests-per-worker', '3', '--http', '127.0.0.1:0', '--log-format', 'json']);
  try {
    const http = port((await cli.listening(['http'])).get('http'));
    await waitFor(cli, '1 worker(s) ready', 20_000);
    // The master's ready line follows the workers' in the log; it may reach us a read later.
    await waitFor(cli, '(master pid ', 20_000);
    for (let i = 0; i < 5; i++) assert.equal((await get(http, '/')).status, 200);
    await waitFor(cli, 'recycling worker 1', 20_000);
    await waitFor(cli, 'worker 2 ready', 20_000);
    assert.equal((await get(http, '/')).status, 200);
    cli.child.kill('SIGTERM');
    assert.equal(await exitWithin(cli, 15_000), 0);
  } finally {
    await cli.stop();
  }
  const single = startCli(['--workers', '1', '--http', '127.0.0.1:0', '--log-format', 'json']);
  try {
    const http = port((await single.listening(['http'])).get('http'));
    assert.equal((await get(http, '/')).status, 200);
    await waitFor(single, 'ready (pid ');
    assert.ok(!single.output().includes('master'), single.output());
    single.child.kill('SIGTERM');
    assert.equal(await exitWithin(single, 15_000), 0);
  } finally {
    await single.stop();
  }
});

test('check-config accepts every example in config/', () => {
  for (const [name, extra] of [['postern.minimal.yaml', []], ['postern.example.json', []], ['postern.example.yaml', ['--skip-path-checks']]] as const) {
    const r = runCli(['check-config', ...extra, join('config', name)]);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`ok: ${join(root, 'config', name)} is valid`), r.stdout);
  }
});

test('check-config on a bad file: exit 2, naming the file, line and column and the error code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-bad-'));
  try {
    writeFileSync(join(dir, 'bad.yaml'), 'http: 127.0.0.1:8080\nmaxBodyByts: 1MiB\nworkers: none\n');
    const r = runCli(['check-config', 'bad.yaml'], { cwd: dir });
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes('bad.yaml:2:1: maxBodyByts:'), r.stderr);
    assert.ok(r.stderr.includes('POSTERN_ERR_CONFIG_UNKNOWN_KEY'));
    assert.ok(r.stderr.includes('bad.yaml:3:10: workers:'), r.stderr);
    assert.ok(r.stderr.includes('POSTERN_ERR_CONFIG_TYPE'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check-config looks up the accounts a start would: an unknown user or group is exit 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-acct-'));
  try {
    writeFileSync(join(dir, 'user.yaml'), 'http: 127.0.0.1:8080\nuser: postern-no-such-user-x\n');
    const u = runCli(['check-config', 'user.yaml'], { cwd: dir });
    assert.equal(u.status, 2, u.stdout);
    assert.ok(u.stderr.includes('POSTERN_ERR_UNKNOWN_USER'), u.stderr);
    writeFileSync(join(dir, 'group.yaml'), 'http: 127.0.0.1:8080\nsocketGroup: postern-no-such-group-x\n');
    const g = runCli(['check-config', 'group.yaml'], { cwd: dir });
    assert.equal(g.status, 2, g.stdout);
    assert.ok(g.stderr.includes('POSTERN_ERR_UNKNOWN_GROUP'), g.stderr);
    // Accounts that exist everywhere pass, and --skip-path-checks skips the lookups.
    writeFileSync(join(dir, 'ok.yaml'), 'http: 127.0.0.1:8080\nsocketOwner: "0"\nsocketGroup: "0"\n');
    assert.equal(runCli(['check-config', 'ok.yaml'], { cwd: dir }).status, 0);
    assert.equal(runCli(['check-config', '--skip-path-checks', 'user.yaml'], { cwd: dir }).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exit status: 2 for a bad address, 1 when a listener cannot bind', async () => {
  const bad = runCli(['--fastcgi', 'localhost']);
  assert.equal(bad.status, 2);
  assert.ok(bad.stderr.includes('--fastcgi'), bad.stderr);
  const taken = createServer();
  await new Promise<void>((resolve) => { taken.listen(0, '127.0.0.1', resolve); });
  try {
    const p = (taken.address() as AddressInfo).port;
    const r = runCli(['--http', `127.0.0.1:${p}`]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /POSTERN_ERR_[A-Z_]+/);
    assert.ok(r.stderr.includes(`127.0.0.1:${p}`));
  } finally {
    taken.close();
  }
});

test('bin/postern.js (the npm bin, built by npm ci) prints the version', () => {
  const r = runCli(['--version'], { bin: true });
  assert.equal(r.status, 0, r.stderr);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal(r.stdout.trim(), pkg.version);
});
