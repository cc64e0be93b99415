// The fuzz loop, from the fuzzer's side: a queue of inputs (the corpus first), havoc mutation of
// a picked parent, the oracle on every child, and feedback that keeps a child when it covers new
// decoder code (V8 block coverage, optional) or makes the decoder say something new (log
// features). Runs in-process and synchronously; fuzz/run.ts adds the worker, clock and files.

import type { BlockCoverage, Sample } from './coverage.ts';
import { Havoc, Rng } from './mutate.ts';
import { checkInput, type Problem, type Protocol } from './oracle.ts';

export interface Finding {
  readonly problem: Problem;
  readonly input: Buffer;
  /** The smallest input found that shows the same kind of problem. */
  readonly minimized: Buffer;
  readonly atExec: number;
}

export interface EngineOptions {
  readonly protocol: Protocol;
  readonly seeds: readonly Buffer[];
  readonly seed: number;
  /** Coverage feedback; without it only log features guide the queue. */
  readonly coverage?: BlockCoverage;
  /** Called with each input just before it runs (the hang watchdog keeps a copy). */
  readonly onExec?: (input: Buffer) => void;
  readonly onFinding?: (finding: Finding) => void;
  /** An input slower than this is reported once as a finding of kind `slow input`. */
  readonly slowMs?: number;
  /** Minimization budget per finding, in oracle runs. */
  readonly minimizeRuns?: number;
}

interface Entry {
  readonly bytes: Buffer;
  readonly origin: 'seed' | 'coverage' | 'features';
  /** Coverage it added when it was kept (characters). */
  readonly gain: number;
}

export interface EngineStats {
  /** Mutated inputs checked (each is several decoder runs: every config, whole and split). */
  readonly execs: number;
  readonly queue: number;
  readonly fromCoverage: number;
  readonly fromFeatures: number;
  readonly features: number;
  readonly coveredChars: number;
  readonly findings: number;
}

export class Engine {
  readonly #o: EngineOptions;
  readonly #rng: Rng;
  readonly #havoc: Havoc;
  readonly #queue: Entry[] = [];
  readonly #bytes: Buffer[] = [];
  readonly #features = new Set<number>();
  readonly #findings = new Map<string, Finding>();
  #execs = 0;
  #batch = 1;
  /** Coverage after the seeds alone, to tell what the campaign added. */
  #baseline = 0;

  constructor(options: EngineOptions) {
    this.#o = options;
    this.#rng = new Rng(options.seed);
    this.#havoc = new Havoc(options.protocol);
  }

