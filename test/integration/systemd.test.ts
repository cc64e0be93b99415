// The systemd units, from systemd's side: the socket unit's socket bound by the test (as systemd
// binds it), handed to the service unit's ExecStart as fd 3 with LISTEN_FDS / LISTEN_PID /
// LISTEN_FDNAMES, then FastCGI over it, ExecReload, KillSignal, and a restart during which
// connections wait in the socket's backlog. `systemd-analyze verify` checks the units where it exists.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/front/root.ts';
import { FcgiClient, fcgiRequest, parseResponse } from '../helpers/clients.ts';
import { fcgiParams } from '../helpers/servers.ts';
import { bindListener, type MasterListener } from '../../src/supervisor/listeners.ts';
import { parseAddress } from '../../src/server/address.ts';
import { OPTIONS } from '../../src/config/options.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { cleanEnv, posternCommand, retry, run, start, type Running } from './ship-helpers.ts';

type Unit = Map<string, Map<string, string[]>>;

/** systemd's unit syntax, as much as the units use: sections, repeated keys, comments, `\` continuations. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = pending + raw.trim();
    pending = '';
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.endsWith('\\')) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      section = new Map();
      unit.set(header[1] ?? '', section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section !== undefined && eq > 0, `not a unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

function one(unit: Unit, section: string, key: string): string {
  const v = unit.get(section)?.get(key)?.at(-1);
  assert.ok(v !== undefined, `[${section}] ${key}= is set`);
  return v;
}

const root = repoRoot();
const socketText = readFileSync(join(root, 'config/systemd/postern.socket'), 'utf8');
const serviceText = readFileSync(join(root, 'config/systemd/postern.service'), 'utf8');
const socketUnit = parseUnit(socketText);
const serviceUnit = parseUnit(serviceText);
const execStart = one(serviceUnit, 'Service', 'ExecStart').split(/\s+/);
const program = execStart[0] ?? '';

let dir = '';
let listener: MasterListener | undefined;
let postern: ReturnType<typeof posternCommand> | undefined;
const running: Running[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-systemd-'));
  postern = posternCommand();
});

after(async () => {
  for (const r of running) await r.stop();
  listener?.close();
  postern?.dispose();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('the units agree: the socket is named for a protocol and ExecStart serves fd 3 with it', () => {
  assert.equal(one(socketUnit, 'Socket', 'Accept'), 'no');
  const name = one(socketUnit, 'Socket', 'FileDescriptorName');
  assert.ok(['fastcgi', 'scgi', 'uwsgi', 'http'].includes(name), name);
  assert.deepEqual(execStart.slice(1), [`--${name}`, 'fd:3']);
  assert.match(one(socketUnit, 'Socket', 'ListenStream'), /^\/run\/postern\/.+\.sock$/);
  assert.equal(one(socketUnit, 'Socket', 'SocketMode'), '0660');
  assert.match(one(serviceUnit, 'Unit', 'Requires'), /\bpostern\.socket\b/);
  assert.match(one(serviceUnit, 'Unit', 'After'), /\bpostern\.socket\b/);
  assert.equal(one(serviceUnit, 'Service', 'KillSignal'), 'SIGTERM');
  assert.equal(one(serviceUnit, 'Service', 'KillMode'), 'mixed');
  assert.equal(one(serviceUnit, 'Service', 'ExecReload'), '/bin/kill -HUP $MAINPID');
  // systemd's SIGKILL must come after postern's own graceful-stop deadline.
  const stopSec = Number(one(serviceUnit, 'Service', 'TimeoutStopSec'));
  assert.ok(stopSec * 1000 > OPTIONS.shutdownTimeoutMs.default + OPTIONS.appCloseTimeoutMs.default, `TimeoutStopSec=${stopSec}`);
  assert.ok(!/MemoryDenyWriteExecute\s*=\s*(yes|true)/.test(serviceText), 'V8 needs W+X pages');
  // The Environment= variables are options postern knows (the config file itself is the operator's).
  const env = Object.fromEntries((serviceUnit.get('Service')?.get('Environment') ?? []).map((e) => e.split('=', 2) as [string, string]));
  const { POSTERN_CONFIG: _file, ...rest } = env;
  assert.ok(_file !== undefined);
  const config = resolveConfig({ env: rest, cwd: dir, checkPaths: false });
  assert.equal(config.logFormat, 'json');
});

test('systemd-analyze verify accepts both units (ExecStart pointed at this checkout)', async () => {
  const bin = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
  // Not every machine has systemd; the checks above still ran.
  if (bin === undefined) return;
  const units = mkdtempSync(join(dir, 'units-'));
  writeFileSync(join(units, 'postern.socket'), socketText);
  // verify insists that the ExecStart program exists; the unit's path is the install location.
  writeFileSync(join(units, 'postern.service'), serviceText.replace(program, join(root, 'bin/postern.js')));
  const r = await run(bin, ['verify', './postern.socket', './postern.service'], { cwd: units, timeoutMs: 30_000, env: cleanEnv({ SYSTEMD_LOG_LEVEL: 'warning' }) });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '');
});

/** ExecStart as systemd runs it: fd 3 = the socket, LISTEN_PID = the pid that exec()s postern. */
function activate(extraEnv: Readonly<Record<string, string>>): Running {
  assert.ok(listener !== undefined && postern !== undefined);
  const env: Record<string, string> = {};
  for (const e of serviceUnit.get('Service')?.get('Environment') ?? []) {
    const [k, v] = e.split('=', 2);
    env[k ?? ''] = v ?? '';
  }
  // A drop-in would point POSTERN_CONFIG at the operator's file; here, one in the scratch dir.
  const configFile = join(dir, 'postern.yaml');
  writeFileSync(configFile, 'maxParamsBytes: 128KiB\n');
  env['POSTERN_CONFIG'] = configFile;
  const args = [...postern.args, ...execStart.slice(1)];
  const r = start('sh', ['-c', 'export LISTEN_PID=$$; exec "$0" "$@"', postern.command, ...args], {
    cwd: dir,
    env: cleanEnv({ ...env, ...extraEnv, LISTEN_FDS: '1', LISTEN_FDNAMES: one(socketUnit, 'Socket', 'FileDescriptorName') }),
    stdio: ['ignore', 'pipe', 'pipe', listener.fd],
  });
  running.push(r);
  return r;
}

