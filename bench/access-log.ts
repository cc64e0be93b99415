// Access log cost per line, from the request path's side: postern's batched writer for each format
// into a file and /dev/null, against winston writing the same records; plus the per-request cost
// of the metrics registry and of a filtered-out debug call. Medians of 3 timed runs (after one
// warm-up), in this process, bounded to about 30 s. Wall time, and this process's CPU time (user +
// system, steadier than wall time on a shared machine).
// Run: node --import tsx bench/access-log.ts [--lines 100000] [--winston-lines 50000] [--runs 3]
//   [--no-winston] [--burst] [--json out.json]

import { mkdtempSync, readFileSync, rmSync, statSync, createWriteStream, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { compileAccessFormat } from '../src/log/access-format.ts';
import { createAccessLog } from '../src/log/access-log.ts';
import { createEventLog } from '../src/log/event-log.ts';
import type { AccessRecord } from '../src/log/types.ts';
import { Metrics } from '../src/status/metrics.ts';

const BUDGET_MS = 28_000;
const started = Date.now();
const args = process.argv.slice(2);
function arg(name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
}
const LINES = arg('--lines', 100_000);
const WINSTON_LINES = arg('--winston-lines', 50_000);
const RUNS = arg('--runs', 3);
const WINSTON = !args.includes('--no-winston');
const BURST = args.includes('--burst');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;

const TEMPLATE = '{time} {remoteAddr} {method} {uri} {status} {bytes} {durationMs} {protocol} {mount} {requestId} {worker}';
const FORMATS = ['combined', 'json', TEMPLATE] as const;
const UAS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'curl/7.88.1',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
];

/**
 * Records like those a busy site produces: varied URIs and agents, mostly no referer; durations in
 * whole microseconds, as src/server/shared.ts rounds them (whole milliseconds here would hide the
 * ~90 ns a String() of a fraction costs).
 */
function records(n: number): AccessRecord[] {
  const base = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    startMs: base + i,
    durationMs: Math.round((i % 97) * 1000 + ((i * 37) % 1000)) / 1000,
    remoteAddr: `10.0.${String(i % 256)}.${String((i * 7) % 256)}`,
    method: i % 10 === 0 ? 'POST' : 'GET',
    uri: `/app/items/${String(i)}?page=${String(i % 13)}&sort=name`,
    status: i % 50 === 0 ? 404 : 200,
    bytes: 512 + (i % 4096),
    protocol: 'fastcgi' as const,
    mount: '/app',
    requestId: `1-${String(i)}`,
    worker: 1,
    userAgent: UAS[i % UAS.length]!,
    referer: i % 4 === 0 ? 'https://example.com/start' : '',
    serverProtocol: 'HTTP/1.1',
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function within(): boolean {
  return Date.now() - started < BUDGET_MS;
}

const dir = mkdtempSync(join(tmpdir(), 'postern-bench-access-'));
const recs = records(Math.max(LINES, WINSTON_LINES));

/** One timed run: ms from the first write until the output has everything (close resolved). */
type Run = (file: string, n: number) => Promise<number>;

interface Result { label: string; sink: string; usPerLine: number; runs: number[]; cpuUsPerLine: number }

async function measure(label: string, run: Run, sink: 'file' | '/dev/null', n: number): Promise<Result | undefined> {
  const target = (): string => (sink === 'file' ? join(dir, `${label.replace(/\W+/g, '_')}-${String(Math.random()).slice(2)}.log`) : '/dev/null');
  const runs: number[] = [];
  const cpu: number[] = [];
  await run(target(), Math.min(n, 5000)); // warm-up: JIT, file system
  for (let i = 0; i < RUNS && within(); i++) {
    const file = target();
    const c0 = process.cpuUsage();
    const ms = await run(file, n);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / n);
    if (sink === 'file') {
      const size = statSync(file).size;
      if (size === 0) throw new Error(`${label}: nothing written`);
      const lines = readFileSync(file, 'latin1').split('\n').length - 1;
      if (lines !== n) throw new Error(`${label}: ${String(lines)} lines, expected ${String(n)}`);
      rmSync(file);
    }
    runs.push((ms * 1000) / n);
  }
  if (runs.length === 0) return undefined;
  return { label, sink, usPerLine: median(runs), runs, cpuUsPerLine: median(cpu) };
}

function postern(format: string): Run {
  return async (file, n) => {
    // The cap on unwritten bytes is lifted, as winston has none. With --burst the run is one
    // synchronous loop (no event loop turn, unlike a server): every batch waits in memory until the
    // end, and the garbage collector's work on those ~40 MB dominates the figure. By default the
    // loop lets the event loop turn every 1024 lines, as a server does between requests.
    const log = createAccessLog({ format, file, maxPendingBytes: 1 << 30 });
    const t0 = performance.now();
    if (BURST) for (let i = 0; i < n; i++) log.write(recs[i]!);
    else {
      for (let i = 0; i < n; i++) {
        log.write(recs[i]!);
        if ((i & 1023) === 1023) await new Promise((r) => setImmediate(r));
      }
    }
    await log.close();
    const ms = performance.now() - t0;
    if (log.dropped !== 0) throw new Error(`dropped ${String(log.dropped)}`);
    return ms;
  };
}

