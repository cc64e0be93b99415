// resolveConfig from the operator's side: precedence of the layers, values with units, the errors a
// bad file earns (key, file, line:col, code), impossible combinations, and the shipped examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, parseMountSpec, normalizePrefix } from '../../src/config/load.ts';
import type { ConfigInput, PosternConfig } from '../../src/config/load.ts';
import { CONFIG_ERRORS, ConfigError, formatIssue } from '../../src/config/errors.ts';
import type { ConfigIssue } from '../../src/config/errors.ts';
import { detectFormat, jsonError, parseConfigText } from '../../src/config/file.ts';
import { parseBoolean, parseBytes, parseDuration } from '../../src/config/values.ts';
import { editDistance, suggest } from '../../src/config/suggest.ts';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** Writes `text` as a config file in a fresh directory; returns its path and a cleanup. */
function tempFile(name: string, text: string): { path: string; dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cfg-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return { path, dir, [Symbol.dispose]: () => { rmSync(dir, { recursive: true, force: true }); } };
}

function issuesOf(input: ConfigInput): readonly ConfigIssue[] {
  try {
    resolveConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('expected the configuration to be rejected');
}

function only(input: ConfigInput): ConfigIssue {
  const issues = issuesOf(input);
  assert.equal(issues.length, 1, issues.map(formatIssue).join('\n'));
  return issues[0] as ConfigIssue;
}

// ——— precedence ———

test('precedence: flag > environment > file > default, and sources say which', () => {
  const f = tempFile('p.yaml', 'maxParamsBytes: 2048\nmaxParamCount: 20\nmaxConnections: 30\n');
  try {
    const c = resolveConfig({
      flags: { maxParamsBytes: '4096' },
      env: { POSTERN_MAX_PARAMS_BYTES: '8192', POSTERN_MAX_PARAM_COUNT: '40' },
      file: f.path,
    });
    assert.equal(c.maxParamsBytes, 4096);
    assert.equal(c.sources.maxParamsBytes, 'cli');
    assert.equal(c.maxParamCount, 40);
    assert.equal(c.sources.maxParamCount, 'env');
    assert.equal(c.maxConnections, 30);
    assert.equal(c.sources.maxConnections, 'config');
    assert.equal(c.maxHeadersBytes, 65536);
    assert.equal(c.sources.maxHeadersBytes, 'default');
    assert.equal(c.config, f.path);
  } finally {
    f[Symbol.dispose]();
  }
});

test('the config file comes from --config, else POSTERN_CONFIG; `file` overrides both', () => {
  const a = tempFile('a.yaml', 'maxParamCount: 11\n');
  const b = tempFile('b.yaml', 'maxParamCount: 22\n');
  try {
    assert.equal(resolveConfig({ env: { POSTERN_CONFIG: a.path } }).maxParamCount, 11);
    assert.equal(resolveConfig({ flags: { config: b.path }, env: { POSTERN_CONFIG: a.path } }).maxParamCount, 22);
    assert.equal(resolveConfig({ flags: { config: b.path }, file: a.path }).maxParamCount, 11);
  } finally {
    a[Symbol.dispose]();
    b[Symbol.dispose]();
  }
});

test('a list from a higher layer replaces the lower one; listener defaults apply only when none is given', () => {
  const f = tempFile('p.yaml', 'fastcgi: [127.0.0.1:9001, 127.0.0.1:9002]\n');
  try {
    const c = resolveConfig({ file: f.path, env: { POSTERN_FASTCGI: '127.0.0.1:9003,127.0.0.1:9004' } });
    assert.deepEqual(c.fastcgi, ['127.0.0.1:9003', '127.0.0.1:9004']);
    const d = resolveConfig({ file: f.path, env: { POSTERN_FASTCGI: '127.0.0.1:9003' }, flags: { fastcgi: ['127.0.0.1:9005'] } });
    assert.deepEqual(d.listeners, [{ protocol: 'fastcgi', address: '127.0.0.1:9005' }]);
  } finally {
    f[Symbol.dispose]();
  }
  const onlyScgi = resolveConfig({ flags: { scgi: [':4000'] } });
  assert.deepEqual(onlyScgi.listeners, [{ protocol: 'scgi', address: ':4000' }]);
  const mixed = resolveConfig({ flags: { http: ['127.0.0.1:0'], fastcgi: ['unix:/tmp/x.sock'], uwsgi: ['fd:3'] } });
  assert.deepEqual(mixed.listeners.map((l) => l.protocol), ['fastcgi', 'uwsgi', 'http']);
});

test('an empty environment variable counts as unset; a YAML null leaves the default', () => {
  const f = tempFile('p.yaml', 'logFile: ~\nmaxParamCount: 5\n');
  try {
    const c = resolveConfig({ file: f.path, env: { POSTERN_MAX_PARAM_COUNT: '' } });
    assert.equal(c.maxParamCount, 5);
    assert.equal(c.logFile, undefined);
  } finally {
    f[Symbol.dispose]();
  }
});

test('the configuration is frozen, deeply', () => {
  const c = resolveConfig({ flags: { mount: ['/a=pkg'] }, checkPaths: false });
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.listeners));
  assert.ok(Object.isFrozen(c.listeners[0]));
  assert.ok(Object.isFrozen(c.mount[0]));
  assert.ok(Object.isFrozen(c.sources));
  assert.throws(() => { (c as { workers: number }).workers = 9; }, TypeError);
});

