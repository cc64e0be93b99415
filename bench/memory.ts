// postern's memory under load, from the operator's side: the resident set (VmRSS) of one postern
// process (1 worker, FastCGI) sampled every 50 ms while
//   1. a 1 GiB request body streams in through nginx (fastcgi_request_buffering off),
//   2. a 1 GiB response streams out through nginx (fastcgi_buffering off),
//   3. 10,000 keep-alive FastCGI connections, each having served one request, sit idle (opened
//      straight to postern on loopback: nginx keeps only `keepalive N` idle connections per worker).
// Each phase runs against a fresh postern; the figure is peak RSS minus RSS after warm-up. The
// issue's target is growth < 64 MiB in each. Bounded: every phase stops within its time limit.
// Run: node --import tsx bench/memory.ts [--gib 1] [--idle 10000] [--node PATH] [--json out.json]
//        [--app native|express] [--only upload,download,idle]
// --app express: the same routes from an Express app (bench/peers/frameworks/express-bytes.ts)
// through the direct Node bridge, instead of the native bench app (bench/apps.ts).
// Needs `npm run build`, nginx. Phase 3 needs ~10,100 file descriptors in each of postern and this
// process: when the soft `ulimit -n` is lower, this script re-runs itself and starts postern
// through `sh -c 'ulimit -n N; exec …'` (raising the soft limit up to the hard one).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBeginRequest, encodeParams, encodeStdinEnd } from '../protocols/fastcgi/index.ts';
import { portOpen, startDaemon } from '../test/helpers/front/daemon.ts';
import { freePort } from '../test/helpers/front/ports.ts';
import { renderTemplate } from '../test/helpers/front/render.ts';
import { repoRoot } from '../test/helpers/front/root.ts';
import { nginxGetParams } from './hot-path-params.ts';
import { benchLock } from './lock.ts';

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i === -1 ? fallback : (argv[i + 1] ?? fallback);
};
const GIB = Number(opt('--gib', '1'));
const IDLE = Number(opt('--idle', '10000'));
const NODE = opt('--node', process.execPath);
const JSON_OUT = argv.includes('--json') ? opt('--json', '') : undefined;
const ONLY = opt('--only', 'upload,download,idle').split(',');
const APP = opt('--app', 'native');
if (APP !== 'native' && APP !== 'express') throw new Error('--app is native or express');
const MOUNT = APP === 'express' ? '/bench=bench/peers/frameworks/express-bytes.ts#app' : '/bench=bench/apps.ts#bench';
const FDS = IDLE + 200;
const PHASE_LIMIT_MS = 240_000;
const root = repoRoot();

function softFdLimit(): number {
  return Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim()) || 0;
}

