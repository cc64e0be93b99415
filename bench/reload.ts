// The cost of a reload, from the front server's side (issue 15): postern with two workers behind
// nginx over FastCGI with keepalive (config/nginx/fastcgi-keepalive.conf as shipped), a keep-alive
// POST load that never retries, and a SIGHUP every few seconds. Reports failed requests, how long
// each reload took until every worker ran the new code (SIGHUP to the master's `reloaded` line:
// new workers ready and the old ones drained and gone), and the throughput around the reloads
// against the steady state.
// Usage: node --import tsx bench/reload.ts [secs=20] [conns=32]
import { cpus, loadavg } from 'node:os';
import { startNginx } from '../test/helpers/front/nginx.ts';
import { bodyCountingApp, problemLines, runLoad } from '../test/helpers/reload-load.ts';
import { sleep, startCli } from '../test/integration/hardening-helpers.ts';
import { benchLock } from './lock.ts';

const secs = Math.max(8, Number(process.argv[2] ?? '20') || 20);
const conns = Math.max(1, Number(process.argv[3] ?? '32') || 32);
const BUCKET_MS = 100;

const release = await benchLock();
const app = bodyCountingApp();
const cli = startCli(['--workers', '2', '--fastcgi', '127.0.0.1:0', '--mount', `/=${app.path}`, '--log-format', 'json', '--heartbeat-interval-ms', '200']);
try {
  const ports = await cli.listening(['fastcgi']);
  await cli.waitFor(/postern [^ ]+ ready/);
  const nginx = await startNginx([{ mode: 'fastcgi-keepalive', backend: `127.0.0.1:${String(ports.get('fastcgi'))}` }]);
  try {
    const load0 = loadavg()[0] ?? 0;
    const started = Date.now();
    let stop = false;
    const loading = runLoad({ name: 'nginx fastcgi-keepalive', port: nginx.sites[0]!.port }, conns, () => stop, 'post');
    // Steady state first, then a reload every few seconds, the last one well before the end.
    const every = Math.max(3000, Math.floor((secs * 1000) / 5));
    const reloads: Array<{ from: number; to: number }> = [];
    await sleep(every);
    while (Date.now() - started + every <= secs * 1000) {
      const before = [...cli.output().matchAll(/reloaded: generation/g)].length;
      const from = Date.now();
      cli.child.kill('SIGHUP');
      while ([...cli.output().matchAll(/reloaded: generation/g)].length === before) {
        if (Date.now() - from > 60_000) throw new Error(`reload did not finish:\n${cli.output().slice(-3000)}`);
        await sleep(10);
      }
      reloads.push({ from: from - started, to: Date.now() - started });
      await sleep(every - (Date.now() - from) > 500 ? every - (Date.now() - from) : 500);
    }
    await sleep(Math.max(0, secs * 1000 - (Date.now() - started)));
    stop = true;
    const r = await loading;
    const rate = (from: number, to: number): number => {
      const b = r.perBucket.slice(Math.floor(from / BUCKET_MS), Math.ceil(to / BUCKET_MS));
      return b.length === 0 ? 0 : (b.reduce((a, x) => a + x, 0) / b.length) * (1000 / BUCKET_MS);
    };
    const inReload = (i: number): boolean => reloads.some((x) => i * BUCKET_MS >= x.from - 200 && i * BUCKET_MS <= x.to + 200);
    // Steady: every bucket away from a reload (and past the first second of warm-up).
    const steadyBuckets = r.perBucket.filter((_, i) => i >= 10 && i < r.perBucket.length - 1 && !inReload(i));
    const steady = (steadyBuckets.reduce((a, x) => a + x, 0) / Math.max(1, steadyBuckets.length)) * (1000 / BUCKET_MS);
    const lines = reloads.map((x, i) => {
      const during = rate(x.from, x.to);
      // The worst 500 ms inside the reload.
      let worst = Infinity;
      for (let t = x.from; t + 500 <= x.to + 1; t += BUCKET_MS) worst = Math.min(worst, rate(t, t + 500));
      if (worst === Infinity) worst = during;
      return `  reload ${String(i + 1)}: ${String(x.to - x.from)} ms until every worker ran the new code; ` +
        `${during.toFixed(0)} req/s during it (${((during / steady) * 100).toFixed(0)}% of steady), worst 500 ms ${worst.toFixed(0)} req/s (${((worst / steady) * 100).toFixed(0)}%)`;
    });
    const frontLines = problemLines(nginx.errorLog());
    process.stdout.write(`reload bench: ${String(secs)} s, ${String(conns)} keep-alive POST loops (2 KiB bodies) through nginx FastCGI keepalive, postern --workers 2, Node ${process.version}\n` +
      `machine: ${String(cpus().length)} cores, load average ${load0.toFixed(2)} at start, ${(loadavg()[0] ?? 0).toFixed(2)} at end\n` +
      `requests: ${String(r.ok)} ok, ${String(r.failures.length)} failed${r.failures.length > 0 ? ` (${[...new Set(r.failures)].slice(0, 5).join('; ')})` : ''}\n` +
      `nginx error log lines at warn or above: ${String(frontLines.length)}\n` +
      `steady throughput: ${steady.toFixed(0)} req/s\n${lines.join('\n')}\n`);
  } finally {
    await nginx.stop();
  }
} finally {
  cli.child.kill('SIGTERM');
  await cli.exited;
  app.remove();
  release();
}
