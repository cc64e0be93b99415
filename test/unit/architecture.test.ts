// Keeps the layering STYLE.md describes: protocols/ is pure (no src/, no I/O modules), src/ may
// import protocols/, never the reverse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = findRoot(dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  let dir = from;
  while (!statSafe(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
function statSafe(p: string): boolean {
  try { statSync(p); return true; } catch { return false; }
}
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, name.name);
    if (name.isDirectory()) out.push(...sources(p));
    else if (name.name.endsWith('.ts') && !name.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) found.push(m[1] ?? '');
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1] ?? '');
  return found;
}

// No sockets, files, timers, processes or logging inside the codecs.
const FORBIDDEN_IN_PROTOCOLS = new Set(['net', 'node:net', 'fs', 'node:fs', 'node:fs/promises', 'http', 'node:http',
  'child_process', 'node:child_process', 'node:timers', 'timers', 'winston', 'node:cluster', 'node:dgram', 'node:tls']);

test('protocols/ imports nothing from src/ and no I/O modules', () => {
  const protocolsDir = join(root, 'protocols');
  const files = sources(protocolsDir);
  assert.ok(files.length > 0, 'protocols/ has sources');
  const offences: string[] = [];
  for (const file of files) {
    for (const spec of imports(file)) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(protocolsDir)) offences.push(`${relative(root, file)} imports ${spec}`);
      } else if (FORBIDDEN_IN_PROTOCOLS.has(spec)) {
        offences.push(`${relative(root, file)} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(offences, []);
});

test('the import scanner sees relative imports (guards against a test that cannot fail)', () => {
  const file = join(root, 'protocols', 'common', 'index.ts');
  assert.ok(imports(file).includes('./errors.ts'));
});
