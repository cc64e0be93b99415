// The access and event logs of a real `postern` process, from the operator's side: lines written for
// requests over HTTP and FastCGI in each format, parsed back and checked field by field; SIGUSR1
// after logrotate moved the files; the slow-request warning.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fcgiRequest } from '../helpers/clients.ts';
import { get, mounts, scratch, startCli, until, type Cli } from './operate-helpers.ts';

const s = scratch();
after(() => { s.remove(); });

/** FastCGI params as nginx sends them for `GET uri` from a client at 203.0.113.7 over HTTP/2. */
function nginxParams(uri: string): Array<readonly [string, string]> {
  const q = uri.indexOf('?');
  const path = q === -1 ? uri : uri.slice(0, q);
  return [
    ['REQUEST_METHOD', 'GET'],
    ['SCRIPT_NAME', path],
    ['REQUEST_URI', uri],
    ['DOCUMENT_URI', path],
    ['QUERY_STRING', q === -1 ? '' : uri.slice(q + 1)],
    ['SERVER_PROTOCOL', 'HTTP/2.0'],
    ['SERVER_NAME', 'example.test'],
    ['SERVER_PORT', '443'],
    ['REMOTE_ADDR', '203.0.113.7'],
    ['REMOTE_PORT', '51000'],
    ['HTTP_USER_AGENT', 'probe/1.0 (fcgi)'],
    ['HTTP_REFERER', 'https://example.test/from'],
  ];
}

/** The same two requests for every format: HTTP GET /app?bytes=7, FastCGI GET /app/x?status=404&bytes=3. */
async function traffic(cli: Cli): Promise<{ before: number; after: number }> {
  const http = await cli.port('http');
  const fcgi = await cli.port('fastcgi');
  await cli.waitFor('ready');
  const before = Date.now();
  const a = await fetch(`http://127.0.0.1:${http}/app?bytes=7`, { headers: { 'user-agent': 'probe/1.0 (http)' }, signal: AbortSignal.timeout(10_000) });
  assert.equal(await a.text(), 'xxxxxxx');
  const b = await fcgiRequest({ port: fcgi }, { params: nginxParams('/app/x?status=404&bytes=3') });
  assert.equal(b.status, 404);
  assert.equal(b.text, 'xxx');
  return { before, after: Date.now() };
}

async function stop(cli: Cli): Promise<void> {
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exitWithin(15_000), 0);
}

function lines(file: string): string[] {
  return readFileSync(file, 'latin1').split('\n').filter((l) => l !== '');
}

function assertTime(ms: number, window: { before: number; after: number }): void {
  // The record's start is taken with a millisecond clock inside the window the test measured.
  assert.ok(ms >= window.before - 1 && ms <= window.after + 1, `${ms} within ${window.before}..${window.after}`);
}

