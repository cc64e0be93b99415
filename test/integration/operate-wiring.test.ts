// The CLI's operating pieces in process, from the CLI's side: the logs object (level and file changes,
// a bad path that must not stop serving, reopen failures), the status URL `postern status` derives,
// and the status snapshot that does not count the scrape answering it.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createOperatorLogs, processStatus, statusUrl } from '../../src/operate.ts';
import { Metrics } from '../../src/status/metrics.ts';
import type { StatusReport } from '../../src/status/report.ts';
import { inject } from '../../src/app/inject.ts';
import { Tree } from '../../src/app/tree.ts';
import { RecordingLog } from '../helpers/servers.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-wiring-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('logs: JSON lines off a terminal with the worker named; level and file follow configure(); a bad file keeps the old log', async () => {
  let err = '';
  const io = { stderr: (t: string) => { err += t; }, isTTY: false };
  const logs = createOperatorLogs({ logLevel: 'warn', logFormat: 'auto' }, io, { worker: 3 });
  logs.info('hidden');
  logs.warn('shown', { key: 1 });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(jsonLines(err).map((l) => [l['level'], l['message'], l['worker'], l['key']]), [['warn', 'shown', 3, 1]]);
  assert.equal(logs.debugEnabled, false);

  logs.configure({ logLevel: 'debug', logFormat: 'auto' });
  assert.equal(logs.debugEnabled, true);
  const file = join(dir, 'events.log');
  logs.configure({ logLevel: 'info', logFormat: 'json', logFile: file });
  logs.info('to the file');
  logs.configure({ logLevel: 'info', logFormat: 'json', logFile: join(dir, 'missing', 'x.log') });
  logs.info('still to the file');
  logs.close();
  await logs.closed;
  const inFile = jsonLines(readFileSync(file, 'utf8'));
  assert.deepEqual(inFile.map((l) => l['message'] as string).filter((m) => !m.startsWith('cannot open')), ['to the file', 'still to the file']);
  assert.equal(inFile.filter((l) => l['code'] === 'ENOENT').length, 1, 'the bad path is reported with its code');
  assert.ok(!err.includes('to the file'));
});

test('logs: the access log opens once; SIGUSR1 reopens both files; a reopen that cannot open its file does not throw', async () => {
  let err = '';
  const events = join(dir, 'rotate-events.log');
  const access = join(dir, 'rotate-access.log');
  const logs = createOperatorLogs({ logLevel: 'info', logFormat: 'json', logFile: events }, { stderr: (t) => { err += t; }, isTTY: false });
  assert.equal(logs.openAccessLog({ accessLogFormat: 'combined' }), undefined, 'unset = off');
  const other = createOperatorLogs({ logLevel: 'info', logFormat: 'json' }, { stderr: () => undefined, isTTY: false });
  const alog = other.openAccessLog({ accessLog: access, accessLogFormat: '{uri}' });
  assert.ok(alog !== undefined && other.access === alog);
  alog.write({ startMs: 0, durationMs: 1, remoteAddr: '', method: 'GET', uri: '/one', status: 200, bytes: 0, protocol: 'http', mount: '', requestId: '0-1', worker: 0, userAgent: '', referer: '' });
  renameSync(access, `${access}.1`);
  other.reopen();
  alog.write({ startMs: 0, durationMs: 1, remoteAddr: '', method: 'GET', uri: '/two', status: 200, bytes: 0, protocol: 'http', mount: '', requestId: '0-2', worker: 0, userAgent: '', referer: '' });
  assert.equal(logs.openAccessLog({ accessLog: access, accessLogFormat: 'json' }), undefined, 'the first call decided: off for this process');
  logs.info('before');
  await new Promise((r) => setTimeout(r, 20));
  renameSync(events, `${events}.1`);
  logs.reopen();
  logs.info('after');
  logs.close();
  await logs.closed;
  other.close();
  await other.closed;
  assert.equal(readFileSync(`${access}.1`, 'latin1'), '/one\n');
  assert.equal(readFileSync(access, 'latin1'), '/two\n');
  assert.deepEqual(jsonLines(readFileSync(`${events}.1`, 'utf8')).map((l) => l['message']), ['accessLog and accessLogFormat changes take effect when postern restarts', 'before']);
  assert.deepEqual(jsonLines(readFileSync(events, 'utf8')).map((l) => l['message']), ['after']);
  assert.equal(err, '');

  // A file whose directory went away: reopen() cannot open it, and the process goes on with the old one.
  const sub = mkdtempSync(join(dir, 'sub-'));
  const vanishing = join(sub, 'e.log');
  const logs2 = createOperatorLogs({ logLevel: 'info', logFormat: 'json', logFile: vanishing }, { stderr: () => undefined, isTTY: false });
  rmSync(sub, { recursive: true, force: true });
  assert.doesNotThrow(() => { logs2.reopen(); });
  logs2.close();
  await logs2.closed;
  assert.equal(existsSync(vanishing), false);
});

test('statusUrl: statusListen first, else an HTTP listener; wildcards dialled on loopback; no path or no HTTP listener is a reason', () => {
  const listeners = [{ protocol: 'fastcgi' as const, address: '127.0.0.1:9000' }, { protocol: 'http' as const, address: ':8080' }];
  assert.deepEqual(statusUrl({ listeners, statusPath: '/s' }), { url: 'http://127.0.0.1:8080/s' });
  assert.deepEqual(statusUrl({ listeners, statusPath: '/s', statusListen: '[::]:9100' }), { url: 'http://[::1]:9100/s' });
  assert.ok('why' in statusUrl({ listeners }));
  assert.ok('why' in statusUrl({ listeners: [{ protocol: 'fastcgi', address: '127.0.0.1:9000' }], statusPath: '/s' }));
  assert.ok('why' in statusUrl({ listeners: [{ protocol: 'http', address: 'unix:/run/p.sock' }], statusPath: '/s' }));
});

test('processStatus: no routes without paths; the report leaves out the scrape in flight, not other requests', async () => {
  const metrics = new Metrics();
  const log = new RecordingLog();
  assert.equal(processStatus({}, { metrics, log, healthy: () => true, input: () => Promise.resolve({}) }).routes, undefined);

  let draining = false;
  const status = processStatus({ statusPath: '/status', pingPath: '/ping' }, {
    metrics, log, healthy: () => !draining, input: (snapshot) => Promise.resolve({ snapshots: [snapshot()] }),
  });
  const routes = status.routes;
  assert.ok(routes !== undefined);
  const tree = new Tree().mount(routes.app);
  // One app request in flight, and the scrape itself (as the server counts it before dispatching).
  metrics.requestStarted();
  metrics.requestStarted();
  const r = await inject(tree, { url: '/status' });
  assert.equal(r.status, 200);
  const report = JSON.parse(r.text) as StatusReport;
  assert.equal(report.totals.inFlight, 1);
  assert.equal(status.snapshot().inFlight, 2, 'outside a scrape, every request counts');
  assert.equal((await inject(tree, { url: '/ping' })).text, 'pong\n');
  draining = true;
  assert.equal((await inject(tree, { url: '/ping' })).status, 503);
  assert.equal(log.entries.length, 0);
});
