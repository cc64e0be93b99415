// The `frameworks` scenario of `npm run bench`, from the user's side: the same hello app in Express,
// Koa, Fastify and Hono (bench/peers/frameworks/), each on its own node:http server behind nginx
// `proxy_pass` (keep-alive upstream) and mounted in postern (1 worker) behind `fastcgi_pass` with
// fastcgi_keep_conn, once per bridge: `direct` and `replay` for the (req, res) frameworks, `lazy`
// and `eager` (Request) for Hono. One process per row, so each backend's CPU per request is its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/front/root.ts';
import type { Pair } from './paired.ts';
import { fcgi, proxy, type Backend, type Target } from './stand.ts';
import { median } from './wrk.ts';

// `node`: a plain (req, res) hello, no framework (bench/peers/frameworks/node.ts): the bridge alone.
export const FRAMEWORKS = ['express', 'koa', 'fastify', 'hono', 'node'] as const;
export type Framework = (typeof FRAMEWORKS)[number];
export const BRIDGES = ['direct', 'replay', 'lazy', 'eager'] as const;
export type Bridge = (typeof BRIDGES)[number];

/** The bridges that apply to a framework: the Node ones to (req, res) apps, the Fetch ones to Hono. */
export function bridgesOf(fw: Framework, wanted: readonly Bridge[]): Bridge[] {
  const own: readonly Bridge[] = fw === 'hono' ? ['lazy', 'eager'] : ['direct', 'replay'];
  return own.filter((b) => wanted.includes(b));
}

export function parseList<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  const xs = text.split(',').filter(Boolean);
  for (const x of xs) if (!(allowed as readonly string[]).includes(x)) throw new Error(`--${what}: ${x} is not one of ${allowed.join(', ')}`);
  return xs as T[];
}

const root = repoRoot();
const dir = join(root, 'bench/peers/frameworks');
const tsx = ['--import', 'tsx'];

/** `express/own`, `express/direct`, … */
export const ownName = (fw: Framework): string => `${fw}/own`;
export const bridgeName = (fw: Framework, b: string): string => `${fw}/${b}`;

/** One backend per row: each framework's own server, and one postern per framework and bridge. */
export function frameworkBackends(node: string, frameworks: readonly Framework[], bridges: readonly Bridge[], cpuProfDir?: string): Backend[] {
  // With a directory, every process of the bench (own servers and posterns) writes a V8 CPU profile
  // there when it exits (bench/flame.ts reads them).
  // BENCH_BACKEND_FLAGS: more node flags for every backend (say `--trace-gc-nvp`); BENCH_POSTERN_FLAGS:
  // for the postern backends only. Each backend's output goes to BENCH_BACKEND_LOG_DIR/<name>.log
  // when that is set (default: discarded).
  const words = (name: string): string[] => (process.env[name] ?? '').split(' ').filter((f) => f !== '');
  const prof = [...(cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir]), ...words('BENCH_BACKEND_FLAGS')];
  const posternFlags = words('BENCH_POSTERN_FLAGS');
  const logDir = process.env['BENCH_BACKEND_LOG_DIR'];
  const start = (name: string, args: readonly string[], options: { detached?: boolean }): ChildProcess => {
    if (logDir === undefined) return spawn(node, args, { ...options, stdio: 'ignore', cwd: root });
    const fd = openSync(join(logDir, `${name.replace('/', '-')}.log`), 'w');
    try {
      return spawn(node, args, { ...options, stdio: ['ignore', fd, fd], cwd: root });
    } finally {
      closeSync(fd);
    }
  };
  const out: Backend[] = [];
  for (const fw of frameworks) {
    out.push({
      name: ownName(fw), ports: {}, probe: ['http'], available: () => true,
      start: function () {
        return start(ownName(fw), [...prof, ...tsx, join(dir, 'serve.ts'), fw, String(this.ports['http'])], {});
      },
    });
    for (const row of rowsOf(fw, bridges)) {
      const b = row.bridge;
      const bin = row.base ? baseBin() : join(root, 'bin/postern.js');
      out.push({
        name: bridgeName(fw, row.name), ports: {}, probe: ['fastcgi'], available: () => existsSync(join(root, 'dist/src/cli.js')),
        start: function () {
          // The mounts are .ts files, hence tsx; postern itself runs from dist/ (npm run build).
          return start(bridgeName(fw, row.name), [...prof, ...posternFlags, ...tsx, bin, '--fastcgi', `127.0.0.1:${this.ports['fastcgi']}`, '--workers', '1', '--log-level', 'warn',
            ...(b === 'replay' ? ['--node-bridge', 'replay'] : []),
            '--mount', `/=bench/peers/frameworks/${fw}.ts#${b === 'eager' ? 'eager' : 'app'}`], { detached: true });
        },
      });
    }
  }
  return out;
}