test('json: every field of HTTP and FastCGI requests, parsed back; the file is complete once the process exits', async () => {
  const file = join(s.dir, 'json.log');
  const cli = startCli(s, ['--http', '127.0.0.1:0', '--fastcgi', '127.0.0.1:0', ...mounts(s), '--access-log', file, '--access-log-format', 'json']);
  try {
    const window = await traffic(cli);
    await stop(cli);
    const records = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(records.length, 2, readFileSync(file, 'latin1'));
    const [h, f] = records as [Record<string, unknown>, Record<string, unknown>];

    assert.equal(typeof h['time'], 'string');
    assertTime(Date.parse(h['time'] as string), window);
    assert.equal(Date.parse(h['time'] as string), h['startMs']);
    assert.equal(h['remoteAddr'], '127.0.0.1');
    assert.equal(h['method'], 'GET');
    assert.equal(h['uri'], '/app?bytes=7');
    assert.equal(h['status'], 200);
    assert.equal(h['bytes'], 7);
    assert.equal(typeof h['durationMs'], 'number');
    assert.ok((h['durationMs'] as number) >= 0 && (h['durationMs'] as number) < window.after - window.before + 1);
    assert.equal(h['protocol'], 'http');
    assert.equal(h['mount'], '/app');
    assert.match(h['requestId'] as string, /^0-\d+$/);
    assert.equal(h['worker'], 0);
    assert.equal(h['userAgent'], 'probe/1.0 (http)');
    assert.equal(h['referer'], '');
    assert.equal(h['serverProtocol'], 'HTTP/1.1');

    assertTime(Date.parse(f['time'] as string), window);
    assert.equal(f['remoteAddr'], '203.0.113.7');
    assert.equal(f['method'], 'GET');
    assert.equal(f['uri'], '/app/x?status=404&bytes=3');
    assert.equal(f['status'], 404);
    assert.equal(f['bytes'], 3);
    assert.ok(typeof f['durationMs'] === 'number' && f['durationMs'] >= 0);
    assert.equal(f['protocol'], 'fastcgi');
    assert.equal(f['mount'], '/app');
    assert.match(f['requestId'] as string, /^0-\d+$/);
    assert.notEqual(f['requestId'], h['requestId']);
    assert.equal(f['worker'], 0);
    assert.equal(f['userAgent'], 'probe/1.0 (fcgi)');
    assert.equal(f['referer'], 'https://example.test/from');
    assert.equal(f['serverProtocol'], 'HTTP/2.0');
  } finally {
    await cli.kill();
  }
});

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `24/Nov/2026:17:24:30 +0100` as epoch ms. */
function parseLocalTime(text: string): number {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  assert.ok(m !== null, text);
  const [, d, mon, y, hh, mm, ss, sign, oh, om] = m;
  const utc = Date.UTC(Number(y), MONTHS.indexOf(mon ?? ''), Number(d), Number(hh), Number(mm), Number(ss));
  const offset = (Number(oh) * 60 + Number(om)) * 60_000 * (sign === '-' ? -1 : 1);
  return utc - offset;
}

test('combined: the nginx/Apache line, field by field, for HTTP and FastCGI', async () => {
  const file = join(s.dir, 'combined.log');
  const cli = startCli(s, ['--http', '127.0.0.1:0', '--fastcgi', '127.0.0.1:0', ...mounts(s), '--access-log', file, '--access-log-format', 'combined']);
  try {
    const window = await traffic(cli);
    await stop(cli);
    const got = lines(file);
    assert.equal(got.length, 2);
    const re = /^(\S+) - - \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;
    const [h, f] = got.map((l) => {
      const m = re.exec(l);
      assert.ok(m !== null, l);
      return m;
    }) as [RegExpExecArray, RegExpExecArray];
    // Whole seconds in combined: the window is widened to its second.
    const secondWindow = { before: Math.floor(window.before / 1000) * 1000, after: window.after };
    assert.deepEqual(h.slice(1).map((x, i) => (i === 1 ? 'time' : x)), ['127.0.0.1', 'time', 'GET', '/app?bytes=7', 'HTTP/1.1', '200', '7', '-', 'probe/1.0 (http)']);
    assertTime(parseLocalTime(h[2] ?? ''), secondWindow);
    assert.deepEqual(f.slice(1).map((x, i) => (i === 1 ? 'time' : x)),
      ['203.0.113.7', 'time', 'GET', '/app/x?status=404&bytes=3', 'HTTP/2.0', '404', '3', 'https://example.test/from', 'probe/1.0 (fcgi)']);
    assertTime(parseLocalTime(f[2] ?? ''), secondWindow);
  } finally {
    await cli.kill();
  }
});

