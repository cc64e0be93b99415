// The on-demand pool's cold request, from the client's side: postern (the compiled build,
// bin/postern.js) with workersOnDemand, an idle pool that went back to no worker, then one GET
// over plain HTTP: its latency includes the master accepting it, starting a worker (Node's start,
// the config, the app's import) and passing the connection over. The next GET, on the warm
// worker, is the comparison. Bounded: `rounds` rounds, each waiting at most 30 s for the pool to
// empty.
// Usage: npm run build && node --import tsx bench/on-demand.ts [rounds=5] [--node PATH]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchLock } from './lock.ts';

const args = process.argv.slice(2);
const nodeAt = args.indexOf('--node');
const node = nodeAt === -1 ? process.execPath : (args[nodeAt + 1] ?? process.execPath);
const rounds = Math.min(20, Math.max(1, Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--node') ?? '5') || 5));
const bin = fileURLToPath(new URL('../bin/postern.js', import.meta.url));

const APP = `export const app = (environ, start) => {
  start('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', '5']]);
  return 'hello';
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
`;

/** The master's live workers: its children carrying POSTERN_WORKER_ID. */
function workers(master: number): number {
  let n = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === master && state !== 'Z' && readFileSync(`/proc/${d}/environ`, 'latin1').includes('POSTERN_WORKER_ID=')) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function timedGet(url: string): Promise<number> {
  const t = performance.now();
  const r = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(30_000) });
  await r.text();
  if (r.status !== 200) throw new Error(`status ${String(r.status)}`);
  return performance.now() - t;
}

const release = await benchLock();
const dir = mkdtempSync(join(tmpdir(), 'postern-bench-ondemand-'));
writeFileSync(join(dir, 'app.mjs'), APP);
const child = spawn(node, [bin, '--http', '127.0.0.1:0', '--workers', '1', '--workers-on-demand', '--idle-worker-timeout-ms', '500',
  '--heartbeat-interval-ms', '100', '--mount', `/=${join(dir, 'app.mjs')}#app`, '--log-format', 'json', '--allow-root'], { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
try {
  const deadline = Date.now() + 30_000;
  let port = 0;
  while (port === 0 || !out.includes('ready (master pid')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`postern did not start:\n${out}`);
    port = Number(/http listening on 127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? '0');
    await sleep(20);
  }
  const url = `http://127.0.0.1:${String(port)}/`;
  const master = child.pid ?? 0;
  const cold: number[] = [];
  const warm: number[] = [];
  const load0 = loadavg()[0] ?? 0;
  for (let i = 0; i < rounds; i++) {
    const until = Date.now() + 30_000;
    while (workers(master) > 0) {
      if (Date.now() > until) throw new Error('the pool did not empty within 30 s');
      await sleep(50);
    }
    // Let the drained worker's exit settle (the master's log, the kernel) before timing.
    await sleep(300);
    cold.push(await timedGet(url));
    warm.push(await timedGet(url));
  }
  const fmt = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${s[Math.floor(s.length / 2)]!.toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ${s[s.length - 1]!.toFixed(0)}`;
  };
  process.stdout.write(`${node} (postern's Node), ${String(rounds)} rounds, load ${load0.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}\n`);
  process.stdout.write(`first request with no worker (start included): ${fmt(cold)}\n`);
  process.stdout.write(`next request on the warm worker:              ${fmt(warm)}\n`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => { if (child.exitCode !== null) r(undefined); else child.once('exit', r); });
  rmSync(dir, { recursive: true, force: true });
  release();
}