// ——— values ———

test('sizes, durations and booleans in their written forms', () => {
  const bytes: Array<[unknown, number]> = [[1024, 1024], ['1024', 1024], ['64k', 65536], ['64K', 65536], ['64KiB', 65536], ['1m', 1048576], ['1.5MiB', 1572864], ['1g', 1073741824], ['2 KiB', 2048]];
  for (const [text, n] of bytes) assert.deepEqual(parseBytes(text, {}), { ok: true, value: n }, String(text));
  for (const bad of ['64kB', '1e3', '-1', 'k', '', '1.5', true]) assert.equal(parseBytes(bad, { min: 0 }).ok, false, String(bad));
  const durations: Array<[unknown, number]> = [[250, 250], ['250', 250], ['250ms', 250], ['30s', 30000], ['1.5s', 1500], ['2m', 120000], ['1h', 3600000]];
  for (const [text, n] of durations) assert.deepEqual(parseDuration(text, {}), { ok: true, value: n }, String(text));
  for (const bad of ['30 sec', '1d', 'ms', -5, 1.5]) assert.equal(parseDuration(bad, { min: 0 }).ok, false, String(bad));
  for (const t of ['true', '1', 'yes', 'on', 'TRUE', true]) assert.deepEqual(parseBoolean(t), { ok: true, value: true });
  for (const f of ['false', '0', 'no', 'off', false]) assert.deepEqual(parseBoolean(f), { ok: true, value: false });
  assert.equal(parseBoolean('maybe').ok, false);
});

test('workers: a number 1..1024 or auto (the CPU count)', () => {
  assert.ok(resolveConfig({ flags: { workers: 'auto' } }).workers >= 1);
  assert.equal(resolveConfig({ env: { POSTERN_WORKERS: '4' } }).workers, 4);
  assert.equal(only({ flags: { workers: '0' } }).code, CONFIG_ERRORS.RANGE);
  assert.equal(only({ flags: { workers: '-2' } }).code, CONFIG_ERRORS.RANGE);
  assert.equal(only({ flags: { workers: 'many' } }).code, CONFIG_ERRORS.TYPE);
  assert.equal(only({ flags: { workers: '2000' } }).code, CONFIG_ERRORS.RANGE);
});

test('mount specs: PREFIX=MODULE[#EXPORT], prefixes on segment boundaries', () => {
  assert.deepEqual(parseMountSpec('/api=./app.js#handler'), { ok: true, value: { prefix: '/api', module: './app.js', export: 'handler' } });
  assert.deepEqual(parseMountSpec('/=@scope/pkg'), { ok: true, value: { prefix: '/', module: '@scope/pkg', export: 'default' } });
  assert.equal(parseMountSpec('/api:./app.js').ok, false);
  assert.deepEqual(normalizePrefix('/api/'), { ok: true, value: '/api' });
  assert.deepEqual(normalizePrefix('/'), { ok: true, value: '/' });
  for (const bad of ['api', '/a//b', '/a/../b', '/a?x', '/a b']) assert.equal(normalizePrefix(bad).ok, false, bad);
});

