// Side-by-side throughput of postern and its peers behind one nginx (worker_processes 1), driven by
// wrk on loopback: every target in turn, interleaved, medians of several bounded runs, ratios to
// postern, and the issue's targets checked against ratios from this same run.
// Usage: npm run bench -- [--runs 3] [--secs 6] [--conns 32,256] [--only a,b]
//   [--scenario hello|post-1m|get-1m|frameworks] [--workers 1,2] [--node PATH] [--json out.json]
//   [--frameworks express,koa,fastify,hono,node] [--bridges direct,replay,lazy,eager] [--cpu-prof DIR]
//   (frameworks only; --cpu-prof: each backend writes a V8 CPU profile into DIR as it stops)
//   [--client wrk|browser] (browser: every request carries a browser's 12 headers and a cookie,
//   bench/hot-path-params.ts layout 2, instead of wrk's bare Host)
//   BENCH_BASELINE=DIR: every postern row also runs from another built checkout's bin/postern.js,
//   interleaved in the same run (a before/after on the same moment): `<bridge>@base` in the
//   frameworks scenario, `postern@base/fcgi` … (each worker count, no variants) in the others;
//   with --paired postern@base/fcgi the two builds are loaded at once and their CPU compared
//   [--paired REF] instead of the runs in turn, each target is loaded at the same moment as REF, each
//   with half of --conns (bench/paired.ts); with --scenario frameworks REF is `own` (each
//   framework's own server with its postern rows) or one row's name, e.g. `node/direct@base` with
//   BENCH_BASELINE for a before/after whose two builds meet the same moments
// --workers: one postern per count (`postern` is 1 worker, `postern-w2` 2 …), all in the same run.
// --node: the Node binary for postern and the Node peers (e.g. Node 24's, see BENCHMARKS.md).
// --variant NAME=FLAGS (repeatable): one more postern per worker count started with these extra flags
//   (`postern+NAME`), measured interleaved with the plain one, e.g. --variant 'alog=--access-log /tmp/a.log'.
// Targets: `hello` runs every peer; `post-1m` (1 MiB request bodies) and `get-1m` (1 MiB
// responses) run postern's listeners and node:http behind proxy_pass; `frameworks` runs the same
// hello in Express, Koa, Fastify and Hono on their own servers and in postern (bench/frameworks.ts).
// Every run goes through the targets in turn, odd runs in reverse order (A B C, C B A, …), so that
// a slow drift in the machine's load falls on every target alike.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { renderTemplate } from '../test/helpers/front/render.ts';
import { repoRoot } from '../test/helpers/front/root.ts';
import { baseBin, baseline, BRIDGES, FRAMEWORKS, frameworkBackends, frameworkPairs, frameworkSummary, frameworkTargets, parseList, type Bridge, type Framework } from './frameworks.ts';
import { clientHttpHeaders } from './hot-path-params.ts';
import { benchLock } from './lock.ts';
import { reapedChildrenCpuUs, treeCpuUs } from './cpu.ts';
import { runPaired, type Pair, type PairedResult } from './paired.ts';
import { median, parseWrk, wrkArgs } from './wrk.ts';
import { SERVER_NAME, fcgi, proxy, startStand, type Backend, type Stand, type Target } from './stand.ts';

