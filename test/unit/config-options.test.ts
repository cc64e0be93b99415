// The option table drives flags, environment variables, the file schema and the docs: these tests
// set every option through every layer and check the generated reference is the committed one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { FILE_KEYS, OPTIONS, OPTION_LIST, envName, flagName } from '../../src/config/options.ts';
import type { OptionName } from '../../src/config/options.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { parseConfigText } from '../../src/config/file.ts';
import { renderConfigDoc } from '../../src/config/doc.ts';
import { SAMPLES } from './config-samples.ts';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const settable = OPTION_LIST.filter((o) => o.name !== 'config');

test('every entry is keyed by its name, with the env var and flag derived from it', () => {
  for (const [key, spec] of Object.entries(OPTIONS)) {
    assert.equal(spec.name, key);
    assert.equal(spec.env, envName(key), key);
    assert.equal(spec.flag, flagName(key), key);
    assert.ok(spec.help.length > 20, `${key} has help text`);
  }
  assert.equal(envName('maxParamsBytes'), 'POSTERN_MAX_PARAMS_BYTES');
  assert.equal(flagName('maxWorkerRssMiB'), '--max-worker-rss-mib');
  assert.equal(new Set(OPTION_LIST.map((o) => o.env)).size, OPTION_LIST.length);
  assert.equal(new Set(OPTION_LIST.map((o) => o.flag)).size, OPTION_LIST.length);
});

test('the brief\'s defaults', () => {
  const c = resolveConfig({ cwd: '/' });
  assert.deepEqual(c.listeners, [{ protocol: 'fastcgi', address: '127.0.0.1:9000' }, { protocol: 'http', address: '127.0.0.1:8080' }]);
  assert.equal(c.maxParamsBytes, 65536);
  assert.equal(c.maxParamCount, 1000);
  assert.equal(c.maxBodyBytes, 0);
  assert.equal(c.maxRequestsPerConnection, 1);
  assert.equal(c.maxConnections, 1024);
  assert.equal(c.maxHeadersBytes, 65536);
  assert.equal(c.requestTimeoutMs, 0);
  assert.equal(c.killGraceMs, 5000);
  assert.equal(c.headerTimeoutMs, 10000);
  assert.equal(c.bodyIdleTimeoutMs, 30000);
  assert.equal(c.keepAliveTimeoutMs, 60000);
  assert.equal(c.shutdownTimeoutMs, 30000);
  assert.equal(c.workers, 1);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.logFormat, 'auto');
  assert.equal(c.accessLogFormat, 'combined');
  assert.equal(c.trustForwardedProto, false);
  assert.equal(c.debug, false);
  for (const unset of ['logFile', 'accessLog', 'statusPath', 'pingPath', 'statusListen', 'socketMode', 'config'] as const) {
    assert.equal(unset in c, false, `${unset} is absent when unset`);
  }
  for (const spec of OPTION_LIST) assert.equal(c.sources[spec.name], 'default');
});

test('every option can be set by flag, by environment variable and by file, to the same value', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-opts-'));
  try {
    for (const spec of settable) {
      const s = SAMPLES[spec.name];
      const flag = { [spec.name]: spec.type === 'list' ? [s.text] : s.text } as Partial<Record<OptionName, unknown>>;
      const viaFlag = resolveConfig({ flags: flag, cwd: dir, checkPaths: false });
      const viaEnv = resolveConfig({ env: { [spec.env]: s.text }, cwd: dir, checkPaths: false });
      const file = parseConfigText(stringify({ [spec.name]: s.file }), join(dir, 'p.yaml'));
      const viaFile = resolveConfig({ file, cwd: '/', checkPaths: false });
      const expected = s.expect(dir);
      assert.deepEqual((viaFlag as unknown as Record<string, unknown>)[spec.name], expected, `${spec.name} by flag`);
      assert.deepEqual((viaEnv as unknown as Record<string, unknown>)[spec.name], expected, `${spec.name} by env`);
      assert.deepEqual((viaFile as unknown as Record<string, unknown>)[spec.name], expected, `${spec.name} by file`);
      assert.notDeepEqual(expected, spec.default, `${spec.name}: the sample differs from the default`);
      assert.equal(viaFlag.sources[spec.name], 'cli');
      assert.equal(viaEnv.sources[spec.name], 'env');
      assert.equal(viaFile.sources[spec.name], 'config');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a config file may hold every option but `config`', () => {
  assert.deepEqual([...FILE_KEYS].sort(), settable.map((o) => o.name).sort());
});

test('docs/configuration.md is the one the table generates (run scripts/gen-config-doc.ts)', () => {
  const committed = readFileSync(join(repoRoot(), 'docs', 'configuration.md'), 'utf8');
  const generated = renderConfigDoc();
  // Name the first stale line rather than dumping two whole documents.
  const a = committed.split('\n');
  const b = generated.split('\n');
  const i = b.findIndex((line, n) => a[n] !== line);
  assert.deepEqual({ line: i + 1, committed: a[i] }, { line: i + 1, committed: b[i] }, 'docs/configuration.md is stale');
  assert.equal(committed, generated);
  for (const spec of OPTION_LIST) {
    assert.ok(committed.includes(`\`${spec.env}\``), `${spec.name}'s variable is documented`);
    assert.ok(committed.includes(`**\`${spec.name}\`**`), `${spec.name} is described`);
  }
});