test('relative paths resolve against the config file\'s directory, or the cwd for flags', () => {
  const f = tempFile('p.yaml', 'fastcgi: unix:run/app.sock\nlogFile: logs/p.log\nmount:\n  - prefix: /a\n    module: ./apps/a.mjs\n');
  try {
    mkdirSync(join(f.dir, 'run'));
    mkdirSync(join(f.dir, 'logs'));
    mkdirSync(join(f.dir, 'apps'));
    writeFileSync(join(f.dir, 'apps', 'a.mjs'), 'export default () => {};\n');
    const c = resolveConfig({ file: f.path, cwd: '/' });
    assert.deepEqual(c.fastcgi, [`unix:${f.dir}/run/app.sock`]);
    assert.equal(c.logFile, `${f.dir}/logs/p.log`);
    assert.equal(c.mount[0]?.module, `${f.dir}/apps/a.mjs`);
    const d = resolveConfig({ flags: { mount: ['/a=./apps/a.mjs'], fastcgi: ['unix:run/x.sock'] }, cwd: f.dir });
    assert.equal(d.mount[0]?.module, `${f.dir}/apps/a.mjs`);
    assert.equal(d.mount[0]?.baseDir, f.dir);
    assert.deepEqual(d.fastcgi, [`unix:${f.dir}/run/x.sock`]);
  } finally {
    f[Symbol.dispose]();
  }
});

// ——— errors in files: key, file, line:col, code ———

test('an unknown key names the file, line and column, and suggests the option meant', () => {
  const f = tempFile('bad.yaml', '# a comment\nworkers: 2\nmaxParamBytes: 1024\n');
  try {
    const issue = only({ file: f.path });
    assert.equal(issue.code, CONFIG_ERRORS.UNKNOWN_KEY);
    assert.equal(issue.key, 'maxParamBytes');
    assert.equal(issue.file, f.path);
    assert.equal(issue.line, 3);
    assert.equal(issue.col, 1);
    assert.ok(issue.message.includes('maxParamsBytes'), 'suggests the real name');
    assert.ok(formatIssue(issue).startsWith(`${f.path}:3:1: maxParamBytes:`));
  } finally {
    f[Symbol.dispose]();
  }
  assert.equal(suggest('max-params-bytes', ['maxParamsBytes', 'maxParamCount']), 'maxParamsBytes');
  assert.equal(suggest('MAX_BODY_BYTES', ['maxParamsBytes', 'maxBodyBytes']), 'maxBodyBytes');
  assert.equal(suggest('listen', ['maxParamsBytes', 'workers']), undefined);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});

test('a wrong type or an out-of-range value points at the value', () => {
  const f = tempFile('bad.yaml', 'workers: 2\nmaxBodyBytes: lots\nmaxRequestsPerConnection: 70000\nlogLevel: loud\ndebug: "perhaps"\n');
  try {
    const issues = issuesOf({ file: f.path });
    const byKey = new Map(issues.map((i) => [i.key, i]));
    assert.deepEqual([...byKey.keys()].sort(), ['debug', 'logLevel', 'maxBodyBytes', 'maxRequestsPerConnection']);
    assert.deepEqual(pick(byKey.get('maxBodyBytes')), { code: CONFIG_ERRORS.TYPE, line: 2, col: 15 });
    assert.deepEqual(pick(byKey.get('maxRequestsPerConnection')), { code: CONFIG_ERRORS.RANGE, line: 3, col: 27 });
    assert.deepEqual(pick(byKey.get('logLevel')), { code: CONFIG_ERRORS.RANGE, line: 4, col: 11 });
    assert.deepEqual(pick(byKey.get('debug')), { code: CONFIG_ERRORS.TYPE, line: 5, col: 8 });
  } finally {
    f[Symbol.dispose]();
  }
});

