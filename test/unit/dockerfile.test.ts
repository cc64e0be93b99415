// The Dockerfile and .dockerignore, from a reviewer's side: a rule-based lint (each rule shown to
// fail on a broken copy), the container's POSTERN_* defaults checked against the option table, and
// the build context checked against what the Dockerfile copies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/front/root.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { OPTION_LIST } from '../../src/config/options.ts';
import {
  execForm, finalStage, isIgnored, last, lintDockerfile, parseDockerfile, parseDockerignore, parseEnv, RULES, stageEnv,
} from './dockerfile-parse.ts';

const root = repoRoot();
const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
const df = parseDockerfile(text);
const fin = finalStage(df);

test('the parser joins continuations, drops comments and splits flags', () => {
  const p = parseDockerfile('# syntax=docker/dockerfile:1\nARG IMG=node:24-slim\nFROM ${IMG} AS b\nRUN a \\\n  # inside\n  && b\nFROM b\nHEALTHCHECK --interval=5s --timeout=2s \\\n  CMD ["x"]\nENV A=1 B="two words" C=\'q\'\n');
  assert.equal(p.stages.length, 2);
  assert.equal(p.stages[0]?.base, 'node:24-slim');
  assert.equal(p.stages[0]?.name, 'b');
  assert.deepEqual(p.stages[0]?.instructions.map((i) => [i.keyword, i.rest]), [['FROM', '${IMG} AS b'], ['RUN', 'a && b']]);
  const hc = p.stages[1]?.instructions[1];
  assert.deepEqual(hc?.flags, { interval: '5s', timeout: '2s' });
  assert.equal(hc?.rest, 'CMD ["x"]');
  assert.deepEqual(parseEnv('A=1 B="two words" C=\'q\''), [['A', '1'], ['B', 'two words'], ['C', 'q']]);
  assert.deepEqual(parseEnv('LEGACY some value'), [['LEGACY', 'some value']]);
  assert.deepEqual(execForm('["node", "x"]'), ['node', 'x']);
  assert.equal(execForm('node x'), undefined);
});

test('the Dockerfile passes every lint rule', () => {
  assert.deepEqual(lintDockerfile(text), []);
});

