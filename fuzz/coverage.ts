// Coverage feedback for the fuzzer, from inside the fuzzed isolate: V8 precise block coverage
// through node:inspector (the same counters c8 reads), sampled synchronously, painted onto the
// code of the protocols/ scripts so that "new coverage" means source never executed before.
//
// V8 reports a nested block only where its count differs from its parent's, so a block's
// identity is not stable across samples; painting counts per character (outer ranges first,
// inner ones override) and keeping an ever-covered bitmap per script is. A sample costs about a
// millisecond whatever ran since the last one, so the engine samples batches, not single inputs.
// Never use this in a process that collects coverage for other reasons (c8, NODE_V8_COVERAGE,
// --experimental-test-coverage): taking precise coverage resets V8's counters for everyone.

import { Session } from 'node:inspector';

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface ScriptCoverage {
  readonly scriptId: string;
  readonly url: string;
  readonly functions: ReadonlyArray<{ readonly ranges: readonly Range[] }>;
}

/** Covered characters of each script in one sample. */
export type Sample = Map<string, Uint8Array>;

interface ScriptState {
  readonly url: string;
  scriptId: string;
  /** Characters ever executed. */
  covered: Uint8Array;
  /** Every block range V8 has reported, as start*2^24+end. */
  readonly ranges: Set<number>;
}

export interface FileCoverage {
  readonly file: string;
  readonly coveredChars: number;
  readonly totalChars: number;
  readonly coveredBlocks: number;
  readonly knownBlocks: number;
  /** Original (TS) lines, through the inline source map: lines with code, and of those executed. */
  readonly lines: number;
  readonly coveredLines: number;
  /** Original lines with code never executed. */
  readonly uncoveredLines: number[];
}

export class BlockCoverage {
  readonly #session = new Session();
  readonly #filter: (url: string) => boolean;
  readonly #scripts = new Map<string, ScriptState>();

  /** `filter` picks the scripts that count, by URL (e.g. those under protocols/scgi/). */
  constructor(filter: (url: string) => boolean) {
    this.#filter = filter;
  }

  /** Starts counting. Call before importing the code under test, so it is compiled with counters. */
  start(): void {
    this.#session.connect();
    this.#post('Profiler.enable', {});
    this.#post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  stop(): void {
    this.#post('Profiler.stopPreciseCoverage', {});
    this.#session.disconnect();
  }

  /** What ran since the previous sample (or start), and resets the counters. */
  sample(): Sample {
    const { result } = this.#post('Profiler.takePreciseCoverage', {}) as { result: ScriptCoverage[] };
    const out: Sample = new Map();
    for (const script of result) {
      if (!this.#filter(script.url)) continue;
      const all: Range[] = [];
      let size = 0;
      for (const f of script.functions) {
        for (const r of f.ranges) {
          all.push(r);
          if (r.endOffset > size) size = r.endOffset;
        }
      }
      // Outer ranges first (start ascending, longer first), so inner ones override them.
      all.sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
      const painted = new Uint8Array(size);
      let state = this.#scripts.get(script.url);
      if (state === undefined) {
        state = { url: script.url, scriptId: script.scriptId, covered: new Uint8Array(size), ranges: new Set() };
        this.#scripts.set(script.url, state);
      }
      for (const r of all) {
        painted.fill(r.count > 0 ? 1 : 0, r.startOffset, r.endOffset);
        state.ranges.add(r.startOffset * 0x1000000 + r.endOffset);
      }
      out.set(script.url, painted);
    }
    return out;
  }

  /** Characters a sample covers that no committed sample did. */
  novelty(sample: Sample): number {
    let n = 0;
    for (const [url, painted] of sample) {
      const covered = this.#scripts.get(url)?.covered;
      for (let i = 0; i < painted.length; i++) if (painted[i] === 1 && (covered === undefined || i >= covered.length || covered[i] === 0)) n++;
    }
    return n;
  }

  /** Adds a sample to the ever-covered set; returns how many characters were new. */
  commit(sample: Sample): number {
    let n = 0;
    for (const [url, painted] of sample) {
      const state = this.#scripts.get(url)!;
      if (state.covered.length < painted.length) {
        const grown = new Uint8Array(painted.length);
        grown.set(state.covered);
        state.covered = grown;
      }
      const covered = state.covered;
      for (let i = 0; i < painted.length; i++) {
        if (painted[i] === 1 && covered[i] === 0) {
          covered[i] = 1;
          n++;
        }
      }
    }
    return n;
  }

  /** Covered characters over all scripts: the fuzzer's progress figure. */
  get coveredChars(): number {
    let n = 0;
    for (const s of this.#scripts.values()) for (const c of s.covered) n += c;
    return n;
  }

  /** Per-file figures. Reads each script's source once, through the inspector's Debugger domain. */
  report(): FileCoverage[] {
    this.#post('Debugger.enable', {});
    const out: FileCoverage[] = [];
    for (const s of this.#scripts.values()) {
      const { scriptSource } = this.#post('Debugger.getScriptSource', { scriptId: s.scriptId }) as { scriptSource: string };
      out.push(fileCoverage(s, scriptSource));
    }
    this.#post('Debugger.disable', {});
    return out.sort((a, b) => a.file.localeCompare(b.file));
  }

  #post(method: string, params: object): unknown {
    const out: { error: Error | null; result: unknown } = { error: null, result: undefined };
    // A same-thread inspector session dispatches synchronously: the callback has run on return.
    (this.#session.post as (m: string, p: object, cb: (err: Error | null, res: unknown) => void) => void)(method, params, (err, res) => {
      out.error = err;
      out.result = res;
    });
    if (out.error !== null) throw out.error;
    return out.result;
  }
}