function pick(i: ConfigIssue | undefined): { code: string | undefined; line: number | undefined; col: number | undefined } {
  return { code: i?.code, line: i?.line, col: i?.col };
}

test('mount mappings: unknown keys, missing fields and bad choices, each at its own position', () => {
  const f = tempFile('m.yaml', [
    'mount:',
    '  - prefix: /a',
    '    module: pkg-a',
    '    kindd: node',
    '  - module: pkg-b',
    '  - prefix: /c',
    '    module: pkg-c',
    '    role: janitor',
    '  - /d',
    '',
  ].join('\n'));
  try {
    const issues = issuesOf({ file: f.path, checkPaths: false });
    assert.deepEqual(issues.map((i) => [i.code, i.key, i.line]), [
      [CONFIG_ERRORS.UNKNOWN_KEY, 'mount[0].kindd', 4],
      [CONFIG_ERRORS.MOUNT, 'mount[1]', 5],
      [CONFIG_ERRORS.RANGE, 'mount[2].role', 8],
      [CONFIG_ERRORS.MOUNT, 'mount[3]', 9],
    ]);
  } finally {
    f[Symbol.dispose]();
  }
});

test('YAML and JSON syntax errors carry a line and column', () => {
  const y = tempFile('s.yaml', 'workers: 2\nfastcgi: [127.0.0.1:9000\n');
  const dup = tempFile('d.yaml', 'workers: 2\nworkers: 3\n');
  const j = tempFile('s.json', '{\n  "workers": 2,\n  "debug": tru\n}\n');
  try {
    const a = only({ file: y.path });
    assert.equal(a.code, CONFIG_ERRORS.PARSE);
    assert.equal(a.file, y.path);
    assert.ok((a.line ?? 0) >= 2);
    assert.deepEqual(pick(only({ file: dup.path })), { code: CONFIG_ERRORS.PARSE, line: 2, col: 1 });
    assert.deepEqual(pick(only({ file: j.path })), { code: CONFIG_ERRORS.PARSE, line: 3, col: 12 });
  } finally {
    y[Symbol.dispose]();
    dup[Symbol.dispose]();
    j[Symbol.dispose]();
  }
  assert.deepEqual(jsonError('{"a": 1,}').offset, 8);
  assert.deepEqual(jsonError('[1, 2').offset, 5);
  // The bad escape is reported at the character after the backslash.
  assert.deepEqual(jsonError('{"a": "x\\q"}').offset, 9);
});

test('format by extension, else by content; a missing file and a non-mapping are errors', () => {
  assert.equal(detectFormat('a.json', 'x: 1'), 'json');
  assert.equal(detectFormat('a.yml', '{}'), 'yaml');
  assert.equal(detectFormat('postern.conf', '  {"workers": 2}'), 'json');
  assert.equal(detectFormat('postern.conf', 'workers: 2'), 'yaml');
  const sniffed = parseConfigText('{"workers": 3}', '/etc/postern.conf');
  assert.equal(sniffed.format, 'json');
  assert.equal(resolveConfig({ file: sniffed }).workers, 3);
  assert.equal(only({ file: '/nonexistent/postern.yaml' }).code, CONFIG_ERRORS.FILE);
  assert.equal(only({ file: parseConfigText('- a\n- b\n', 'list.yaml') }).code, CONFIG_ERRORS.TYPE);
  assert.equal(resolveConfig({ file: parseConfigText('', 'empty.yaml') }).workers, 1);
});

test('flag and environment errors name the flag or the variable', () => {
  const byFlag = only({ flags: { maxParamsBytes: '12' } });
  assert.deepEqual([byFlag.code, byFlag.source, byFlag.origin], [CONFIG_ERRORS.RANGE, 'cli', '--max-params-bytes']);
  const byEnv = only({ env: { POSTERN_HTTP: 'localhost' } });
  assert.deepEqual([byEnv.code, byEnv.source, byEnv.origin], [CONFIG_ERRORS.ADDRESS, 'env', 'POSTERN_HTTP']);
  assert.ok(formatIssue(byEnv).startsWith('POSTERN_HTTP: '));
});