async function ready(r: Running): Promise<void> {
  await retry(() => {
    if (r.child.exitCode !== null) throw new Error(`postern exited ${String(r.child.exitCode)}`);
    // The process's own `postern <version> ready` line (a supervisor's comes once every worker is up).
    return /"message":"postern [^ ]+ ready /.test(r.stderr()) ? true : undefined;
  }, 20_000, () => `postern never got ready:\n${r.stderr()}`);
}

test('postern serves the socket systemd passes, reloads on ExecReload, stops on KillSignal, and a restart loses no connection', async () => {
  // What systemd does for postern.socket: bind ListenStream, apply SocketMode, keep the fd.
  const sock = join(dir, 'postern.sock');
  listener = await bindListener(parseAddress(`unix:${sock}`), Number.parseInt(one(socketUnit, 'Socket', 'SocketMode'), 8));
  assert.equal(statSync(sock).mode & 0o777, 0o660);

  const first = activate({});
  await ready(first);
  const events = first.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(events.some((e) => JSON.stringify(e['listeners']) === JSON.stringify(['fastcgi fd:3'])), first.stderr());
  const res = await fcgiRequest({ path: sock }, { params: fcgiParams('/par/a?x=1') });
  assert.equal(res.status, 200);
  assert.match(res.text, /^Positional arguments\n\na\n/);

  // ExecReload, with $MAINPID as systemd sets it.
  const reload = await run('sh', ['-c', one(serviceUnit, 'Service', 'ExecReload').replace('$MAINPID', String(first.pid))], { timeoutMs: 10_000 });
  assert.equal(reload.code, 0, reload.stderr);
  await retry(() => (first.stderr().includes('reloaded') ? true : undefined), 10_000, () => `no reload:\n${first.stderr()}`);
  assert.equal((await fcgiRequest({ path: sock }, { params: fcgiParams('/') })).text, 'Hello World');

  first.child.kill(one(serviceUnit, 'Service', 'KillSignal') as NodeJS.Signals);
  assert.deepEqual(await first.exited, { code: 0, signal: null }, first.stderr());

  // postern is down, the socket is not: this connection waits in the backlog for the next start.
  const client = await FcgiClient.connect({ path: sock });
  try {
    const pending = client.request({ params: fcgiParams('/') });
    const second = activate({ POSTERN_WORKERS: '2' });
    const r = await pending;
    assert.equal(parseResponse(r.stdout).text, 'Hello World');
    await ready(second);
    second.child.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null }, second.stderr());
  } finally {
    client.destroy();
  }
  assert.ok(existsSync(sock), 'the socket file belongs to systemd and outlives postern');
});
