// The fuzz corpus in CI, from the decoders' side: every committed input (real nginx/Apache/cgi-fcgi
// captures, hand-made edge seeds, inputs the fuzzer found) replayed through its decoder whole, byte
// by byte and under random splits, every input through the other two decoders too, and a short
// deterministic mutation campaign per protocol. The oracle (fuzz/oracle.ts) checks the invariants.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadCorpus } from '../../fuzz/corpus.ts';
import { Engine, type Finding } from '../../fuzz/engine.ts';
import { checkInput, PROTOCOLS, type Protocol, type Verdict } from '../../fuzz/oracle.ts';

/** Fixed, so CI is reproducible; set POSTERN_FUZZ_SEED to explore other mutations locally. */
const SEED = Number(process.env['POSTERN_FUZZ_SEED'] ?? 20240601) >>> 0;
/** Mutated inputs per protocol, and a wall-clock cap that keeps a slow, shared CI box in budget. */
const CAMPAIGN_EXECS = 10000;
const CAMPAIGN_MS = 3000;

function explain(name: string, v: Verdict): string {
  const p = v.problem;
  return p === undefined ? '' : `${name}: ${p.kind}\n${p.detail}\n(config ${p.config}, feed ${p.feed})`;
}

function explainFinding(protocol: Protocol, f: Finding): string {
  return `${protocol} mutation campaign (seed ${String(SEED)}) found: ${f.problem.kind}\n${f.problem.detail}\n` +
    `config ${f.problem.config}, feed ${f.problem.feed}; minimized input (hex): ${f.minimized.toString('hex')}`;
}

describe('fuzz corpus', () => {
  for (const protocol of PROTOCOLS) {
    const corpus = loadCorpus(protocol);

    it(`${protocol}: the committed corpus holds captured traffic and hand-made seeds`, () => {
      assert.ok(corpus.some((c) => c.name.startsWith('nginx-')), 'nginx captures');
      assert.ok(corpus.some((c) => c.name.startsWith('apache-')), 'Apache captures');
      assert.ok(corpus.some((c) => c.name.startsWith('hand-')), 'hand-made seeds');
      const bytes = corpus.reduce((n, c) => n + c.bytes.length, 0);
      assert.ok(bytes < 200 * 1024, `${protocol} corpus is ${String(bytes)} bytes: keep it small (npm run fuzz -- --cmin)`);
    });

    describe(`${protocol}: replay through its decoder (whole, bytewise, random splits)`, () => {
      for (const entry of corpus) {
        it(entry.name, () => {
          const verdict = checkInput(protocol, entry.bytes, { thorough: 3 });
          assert.equal(verdict.problem, undefined, explain(entry.name, verdict));
        });
      }
    });

    for (const other of PROTOCOLS) {
      if (other === protocol) continue;
      it(`${protocol} corpus through the ${other} decoder (the wrong protocol on the port)`, () => {
        for (const entry of corpus) {
          const verdict = checkInput(other, entry.bytes);
          assert.equal(verdict.problem, undefined, explain(`${protocol}/${entry.name} as ${other}`, verdict));
        }
      });
    }

    it(`${protocol}: a short mutation campaign from the corpus finds nothing`, () => {
      const engine = new Engine({ protocol, seeds: corpus.map((c) => c.bytes), seed: SEED, minimizeRuns: 500 });
      engine.init();
      engine.run(performance.now() + CAMPAIGN_MS, CAMPAIGN_EXECS);
      const stats = engine.stats();
      assert.ok(stats.execs >= 500 || stats.execs >= CAMPAIGN_EXECS, `only ${String(stats.execs)} mutated inputs ran`);
      const [first] = engine.findings;
      assert.equal(first, undefined, first === undefined ? '' : explainFinding(protocol, first));
    });
  }
});
