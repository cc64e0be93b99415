// The master as its own process, from the operator's side: SIGHUP reload under load, SIGTERM with
// a request in flight, SIGINT, SIGUSR1, and every listener kind (TCP, unix, fd:N, LISTEN_FDS).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseAddress } from '../../src/server/address.ts';
import { bindListener } from '../../src/supervisor/listeners.ts';
import { EXEC_ARGV, fixturePath, get, loadLoop, sleep } from '../fixtures/supervisor/harness.ts';

interface Master {
  readonly child: ChildProcess;
  readonly port: number;
  readonly events: Array<Record<string, unknown>>;
  waitFor(match: (e: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  readonly exit: Promise<number | null>;
}

const masters = new Set<ChildProcess>();
const dir = mkdtempSync(join(tmpdir(), 'postern-sig-'));
after(() => {
  for (const c of masters) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startMaster(env: Record<string, string> = {}, extraFds: number[] = []): Promise<Master> {
  const child = spawn(process.execPath, [...EXEC_ARGV, fixturePath('master')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit', ...extraFds],
  });
  masters.add(child);
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let e: Record<string, unknown>;
    try { e = JSON.parse(line) as Record<string, unknown>; } catch { return; }
    events.push(e);
    for (const w of [...waiters]) if (w.match(e)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(e); }
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = (match: (e: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> => {
    const seen = events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`master event not seen in ${timeoutMs} ms; saw ${JSON.stringify(events.map((x) => x['msg'] ?? x['event']))}`)), timeoutMs);
      waiters.push({ match, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  };
  const up = await waitFor((e) => e['event'] === 'up', 15_000);
  const listeners = up['listeners'] as Array<{ bound: string }>;
  const bound = listeners[0]?.bound ?? '';
  return { child, port: Number(bound.slice(bound.lastIndexOf(':') + 1)), events, waitFor, exit };
}

test('SIGHUP under load: new workers (new config) up before the old drain, zero failed requests', async () => {
  // The real server: see DRAIN_SAFE in supervisor-recycle.test.ts.
  const m = await startMaster({ FIXTURE_SERVER: 'postern' });
  const load = loadLoop(m.port, '/', 4, 15_000);
  await sleep(300);
  m.child.kill('SIGHUP');
  await m.waitFor((e) => typeof e['msg'] === 'string' && e['msg'].startsWith('reloaded'), 10_000);
  await sleep(300);
  const r = await load.stop();
  assert.deepEqual(r.failures, []);
  assert.deepEqual([...r.tags].sort(), ['gen1', 'gen2']);
  const order = m.events.filter((e) => e['event'] === 'log').map((e) => String(e['msg']));
  const firstNewReady = order.findIndex((s) => /^worker [34] ready/.test(s));
  const firstOldExit = order.findIndex((s) => /^worker [12] \(pid \d+\) exited/.test(s));
  assert.ok(firstNewReady >= 0 && firstOldExit > firstNewReady, 'a new worker was ready before an old one exited');
  m.child.kill('SIGTERM');
  assert.equal(await m.exit, 0);
});

test('SIGTERM: the request in flight completes, then the master exits 0', async () => {
  const m = await startMaster();
  const slow = get(m.port, '/slow?ms=1200');
  await sleep(400);
  m.child.kill('SIGTERM');
  const r = await slow;
  assert.equal(r.status, 200);
  assert.match(r.body, /^ok \d gen1/);
  assert.equal(await m.exit, 0);
});

test('SIGINT: fast stop, without waiting for the request in flight', async () => {
  const m = await startMaster();
  const slow = get(m.port, '/slow?ms=8000').then(() => 'answered', () => 'failed');
  await sleep(400);
  const t0 = Date.now();
  m.child.kill('SIGINT');
  assert.equal(await m.exit, 0);
  assert.ok(Date.now() - t0 < 4000);
  assert.equal(await slow, 'failed');
});

test('SIGUSR1: the master and every worker reopen their logs', async () => {
  const m = await startMaster();
  m.child.kill('SIGUSR1');
  await m.waitFor((e) => e['event'] === 'reopen' && e['worker'] === 0, 5000);
  await m.waitFor((e) => e['event'] === 'reopen' && e['worker'] === 1, 5000);
  await m.waitFor((e) => e['event'] === 'reopen' && e['worker'] === 2, 5000);
  m.child.kill('SIGTERM');
  assert.equal(await m.exit, 0);
});

test('the master killed outright: its workers notice the IPC channel close and exit on their own', async () => {
  const m = await startMaster();
  const pids = m.events.find((e) => e['event'] === 'up')!['pids'] as number[];
  assert.equal(pids.length, 2);
  m.child.kill('SIGKILL');
  await m.exit;
  const alive = (pid: number): boolean => {
    try { process.kill(pid, 0); return true; } catch { return false; }
  };
  const end = Date.now() + 8000;
  while (pids.some(alive) && Date.now() < end) await sleep(50);
  const left = pids.filter(alive);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  assert.deepEqual(left, []);
});

function unixGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('every listener kind under workers: TCP, unix, an inherited fd:N, and systemd LISTEN_FDS', async () => {
  // Sockets the way systemd or spawn-fcgi would hand them over: bound, inherited as fds 3 and 4.
  const activated = await bindListener(parseAddress('127.0.0.1:0'), undefined);
  const inherited = await bindListener(parseAddress('127.0.0.1:0'), undefined);
  const sock = join(dir, 'kinds.sock');
  try {
    const m = await startMaster({
      FIXTURE_SYSTEMD: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'http',
      FIXTURE_LISTENERS: JSON.stringify([
        { protocol: 'http', address: '127.0.0.1:0' },
        { protocol: 'http', address: `unix:${sock}` },
        { protocol: 'http', address: 'fd:4' },
      ]),
    }, [activated.fd, inherited.fd]);
    const up = m.events.find((e) => e['event'] === 'up')!;
    assert.deepEqual((up['listeners'] as Array<{ address: string }>).map((l) => l.address), ['127.0.0.1:0', `unix:${sock}`, 'fd:4', 'fd:3']);
    const port = (b: string): number => Number(b.slice(b.lastIndexOf(':') + 1));
    for (let i = 0; i < 4; i++) {
      assert.match((await get(m.port, '/')).body, /^ok \d gen1/);
      assert.match(await unixGet(sock), /^ok \d gen1/);
      assert.match((await get(port(inherited.bound), '/')).body, /^ok \d gen1/);
      assert.match((await get(port(activated.bound), '/')).body, /^ok \d gen1/);
    }
    m.child.kill('SIGTERM');
    assert.equal(await m.exit, 0);
  } finally {
    activated.close();
    inherited.close();
  }
});