test('a template: every field it names, tab-separated, for HTTP and FastCGI', async () => {
  const file = join(s.dir, 'template.log');
  const fields = ['time', 'remoteAddr', 'method', 'uri', 'status', 'bytes', 'durationMs', 'protocol', 'mount', 'requestId', 'worker'];
  const cli = startCli(s, ['--http', '127.0.0.1:0', '--fastcgi', '127.0.0.1:0', ...mounts(s), '--access-log', file,
    '--access-log-format', fields.map((f) => `{${f}}`).join('\t')]);
  try {
    const window = await traffic(cli);
    await stop(cli);
    const rows = lines(file).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [fields[i], v])) as Record<string, string>);
    assert.equal(rows.length, 2);
    const [h, f] = rows as [Record<string, string>, Record<string, string>];
    for (const [r, expect] of [
      [h, { remoteAddr: '127.0.0.1', method: 'GET', uri: '/app?bytes=7', status: '200', bytes: '7', protocol: 'http', mount: '/app', worker: '0' }],
      [f, { remoteAddr: '203.0.113.7', method: 'GET', uri: '/app/x?status=404&bytes=3', status: '404', bytes: '3', protocol: 'fastcgi', mount: '/app', worker: '0' }],
    ] as const) {
      assert.equal(Object.keys(r).length, fields.length);
      assert.match(r['time'] ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      assertTime(Date.parse(r['time'] ?? ''), window);
      for (const [k, v] of Object.entries(expect)) assert.equal(r[k], v, k);
      assert.match(r['durationMs'] ?? '', /^\d+(\.\d{3})?$/);
      assert.match(r['requestId'] ?? '', /^0-\d+$/);
    }
    assert.notEqual(h['requestId'], f['requestId']);
  } finally {
    await cli.kill();
  }
});

test('SIGUSR1 after logrotate moved the files: new lines go to new files, the old ones keep theirs', async () => {
  const access = join(s.dir, 'rot-access.log');
  const events = join(s.dir, 'rot-events.log');
  const cli = startCli(s, ['--http', '127.0.0.1:0', ...mounts(s), '--access-log', access, '--access-log-format', '{uri} {status}', '--log-file', events], { logFile: events });
  try {
    const http = await cli.port('http');
    await cli.waitFor('ready');
    assert.equal((await get(http, '/app?bytes=1')).status, 200);
    // The access log writes within flushMs (50 ms) of a line.
    await until(() => existsSync(access) && readFileSync(access, 'latin1').includes('/app?bytes=1'), 5000, 'the first access line');
    renameSync(access, `${access}.1`);
    renameSync(events, `${events}.1`);
    cli.child.kill('SIGUSR1');
    await until(() => existsSync(access) && existsSync(events), 5000, 'reopened files');
    assert.equal((await get(http, '/app?bytes=2')).status, 200);
    await stop(cli);
    assert.deepEqual(lines(`${access}.1`), ['/app?bytes=1 200']);
    assert.deepEqual(lines(access), ['/app?bytes=2 200']);
    const before = lines(`${events}.1`).map((l) => JSON.parse(l) as { message: string });
    const now = lines(events).map((l) => JSON.parse(l) as { message: string });
    assert.ok(before.some((e) => e.message.includes('ready')), 'start-up lines stay in the rotated file');
    assert.ok(!before.some((e) => e.message === 'stopped'));
    assert.ok(now.some((e) => e.message === 'stopped'), 'lines after SIGUSR1 go to the new file');
    assert.ok(!now.some((e) => e.message.includes('ready')));
  } finally {
    await cli.kill();
  }
});

test('slowRequestMs: one warning per slow request, naming method, uri, mount, duration and worker; none for fast ones', async () => {
  const cli = startCli(s, ['--http', '127.0.0.1:0', ...mounts(s), '--slow-request-ms', '150', '--log-format', 'json']);
  try {
    const http = await cli.port('http');
    await cli.waitFor('ready');
    assert.equal((await get(http, '/slow?ms=250')).text, 'slow');
    assert.equal((await get(http, '/app')).status, 200);
    await cli.waitFor('slow request');
    await stop(cli);
    const slow = cli.events().filter((e) => e['message'] === 'slow request');
    assert.equal(slow.length, 1, cli.output());
    const e = slow[0] ?? {};
    assert.equal(e['level'], 'warn');
    assert.equal(e['method'], 'GET');
    assert.equal(e['uri'], '/slow?ms=250');
    assert.equal(e['mount'], '/slow');
    assert.equal(e['worker'], 0);
    assert.equal(e['limit'], 'slowRequestMs');
    assert.ok(typeof e['durationMs'] === 'number' && e['durationMs'] >= 240 && e['durationMs'] < 5000, String(e['durationMs']));
  } finally {
    await cli.kill();
  }
});