const SCENARIOS = ['hello', 'post-1m', 'get-1m', 'frameworks'] as const;
const CLIENTS = ['wrk', 'browser'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Args {
  runs: number;
  secs: number;
  conns: number[];
  only: string[];
  scenario: Scenario;
  workers: number[];
  node: string;
  variants: Variant[];
  json: string | undefined;
  frameworks: Framework[];
  client: (typeof CLIENTS)[number];
  bridges: Bridge[];
  cpuProf: string | undefined;
  paired: string | undefined;
}

/** A postern started with extra flags, named `postern+NAME` (`postern-w2+NAME`…). */
interface Variant {
  readonly name: string;
  readonly flags: readonly string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { runs: 3, secs: 6, conns: [32], only: [], scenario: 'hello', workers: [1], node: process.execPath, variants: [], json: undefined, frameworks: [...FRAMEWORKS], bridges: [...BRIDGES], cpuProf: undefined, client: 'wrk', paired: undefined };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1] ?? '';
    if (k === '--runs') a.runs = Number(v);
    else if (k === '--secs') a.secs = Number(v);
    else if (k === '--conns') a.conns = v.split(',').map(Number);
    else if (k === '--only') a.only = v.split(',').filter(Boolean);
    else if (k === '--scenario') {
      if (!(SCENARIOS as readonly string[]).includes(v)) throw new Error(`--scenario is one of ${SCENARIOS.join(', ')}`);
      a.scenario = v as Scenario;
    }
    else if (k === '--frameworks') a.frameworks = parseList(v, FRAMEWORKS, 'frameworks');
    else if (k === '--bridges') a.bridges = parseList(v, BRIDGES, 'bridges');
    else if (k === '--cpu-prof') a.cpuProf = v;
    else if (k === '--client') a.client = parseList(v, CLIENTS, 'client')[0] ?? 'wrk';
    else if (k === '--workers') a.workers = v.split(',').map(Number);
    else if (k === '--node') a.node = v;
    else if (k === '--variant') {
      const eq = v.indexOf('=');
      if (eq < 1) throw new Error(`--variant NAME=FLAGS, got ${v}`);
      a.variants.push({ name: v.slice(0, eq), flags: v.slice(eq + 1).split(/\s+/).filter(Boolean) });
    }
    else if (k === '--json') a.json = v;
    else if (k === '--paired') a.paired = v;
    else throw new Error(`unknown argument ${String(k)}`);
    i++;
  }
  if (a.secs > 30 || a.runs > 10) throw new Error('keep load loops bounded: --secs ≤ 30, --runs ≤ 10');
  return a;
}

const root = repoRoot();
const bench = join(root, 'bench');

const tsx = ['--import', 'tsx'];
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

const pn = (workers: number): string => (workers === 1 ? 'postern' : `postern-w${workers}`);

/**
 * Every postern to start: each worker count, plain and with each variant's flags, and plain from
 * the BENCH_BASELINE checkout (`postern@base`) when one is given.
 */
function posternsFor(workerCounts: readonly number[], variants: readonly Variant[]): Array<{ name: string; workers: number; flags: readonly string[]; bin: string }> {
  const bin = join(root, 'bin/postern.js');
  return workerCounts.flatMap((workers) => [
    ...[{ name: '', flags: [] as readonly string[] }, ...variants]
      .map((v) => ({ name: v.name === '' ? pn(workers) : `${pn(workers)}+${v.name}`, workers, flags: v.flags, bin })),
    ...(baseline === undefined ? [] : [{ name: `${pn(workers)}@base`, workers, flags: [] as readonly string[], bin: baseBin() }]),
  ]);
}

