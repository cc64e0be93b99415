// The command line, parsed in-process with the actions replaced by recorders: every flag, repeatable
// listeners, address forms, commander's value sources, usage errors, help, version, check-config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { EXIT, buildProgram, defaultActions, main, packageVersion } from '../../src/cli.ts';
import type { CliActions, CliIo } from '../../src/cli.ts';
import { commandLineValues, commanderKey } from '../../src/config/flags.ts';
import { resolveConfig } from '../../src/config/load.ts';
import type { RawValues } from '../../src/config/load.ts';
import { CONFIG_ERRORS } from '../../src/config/errors.ts';
import { OPTION_LIST } from '../../src/config/options.ts';
import { SAMPLES } from './config-samples.ts';

interface Run {
  status: number;
  out: string;
  err: string;
  served?: { flags: RawValues; program: Command };
  checked?: { file: string | undefined; skipPathChecks: boolean };
}

/** Runs `postern ARGS…` in-process; `serve` only records what it was given. */
async function run(args: string[], env: Record<string, string> = {}, actions?: Partial<CliActions>): Promise<Run> {
  const r: Run = { status: -1, out: '', err: '' };
  const io: Partial<CliIo> = {
    stdout: (t) => { r.out += t; },
    stderr: (t) => { r.err += t; },
    env,
    cwd: '/',
    signals: { on: () => undefined, off: () => undefined } as unknown as CliIo['signals'],
    isTTY: false,
  };
  const recorder: CliActions = {
    serve: (program) => {
      r.served = { flags: commandLineValues(program).flags, program };
      return Promise.resolve(EXIT.OK);
    },
    checkConfig: (program, cliIo, file, options) => {
      r.checked = { file, skipPathChecks: options.skipPathChecks };
      return defaultActions.checkConfig(program, cliIo, file, options);
    },
    ...actions,
  };
  r.status = await main(['node', 'postern', ...args], io, recorder);
  return r;
}

test('every table option has a flag, and each parses to the value the sample expects', async () => {
  for (const spec of OPTION_LIST) {
    if (spec.name === 'config') continue;
    const s = SAMPLES[spec.name];
    const args = spec.type === 'boolean' ? [spec.flag] : [spec.flag, s.text];
    const r = await run(args);
    assert.equal(r.status, EXIT.OK, `${spec.flag}: ${r.err}`);
    assert.ok(r.served !== undefined);
    assert.equal(r.served.program.getOptionValueSource(commanderKey(spec.name)), 'cli', spec.flag);
    const config = resolveConfig({ flags: r.served.flags, cwd: '/work', checkPaths: false });
    assert.deepEqual((config as unknown as Record<string, unknown>)[spec.name], s.expect('/work'), spec.flag);
  }
});

test('listener flags repeat and mix in one process, in every address form', async () => {
  const r = await run([
    '--fastcgi', '127.0.0.1:9000', '--fastcgi', 'unix:/tmp/p.sock',
    '--scgi', ':4000', '--uwsgi', '[::1]:3031', '--http', 'fd:3', '--http', 'localhost:0',
  ]);
  assert.equal(r.status, EXIT.OK, r.err);
  const config = resolveConfig({ flags: r.served?.flags ?? {} });
  assert.deepEqual(config.listeners, [
    { protocol: 'fastcgi', address: '127.0.0.1:9000' },
    { protocol: 'fastcgi', address: 'unix:/tmp/p.sock' },
    { protocol: 'scgi', address: ':4000' },
    { protocol: 'uwsgi', address: '[::1]:3031' },
    { protocol: 'http', address: 'fd:3' },
    { protocol: 'http', address: 'localhost:0' },
  ]);
});

test('a bad ADDR is a usage error naming the flag (exit 2)', async () => {
  for (const bad of ['9000', 'host:99999', 'unix:', 'fd:x', '::1:9000', 'host:']) {
    const r = await run(['--fastcgi', bad]);
    assert.equal(r.status, EXIT.CONFIG, bad);
    assert.equal(r.served, undefined, 'nothing started');
    assert.ok(r.err.includes('--fastcgi'), `${bad}: ${r.err}`);
    assert.ok(r.err.includes(CONFIG_ERRORS.USAGE), r.err);
  }
  const m = await run(['--mount', 'api=./x.js']);
  assert.equal(m.status, EXIT.CONFIG);
});

test('commander reports the source of each value: cli beats env, env shows as env', async () => {
  const saved = process.env.POSTERN_MAX_CONNECTIONS;
  process.env.POSTERN_MAX_CONNECTIONS = '77';
  try {
    const fromEnv = await run([]);
    assert.equal(fromEnv.served?.program.getOptionValueSource('maxConnections'), 'env');
    assert.equal(fromEnv.served?.flags.maxConnections, undefined, 'env values are left to resolveConfig');
    assert.equal(resolveConfig({ flags: fromEnv.served?.flags ?? {}, env: process.env }).sources.maxConnections, 'env');
    const fromCli = await run(['--max-connections', '5']);
    assert.equal(fromCli.served?.program.getOptionValueSource('maxConnections'), 'cli');
    const c = resolveConfig({ flags: fromCli.served?.flags ?? {}, env: process.env });
    assert.deepEqual([c.maxConnections, c.sources.maxConnections], [5, 'cli']);
    const none = await run(['--workers', '2']);
    assert.equal(none.served?.program.getOptionValueSource('maxParamCount'), undefined);
  } finally {
    if (saved === undefined) delete process.env.POSTERN_MAX_CONNECTIONS;
    else process.env.POSTERN_MAX_CONNECTIONS = saved;
  }
});