  get findings(): Finding[] {
    return [...this.#findings.values()];
  }

  get baselineChars(): number {
    return this.#baseline;
  }

  /** Inputs the campaign kept beyond the seeds, with what kept them. */
  get discovered(): ReadonlyArray<{ bytes: Buffer; origin: string; gain: number }> {
    return this.#queue.filter((e) => e.origin !== 'seed');
  }

  stats(): EngineStats {
    return {
      execs: this.#execs,
      queue: this.#queue.length,
      fromCoverage: this.#queue.filter((e) => e.origin === 'coverage').length,
      fromFeatures: this.#queue.filter((e) => e.origin === 'features').length,
      features: this.#features.size,
      coveredChars: this.#o.coverage?.coveredChars ?? 0,
      findings: this.#findings.size,
    };
  }

  /** Runs the seeds: each is checked, and its coverage and features become the baseline. */
  init(): void {
    const cov = this.#o.coverage;
    // What ran since coverage started is the modules' own evaluation: covered, and nobody's gain.
    if (cov !== undefined) cov.commit(cov.sample());
    for (const seed of this.#o.seeds) {
      this.#exec(seed);
      const gain = cov === undefined ? 0 : cov.commit(cov.sample());
      this.#keep(seed, 'seed', gain);
    }
    if (this.#queue.length === 0) this.#keep(Buffer.alloc(0), 'seed', 0);
    this.#baseline = cov?.coveredChars ?? 0;
  }

  /** One batch of mutated inputs; returns how many ran. Batches grow while nothing new turns up. */
  step(): number {
    const cov = this.#o.coverage;
    const batch: Buffer[] = [];
    for (let i = 0; i < this.#batch; i++) {
      const parent = this.#pick();
      const child = this.#havoc.mutate(parent.bytes, this.#rng, this.#bytes);
      const features = this.#exec(child);
      if (features === undefined) continue;
      let fresh = false;
      for (const f of features) {
        if (!this.#features.has(f)) {
          this.#features.add(f);
          fresh = true;
        }
      }
      if (fresh) this.#keep(child, 'features', 0);
      batch.push(child);
    }
    const ran = this.#batch;
    if (cov !== undefined) {
      if (cov.novelty(cov.sample()) > 0) {
        // Someone in the batch ran new code: find who, one input per sample.
        for (const child of batch) {
          this.#exec(child, false);
          const gain = cov.commit(cov.sample());
          if (gain > 0) this.#keep(child, 'coverage', gain);
        }
        this.#batch = Math.max(1, this.#batch >> 2);
      } else {
        this.#batch = Math.min(256, this.#batch * 2);
      }
    } else {
      this.#batch = 256;
    }
    return ran;
  }

  /** Runs batches until `deadline` (ms, performance.now()) or `maxExecs`. */
  run(deadline: number, maxExecs = Infinity, onTick?: () => void): void {
    while (performance.now() < deadline && this.#execs < maxExecs) {
      this.step();
      onTick?.();
    }
  }

  /** The coverage one input reaches on its own (runs it once). */
  sampleOf(input: Buffer): Sample | undefined {
    const cov = this.#o.coverage;
    if (cov === undefined) return undefined;
    cov.sample();
    this.#exec(input, false);
    return cov.sample();
  }

  #pick(): Entry {
    const q = this.#queue;
    let e = this.#rng.chance(0.3) ? q[q.length - 1 - this.#rng.int(Math.min(32, q.length))]! : q[this.#rng.int(q.length)]!;
    // Small inputs mutate into more new paths per second; big ones still get their turn.
    if (e.bytes.length > 8192 && this.#rng.chance(0.5)) e = q[this.#rng.int(q.length)]!;
    return e;
  }

  #keep(bytes: Buffer, origin: Entry['origin'], gain: number): void {
    this.#queue.push({ bytes, origin, gain });
    this.#bytes.push(bytes);
  }

  /** Checks one input; undefined when it broke an invariant (the finding is recorded). */
  #exec(input: Buffer, count = true): number[] | undefined {
    this.#o.onExec?.(input);
    if (count) this.#execs++;
    const t0 = performance.now();
    const verdict = checkInput(this.#o.protocol, input);
    const ms = performance.now() - t0;
    if (verdict.problem !== undefined) {
      this.#found(input, verdict.problem);
      return undefined;
    }
    const slow = this.#o.slowMs ?? 250;
    if (ms > slow && count) {
      // One slow run is often the machine (a shared box, a GC): slow three times running is the input.
      let best = ms;
      for (let k = 0; k < 3 && best > slow; k++) {
        const t1 = performance.now();
        checkInput(this.#o.protocol, input);
        best = Math.min(best, performance.now() - t1);
      }
      if (best > slow) this.#found(input, { kind: 'slow input', detail: `${best.toFixed(0)} ms at best for ${String(input.length)} bytes (limit ${String(slow)} ms)`, config: '-', feed: 'all' });
    }
    return verdict.features;
  }

  #found(input: Buffer, problem: Problem): void {
    if (this.#findings.has(problem.kind)) return;
    const minimized = problem.kind === 'slow input' ? input : minimize(this.#o.protocol, input, problem.kind, this.#o.minimizeRuns ?? 3000, this.#o.onExec);
    const finding: Finding = { problem, input, minimized, atExec: this.#execs };
    this.#findings.set(problem.kind, finding);
    this.#o.onFinding?.(finding);
  }
}

/**
 * Shrinks an input while it still shows a problem of the same kind: removes halves, quarters…
 * down to single bytes (ddmin-style), within a budget of oracle runs.
 */
export function minimize(protocol: Protocol, input: Buffer, kind: string, budget = 3000, onExec?: (input: Buffer) => void): Buffer {
  let cur = input;
  let runs = 0;
  const same = (candidate: Buffer): boolean => {
    runs++;
    onExec?.(candidate);
    return checkInput(protocol, candidate).problem?.kind === kind;
  };
  for (let chunk = Math.max(1, cur.length >> 1); chunk >= 1 && runs < budget; chunk >>= 1) {
    for (let i = 0; i < cur.length && runs < budget; ) {
      const candidate = Buffer.concat([cur.subarray(0, i), cur.subarray(i + chunk)]);
      if (candidate.length < cur.length && same(candidate)) cur = candidate;
      else i += chunk;
    }
    if (chunk === 1) break;
  }
  return cur;
}