if (ONLY.includes('idle') && softFdLimit() < FDS && process.env['POSTERN_BENCH_RAISED'] === undefined) {
  // Node cannot raise its own RLIMIT_NOFILE: run again under a shell that does.
  const r = spawnSync('sh', ['-c', `ulimit -n ${FDS} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, POSTERN_BENCH_RAISED: '1' },
  });
  process.exit(r.status ?? 1);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

/** Samples a process's RSS every 50 ms until stopped; returns the peak. */
function sampler(pid: number): { stop(): number } {
  let peak = rssKiB(pid);
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, rssKiB(pid));
    } catch {
      // exited
    }
  }, 50);
  return {
    stop(): number {
      clearInterval(t);
      return Math.max(peak, rssKiB(pid));
    },
  };
}

interface Postern { child: ChildProcess; fastcgi: number; stop(): Promise<void> }

async function startPostern(): Promise<Postern> {
  const fastcgi = await freePort();
  const cmd = [NODE, '--import', 'tsx', join(root, 'bin/postern.js'), '--fastcgi', `127.0.0.1:${fastcgi}`, '--log-level', 'error',
    '--max-connections', String(IDLE + 100), '--keep-alive-timeout-ms', '300000', '--mount', MOUNT];
  // The soft limit is raised in the child's shell (up to the hard limit) for the idle phase.
  const child = spawn('sh', ['-c', `ulimit -n ${FDS} 2>/dev/null || true; exec "$@"`, 'sh', ...cmd], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 20_000;
  while (!(await portOpen(fastcgi))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('postern did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child, fastcgi,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    },
  };
}

async function withNginx<T>(backend: number, fn: (port: number) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-mem-'));
  chmodSync(dir, 0o755);
  try {
    for (const sub of ['body', 'fastcgi', 'scgi', 'uwsgi', 'proxy']) mkdirSync(join(dir, sub));
    copyFileSync('/etc/nginx/fastcgi_params', join(dir, 'fastcgi_params'));
    const port = await freePort();
    // The recommended config, streaming both ways so the bytes pass through postern as they flow.
    const block = renderTemplate('nginx/fastcgi-keepalive.conf', { LISTEN: `127.0.0.1:${port}`, SERVER_NAME: '127.0.0.1', BACKEND: `127.0.0.1:${backend}`, NAME: 'mem' })
      .replace('client_max_body_size 128m;', 'client_max_body_size 0;')
      .replace('fastcgi_keep_conn on;', 'fastcgi_keep_conn on; fastcgi_request_buffering off; fastcgi_buffering off; fastcgi_read_timeout 300s; fastcgi_send_timeout 300s;');
    const asRoot = process.getuid?.() === 0;
    writeFileSync(join(dir, 'nginx.conf'), `${asRoot ? 'user www-data;\n' : ''}worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log error;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${dir}/body; fastcgi_temp_path ${dir}/fastcgi; scgi_temp_path ${dir}/scgi; uwsgi_temp_path ${dir}/uwsgi; proxy_temp_path ${dir}/proxy;
${block}
}\n`);
    const nginx = await startDaemon({ name: 'nginx', command: 'nginx', args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], port, errorLog: join(dir, 'error.log') });
    try {
      return await fn(port);
    } finally {
      await nginx.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** POSTs `bytes` zero bytes with a Content-Length, honouring backpressure; resolves with the answer. */
function upload(port: number, bytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/bench/sink', headers: { 'Content-Length': String(bytes), 'Content-Type': 'application/octet-stream' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(`${String(res.statusCode)} ${text.trim()}`));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(1024 * 1024);
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** GETs `/bench/stream/bytes`; resolves with the byte count received. */
function download(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: `/bench/stream/${bytes}` }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Phase { phase: string; baselineMiB: number; peakMiB: number; growthMiB: number; seconds: number; detail: string }

const MiB = (kib: number): number => Math.round((kib / 1024) * 10) / 10;

/**
 * Runs one phase; `start()` (called by the phase once warmed up) takes the baseline after a
 * second's pause and begins sampling. The peak is taken up to the phase's end.
 */
async function measure(name: string, p: Postern, run: (start: () => Promise<void>) => Promise<string>): Promise<Phase> {
  const pid = p.child.pid!;
  let baseline = NaN;
  let s: { stop(): number } | undefined;
  const start = async (): Promise<void> => {
    await new Promise((r) => setTimeout(r, 1000));
    baseline = rssKiB(pid);
    s = sampler(pid);
  };
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${name} took longer than ${PHASE_LIMIT_MS} ms`)), PHASE_LIMIT_MS).unref());
  const t0 = performance.now();
  const detail = await Promise.race([run(start), timer]);
  const seconds = (performance.now() - t0) / 1000;
  if (s === undefined) throw new Error(`${name} never started measuring`);
  const peak = s.stop();
  const r: Phase = { phase: name, baselineMiB: MiB(baseline), peakMiB: MiB(peak), growthMiB: MiB(peak - baseline), seconds: Math.round(seconds * 10) / 10, detail };
  console.log(`${name.padEnd(30)} baseline ${String(r.baselineMiB).padStart(6)} MiB  peak ${String(r.peakMiB).padStart(6)} MiB  growth ${String(r.growthMiB).padStart(6)} MiB  ${r.growthMiB < 64 ? 'met ' : 'MISS'} (< 64)  ${r.seconds}s  ${detail}`);
  return r;
}