function backends(node: string, workerCounts: readonly number[], variants: readonly Variant[]): Backend[] {
  const posterns: Backend[] = posternsFor(workerCounts, variants).map(({ name, workers, flags, bin }) => ({
    name, ports: {}, probe: ['fastcgi', 'http'], available: () => existsSync(join(root, 'dist/src/cli.js')),
    start: function () {
      const l = this.ports;
      // The mounts are .ts files, hence tsx; postern itself runs from dist/ (npm run build). A
      // baseline postern serves this checkout's mounts too, so both builds run the same apps.
      return spawn(node, [...tsx, bin,
        '--fastcgi', `127.0.0.1:${l['fastcgi']}`, '--scgi', `127.0.0.1:${l['scgi']}`, '--uwsgi', `127.0.0.1:${l['uwsgi']}`, '--http', `127.0.0.1:${l['http']}`,
        '--workers', String(workers), '--log-level', 'warn', ...flags,
        '--mount', '/=examples/cherrypy-style.ts#one', '--mount', '/par=examples/cherrypy-style.ts#two', '--mount', '/bench=bench/apps.ts#bench'], { stdio: 'ignore', cwd: root, detached: true });
    },
  }));
  return [
    { name: 'canned', ports: {}, probe: ['fastcgi'], available: () => true, start: function () { return spawn(node, [...tsx, join(bench, 'peers/canned-fastcgi.ts'), String(this.ports['fastcgi'])], { stdio: 'ignore' }); } },
    { name: 'node-http', ports: {}, probe: ['http'], available: () => true, start: function () { return spawn(node, [...tsx, join(bench, 'peers/node-http.ts'), String(this.ports['http'])], { stdio: 'ignore' }); } },
    { name: 'node-fastcgi', ports: {}, probe: ['fastcgi'], available: () => existsSync(join(root, 'node_modules/node-fastcgi')), start: function () { return spawn(node, [join(bench, 'peers/node-fastcgi.mjs'), String(this.ports['fastcgi'])], { stdio: 'ignore' }); } },
    {
      name: 'uwsgi', ports: {}, probe: ['uwsgi'], available: () => has('uwsgi') && existsSync('/usr/lib/uwsgi/plugins/python3_plugin.so'),
      start: function () {
        return spawn('uwsgi', ['--plugin', 'python3', '--master', '--processes', '1', '--socket', `127.0.0.1:${this.ports['uwsgi']}`,
          '--wsgi-file', join(bench, 'peers/hello.py'), '--disable-logging', '--listen', '1024'], { stdio: 'ignore', detached: true });
      },
    },
    {
      name: 'php-fpm', ports: {}, probe: ['fastcgi'], available: () => has('php-fpm8.2'),
      start: function (dir: string) {
        const conf = join(dir, 'fpm.conf');
        writeFileSync(conf, `[global]\npid = ${dir}/fpm.pid\nerror_log = ${dir}/fpm.log\ndaemonize = no\n[www]\nuser = www-data\ngroup = www-data\nlisten = 127.0.0.1:${this.ports['fastcgi']}\npm = static\npm.max_children = 1\n`);
        return spawn('php-fpm8.2', ['-R', '-F', '-y', conf], { stdio: 'ignore', detached: true });
      },
    },
    ...posterns,
  ];
}

const ALL: readonly Scenario[] = ['hello', 'post-1m', 'get-1m'];

const scgi = (listen: string, p: Record<string, number>, n: string): string => renderTemplate('nginx/scgi.conf', { LISTEN: listen, SERVER_NAME, BACKEND: `127.0.0.1:${p['scgi']}`, NAME: n });
const uwsgi = (listen: string, p: Record<string, number>, n: string): string => renderTemplate('nginx/uwsgi.conf', { LISTEN: listen, SERVER_NAME, BACKEND: `127.0.0.1:${p['uwsgi']}`, NAME: n });

function targetsFor(workerCounts: readonly number[], variants: readonly Variant[]): Target[] {
  const out: Target[] = [
    { name: 'nginx-ceiling', backend: '', scenarios: ['hello'], block: (listen) => `server { listen ${listen}; location / { default_type text/plain; return 200 "Hello World"; } }` },
    { name: 'canned/fcgi-keep', backend: 'canned', scenarios: ['hello'], block: fcgi('fastcgi-keepalive') },
    { name: 'canned/fcgi', backend: 'canned', scenarios: ['hello'], block: fcgi('fastcgi') },
    { name: 'node-http/proxy-keep', backend: 'node-http', scenarios: ALL, block: proxy },
    { name: 'node-fastcgi/fcgi-keep', backend: 'node-fastcgi', scenarios: ['hello'], block: fcgi('fastcgi-keepalive') },
    { name: 'uwsgi+python/uwsgi', backend: 'uwsgi', scenarios: ['hello'], block: uwsgi },
    { name: 'php-fpm/fcgi', backend: 'php-fpm', scenarios: ['hello'], block: (listen, p, n) => renderTemplate('nginx/fastcgi.conf', { LISTEN: listen, SERVER_NAME, BACKEND: `127.0.0.1:${p['fastcgi']}`, NAME: n }).replace('include fastcgi_params;', `include fastcgi_params; fastcgi_param SCRIPT_FILENAME ${bench}/peers/hello.php;`) },
  ];
  for (const { name: b } of posternsFor(workerCounts, variants)) {
    out.push(
      { name: `${b}/fcgi-keep`, backend: b, scenarios: ALL, block: fcgi('fastcgi-keepalive') },
      { name: `${b}/fcgi`, backend: b, scenarios: ALL, block: fcgi('fastcgi') },
      { name: `${b}/scgi`, backend: b, scenarios: ALL, block: scgi },
      { name: `${b}/uwsgi`, backend: b, scenarios: ALL, block: uwsgi },
      { name: `${b}/http-proxy-keep`, backend: b, scenarios: ALL, block: proxy },
    );
  }
  return out;
}

