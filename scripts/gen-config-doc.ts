// Writes docs/configuration.md from the option table (src/config/options.ts). Run after changing an
// option: `node --import tsx scripts/gen-config-doc.ts` (add `--check` to only compare).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigDoc } from '../src/config/doc.ts';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'configuration.md');
const text = renderConfigDoc();
if (process.argv.includes('--check')) {
  let current = '';
  try { current = readFileSync(target, 'utf8'); } catch { /* missing counts as stale */ }
  if (current !== text) {
    process.stderr.write('docs/configuration.md is out of date: run node --import tsx scripts/gen-config-doc.ts\n');
    process.exitCode = 1;
  }
} else {
  writeFileSync(target, text);
  process.stdout.write(`wrote ${target}\n`);
}