/** One keep-alive FastCGI request on a fresh connection, left open afterwards. */
function idleConnection(port: number, request: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let got = Buffer.alloc(0);
    s.once('error', reject);
    s.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      // END_REQUEST (type 3) is the last record of the answer.
      if (got.length >= 16 && got[got.length - 15] === 3) {
        s.removeAllListeners('data');
        s.on('error', () => undefined);
        resolve(s);
      }
    });
    s.write(request);
  });
}

const HELLO = Buffer.concat([encodeBeginRequest(1, 1, true), ...encodeParams(1, nginxGetParams('/bench/hello')), encodeStdinEnd(1)]);

/**
 * 20,000 requests on 32 keep-alive connections, then closed: V8 grows its young generation (up to
 * 16 MiB per semi-space on Node 20) under a request load once and keeps it, so without this the
 * idle phase would count that one-time growth as the connections' cost.
 */
async function warmUp(p: Postern): Promise<void> {
  const socks = await Promise.all(Array.from({ length: 32 }, () => idleConnection(p.fastcgi, HELLO)));
  await Promise.all(socks.map(async (s) => {
    for (let i = 1; i < 625; i++) await again(s);
    s.destroy();
  }));
}

function again(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      got = Buffer.concat([got, c]);
      if (got.length >= 16 && got[got.length - 15] === 3) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.write(HELLO);
  });
}

async function idlePhase(p: Postern): Promise<string> {
  const request = HELLO;
  const sockets: Socket[] = [];
  try {
    // A few hundred connects at a time keeps within the listen backlog.
    for (let i = 0; i < IDLE; i += 250) {
      const batch = await Promise.all(Array.from({ length: Math.min(250, IDLE - i) }, () => idleConnection(p.fastcgi, request)));
      sockets.push(...batch);
    }
    // Let postern settle (a scavenge or two) with every connection idle, sampling all the while.
    await new Promise((r) => setTimeout(r, 3000));
    const open = sockets.filter((s) => !s.destroyed).length;
    return `${open} connections open and idle, each served one request`;
  } finally {
    for (const s of sockets) s.destroy();
  }
}

async function main(): Promise<void> {
  const version = spawnSync(NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`postern memory bench: node ${version}, app ${APP}, 1 worker; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; fd soft limit ${softFdLimit()}`);
  const bytes = Math.round(GIB * 1024 ** 3);
  const results: Phase[] = [];
  const phase = async (name: string, fn: (p: Postern, start: () => Promise<void>) => Promise<string>): Promise<void> => {
    const p = await startPostern();
    try {
      results.push(await measure(name, p, (start) => fn(p, start)));
    } finally {
      await p.stop();
    }
  };
  // Warm-ups (not measured): the same transfer at 64 MiB, or 20,000 small requests, so that V8's
  // one-time growth of its young generation under load is in the baseline, not in the figure.
  if (ONLY.includes('upload')) {
    await phase(`${GIB} GiB upload via nginx`, (p, start) => withNginx(p.fastcgi, async (port) => {
      await upload(port, 64 * 1024 * 1024);
      await start();
      const t = performance.now();
      const answer = await upload(port, bytes);
      return `answer "${answer}", ${(bytes / 1024 ** 2 / ((performance.now() - t) / 1000)).toFixed(0)} MiB/s`;
    }));
  }
  if (ONLY.includes('download')) {
    await phase(`${GIB} GiB download via nginx`, (p, start) => withNginx(p.fastcgi, async (port) => {
      await download(port, 64 * 1024 * 1024);
      await start();
      const t = performance.now();
      const n = await download(port, bytes);
      if (n !== bytes) throw new Error(`download got ${n} of ${bytes} bytes`);
      return `${n} bytes, ${(bytes / 1024 ** 2 / ((performance.now() - t) / 1000)).toFixed(0)} MiB/s`;
    }));
  }
  if (ONLY.includes('idle')) {
    await phase(`${IDLE} idle keep-alive conns`, async (p, start) => {
      await warmUp(p);
      await start();
      return idlePhase(p);
    });
  }
  console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (JSON_OUT !== undefined) writeFileSync(JSON_OUT, JSON.stringify({ node: version, app: APP, results }, null, 2) + '\n');
}

// One benchmark at a time: overlapping runs measure each other (bench/lock.ts).
const release = await benchLock();
try {
  await main();
} finally {
  release();
}
