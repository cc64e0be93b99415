// The winston event log: formats by destination, level filtering and the debugEnabled guard, meta
// handling (winston's message-append gotcha avoided), file output, reopen for logrotate, close.

import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { createEventLog } from '../../src/log/event-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-log-event-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function capture(isTTY = false): { stream: PassThrough; text: () => string; lines: () => string[] } {
  const stream = new PassThrough();
  if (isTTY) (stream as PassThrough & { isTTY: boolean }).isTTY = true;
  let out = '';
  stream.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  return { stream, text: () => out, lines: () => out.split('\n').filter((l) => l !== '') };
}

function parsed(lines: string[]): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('event log', () => {
  test('json lines carry time, level, pid, base fields, message and meta', async () => {
    const c = capture();
    const log = createEventLog({ level: 'info', format: 'json', stream: c.stream, base: { worker: 3 } });
    log.info('listening', { address: '127.0.0.1:9000', protocol: 'fastcgi' });
    log.warn('slow', { ms: 1500 });
    await log.close();
    const [a, b] = parsed(c.lines());
    assert.ok(a !== undefined && b !== undefined);
    assert.equal(a['level'], 'info');
    assert.equal(a['message'], 'listening');
    assert.equal(a['address'], '127.0.0.1:9000');
    assert.equal(a['protocol'], 'fastcgi');
    assert.equal(a['worker'], 3);
    assert.equal(a['pid'], process.pid);
    assert.ok(!Number.isNaN(Date.parse(String(a['time']))));
    assert.equal(b['level'], 'warn');
    assert.equal(b['ms'], 1500);
    assert.equal(c.lines().length, 2);
  });

  test('meta.message and meta.stack do not change the message (winston gotcha), errors keep code and stack', async () => {
    const c = capture();
    const log = createEventLog({ level: 'info', format: 'json', stream: c.stream });
    const err = Object.assign(new Error('boom'), { code: 'E_BOOM' });
    log.error('handler failed', { message: 'other', stack: 'fake', level: 'x', err });
    await log.close();
    const [line] = parsed(c.lines());
    assert.ok(line !== undefined);
    assert.equal(line['message'], 'handler failed');
    assert.equal(line['level'], 'error');
    assert.equal(line['meta.message'], 'other');
    assert.equal(line['meta.level'], 'x');
    assert.equal(line['stack'], 'fake');
    const e = line['err'] as Record<string, unknown>;
    assert.equal(e['code'], 'E_BOOM');
    assert.equal(e['message'], 'boom');
    assert.match(String(e['stack']), /boom/);
  });

  test('a circular meta still produces a line', async () => {
    const c = capture();
    const log = createEventLog({ level: 'info', format: 'json', stream: c.stream });
    const meta: Record<string, unknown> = { a: 1 };
    meta['self'] = meta;
    log.info('cyclic', meta);
    await log.close();
    assert.equal(c.lines().length, 1);
    const [line] = parsed(c.lines());
    assert.equal(line?.['message'], 'cyclic');
    assert.equal(line?.['a'], 1);
    assert.deepEqual(line?.['self'], { a: 1, self: '[Circular]' });
  });

  test('levels filter before winston; setLevel updates debugEnabled', async () => {
    const c = capture();
    const log = createEventLog({ level: 'info', format: 'json', stream: c.stream });
    assert.equal(log.debugEnabled, false);
    log.debug('hidden');
    log.setLevel('debug');
    assert.equal(log.debugEnabled, true);
    assert.equal(log.level, 'debug');
    log.debug('shown');
    log.setLevel('error');
    assert.equal(log.debugEnabled, false);
    log.warn('hidden too');
    log.info('hidden three');
    log.error('shown too');
    await log.close();
    assert.deepEqual(parsed(c.lines()).map((l) => l['message']), ['shown', 'shown too']);
    assert.throws(() => log.setLevel('loud' as 'info'), TypeError);
  });

  test('auto is pretty and coloured on a terminal, JSON on a pipe; pretty on a pipe has no colour', async () => {
    const tty = capture(true);
    const pipe = capture(false);
    const forced = capture(false);
    const logs = [
      createEventLog({ level: 'info', format: 'auto', stream: tty.stream }),
      createEventLog({ level: 'info', format: 'auto', stream: pipe.stream }),
      createEventLog({ level: 'info', format: 'pretty', stream: forced.stream }),
    ];
    for (const l of logs) l.warn('disk low', { free: '1 GiB', n: 2 });
    await Promise.all(logs.map((l) => l.close()));
    assert.ok(tty.text().includes('\x1b[33mWARN'), 'yellow WARN on a terminal');
    assert.match(tty.text(), /disk low/);
    assert.doesNotThrow(() => JSON.parse(pipe.lines()[0]!));
    assert.ok(!forced.text().includes('\x1b'), 'no escape codes off a terminal');
    assert.match(forced.text(), /^\S+Z WARN {2}disk low free="1 GiB" n=2\n$/);
  });

  test('close leaves the given stream open and ignores later calls', async () => {
    const c = capture();
    const log = createEventLog({ level: 'info', format: 'json', stream: c.stream });
    log.info('before');
    await log.close();
    log.info('after');
    await log.close();
    assert.equal(c.stream.writableEnded, false);
    assert.deepEqual(parsed(c.lines()).map((l) => l['message']), ['before']);
  });

  test('file output is JSON even with auto; reopen moves new lines to a new file (logrotate)', async () => {
    const file = join(dir, 'events.log');
    const log = createEventLog({ level: 'info', format: 'auto', file });
    log.info('one');
    log.info('two');
    renameSync(file, `${file}.1`);
    log.reopen();
    log.info('three');
    await log.close();
    const rotated = parsed(readFileSync(`${file}.1`, 'utf8').split('\n').filter(Boolean));
    const fresh = parsed(readFileSync(file, 'utf8').split('\n').filter(Boolean));
    assert.deepEqual(rotated.map((l) => l['message']), ['one', 'two']);
    assert.deepEqual(fresh.map((l) => l['message']), ['three']);
  });

  test('a file that cannot be opened is a coded error at creation', () => {
    assert.throws(() => createEventLog({ level: 'info', format: 'json', file: join(dir, 'missing', 'x.log') }), { code: 'ENOENT' });
  });

  test('reopen without a file is a no-op', async () => {
    const c = capture();
    const log = createEventLog({ level: 'info', format: 'json', stream: c.stream });
    log.reopen();
    log.info('still here');
    await log.close();
    assert.equal(c.lines().length, 1);
  });
});
