// Side-by-side throughput of postern and its peers behind one nginx (worker_processes 1), driven by
// wrk on loopback: every target in turn, interleaved, medians of several bounded runs, ratios to
// postern. Usage: npm run bench -- [--runs 3] [--secs 6] [--conns 32,256] [--only a,b]
//   [--scenario hello|post-1m|get-1m] [--workers N] [--json out.json]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, portOpen } from '../test/helpers/front/daemon.ts';
import { freePort } from '../test/helpers/front/ports.ts';
import { renderTemplate } from '../test/helpers/front/render.ts';
import { repoRoot } from '../test/helpers/front/root.ts';

type Scenario = 'hello' | 'post-1m' | 'get-1m';

interface Args {
  runs: number;
  secs: number;
  conns: number[];
  only: string[];
  scenario: Scenario;
  workers: number;
  json: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { runs: 3, secs: 6, conns: [32], only: [], scenario: 'hello', workers: 1, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1] ?? '';
    if (k === '--runs') a.runs = Number(v);
    else if (k === '--secs') a.secs = Number(v);
    else if (k === '--conns') a.conns = v.split(',').map(Number);
    else if (k === '--only') a.only = v.split(',').filter(Boolean);
    else if (k === '--scenario') a.scenario = v as Scenario;
    else if (k === '--workers') a.workers = Number(v);
    else if (k === '--json') a.json = v;
    else throw new Error(`unknown argument ${String(k)}`);
    i++;
  }
  if (a.secs > 30 || a.runs > 10) throw new Error('keep load loops bounded: --secs ≤ 30, --runs ≤ 10');
  return a;
}

const root = repoRoot();
const node = process.execPath;
const bench = join(root, 'bench');

interface Backend {
  readonly name: string;
  /** Ports by protocol, as the backend listens. */
  readonly ports: Record<string, number>;
  start(dir: string): ChildProcess;
  readonly available: () => boolean;
}

interface Target {
  readonly name: string;
  readonly backend: string;
  /** nginx server block, given nginx's listen address and the backend's ports; undefined = ceiling. */
  readonly block: (listen: string, ports: Record<string, number>, name: string) => string;
  readonly scenarios: readonly Scenario[];
}

const tsx = ['--import', 'tsx'];
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function backends(workers: number): Backend[] {
  const p = async (): Promise<number> => await freePort();
  void p;
  return [
    { name: 'canned', ports: {}, available: () => true, start: function () { return spawn(node, [...tsx, join(bench, 'peers/canned-fastcgi.ts'), String(this.ports['fastcgi'])], { stdio: 'ignore' }); } },
    { name: 'node-http', ports: {}, available: () => true, start: function () { return spawn(node, [...tsx, join(bench, 'peers/node-http.ts'), String(this.ports['http'])], { stdio: 'ignore' }); } },
    { name: 'node-fastcgi', ports: {}, available: () => existsSync(join(root, 'node_modules/node-fastcgi')), start: function () { return spawn(node, [join(bench, 'peers/node-fastcgi.mjs'), String(this.ports['fastcgi'])], { stdio: 'ignore' }); } },
    {
      name: 'uwsgi', ports: {}, available: () => has('uwsgi') && existsSync('/usr/lib/uwsgi/plugins/python3_plugin.so'),
      start: function () {
        return spawn('uwsgi', ['--plugin', 'python3', '--master', '--processes', '1', '--socket', `127.0.0.1:${this.ports['uwsgi']}`,
          '--wsgi-file', join(bench, 'peers/hello.py'), '--disable-logging', '--listen', '1024'], { stdio: 'ignore', detached: true });
      },
    },
    {
      name: 'php-fpm', ports: {}, available: () => has('php-fpm8.2'),
      start: function (dir: string) {
        const conf = join(dir, 'fpm.conf');
        writeFileSync(conf, `[global]\npid = ${dir}/fpm.pid\nerror_log = ${dir}/fpm.log\ndaemonize = no\n[www]\nuser = www-data\ngroup = www-data\nlisten = 127.0.0.1:${this.ports['fastcgi']}\npm = static\npm.max_children = 1\n`);
        return spawn('php-fpm8.2', ['-R', '-F', '-y', conf], { stdio: 'ignore', detached: true });
      },
    },
    {
      name: 'postern', ports: {}, available: () => existsSync(join(root, 'dist/src/cli.js')),
      start: function () {
        const l = this.ports;
        return spawn(node, [...tsx, join(root, 'bin/postern.js'),
          '--fastcgi', `127.0.0.1:${l['fastcgi']}`, '--scgi', `127.0.0.1:${l['scgi']}`, '--uwsgi', `127.0.0.1:${l['uwsgi']}`, '--http', `127.0.0.1:${l['http']}`,
          '--workers', String(workers),
          '--mount', '/=examples/cherrypy-style.ts#one', '--mount', '/par=examples/cherrypy-style.ts#two', '--mount', '/bench=bench/apps.ts#bench'], { stdio: 'ignore', cwd: root });
      },
    },
  ];
}