function winstonRun(kind: 'file' | 'stream'): Run {
  return async (file, n) => {
    const transport = kind === 'file'
      ? new winston.transports.File({ filename: file })
      : new winston.transports.Stream({ stream: createWriteStream(file) });
    const logger = winston.createLogger({ level: 'info', format: winston.format.combine(winston.format.timestamp(), winston.format.json()), transports: [transport] });
    const t0 = performance.now();
    for (let i = 0; i < n; i++) logger.info('', recs[i]);
    // winston#2219: end() while the logger still holds lines for the transport ends the transport
    // under them ("write after end"), which lines a few bytes longer were enough to trigger here.
    while (logger.readableLength > 0) await new Promise((r) => setImmediate(r));
    await new Promise<void>((resolve) => {
      logger.on('finish', () => resolve());
      logger.end();
    });
    // The File transport finishes before its stream has closed: wait for the bytes to be there.
    const want = n;
    const deadline = Date.now() + 10_000;
    while (file !== '/dev/null' && Date.now() < deadline) {
      const have = readFileSync(file, 'latin1').split('\n').length - 1;
      if (have >= want) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    return performance.now() - t0;
  };
}

/** ns per line: wall and CPU time. */
function formatOnly(format: string, n: number): { wall: number; cpu: number } {
  const f = compileAccessFormat(format);
  let bytes = 0;
  for (let i = 0; i < 5000; i++) bytes += f(recs[i]!).length;
  const runs: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) bytes += f(recs[i]!).length;
    runs.push(((performance.now() - t0) * 1e6) / n);
    const c = process.cpuUsage(c0);
    cpu.push(((c.user + c.system) * 1000) / n);
  }
  if (bytes === 0) throw new Error('unreachable');
  return { wall: median(runs), cpu: median(cpu) };
}

function perCallNs(fn: (i: number) => void, n: number): number {
  for (let i = 0; i < 10_000; i++) fn(i);
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn(i);
    runs.push(((performance.now() - t0) * 1e6) / n);
  }
  return median(runs);
}

const results: Result[] = [];
console.log(`node ${process.version}; ${String(LINES)} lines per postern run, ${String(WINSTON_LINES)} per winston run; medians of ${String(RUNS)} after a warm-up`);
console.log('\nformat only (no I/O), ns/line (CPU ns/line):');
const formatNs: Record<string, { wall: number; cpu: number }> = {};
for (const f of FORMATS) {
  const name = f === TEMPLATE ? 'template' : f;
  const r = formatOnly(f, LINES);
  formatNs[name] = r;
  console.log(`  ${name.padEnd(10)} ${r.wall.toFixed(0).padStart(4)}   (${r.cpu.toFixed(0)})`);
}

for (const f of FORMATS) {
  for (const sink of ['file', '/dev/null'] as const) {
    if (!within()) break;
    const r = await measure(`postern ${f === TEMPLATE ? 'template' : f}`, postern(f), sink, LINES);
    if (r !== undefined) results.push(r);
  }
}
for (const [kind, sink] of WINSTON ? [['file', 'file'], ['stream', '/dev/null']] as const : []) {
  if (!within()) break;
  const r = await measure(`winston json (${kind === 'file' ? 'transports.File' : 'transports.Stream'})`, winstonRun(kind), sink, WINSTON_LINES);
  if (r !== undefined) results.push(r);
}

console.log('\nwrite + flush to the end, µs/line (runs), CPU µs/line:');
for (const r of results) {
  console.log(`  ${r.label.padEnd(40)} ${r.sink.padEnd(9)} ${r.usPerLine.toFixed(2).padStart(6)}   (${r.runs.map((x) => x.toFixed(2)).join(', ')})  ${(1e6 / r.usPerLine / 1000).toFixed(0)}k lines/s   cpu ${r.cpuUsPerLine.toFixed(2)}`);
}

const metrics = new Metrics({ worker: 1 });
const mounts = ['/app', '/api', '/'];
const metricsNs = perCallNs((i) => {
  metrics.requestStarted();
  metrics.requestFinished(mounts[i % 3]!, i % 50 === 0 ? 404 : 200, i % 97);
}, 2_000_000);
const ev = createEventLog({ level: 'info', format: 'json', stream: createWriteStream('/dev/null') });
const debugNs = perCallNs((i) => { ev.debug('x', { i }); }, 2_000_000);
const guardedNs = perCallNs((i) => { if (ev.debugEnabled) ev.debug('x', { i }); }, 2_000_000);
const wl = winston.createLogger({ level: 'info', transports: [new winston.transports.Stream({ stream: createWriteStream('/dev/null') })] });
const winstonDebugNs = perCallNs((i) => { wl.debug('x', { i }); }, 200_000);
console.log('\nper call, ns:');
console.log(`  metrics requestStarted+requestFinished   ${metricsNs.toFixed(0)}`);
console.log(`  event log debug() below level            ${debugNs.toFixed(0)}`);
console.log(`  if (log.debugEnabled) guard               ${guardedNs.toFixed(0)}`);
console.log(`  winston logger.debug() below level       ${winstonDebugNs.toFixed(0)}`);
await ev.close();
wl.end();

rmSync(dir, { recursive: true, force: true });
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify({ node: process.version, formatNs, results, metricsNs, debugNs, guardedNs, winstonDebugNs }, null, 2));
