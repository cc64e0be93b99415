// `npm run fuzz`: time-bounded, coverage-guided fuzzing of the protocol decoders, from the
// command line. Each protocol's campaign runs in a worker thread (its own isolate, so coverage
// sees only the code under test) watched by the main thread, which saves findings (and the input
// a hung worker was running) to fuzz/crashes/ and, with --save, new coverage to fuzz/corpus/.
//
//   npm run fuzz -- [--seconds 60] [--protocol fastcgi|scgi|uwsgi|all] [--seed N] [--save]
//   npm run fuzz -- --cmin [--save] [--protocol …]     which corpus files add no coverage
//   npm run fuzz -- --replay FILE… --protocol P        check saved inputs thoroughly

import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BlockCoverage, type FileCoverage, type Sample } from './coverage.ts';
import { corpusDir, loadCorpus, repoRoot, saveToCorpus, shortHash } from './corpus.ts';
import type { Finding } from './engine.ts';
import type { Protocol } from './oracle.ts';

const ALL: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi'];
/** Bytes of the shared current-input slot: length word, heartbeat word, then the input. */
const SLOT_BYTES = 8 + 96 * 1024;
const HANG_MS = 15_000;
const STATUS_MS = 5_000;

interface Job {
  readonly protocol: Protocol;
  readonly seconds: number;
  readonly seed: number;
  readonly save: boolean;
  readonly cmin: boolean;
  readonly slot: SharedArrayBuffer;
}

interface Status {
  readonly type: 'status';
  readonly elapsed: number;
  readonly execs: number;
  readonly queue: number;
  readonly fromCoverage: number;
  readonly fromFeatures: number;
  readonly coveredChars: number;
  readonly features: number;
  readonly findings: number;
}

type FromWorker =
  | Status
  | { readonly type: 'finding'; readonly kind: string; readonly detail: string; readonly config: string; readonly feed: string; readonly input: Uint8Array; readonly minimized: Uint8Array; readonly atExec: number }
  | { readonly type: 'done'; readonly last: Status; readonly baselineChars: number; readonly seeds: number; readonly files: FileCoverage[]; readonly growth: Array<[number, number, number]>; readonly saved: string[]; readonly notes: string[] };

// ---- worker -------------------------------------------------------------------------------------

function scriptFilter(protocol: Protocol): (url: string) => boolean {
  return (url) => url.includes(`/protocols/${protocol}/`) || url.includes('/protocols/common/');
}

function union(into: Sample, s: Sample): void {
  for (const [url, painted] of s) {
    let acc = into.get(url);
    if (acc === undefined || acc.length < painted.length) {
      const grown = new Uint8Array(painted.length);
      if (acc !== undefined) grown.set(acc);
      acc = grown;
      into.set(url, acc);
    }
    for (let i = 0; i < painted.length; i++) if (painted[i] === 1) acc[i] = 1;
  }
}

/** Characters `s` covers outside `base`. */
function beyond(s: Sample, base: Sample): Sample {
  const out: Sample = new Map();
  for (const [url, painted] of s) {
    const b = base.get(url);
    const only = new Uint8Array(painted.length);
    let any = false;
    for (let i = 0; i < painted.length; i++) {
      if (painted[i] === 1 && (b === undefined || i >= b.length || b[i] === 0)) {
        only[i] = 1;
        any = true;
      }
    }
    if (any) out.set(url, only);
  }
  return out;
}

function countOf(s: Sample): number {
  let n = 0;
  for (const p of s.values()) for (const c of p) n += c;
  return n;
}

/** Greedy set cover: the fewest inputs whose samples together cover what all of them cover. */
function greedyCover(samples: ReadonlyArray<{ index: number; sample: Sample; size: number }>): number[] {
  const chosen: number[] = [];
  const have: Sample = new Map();
  const left = [...samples];
  for (;;) {
    let best = -1;
    let bestGain = 0;
    for (let k = 0; k < left.length; k++) {
      const gain = countOf(beyond(left[k]!.sample, have));
      if (gain > bestGain || (gain === bestGain && gain > 0 && left[k]!.size < left[best]!.size)) {
        best = k;
        bestGain = gain;
      }
    }
    if (best === -1) return chosen;
    const [pick] = left.splice(best, 1);
    chosen.push(pick!.index);
    union(have, pick!.sample);
  }
}

