// The committed fuzz corpus, from the fuzzer's and the tests' side: raw inputs in
// fuzz/corpus/<protocol>/*.bin, seeds captured from real nginx/Apache/cgi-fcgi traffic plus
// hand-made edge cases and the inputs fuzzing found that add coverage.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Protocol } from './oracle.ts';

/** The repository root, from this file in fuzz/ (tsx) or build/fuzz/ (compiled). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above fuzz/');
    dir = up;
  }
  return dir;
}

export function corpusDir(protocol: Protocol): string {
  return join(repoRoot(), 'fuzz', 'corpus', protocol);
}

export interface CorpusEntry {
  readonly name: string;
  readonly bytes: Buffer;
}

/** Every input of a protocol's corpus, sorted by name. */
export function loadCorpus(protocol: Protocol): CorpusEntry[] {
  const dir = corpusDir(protocol);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((name) => ({ name, bytes: readFileSync(join(dir, name)) }));
}

export function shortHash(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex').slice(0, 12);
}

/** Writes `bytes` as fuzz/corpus/<protocol>/<prefix>-<sha1>.bin unless an equal input exists. */
export function saveToCorpus(protocol: Protocol, prefix: string, bytes: Buffer): string {
  const dir = corpusDir(protocol);
  mkdirSync(dir, { recursive: true });
  const name = `${prefix}-${shortHash(bytes)}.bin`;
  writeFileSync(join(dir, name), bytes);
  return name;
}