test('--no-FLAG turns a boolean off over the environment', async () => {
  const r = await run(['--no-debug']);
  const c = resolveConfig({ flags: r.served?.flags ?? {}, env: { POSTERN_DEBUG: '1' } });
  assert.deepEqual([c.debug, c.sources.debug], [false, 'cli']);
  const on = resolveConfig({ env: { POSTERN_DEBUG: 'yes' } });
  assert.equal(on.debug, true);
});

test('unknown flags and stray arguments are usage errors, with a suggestion', async () => {
  const r = await run(['--max-param-bytes', '1024']);
  assert.equal(r.status, EXIT.CONFIG);
  assert.ok(r.err.includes('--max-params-bytes'), r.err);
  assert.equal((await run(['serve-now'])).status, EXIT.CONFIG);
  const typo = await run(['check-confg', 'x.yaml']);
  assert.equal(typo.status, EXIT.CONFIG);
  assert.ok(typo.err.includes('postern check-config'), typo.err);
  assert.equal((await run(['--workers'])).status, EXIT.CONFIG);
  assert.equal((await run(['--log-level', 'loud'])).status, EXIT.CONFIG);
});

test('--help lists every flag with its variable and exits 0; --version prints package.json\'s', async () => {
  const h = await run(['--help']);
  assert.equal(h.status, EXIT.OK);
  assert.equal(h.served, undefined);
  for (const spec of OPTION_LIST) {
    assert.ok(h.out.includes(spec.flag), `help shows ${spec.flag}`);
    assert.ok(h.out.includes(spec.env), `help shows ${spec.env}`);
  }
  assert.ok(h.out.includes('check-config'));
  assert.ok(h.out.includes('Limits:'));
  const v = await run(['--version']);
  assert.equal(v.status, EXIT.OK);
  assert.equal(v.out.trim(), packageVersion());
  assert.match(packageVersion(), /^\d+\.\d+\.\d+/);
});

test('check-config: exit 0 with a summary, or 2 with the key, file and line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-'));
  try {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'scgi: 127.0.0.1:4000\nmaxBodyBytes: 1MiB\n');
    const ok = await run(['check-config', good]);
    assert.equal(ok.status, EXIT.OK, ok.err);
    assert.ok(ok.out.startsWith(`ok: ${good}`), ok.out);
    assert.ok(ok.out.includes('scgi    127.0.0.1:4000'));
    assert.ok(ok.out.includes('maxBodyBytes = 1048576  (config)'));

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'scgi: 127.0.0.1:4000\n\nworkerz: 2\n');
    const no = await run(['check-config', bad]);
    assert.equal(no.status, EXIT.CONFIG);
    assert.ok(no.err.includes(`${bad}:3:1: workerz:`), no.err);
    assert.ok(no.err.includes(CONFIG_ERRORS.UNKNOWN_KEY));
    assert.equal(no.out, '');

    // The file may come from --config (before the command) and flags given there apply too.
    const viaFlag = await run(['--max-body-bytes', '2MiB', '--config', good, 'check-config']);
    assert.equal(viaFlag.status, EXIT.OK, viaFlag.err);
    assert.deepEqual(viaFlag.checked, { file: undefined, skipPathChecks: false });
    assert.ok(viaFlag.out.includes('maxBodyBytes = 2097152  (cli)'), viaFlag.out);
    const badFlag = await run(['--max-connections', '0', 'check-config', good]);
    assert.equal(badFlag.status, EXIT.CONFIG);
    assert.ok(badFlag.err.includes('--max-connections'), badFlag.err);

    const prod = join(dir, 'prod.yaml');
    writeFileSync(prod, 'fastcgi: unix:/nonexistent-dir/app.sock\n');
    assert.equal((await run(['check-config', prod])).status, EXIT.CONFIG);
    const skipped = await run(['check-config', '--skip-path-checks', prod]);
    assert.equal(skipped.status, EXIT.OK, skipped.err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a configuration error at start-up exits 2 before anything is served', async () => {
  const r = await run(['--http', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--status-path', 'nope'], {}, { serve: defaultActions.serve });
  assert.equal(r.status, EXIT.CONFIG);
  assert.ok(r.err.includes('--status-path'), r.err);
  assert.ok(r.err.includes(CONFIG_ERRORS.TYPE));
});

test('buildProgram is usable on its own (one program per run)', () => {
  const io = { stdout: () => undefined, stderr: () => undefined, env: {}, cwd: '/', signals: process, isTTY: false } as CliIo;
  const p = buildProgram(io, defaultActions, () => undefined);
  assert.equal(p.name(), 'postern');
  assert.ok(p.commands.some((c) => c.name() === 'check-config'));
  assert.equal(p.options.filter((o) => !o.hidden).length, OPTION_LIST.length + 1, 'table options plus --version');
});