function covers(s: Sample, need: Sample): boolean {
  for (const [url, want] of need) {
    const got = s.get(url);
    for (let i = 0; i < want.length; i++) if (want[i] === 1 && (got === undefined || got[i] !== 1)) return false;
  }
  return true;
}

async function workerMain(job: Job): Promise<void> {
  const port = parentPort!;
  const slot = new Int32Array(job.slot, 0, 2);
  const slotBytes = new Uint8Array(job.slot, 8);
  const onExec = (input: Buffer): void => {
    const n = Math.min(input.length, slotBytes.length);
    slotBytes.set(input.subarray(0, n));
    Atomics.store(slot, 0, n);
    Atomics.add(slot, 1, 1);
  };
  const coverage = new BlockCoverage(scriptFilter(job.protocol));
  coverage.start();
  // Imported after coverage starts, so the decoders are compiled with block counters.
  const { Engine } = await import('./engine.ts');
  const corpus = loadCorpus(job.protocol);
  const notes: string[] = [];
  const engine = new Engine({
    protocol: job.protocol,
    seeds: corpus.map((c) => c.bytes),
    seed: job.seed,
    coverage,
    onExec,
    onFinding: (f: Finding) =>
      port.postMessage({
        type: 'finding',
        kind: f.problem.kind,
        detail: f.problem.detail,
        config: f.problem.config,
        feed: f.problem.feed,
        input: f.input,
        minimized: f.minimized,
        atExec: f.atExec,
      } satisfies FromWorker),
  });
  const t0 = performance.now();
  engine.init();
  const growth: Array<[number, number, number]> = [[0, 0, coverage.coveredChars]];
  const status = (): Status => {
    const s = engine.stats();
    return { type: 'status', elapsed: (performance.now() - t0) / 1000, ...s };
  };

  if (job.cmin) {
    const samples = corpus.map((c, index) => ({ index, sample: engine.sampleOf(c.bytes)!, size: c.bytes.length }));
    const keep = new Set(greedyCover(samples));
    for (const [i, c] of corpus.entries()) {
      if (keep.has(i)) continue;
      // Captured and hand-made seeds stay (they document real traffic); only found inputs go.
      if (job.save && c.name.startsWith('cov-')) {
        unlinkSync(join(corpusDir(job.protocol), c.name));
        notes.push(`removed ${c.name} (no coverage of its own)`);
      } else notes.push(`redundant: ${c.name}`);
    }
    port.postMessage({ type: 'done', last: status(), baselineChars: engine.baselineChars, seeds: corpus.length, files: coverage.report(), growth, saved: [], notes } satisfies FromWorker);
    return;
  }

  const deadline = t0 + job.seconds * 1000;
  let nextStatus = t0 + STATUS_MS;
  let lastCovered = coverage.coveredChars;
  engine.run(deadline, Infinity, () => {
    const now = performance.now();
    const c = coverage.coveredChars;
    if (c !== lastCovered) {
      lastCovered = c;
      growth.push([(now - t0) / 1000, engine.stats().execs, c]);
    }
    if (now >= nextStatus) {
      nextStatus = now + STATUS_MS;
      port.postMessage(status());
    }
  });
  const last = status();

  const saved: string[] = [];
  if (job.save) {
    // Keep only what the committed corpus does not already reach, as few inputs as can, trimmed.
    const base: Sample = new Map();
    for (const c of corpus) union(base, engine.sampleOf(c.bytes)!);
    const found = engine.discovered.filter((d) => d.origin === 'coverage');
    const samples = found.map((d, index) => ({ index, sample: beyond(engine.sampleOf(d.bytes)!, base), size: d.bytes.length }));
    const have: Sample = new Map(base);
    for (const i of greedyCover(samples.filter((s) => countOf(s.sample) > 0))) {
      const need = beyond(samples[i]!.sample, have);
      if (countOf(need) === 0) continue;
      let cur = found[i]!.bytes;
      let tries = 0;
      for (let chunk = Math.max(1, cur.length >> 1); chunk >= 1 && tries < 600; chunk >>= 1) {
        for (let k = 0; k < cur.length && tries < 600; ) {
          const cand = Buffer.concat([cur.subarray(0, k), cur.subarray(k + chunk)]);
          tries++;
          if (covers(engine.sampleOf(cand)!, need)) cur = cand;
          else k += chunk;
        }
        if (chunk === 1) break;
      }
      union(have, engine.sampleOf(cur)!);
      saved.push(saveToCorpus(job.protocol, 'cov', cur));
    }
  }
  port.postMessage({ type: 'done', last, baselineChars: engine.baselineChars, seeds: corpus.length, files: coverage.report(), growth, saved, notes } satisfies FromWorker);
}