test('every problem is reported at once', () => {
  const issues = issuesOf({ flags: { workers: '0', logLevel: 'loud', fastcgi: ['nope'] }, env: { POSTERN_MAX_CONNECTIONS: 'x' } });
  assert.deepEqual(issues.map((i) => i.code).sort(), [CONFIG_ERRORS.ADDRESS, CONFIG_ERRORS.RANGE, CONFIG_ERRORS.RANGE, CONFIG_ERRORS.TYPE].sort());
});

test('a likely misspelt POSTERN_* variable is a warning, not silence', () => {
  const c = resolveConfig({ env: { POSTERN_MAX_PARAM_BYTES: '1', POSTERN_SOMETHING_INTERNAL: 'x', HOME: '/root' } });
  assert.equal(c.warnings.length, 1);
  assert.ok(c.warnings[0]?.includes('POSTERN_MAX_PARAMS_BYTES'));
});

// ——— impossible combinations ———

test('one address, one listener: the same address twice, or a wildcard over a specific one, is a conflict', () => {
  const twice = only({ flags: { fastcgi: ['127.0.0.1:9000'], http: ['127.0.0.1:9000'] } });
  assert.deepEqual([twice.code, twice.key], [CONFIG_ERRORS.CONFLICT, 'http']);
  assert.equal(only({ flags: { scgi: [':9000', '127.0.0.1:9000'] } }).code, CONFIG_ERRORS.CONFLICT);
  assert.equal(only({ flags: { uwsgi: ['unix:/tmp/a.sock', 'unix:/tmp/a.sock'] } }).code, CONFIG_ERRORS.CONFLICT);
  assert.equal(only({ flags: { uwsgi: ['fd:3'], http: ['fd:3'] } }).code, CONFIG_ERRORS.CONFLICT);
  // Port 0 binds a fresh port each time; different hosts on one port are fine.
  assert.equal(resolveConfig({ flags: { http: ['127.0.0.1:0', '127.0.0.1:0'] } }).listeners.length, 2);
  assert.equal(resolveConfig({ flags: { http: ['127.0.0.1:9000', '127.0.0.2:9000'] } }).listeners.length, 2);
});

test('statusListen must differ from every app listener, including the defaults', () => {
  const i = only({ flags: { statusListen: '127.0.0.1:8080' } });
  assert.deepEqual([i.code, i.key], [CONFIG_ERRORS.CONFLICT, 'statusListen']);
  const f = tempFile('s.yaml', 'http: 127.0.0.1:8081\nstatusPath: /status\nstatusListen: 127.0.0.1:8081\n');
  try {
    assert.deepEqual(pick(only({ file: f.path })), { code: CONFIG_ERRORS.CONFLICT, line: 3, col: 15 });
  } finally {
    f[Symbol.dispose]();
  }
});

test('a unix socket or log file in a missing directory, and a missing module file, are path errors', () => {
  assert.deepEqual(pick(only({ flags: { fastcgi: ['unix:/nonexistent-dir/p.sock'] } })), { code: CONFIG_ERRORS.PATH, line: undefined, col: undefined });
  assert.equal(only({ flags: { accessLog: '/nonexistent-dir/access.log' } }).code, CONFIG_ERRORS.PATH);
  assert.equal(only({ flags: { mount: ['/a=/nonexistent-dir/app.js'] } }).code, CONFIG_ERRORS.PATH);
  assert.equal(only({ flags: { mount: ['/a=no-such-package-postern-test'] } }).code, CONFIG_ERRORS.PATH);
  // Packages resolve from where they were configured: commander is installed above the repo root.
  assert.equal(resolveConfig({ flags: { mount: ['/a=commander'] }, cwd: repoRoot() }).mount[0]?.module, 'commander');
  assert.equal(only({ flags: { fastcgi: [`unix:/tmp/${'x'.repeat(120)}.sock`] } }).code, CONFIG_ERRORS.ADDRESS);
  // With path checks off (check-config --skip-path-checks), only the paths are let through.
  assert.equal(resolveConfig({ flags: { fastcgi: ['unix:/nonexistent-dir/p.sock'] }, checkPaths: false }).listeners.length, 1);
});