/** Rows in run order: each framework's own server, then its postern rows. */
export function frameworkTargets(frameworks: readonly Framework[], bridges: readonly Bridge[]): Target[] {
  const out: Target[] = [];
  for (const fw of frameworks) {
    out.push({ name: ownName(fw), backend: ownName(fw), scenarios: ['frameworks'], block: proxy });
    for (const { name } of rowsOf(fw, bridges)) out.push({ name: bridgeName(fw, name), backend: bridgeName(fw, name), scenarios: ['frameworks'], block: fcgi('fastcgi-keepalive') });
  }
  return out;
}

/** For --paired: each framework's own server with each of its postern rows. */
export function frameworkPairs(frameworks: readonly Framework[], bridges: readonly Bridge[]): Pair[] {
  return frameworks.flatMap((fw) => rowsOf(fw, bridges).map((row) => ({ ref: ownName(fw), target: bridgeName(fw, row.name) })));
}

/**
 * BENCH_BASELINE=DIR (another checkout, built: `git worktree add DIR <commit>`, node_modules linked,
 * `npm run build`): every postern row runs a second time from that checkout's bin/postern.js, as
 * `<bridge>@base`, interleaved with the current build in the same run, so that a before/after
 * comparison shares the machine's moment. BENCHMARKS.md ("Calibrating the baseline rows") sizes
 * its bias.
 */
export const baseline = process.env['BENCH_BASELINE'];

interface BridgeRow { readonly name: string; readonly bridge: Bridge; readonly base: boolean }

function rowsOf(fw: Framework, bridges: readonly Bridge[]): BridgeRow[] {
  return bridgesOf(fw, bridges).flatMap((bridge) => [
    { name: bridge, bridge, base: false },
    ...(baseline === undefined ? [] : [{ name: `${bridge}@base`, bridge, base: true }]),
  ]);
}

/** The baseline checkout's bin/postern.js (which runs its dist/); the hello scenario's `postern@base` too. */
export function baseBin(): string {
  if (baseline === undefined || !existsSync(join(baseline, 'dist/src/cli.js'))) throw new Error(`BENCH_BASELINE: no built checkout at ${String(baseline)} (dist/src/cli.js)`);
  return join(baseline, 'bin/postern.js');
}

export interface FrameworkSample { readonly rps: number; readonly cpuUs: number }

/**
 * The ratio table: per framework and bridge, postern's req/s ÷ the own server's, as a ratio of
 * medians and as the median of the runs' paired ratios (run r of postern over run r of the own
 * server, measured back to back, so that a noisy moment hits both), and the backends' CPU per
 * request, own ÷ postern (above 1: postern's process spends less per request).
 */
export function frameworkSummary(samples: ReadonlyMap<string, readonly FrameworkSample[]>, frameworks: readonly Framework[], bridges: readonly Bridge[]): string[] {
  const lines = ['', 'frameworks: postern (fastcgi_pass keep_conn) ÷ own node:http server (proxy_pass keepalive)',
    `${'framework'.padEnd(10)} ${'own req/s'.padStart(9)} ${'bridge'.padEnd(11)} ${'req/s'.padStart(8)} ${'ratio'.padStart(6)} ${'paired'.padStart(7)} ${'own µs'.padStart(7)} ${'it µs'.padStart(6)} ${'cpu own÷it'.padStart(10)}`];
  for (const fw of frameworks) {
    const own = samples.get(ownName(fw)) ?? [];
    if (own.length === 0) continue;
    const ownRps = median(own.map((s) => s.rps));
    const ownCpu = median(own.map((s) => s.cpuUs));
    for (const { name: b } of rowsOf(fw, bridges)) {
      const it = samples.get(bridgeName(fw, b)) ?? [];
      const rps = median(it.map((s) => s.rps));
      const cpu = median(it.map((s) => s.cpuUs));
      const paired = median(it.map((s, i) => s.rps / (own[i]?.rps ?? NaN)));
      lines.push(`${fw.padEnd(10)} ${ownRps.toFixed(0).padStart(9)} ${b.padEnd(11)} ${rps.toFixed(0).padStart(8)} ${(rps / ownRps).toFixed(2).padStart(6)} ${paired.toFixed(2).padStart(7)} ${ownCpu.toFixed(1).padStart(7)} ${cpu.toFixed(1).padStart(6)} ${(ownCpu / cpu).toFixed(2).padStart(10)}`);
    }
  }
  return lines;
}