// ---- main ---------------------------------------------------------------------------------------

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function line(p: Protocol, s: Status): string {
  return `[${p}] ${s.elapsed.toFixed(0).padStart(4)}s  execs ${fmt(s.execs)} (${fmt(s.execs / Math.max(0.001, s.elapsed))}/s)  queue ${fmt(s.queue)} (+${fmt(s.fromCoverage)} coverage, +${fmt(s.fromFeatures)} log features)  covered ${fmt(s.coveredChars)} chars  findings ${String(s.findings)}`;
}

function hexdump(b: Uint8Array, max = 512): string {
  const rows: string[] = [];
  for (let i = 0; i < Math.min(b.length, max); i += 16) {
    const row = b.subarray(i, Math.min(i + 16, b.length));
    const hex = [...row].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const txt = [...row].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    rows.push(`${i.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${txt}`);
  }
  if (b.length > max) rows.push(`… ${String(b.length - max)} more bytes`);
  return rows.join('\n');
}

function saveCrash(protocol: Protocol, m: Extract<FromWorker, { type: 'finding' }>): string {
  const dir = join(repoRoot(), 'fuzz', 'crashes');
  mkdirSync(dir, { recursive: true });
  const minimized = Buffer.from(m.minimized);
  const base = `${protocol}-${shortHash(minimized)}`;
  writeFileSync(join(dir, `${base}.bin`), minimized);
  writeFileSync(join(dir, `${base}.orig.bin`), Buffer.from(m.input));
  writeFileSync(
    join(dir, `${base}.txt`),
    `protocol: ${protocol}\nkind:     ${m.kind}\ndetail:   ${m.detail}\nconfig:   ${m.config}\nfeed:     ${m.feed}\nfound at: exec ${String(m.atExec)}\n` +
      `input:    ${String(m.input.length)} bytes, minimized to ${String(minimized.length)}\n` +
      `replay:   npm run fuzz -- --replay fuzz/crashes/${base}.bin --protocol ${protocol}\n\n${hexdump(minimized)}\n`,
  );
  return join('fuzz', 'crashes', `${base}.bin`);
}

async function replay(protocol: Protocol, files: readonly string[]): Promise<number> {
  const { checkInput } = await import('./oracle.ts');
  let bad = 0;
  for (const f of files) {
    const verdict = checkInput(protocol, readFileSync(f), { thorough: 8 });
    if (verdict.problem === undefined) console.log(`${f}: ok`);
    else {
      bad++;
      const p = verdict.problem;
      console.log(`${f}: ${p.kind}\n  ${p.detail.split('\n').join('\n  ')}\n  config ${p.config}, feed ${p.feed}`);
    }
  }
  return bad === 0 ? 0 : 1;
}

function runJob(job: Job): Promise<{ findings: number; done: Extract<FromWorker, { type: 'done' }> | undefined }> {
  const here = import.meta.url;
  // Node 20 does not pass --import hooks to workers: register tsx first when running from source.
  const boot = here.endsWith('.ts')
    ? `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(here)}); })`
    : `import(${JSON.stringify(here)})`;
  const worker = new Worker(boot, { eval: true, workerData: job });
  const slot = new Int32Array(job.slot, 0, 2);
  const slotBytes = new Uint8Array(job.slot, 8);
  let findings = 0;
  let done: Extract<FromWorker, { type: 'done' }> | undefined;
  let beat = -1;
  let beatAt = Date.now();
  return new Promise((resolve) => {
    const watchdog = setInterval(() => {
      const now = Atomics.load(slot, 1);
      if (now !== beat) {
        beat = now;
        beatAt = Date.now();
        return;
      }
      if (Date.now() - beatAt < HANG_MS) return;
      const input = Buffer.from(slotBytes.subarray(0, Atomics.load(slot, 0)));
      const path = saveCrash(job.protocol, { type: 'finding', kind: 'hang', detail: `no progress for ${String(HANG_MS)} ms`, config: '?', feed: '?', input, minimized: input, atExec: -1 });
      console.log(`[${job.protocol}] HANG: the worker made no progress for ${String(HANG_MS / 1000)} s; input saved to ${path}`);
      findings++;
      void worker.terminate();
    }, 1000);
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'status') console.log(line(job.protocol, m));
      else if (m.type === 'finding') {
        findings++;
        const path = saveCrash(job.protocol, m);
        console.log(`[${job.protocol}] FINDING ${m.kind}\n    ${m.detail.split('\n')[0]!}\n    config ${m.config}, feed ${m.feed}; ${String(m.input.length)} → ${String(m.minimized.length)} bytes → ${path}`);
      } else done = m;
    });
    worker.on('error', (err) => {
      findings++;
      console.log(`[${job.protocol}] worker failed: ${err.stack ?? String(err)}`);
    });
    worker.on('exit', () => {
      clearInterval(watchdog);
      resolve({ findings, done });
    });
  });
}