const fcgi = (mode: string) => (listen: string, ports: Record<string, number>, name: string): string =>
  renderTemplate(`nginx/${mode}.conf`, { LISTEN: listen, BACKEND: `127.0.0.1:${ports['fastcgi']}`, NAME: name });
const ALL: readonly Scenario[] = ['hello', 'post-1m', 'get-1m'];

const TARGETS: Target[] = [
  { name: 'nginx-ceiling', backend: '', scenarios: ['hello'], block: (listen) => `server { listen ${listen}; location / { default_type text/plain; return 200 "Hello World"; } }` },
  { name: 'canned/fcgi-keep', backend: 'canned', scenarios: ['hello'], block: fcgi('fastcgi-keepalive') },
  { name: 'canned/fcgi', backend: 'canned', scenarios: ['hello'], block: fcgi('fastcgi') },
  { name: 'node-http/proxy-keep', backend: 'node-http', scenarios: ['hello'], block: (listen, p, n) => renderTemplate('nginx/http-proxy.conf', { LISTEN: listen, BACKEND: `127.0.0.1:${p['http']}`, NAME: n }) },
  { name: 'node-fastcgi/fcgi-keep', backend: 'node-fastcgi', scenarios: ['hello'], block: fcgi('fastcgi-keepalive') },
  { name: 'uwsgi+python/uwsgi', backend: 'uwsgi', scenarios: ['hello'], block: (listen, p) => renderTemplate('nginx/uwsgi.conf', { LISTEN: listen, BACKEND: `127.0.0.1:${p['uwsgi']}`, NAME: 'u' }) },
  { name: 'php-fpm/fcgi', backend: 'php-fpm', scenarios: ['hello'], block: (listen, p) => renderTemplate('nginx/fastcgi.conf', { LISTEN: listen, BACKEND: `127.0.0.1:${p['fastcgi']}`, NAME: 'f' }).replace('include fastcgi_params;', `include fastcgi_params; fastcgi_param SCRIPT_FILENAME ${bench}/peers/hello.php;`) },
  { name: 'postern/fcgi-keep', backend: 'postern', scenarios: ALL, block: fcgi('fastcgi-keepalive') },
  { name: 'postern/fcgi', backend: 'postern', scenarios: ALL, block: fcgi('fastcgi') },
  { name: 'postern/scgi', backend: 'postern', scenarios: ALL, block: (listen, p) => renderTemplate('nginx/scgi.conf', { LISTEN: listen, BACKEND: `127.0.0.1:${p['scgi']}`, NAME: 's' }) },
  { name: 'postern/uwsgi', backend: 'postern', scenarios: ALL, block: (listen, p) => renderTemplate('nginx/uwsgi.conf', { LISTEN: listen, BACKEND: `127.0.0.1:${p['uwsgi']}`, NAME: 'u' }) },
  { name: 'postern/http-proxy-keep', backend: 'postern', scenarios: ALL, block: (listen, p, n) => renderTemplate('nginx/http-proxy.conf', { LISTEN: listen, BACKEND: `127.0.0.1:${p['http']}`, NAME: n }) },
];

interface Sample { rps: number; p50: number; p99: number; errors: number }