/** The issue's targets: `a` reaches at least `min` × `b` (req/s), or `a`'s p99 is at most `b`'s. */
const GOALS: ReadonlyArray<{ a: string; b: string; min: number; what: 'rps' | 'p99'; conns?: number }> = [
  { a: 'postern/fcgi-keep', b: 'canned/fcgi-keep', min: 0.85, what: 'rps' },
  { a: 'postern/fcgi-keep', b: 'node-http/proxy-keep', min: 1.15, what: 'rps' },
  { a: 'postern/fcgi-keep', b: 'node-fastcgi/fcgi-keep', min: 10, what: 'rps' },
  { a: 'postern/fcgi-keep', b: 'uwsgi+python/uwsgi', min: 2.5, what: 'rps' },
  { a: 'postern/fcgi', b: 'canned/fcgi', min: 0.9, what: 'rps' },
  { a: 'postern/scgi', b: 'canned/fcgi', min: 0.9, what: 'rps' },
  { a: 'postern/uwsgi', b: 'canned/fcgi', min: 0.9, what: 'rps' },
  { a: 'postern/fcgi-keep', b: 'node-http/proxy-keep', min: 1, what: 'p99', conns: 32 },
];

interface Sample { rps: number; p50: number; p99: number; errors: number; cpuUs: number; nginxUs: number; wrkUs: number }
interface Row { target: string; conns: number; rps: number; p50: number; p99: number; errors: number; cpuUs: number; nginxUs: number; wrkUs: number; runs: number[] }