test('a prefix mounted twice for one role is a conflict; responder and authorizer may share it', () => {
  const f = tempFile('m.yaml', 'mount:\n  - /a=pkg-a\n  - /a/=pkg-b\n');
  const g = tempFile('m.yaml', 'mount:\n  - { prefix: /a, module: pkg-a }\n  - { prefix: /a, module: pkg-b, role: authorizer }\n');
  try {
    assert.deepEqual([only({ file: f.path, checkPaths: false }).code, only({ file: f.path, checkPaths: false }).line], [CONFIG_ERRORS.CONFLICT, 3]);
    assert.equal(resolveConfig({ file: g.path, checkPaths: false }).mount.length, 2);
  } finally {
    f[Symbol.dispose]();
    g[Symbol.dispose]();
  }
});

test('statusPath and pingPath cannot be the same path, and must be paths', () => {
  assert.equal(only({ flags: { statusPath: '/s', pingPath: '/s' } }).code, CONFIG_ERRORS.CONFLICT);
  assert.equal(only({ flags: { statusPath: 'status' } }).code, CONFIG_ERRORS.TYPE);
});

test('access log templates name known fields; socketMode is octal', () => {
  assert.equal(resolveConfig({ flags: { accessLogFormat: '{remoteAddr} "{method} {uri}" {status} {durationMs}' } }).accessLogFormat.length > 0, true);
  assert.equal(only({ flags: { accessLogFormat: '{method} {urii}' } }).code, CONFIG_ERRORS.RANGE);
  assert.equal(only({ flags: { accessLogFormat: 'plain text' } }).code, CONFIG_ERRORS.TYPE);
  assert.equal(only({ flags: { accessLogFormat: '{method} }' } }).code, CONFIG_ERRORS.TYPE);
  assert.equal(resolveConfig({ file: parseConfigText('socketMode: 0660\n', 'm.yaml') }).socketMode, '0660');
  assert.equal(resolveConfig({ flags: { socketMode: '660' } }).socketMode, '0660');
  assert.equal(only({ flags: { socketMode: '0999' } }).code, CONFIG_ERRORS.TYPE);
  assert.equal(resolveConfig({ flags: { accessLog: 'off' } }).accessLog, undefined);
  assert.equal(resolveConfig({ flags: { accessLog: '-' } }).accessLog, '-');
});

// ——— the shipped examples ———

test('every example in config/ loads; the full one is valid apart from paths that exist only in production', () => {
  const dir = join(repoRoot(), 'config');
  const files = readdirSync(dir).filter((n) => /^postern.*\.(ya?ml|json)$/.test(n));
  assert.deepEqual(files.sort(), ['postern.example.json', 'postern.example.yaml', 'postern.minimal.yaml']);
  const configs = new Map<string, PosternConfig>();
  for (const name of files) configs.set(name, resolveConfig({ file: join(dir, name), checkPaths: false }));
  const full = configs.get('postern.example.yaml');
  assert.ok(full !== undefined);
  // "covering every section": the full example sets every option a file may hold.
  for (const [name, src] of Object.entries(full.sources)) {
    if (name !== 'config') assert.equal(src, 'config', `postern.example.yaml sets ${name}`);
  }
  assert.equal(full.mount.length, 3);
  assert.deepEqual(full.mount.map((m) => m.role), ['responder', 'authorizer', 'responder']);
  assert.deepEqual(full.listeners.map((l) => l.protocol), ['fastcgi', 'fastcgi', 'scgi', 'uwsgi', 'http']);
  const withPaths = issuesOf({ file: join(dir, 'postern.example.yaml') });
  assert.ok(withPaths.length > 0);
  for (const i of withPaths) assert.equal(i.code, CONFIG_ERRORS.PATH, formatIssue(i));
  // The minimal and JSON examples are valid as they stand.
  assert.deepEqual(resolveConfig({ file: join(dir, 'postern.minimal.yaml') }).listeners, [{ protocol: 'fastcgi', address: '127.0.0.1:9000' }]);
  assert.equal(resolveConfig({ file: join(dir, 'postern.example.json') }).maxBodyBytes, 10 * 1024 * 1024);
});
