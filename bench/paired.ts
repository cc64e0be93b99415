// `npm run bench -- --paired`, from the load generator's side: a target and its reference loaded
// at the same moment, each by its own wrk with half the connections, through the one nginx. The
// sequential runs compare moments as well as targets: on a shared machine whose speed swings by 2×
// within a minute, a ratio of two sequential medians moves by ±30 %. Loaded together, both
// backends meet the same moment, and the ratio of their CPU per request (each backend's own, from
// /proc) is the comparison itself. The ratio of their req/s is not a capacity ratio: nginx's one
// worker serves both, and where nginx is the bottleneck it hands each side about the same share,
// which pulls the req/s ratio toward 1 (a target that spends a third more CPU per request read
// 0.97 to 1.05 here). Read the CPU ratio; take capacity from the sequential runs.
import { spawn } from 'node:child_process';
import { treeCpuUs } from './cpu.ts';
import { median, parseWrk, wrkArgs, type WrkReport } from './wrk.ts';

export interface Pair {
  /** The reference target (the own server, the canned responder). */
  readonly ref: string;
  readonly target: string;
}

export interface PairedSetup {
  readonly runs: number;
  readonly secs: number;
  /** Connections per wrk (each of the two). */
  readonly conns: number;
  readonly script: string | undefined;
  readonly url: (target: string) => string;
  /** The backend's pid of a target (undefined for one nginx answers itself). */
  readonly pid: (target: string) => number | undefined;
  readonly nginxPid: number | undefined;
}

export interface PairSample {
  readonly ref: WrkReport;
  readonly it: WrkReport;
  readonly refCpuUs: number;
  readonly itCpuUs: number;
  readonly nginxUs: number;
}

function wrkAsync(url: string, secs: number, conns: number, script: string | undefined): Promise<WrkReport> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', wrkArgs(url, secs, conns, script), { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    // Bounded: wrk stops itself after secs; this is for a wrk that hangs.
    const timer = setTimeout(() => child.kill('SIGKILL'), (secs + 30) * 1000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(parseWrk(out));
    });
  });
}

async function runPair(pair: Pair, setup: PairedSetup, refFirst: boolean): Promise<PairSample> {
  const refPid = setup.pid(pair.ref);
  const itPid = setup.pid(pair.target);
  const r0 = treeCpuUs(refPid);
  const i0 = treeCpuUs(itPid);
  const n0 = treeCpuUs(setup.nginxPid);
  const go = (t: string): Promise<WrkReport> => wrkAsync(setup.url(t), setup.secs, setup.conns, setup.script);
  // Both started in the same turn; which wrk is spawned first alternates between runs.
  let ref: Promise<WrkReport>;
  let it: Promise<WrkReport>;
  if (refFirst) {
    ref = go(pair.ref);
    it = go(pair.target);
  } else {
    it = go(pair.target);
    ref = go(pair.ref);
  }
  const [refReport, itReport] = await Promise.all([ref, it]);
  return {
    ref: refReport, it: itReport,
    refCpuUs: (treeCpuUs(refPid) - r0) / refReport.requests,
    itCpuUs: (treeCpuUs(itPid) - i0) / itReport.requests,
    nginxUs: (treeCpuUs(setup.nginxPid) - n0) / (refReport.requests + itReport.requests),
  };
}

export interface PairedResult {
  /** The report, a line each. */
  readonly lines: string[];
  /** Every run of every pair, for --json. */
  readonly runs: Array<{ readonly ref: string; readonly target: string; readonly samples: readonly PairSample[] }>;
}

/** Runs every pair `runs` times (pairs in turn, odd runs in reverse order). */
export async function runPaired(pairs: readonly Pair[], setup: PairedSetup): Promise<PairedResult> {
  const samples = new Map<Pair, PairSample[]>(pairs.map((p) => [p, []]));
  // Warm-up: each pair once, 2 s, not counted.
  for (const p of pairs) await runPair(p, { ...setup, secs: 2 }, true);
  for (let r = 0; r < setup.runs; r++) {
    for (const p of r % 2 === 0 ? pairs : [...pairs].reverse()) samples.get(p)?.push(await runPair(p, setup, r % 2 === 0));
  }
  const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const lines = [
    '',
    `paired: each target and its reference loaded at once through one nginx, ${setup.conns} connections each, ${setup.runs} × ${setup.secs}s`,
    'cpu ref÷it: median over runs of the backends\' CPU per request, reference ÷ target (above 1: the target spends less); ratio: of req/s, pulled toward 1 by the shared nginx (see bench/paired.ts)',
    `${'reference'.padEnd(16)} ${'target'.padEnd(22)} ${'ref req/s'.padStart(9)} ${'req/s'.padStart(7)} ${'ratio'.padStart(6)} ${'ref µs'.padStart(7)} ${'it µs'.padStart(6)} ${'cpu ref÷it'.padStart(10)} ${'nginx µs'.padStart(8)} ${'errors'.padStart(6)}  runs (ratio; cpu ref÷it)`,
  ];
  for (const p of pairs) {
    const s = samples.get(p) ?? [];
    const ratios = s.map((x) => x.it.rps / x.ref.rps);
    const cpuRatios = s.map((x) => x.refCpuUs / x.itCpuUs);
    const errors = s.reduce((n, x) => n + x.ref.errors + x.it.errors, 0);
    lines.push(`${p.ref.padEnd(16)} ${p.target.padEnd(22)} ${median(s.map((x) => x.ref.rps)).toFixed(0).padStart(9)} ${median(s.map((x) => x.it.rps)).toFixed(0).padStart(7)} ${f(median(ratios)).padStart(6)} ${f(median(s.map((x) => x.refCpuUs)), 1).padStart(7)} ${f(median(s.map((x) => x.itCpuUs)), 1).padStart(6)} ${f(median(cpuRatios)).padStart(10)} ${f(median(s.map((x) => x.nginxUs)), 1).padStart(8)} ${String(errors).padStart(6)}  ${ratios.map((x) => f(x)).join(' ')}; ${cpuRatios.map((x) => f(x)).join(' ')}`);
  }
  return { lines, runs: pairs.map((p) => ({ ref: p.ref, target: p.target, samples: samples.get(p) ?? [] })) };
}