function fileCoverage(s: ScriptState, source: string): FileCoverage {
  const file = s.url.replace(/^file:\/\//, '');
  // Blocks: the innermost known range owning each character; a block is covered when one of
  // its own characters is.
  const ranges = [...s.ranges].map((k) => [Math.floor(k / 0x1000000), k % 0x1000000] as const).sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const owner = new Int32Array(source.length).fill(-1);
  ranges.forEach(([start, end], i) => owner.fill(i, start, Math.min(end, source.length)));
  const hit = new Set<number>();
  const owned = new Set<number>();
  let covered = 0;
  for (let i = 0; i < owner.length; i++) {
    const o = owner[i]!;
    if (o >= 0) owned.add(o);
    if (i < s.covered.length && s.covered[i] === 1) {
      covered++;
      if (o >= 0) hit.add(o);
    }
  }
  const lines = lineCoverage(source, s.covered);
  return {
    file,
    coveredChars: covered,
    totalChars: source.length,
    coveredBlocks: hit.size,
    knownBlocks: owned.size,
    lines: lines.total,
    coveredLines: lines.covered,
    uncoveredLines: lines.uncovered,
  };
}

// ---- inline source maps (tsx/esbuild) ------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Original lines with a mapped generated position, and which of them ran. */
function lineCoverage(source: string, covered: Uint8Array): { total: number; covered: number; uncovered: number[] } {
  const m = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/.exec(source);
  if (m === null) return { total: 0, covered: 0, uncovered: [] };
  const map = JSON.parse(Buffer.from(m[1]!, 'base64').toString('utf8')) as { mappings: string };
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const seen = new Set<number>();
  const ran = new Set<number>();
  let genLine = 0;
  let origLine = 0;
  for (const line of map.mappings.split(';')) {
    let genCol = 0;
    for (const seg of line.split(',')) {
      if (seg.length === 0) continue;
      const fields = decodeVlq(seg);
      genCol += fields[0]!;
      if (fields.length < 4) continue;
      origLine += fields[2]!;
      const offset = (lineStarts[genLine] ?? 0) + genCol;
      seen.add(origLine + 1);
      if (offset < covered.length && covered[offset] === 1) ran.add(origLine + 1);
    }
    genLine++;
  }
  const uncovered = [...seen].filter((l) => !ran.has(l)).sort((a, b) => a - b);
  return { total: seen.size, covered: ran.size, uncovered };
}

function decodeVlq(seg: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of seg) {
    const digit = B64.indexOf(ch);
    value += (digit & 31) << shift;
    if ((digit & 32) !== 0) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return out;
}