// Each rule must be able to fail: a broken copy of the real file breaks exactly the rule named.
const MUTATIONS: ReadonlyArray<{ readonly rule: string; readonly edit: (t: string) => string }> = [
  { rule: RULES.MULTI_STAGE, edit: (t) => t.replace(/COPY --from=build \S+ dist\//, 'COPY dist/ dist/') },
  { rule: RULES.TAGGED_BASE, edit: (t) => t.replace(/ARG NODE_IMAGE=\S+/, 'ARG NODE_IMAGE=node:latest') },
  { rule: RULES.TAGGED_BASE, edit: (t) => t.replace(/ARG NODE_IMAGE=\S+/, 'ARG NODE_IMAGE=node:lts-slim') },
  { rule: RULES.TAGGED_BASE, edit: (t) => t.replace(/ARG NODE_IMAGE=\S+/, 'ARG NODE_IMAGE=node-slim') },
  { rule: RULES.SLIM_BASE, edit: (t) => t.replace(/ARG NODE_IMAGE=\S+/, 'ARG NODE_IMAGE=node:24-bookworm') },
  { rule: RULES.NON_ROOT, edit: (t) => t.replace(/^USER .*$/m, 'USER root') },
  { rule: RULES.NON_ROOT, edit: (t) => t.replace(/^USER .*$/m, '') },
  { rule: RULES.HEALTHCHECK, edit: (t) => t.replace(/HEALTHCHECK[^\n]*\\\n[^\n]*\n/, '') },
  { rule: RULES.HEALTHCHECK, edit: (t) => t.replace(/--timeout=\S+ /, '') },
  { rule: RULES.STOPSIGNAL, edit: (t) => t.replace(/^STOPSIGNAL .*$/m, 'STOPSIGNAL SIGKILL') },
  { rule: RULES.EXPOSE_FASTCGI, edit: (t) => t.replace(/^EXPOSE .*$/m, 'EXPOSE 9001') },
  { rule: RULES.NPM_CI, edit: (t) => t.replace('RUN npm ci --ignore-scripts', 'RUN npm install --ignore-scripts') },
  { rule: RULES.OMIT_DEV, edit: (t) => t.replace(' --omit=dev', '') },
  { rule: RULES.COPY_NOT_ADD, edit: (t) => t.replace('COPY bin/ bin/', 'ADD bin/ bin/') },
  { rule: RULES.EXEC_FORM, edit: (t) => t.replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT node /app/bin/postern.js') },
  { rule: RULES.ABSOLUTE_WORKDIR, edit: (t) => t.replace('WORKDIR /app', 'WORKDIR app') },
  { rule: RULES.NO_CD, edit: (t) => t.replace('RUN npm run build', 'RUN cd /app && npm run build') },
  { rule: RULES.NO_SUDO, edit: (t) => t.replace('RUN npm run build', 'RUN sudo npm run build') },
  { rule: RULES.BUILD_OUTPUT_ONLY, edit: (t) => t.replace('COPY config/ config/', 'COPY config/ config/\nCOPY src/ src/') },
  { rule: RULES.KNOWN_KEYWORDS, edit: (t) => t.replace('COPY bin/ bin/', 'COPY bin/ bin/\nONBUILD RUN true') },
];

for (const m of MUTATIONS) {
  test(`lint rule ${m.rule} fails on a Dockerfile that breaks it`, () => {
    const broken = m.edit(text);
    assert.notEqual(broken, text, 'the mutation must change the file');
    assert.ok(lintDockerfile(broken).includes(m.rule), `expected ${m.rule} in ${JSON.stringify(lintDockerfile(broken))}`);
  });
}

test('every lint rule has a failing example', () => {
  const covered = new Set(MUTATIONS.map((m) => m.rule));
  assert.deepEqual(Object.values(RULES).filter((r) => !covered.has(r)), []);
});

test('the container defaults are options of the table and resolve to a valid configuration', () => {
  const env = Object.fromEntries(stageEnv(fin));
  const known = new Set(OPTION_LIST.map((o) => o.env));
  const postern = Object.keys(env).filter((k) => k.startsWith('POSTERN_'));
  assert.ok(postern.length > 0);
  assert.deepEqual(postern.filter((k) => !known.has(k as `POSTERN_${string}`)), []);
  const config = resolveConfig({ env, cwd: '/app', checkPaths: false });
  assert.deepEqual(config.listeners.map((l) => `${l.protocol} ${l.address}`), ['fastcgi :9000']);
  assert.equal(config.logFormat, 'json');
  assert.equal(config.accessLog, '-');
  // The graceful stop (requests, then the apps' shutdown hooks) must finish inside Docker's default
  // 10 s between SIGTERM and SIGKILL.
  assert.ok(config.shutdownTimeoutMs + config.appCloseTimeoutMs < 10_000, `shutdownTimeoutMs ${config.shutdownTimeoutMs} + appCloseTimeoutMs ${config.appCloseTimeoutMs}`);
  // Every listener port the defaults open is EXPOSEd, and nothing else is.
  const ports = [...config.listeners.map((l) => l.address), ...(config.statusListen === undefined ? [] : [config.statusListen])]
    .map((a) => /:(\d+)$/.exec(a)?.[1]);
  const exposed = fin.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.rest.split(/\s+/));
  assert.deepEqual([...exposed].sort(), [...ports].sort());
});

test('the HEALTHCHECK runs `postern health` and gives up before Docker kills it', () => {
  const hc = last(fin, 'HEALTHCHECK');
  assert.ok(hc !== undefined);
  const argv = execForm(/^CMD\s+(.*)$/i.exec(hc.rest)?.[1] ?? '');
  const entry = execForm(last(fin, 'ENTRYPOINT')?.rest ?? '');
  assert.ok(argv !== undefined && entry !== undefined);
  assert.deepEqual(argv.slice(0, entry.length), entry, 'the health check runs the same program as the ENTRYPOINT');
  assert.equal(argv[entry.length], 'health');
  const i = argv.indexOf('--timeout-ms');
  const probeMs = Number(argv[i + 1]);
  const dockerMs = Number(/^(\d+)s$/.exec(hc.flags['timeout'] ?? '')?.[1]) * 1000;
  assert.ok(i > 0 && probeMs > 0 && probeMs < dockerMs, `probe ${probeMs} ms, docker ${dockerMs} ms`);
});

test('.dockerignore keeps what the Dockerfile copies and leaves out the rest', () => {
  const rules = parseDockerignore(readFileSync(join(root, '.dockerignore'), 'utf8'));
  const sources = df.stages.flatMap((s) => s.instructions)
    .filter((i) => i.keyword === 'COPY' && i.flags['from'] === undefined)
    .flatMap((i) => i.rest.split(/\s+/).slice(0, -1))
    .map((p) => p.replace(/\/$/, ''));
  assert.ok(sources.length >= 5);
  for (const s of sources) {
    assert.ok(existsSync(join(root, s)), `${s} exists`);
    assert.equal(isIgnored(rules, s), false, `${s} is in the context`);
    assert.equal(isIgnored(rules, `${s}/x.ts`), false, `${s}/… is in the context`);
  }
  for (const p of ['.git', 'node_modules', 'node_modules/commander/index.js', 'dist', 'build', 'test', '.tmp', 'docs', 'Dockerfile']) {
    assert.equal(isIgnored(rules, p), true, `${p} stays out of the context`);
  }
});

test('the ignore matcher: last rule wins, parents count, ** crosses directories', () => {
  const rules = parseDockerignore('*\n!src/\nsrc/**/*.test.ts\n# c\n');
  assert.equal(isIgnored(rules, 'README.md'), true);
  assert.equal(isIgnored(rules, 'src/a/b.ts'), false);
  assert.equal(isIgnored(rules, 'src/a/b.test.ts'), true);
  assert.equal(isIgnored(parseDockerignore('node_modules\n'), 'node_modules/x/y'), true);
  assert.equal(isIgnored(parseDockerignore('node_modules\n'), 'src/node_modules'), false);
});