function summary(p: Protocol, d: Extract<FromWorker, { type: 'done' }>, findings: number): void {
  const s = d.last;
  console.log(line(p, s));
  console.log(`[${p}] corpus ${String(d.seeds)} seeds: ${fmt(d.baselineChars)} chars covered; campaign: ${fmt(s.coveredChars)} (+${fmt(s.coveredChars - d.baselineChars)})`);
  for (const f of d.files) {
    const rel = f.file.replace(`${repoRoot()}/`, '');
    const pct = (a: number, b: number): string => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
    const missing = f.uncoveredLines.length === 0 ? '' : `  uncovered lines ${f.uncoveredLines.slice(0, 24).join(',')}${f.uncoveredLines.length > 24 ? ',…' : ''}`;
    console.log(`    ${rel.padEnd(34)} lines ${String(f.coveredLines).padStart(4)}/${String(f.lines).padEnd(4)} ${pct(f.coveredLines, f.lines).padStart(6)}  blocks ${String(f.coveredBlocks).padStart(4)}/${String(f.knownBlocks).padEnd(4)}${missing}`);
  }
  if (d.growth.length > 1) {
    const pts = d.growth.filter((_, i) => i === 0 || i === d.growth.length - 1 || i % Math.ceil(d.growth.length / 8) === 0);
    console.log(`[${p}] coverage growth (s, execs, chars): ${pts.map(([t, e, c]) => `${t.toFixed(1)}/${fmt(e)}/${fmt(c)}`).join('  ')}`);
  }
  for (const n of d.notes) console.log(`[${p}] ${n}`);
  if (d.saved.length > 0) console.log(`[${p}] saved ${String(d.saved.length)} new corpus inputs: ${d.saved.join(', ')}`);
  console.log(`[${p}] findings: ${String(findings)}`);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      protocol: { type: 'string', default: 'all' },
      seed: { type: 'string' },
      save: { type: 'boolean', default: false },
      cmin: { type: 'boolean', default: false },
      replay: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log('npm run fuzz -- [--seconds N per protocol] [--protocol fastcgi|scgi|uwsgi|all] [--seed N] [--save] [--cmin] [--replay FILE… --protocol P]');
    return 0;
  }
  const protocols = values.protocol === 'all' ? ALL : ALL.filter((p) => p === values.protocol);
  if (protocols.length === 0) throw new Error(`unknown --protocol ${values.protocol}`);
  if (values.replay) {
    if (protocols.length !== 1) throw new Error('--replay needs one --protocol');
    return replay(protocols[0]!, positionals);
  }
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  const seed = values.seed === undefined ? (Date.now() ^ (process.pid << 16)) >>> 0 : Number(values.seed) >>> 0;
  console.log(`fuzzing ${protocols.join(', ')} for ${String(seconds)} s each, seed ${String(seed)}${values.save ? ', saving new coverage to fuzz/corpus/' : ''}`);
  let total = 0;
  for (const protocol of protocols) {
    const job: Job = { protocol, seconds, seed, save: values.save, cmin: values.cmin, slot: new SharedArrayBuffer(SLOT_BYTES) };
    const { findings, done } = await runJob(job);
    total += findings;
    if (done !== undefined) summary(protocol, done, findings);
  }
  console.log(total === 0 ? 'no findings' : `${String(total)} finding(s): see fuzz/crashes/`);
  return total === 0 ? 0 : 1;
}

if (isMainThread) {
  process.exitCode = await main();
} else {
  await workerMain(workerData as Job);
}