function wrk(url: string, secs: number, conns: number, script: string | undefined): Sample {
  const args = ['-t1', `-c${conns}`, `-d${secs}s`, '--latency', ...(script === undefined ? [] : ['-s', script]), url];
  const out = spawnSync('wrk', args, { encoding: 'utf8', timeout: (secs + 30) * 1000 }).stdout;
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 'NaN');
  const ms = (pct: string): number => {
    const m = new RegExp(`${pct}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m === null ? NaN : Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's']);
  };
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock === null ? 0 : sock.slice(1).reduce((s, x) => s + Number(x), 0);
  return { rps: num(/Requests\/sec:\s+([\d.]+)/), p50: ms('50'), p99: ms('99'), errors: (Number.isNaN(non2xx) ? 0 : non2xx) + sockErrors };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!has('wrk') || !has('nginx')) throw new Error('needs wrk and nginx (apt-get install wrk nginx)');
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-'));
  chmodSync(dir, 0o755);
  const bes = new Map(backends(args.workers).map((b) => [b.name, b]));
  const targets = TARGETS.filter((t) => (args.only.length === 0 || args.only.includes(t.name)) && t.scenarios.includes(args.scenario)
    && (t.backend === '' || bes.get(t.backend)?.available() === true));
  const children: ChildProcess[] = [];
  let nginx: { stop(): Promise<void> } | undefined;
  try {
    for (const name of new Set(targets.map((t) => t.backend).filter(Boolean))) {
      const b = bes.get(name);
      if (b === undefined) continue;
      for (const proto of ['fastcgi', 'scgi', 'uwsgi', 'http']) b.ports[proto] = await freePort();
      const child = b.start(dir);
      children.push(child);
      const first = Object.values(b.ports).find((port) => port > 0) ?? 0;
      const probe = name === 'uwsgi' ? b.ports['uwsgi'] ?? first : name === 'node-http' ? b.ports['http'] ?? first : b.ports['fastcgi'] ?? first;
      const deadline = Date.now() + 20_000;
      while (!(await portOpen(probe))) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not start`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const listens = new Map<string, number>();
    const blocks: string[] = [];
    for (const [i, t] of targets.entries()) {
      const port = await freePort();
      listens.set(t.name, port);
      blocks.push(t.block(`127.0.0.1:${port}`, bes.get(t.backend)?.ports ?? {}, `t${i}`));
    }
    for (const f of ['fastcgi_params', 'scgi_params', 'uwsgi_params']) copyFileSync(join('/etc/nginx', f), join(dir, f));
    for (const sub of ['body', 'fastcgi', 'scgi', 'uwsgi', 'proxy']) mkdirSync(join(dir, sub));
    const asRoot = process.getuid?.() === 0;
    writeFileSync(join(dir, 'nginx.conf'), `${asRoot ? 'user www-data;\n' : ''}worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log error;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/body; fastcgi_temp_path ${dir}/fastcgi; scgi_temp_path ${dir}/scgi; uwsgi_temp_path ${dir}/uwsgi; proxy_temp_path ${dir}/proxy;
${blocks.join('\n')}
}\n`);
    const firstPort = listens.values().next().value ?? 0;
    nginx = await startDaemon({ name: 'nginx', command: 'nginx', args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], port: firstPort, errorLog: join(dir, 'error.log') });

    const path = args.scenario === 'get-1m' ? '/bench/bytes/1048576' : args.scenario === 'post-1m' ? '/bench/sink' : '/';
    let script: string | undefined;
    if (args.scenario === 'post-1m') {
      script = join(dir, 'post.lua');
      writeFileSync(script, `wrk.method = "POST"\nwrk.body = string.rep("x", 1048576)\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
    }
    const results: Array<{ target: string; conns: number; rps: number; p50: number; p99: number; errors: number }> = [];
    for (const conns of args.conns) {
      for (const t of targets) wrk(`http://127.0.0.1:${listens.get(t.name) ?? 0}${t.name === 'nginx-ceiling' ? '/' : path}`, 2, conns, script);
      const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
      for (let r = 0; r < args.runs; r++) {
        for (const t of targets) samples.get(t.name)?.push(wrk(`http://127.0.0.1:${listens.get(t.name) ?? 0}${t.name === 'nginx-ceiling' ? '/' : path}`, args.secs, conns, script));
      }
      const ref = samples.get('postern/fcgi-keep') ?? samples.values().next().value ?? [];
      const refRps = median(ref.map((s) => s.rps));
      console.log(`\nscenario ${args.scenario}, ${conns} connections, ${args.runs} × ${args.secs}s, postern workers ${args.workers}`);
      console.log(`${'target'.padEnd(26)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'postern÷it'.padStart(11)} errors`);
      for (const t of targets) {
        const s = samples.get(t.name) ?? [];
        const row = { target: t.name, conns, rps: median(s.map((x) => x.rps)), p50: median(s.map((x) => x.p50)), p99: median(s.map((x) => x.p99)), errors: s.reduce((n, x) => n + x.errors, 0) };
        results.push(row);
        console.log(`${t.name.padEnd(26)} ${row.rps.toFixed(0).padStart(9)} ${row.p50.toFixed(2).padStart(8)} ${row.p99.toFixed(2).padStart(8)} ${(refRps / row.rps).toFixed(2).padStart(11)} ${row.errors}`);
      }
    }
    if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ args, results }, null, 2) + '\n');
  } finally {
    await nginx?.stop();
    for (const c of children) {
      // uWSGI's master exits on SIGINT (SIGTERM means "reload" to it); kill its whole process group.
      const group = c.spawnargs[0] === 'uwsgi' || c.spawnargs[0] === 'php-fpm8.2';
      try { if (c.pid !== undefined) process.kill(group ? -c.pid : c.pid, c.spawnargs[0] === 'uwsgi' ? 'SIGINT' : 'SIGTERM'); } catch { /* already gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
