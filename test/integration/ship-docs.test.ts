// The documentation, from a reader's side: the README's quick start still first and still true,
// every link and anchor resolving, the nginx/Apache snippets still matching the tested config files,
// every YAML example a valid configuration, and every option, variable and error code it names real.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { repoRoot } from '../helpers/front/root.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { DEFAULT_LISTENERS, OPTION_LIST, OPTIONS } from '../../src/config/options.ts';
import { exampleTree } from '../../src/examples/tree.ts';
import { inject } from '../../src/app/inject.ts';

const root = repoRoot();
const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const read = (p: string): string => readFileSync(join(root, p), 'utf8');

/** Fenced blocks of a Markdown text, with their info string. */
function fences(text: string): Array<{ lang: string; body: string }> {
  return [...text.matchAll(/^```([\w-]*)\n([^]*?)^```$/gm)].map((m) => ({ lang: m[1] ?? '', body: m[2] ?? '' }));
}

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
function anchors(text: string): Set<string> {
  const out = new Set<string>();
  const withoutCode = text.replace(/^```[^]*?^```$/gm, '');
  for (const m of withoutCode.matchAll(/^#{1,6} (.+)$/gm)) {
    out.add((m[1] ?? '').toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').trim().replace(/ /g, '-'));
  }
  return out;
}

test('the README opens with the quick start, and its two commands are still the project\'s', async () => {
  const readme = read('README.md');
  const firstSection = /^## (.+)$/m.exec(readme)?.[1];
  assert.equal(firstSection, 'Quick start');
  const quick = readme.slice(readme.indexOf('## Quick start'));
  const block = fences(quick)[0]?.body ?? '';
  const commands = block.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  assert.deepEqual(commands, ['npm ci && node_modules/.bin/postern', 'npm ci && npm test']);
  // What they promise: `prepare` links the bin, the defaults are the ones the comment names, and
  // the curl in the comment gets an answer from the example tree.
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts['prepare'] ?? '', /link-bin/);
  assert.ok(pkg.scripts['test'] !== undefined);
  const defaults = DEFAULT_LISTENERS.map((l) => `${l.protocol} ${l.address}`);
  assert.deepEqual(defaults, ['fastcgi 127.0.0.1:9000', 'http 127.0.0.1:8080']);
  assert.match(block, /FastCGI 127\.0\.0\.1:9000 and HTTP 127\.0\.0\.1:8080/);
  const url = /curl '(http:\/\/127\.0\.0\.1:8080)([^']+)'/.exec(block);
  assert.ok(url !== null);
  const res = await inject(exampleTree(), { url: url[2] ?? '' });
  assert.equal(res.status, 200);
  assert.match(res.text, /^Positional arguments/);
});

test('every relative link in the README and docs/ resolves, anchors included', () => {
  const broken: string[] = [];
  let links = 0;
  for (const doc of docs) {
    const text = read(doc).replace(/^```[^]*?^```$/gm, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z]+:/.test(target)) continue;
      links++;
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? join(root, doc) : resolve(dirname(join(root, doc)), path);
      if (!existsSync(file)) {
        broken.push(`${doc}: ${target}`);
        continue;
      }
      if (anchor !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${doc}: ${target} (no such heading)`);
    }
  }
  assert.ok(links >= 30, `${links} links`);
  assert.deepEqual(broken, []);
});

test('each nginx/Apache snippet in docs/front-servers.md matches the tested config file its heading names', () => {
  const text = read('docs/front-servers.md');
  let checked = 0;
  const drift: string[] = [];
  for (const section of text.split(/^### /m).slice(1)) {
    const file = /`(config\/(?:nginx|apache)\/[\w-]+\.conf)`/.exec(section.split('\n')[0] ?? '')?.[1];
    if (file === undefined) continue;
    const conf = new Set(read(file).split('\n').map((l) => l.trim()));
    for (const { lang, body } of fences(section)) {
      if (lang !== 'nginx' && lang !== 'apache') continue;
      checked++;
      for (const line of body.split('\n').map((l) => l.trim())) {
        if (line === '' || line.startsWith('#') || line === '}' || !line.includes(' ')) continue;
        if (!conf.has(line)) drift.push(`${file}: ${line}`);
      }
    }
  }
  assert.ok(checked >= 8, `${checked} snippets checked`);
  assert.deepEqual(drift, []);
});

test('every YAML configuration in the docs is valid', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-docs-'));
  try {
    let n = 0;
    for (const doc of docs) {
      for (const { lang, body } of fences(read(doc))) {
        if (lang !== 'yaml') continue;
        const file = join(dir, `example-${n++}.yaml`);
        writeFileSync(file, body);
        assert.doesNotThrow(() => resolveConfig({ file, cwd: dir, checkPaths: false }), `${doc}:\n${body}`);
      }
    }
    assert.ok(n >= 2, `${n} YAML examples`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the options, variables and error codes the docs name exist', () => {
  const sources = ['src', 'protocols'].flatMap(function walk(d: string): string[] {
    return readdirSync(join(root, d), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${d}/${e.name}`) : e.name.endsWith('.ts') ? [read(`${d}/${e.name}`)] : []));
  }).join('\n');
  const envNames = new Set<string>(OPTION_LIST.map((o) => o.env));
  const unknown: string[] = [];
  for (const doc of docs.filter((d) => d !== 'docs/configuration.md')) {
    const text = read(doc);
    for (const m of text.matchAll(/\bPOSTERN_ERR_[A-Z0-9_]+/g)) if (!sources.includes(`'${m[0]}'`)) unknown.push(`${doc}: ${m[0]}`);
    for (const m of text.matchAll(/\bPOSTERN_(?!ERR_)[A-Z0-9_]+\b/g)) if (!envNames.has(m[0])) unknown.push(`${doc}: ${m[0]}`);
  }
  // The migration tables' postern column: every camelCase name is an option.
  const migration = read('docs/migration.md');
  for (const row of migration.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| --'))) {
    const cell = row.split(' | ')[1] ?? '';
    for (const m of cell.matchAll(/`([a-z]+[A-Z][A-Za-z]*)`/g)) if (!((m[1] ?? '') in OPTIONS)) unknown.push(`migration: ${m[1] ?? ''}`);
  }
  assert.deepEqual(unknown, []);
});