function wrk(url: string, secs: number, conns: number, script: string | undefined, backendPid?: number, nginxPid?: number): Sample {
  const cpu0 = treeCpuUs(backendPid);
  const ng0 = treeCpuUs(nginxPid);
  const wrk0 = reapedChildrenCpuUs();
  const out = spawnSync('wrk', wrkArgs(url, secs, conns, script), { encoding: 'utf8', timeout: (secs + 30) * 1000 }).stdout;
  const r = parseWrk(out);
  const cpuUs = (treeCpuUs(backendPid) - cpu0) / r.requests;
  const nginxUs = (treeCpuUs(nginxPid) - ng0) / r.requests;
  const wrkUs = (reapedChildrenCpuUs() - wrk0) / r.requests;
  return { rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors, cpuUs, nginxUs, wrkUs };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!has('wrk') || !has('nginx')) throw new Error('needs wrk and nginx (apt-get install wrk nginx)');
  const fw = args.scenario === 'frameworks';
  const bes = new Map((fw ? frameworkBackends(args.node, args.frameworks, args.bridges, args.cpuProf) : backends(args.node, args.workers, args.variants)).map((b) => [b.name, b]));
  const targets = (fw ? frameworkTargets(args.frameworks, args.bridges) : targetsFor(args.workers, args.variants))
    .filter((t) => (args.only.length === 0 || args.only.includes(t.name)) && t.scenarios.includes(args.scenario) && (t.backend === '' || bes.get(t.backend)?.available() === true));
  if (targets.length === 0) throw new Error('no target to run (is postern built? npm run build)');
  let stand: Stand | undefined;
  try {
    stand = await startStand(bes, targets);
    const { listens, pids, nginx, dir } = stand;
    const path = args.scenario === 'get-1m' ? '/bench/bytes/1048576' : args.scenario === 'post-1m' ? '/bench/sink' : fw ? '/' : '/bench/hello';
    let script: string | undefined;
    if (args.scenario === 'post-1m') {
      script = join(dir, 'post.lua');
      writeFileSync(script, `wrk.method = "POST"\nwrk.body = string.rep("x", 1048576)\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
    }
    if (args.client === 'browser') {
      const lines = clientHttpHeaders(2).map(([name, value]) => `wrk.headers["${name}"] = [==[${value}]==]\n`).join('');
      const prior = script === undefined ? '' : readFileSync(script, 'utf8');
      script = join(dir, 'client.lua');
      writeFileSync(script, prior + lines);
    }
    const results: Row[] = [];
    const version = spawnSync(args.node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    console.log(`postern bench: node ${version}, nginx worker_processes 1, wrk -t1 (${args.client === 'browser' ? "a browser's headers" : 'Host only'}), ${cpus().length} cores, ${cpus()[0]?.model ?? ''}`);
    if (args.paired !== undefined) {
      const pairs = pairsFor(args.paired, fw ? frameworkPairs(args.frameworks, args.bridges) : undefined, targets.map((t) => t.name));
      const backendOf = new Map(targets.map((t) => [t.name, t.backend]));
      const json: Array<{ conns: number; runs: PairedResult['runs'] }> = [];
      for (const conns of args.conns) {
        const load0 = loadavg();
        const { lines, runs } = await runPaired(pairs, {
          runs: args.runs, secs: args.secs, conns: Math.max(1, conns >> 1), script, nginxPid: nginx.pid,
          url: (t) => `http://127.0.0.1:${listens.get(t) ?? 0}${path}`,
          pid: (t) => pids.get(backendOf.get(t) ?? ''),
        });
        const load1 = loadavg();
        console.log(`\nscenario ${args.scenario}; load average ${load0.map((x) => x.toFixed(2)).join(' ')} → ${load1.map((x) => x.toFixed(2)).join(' ')}`);
        for (const line of lines) console.log(line);
        json.push({ conns, runs });
      }
      if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ args, paired: json }, null, 2) + '\n');
      return;
    }
    for (const conns of args.conns) {
      const load0 = loadavg();
      for (const t of targets) wrk(`http://127.0.0.1:${listens.get(t.name) ?? 0}${path}`, 2, conns, script);
      const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
      for (let r = 0; r < args.runs; r++) {
        for (const t of r % 2 === 0 ? targets : [...targets].reverse()) samples.get(t.name)?.push(wrk(`http://127.0.0.1:${listens.get(t.name) ?? 0}${path}`, args.secs, conns, script, pids.get(t.backend), nginx.pid));
      }
      const load1 = loadavg();
      const refName = targets.find((t) => t.name.startsWith('postern') && t.name.endsWith('/fcgi-keep'))?.name ?? targets[0]?.name ?? '';
      const refRps = median((samples.get(refName) ?? []).map((s) => s.rps));
      console.log(`\nscenario ${args.scenario}, ${conns} connections, ${args.runs} × ${args.secs}s; load average ${load0.map((x) => x.toFixed(2)).join(' ')} → ${load1.map((x) => x.toFixed(2)).join(' ')}`);
      console.log(`${'target'.padEnd(28)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${`${refName.split('/')[0] ?? ''}÷it`.padStart(11)} errors ${'µs CPU/req'.padStart(10)} ${'nginx µs'.padStart(8)} ${'wrk µs'.padStart(6)} ${'cap÷it'.padStart(6)}  runs (req/s)`);
      const rows = new Map<string, Row>();
      // cap÷it: the machine's capacity ratio, from CPU per request of wrk + nginx + backend (what
      // req/s would be on an otherwise idle box, where the three share the cores); steadier than
      // req/s when other work runs. Above 1: postern needs less CPU per request than the target.
      const refS = samples.get(refName) ?? [];
      const refTotal = median(refS.map((x) => x.cpuUs)) + median(refS.map((x) => x.nginxUs)) + median(refS.map((x) => x.wrkUs));
      const total = (r: Row): number => r.cpuUs + r.nginxUs + r.wrkUs;
      for (const t of targets) {
        const s = samples.get(t.name) ?? [];
        const row: Row = {
          target: t.name, conns, rps: median(s.map((x) => x.rps)), p50: median(s.map((x) => x.p50)), p99: median(s.map((x) => x.p99)),
          errors: s.reduce((n, x) => n + x.errors, 0), cpuUs: median(s.map((x) => x.cpuUs)), nginxUs: median(s.map((x) => x.nginxUs)), wrkUs: median(s.map((x) => x.wrkUs)), runs: s.map((x) => Math.round(x.rps)),
        };
        rows.set(t.name, row);
        results.push(row);
        console.log(`${t.name.padEnd(28)} ${row.rps.toFixed(0).padStart(9)} ${row.p50.toFixed(2).padStart(8)} ${row.p99.toFixed(2).padStart(8)} ${(refRps / row.rps).toFixed(2).padStart(11)} ${String(row.errors).padStart(6)} ${(t.backend === '' ? '' : row.cpuUs.toFixed(1)).padStart(10)} ${row.nginxUs.toFixed(1).padStart(8)} ${row.wrkUs.toFixed(1).padStart(6)} ${(total(row) / refTotal).toFixed(2).padStart(6)}  ${row.runs.join(' ')}`);
      }
      if (fw) {
        for (const line of frameworkSummary(samples, args.frameworks, args.bridges)) console.log(line);
        console.log('target (issue 12): every ratio ≥ 1.0, aim 1.1, for Express, Koa, Fastify and Hono');
        if (args.frameworks.includes('node')) console.log('node: a plain (req, res) hello with no framework, the bridge\'s own cost (not one of the issue\'s four)');
      }
      if (args.scenario === 'hello') {
        const checks = GOALS.filter((g) => (g.conns === undefined || g.conns === conns) && rows.has(g.a) && rows.has(g.b));
        if (checks.length > 0) console.log('targets (ratios from this run):');
        for (const g of checks) {
          const a = rows.get(g.a)!;
          const b = rows.get(g.b)!;
          if (g.what === 'rps') {
            const ratio = a.rps / b.rps;
            const cap = total(b) / total(a);
            console.log(`  ${ratio >= g.min ? 'met ' : 'MISS'} ${g.a} ÷ ${g.b} = ${ratio.toFixed(2)} (≥ ${g.min}); by CPU per request ${cap.toFixed(2)}, backends alone ${(b.cpuUs / a.cpuUs).toFixed(2)}`);
          } else {
            console.log(`  ${a.p99 <= b.p99 ? 'met ' : 'MISS'} p99 ${g.a} ${a.p99.toFixed(2)} ms vs ${g.b} ${b.p99.toFixed(2)} ms (no worse)`);
          }
        }
      }
    }
    if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ args, results }, null, 2) + '\n');
  } finally {
    await stand?.stop();
  }
}

/**
 * --paired REF: every other selected target with REF; in the frameworks scenario REF may also be
 * `own`, which pairs each framework's own server with its postern rows.
 */
function pairsFor(ref: string, frameworkPairs: readonly Pair[] | undefined, names: readonly string[]): Pair[] {
  if (frameworkPairs !== undefined && ref === 'own') return frameworkPairs.filter((p) => names.includes(p.ref) && names.includes(p.target));
  const own = frameworkPairs === undefined ? '' : '`own` or ';
  if (!names.includes(ref)) throw new Error(`--paired: ${ref} is not ${own}one of this run's targets (${names.join(', ')})`);
  return names.filter((n) => n !== ref).map((target) => ({ ref, target }));
}

// One benchmark at a time: overlapping runs measure each other (bench/lock.ts).
const release = await benchLock();
try {
  await main();
} finally {
  release();
}
