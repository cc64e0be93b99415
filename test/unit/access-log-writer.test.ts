// The batched access log writer: one write per batch (by size, by timer, on flush/close/reopen),
// dropping and counting lines behind a stuck output with one warning per interval, file output
// with reopen for logrotate, output failures, and lines parsed back from the file.

import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createAccessLog } from '../../src/log/access-log.ts';
import { ACCESS_FORMAT_ERROR } from '../../src/log/access-format.ts';
import type { AccessRecord, EventLog } from '../../src/log/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-access-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rec(i: number): AccessRecord {
  return {
    startMs: 1_700_000_000_000 + i,
    durationMs: i % 50,
    remoteAddr: '127.0.0.1',
    method: 'GET',
    uri: `/item/${String(i)}`,
    status: 200,
    bytes: i,
    protocol: 'http',
    mount: '/',
    requestId: `1-${String(i)}`,
    worker: 1,
    userAgent: 'test',
    referer: '',
  };
}

/** A sink that records each write; `stuck` never completes a write (a reader that stopped). */
class Recorder extends Writable {
  readonly writes: string[] = [];
  readonly #stuck: boolean;
  constructor(stuck = false) {
    super({ highWaterMark: 1024 });
    this.#stuck = stuck;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writes.push(chunk.toString('latin1'));
    if (!this.#stuck) cb();
  }
  lines(): string[] {
    return this.writes.join('').split('\n').filter((l) => l !== '');
  }
}

function recordingLog(): EventLog & { warns: Array<Record<string, unknown> | undefined>; errors: Array<Record<string, unknown> | undefined> } {
  const warns: Array<Record<string, unknown> | undefined> = [];
  const errors: Array<Record<string, unknown> | undefined> = [];
  return {
    warns,
    errors,
    error: (_m, meta) => { errors.push(meta); },
    warn: (_m, meta) => { warns.push(meta); },
    info: () => {},
    debug: () => {},
    debugEnabled: false,
  };
}

describe('batching', () => {
  test('lines wait for flush() and go out in one write', async () => {
    const out = new Recorder();
    const log = createAccessLog({ format: 'json', stream: out, flushMs: 60_000 });
    for (let i = 0; i < 3; i++) log.write(rec(i));
    assert.equal(out.writes.length, 0);
    log.flush();
    assert.equal(out.writes.length, 1);
    assert.deepEqual(out.lines().map((l) => (JSON.parse(l) as { uri: string }).uri), ['/item/0', '/item/1', '/item/2']);
    assert.equal(log.written, 3);
    await log.close();
  });

  test('flushBytes triggers a write at once', async () => {
    const out = new Recorder();
    const log = createAccessLog({ format: '{uri}', stream: out, flushBytes: 30, flushMs: 60_000 });
    log.write(rec(1)); // "/item/1\n" = 8 bytes
    log.write(rec(2));
    log.write(rec(3));
    assert.equal(out.writes.length, 0);
    log.write(rec(4)); // 32 bytes pending
    assert.deepEqual(out.writes, ['/item/1\n/item/2\n/item/3\n/item/4\n']);
    await log.close();
  });

  test('the timer writes pending lines after flushMs', async () => {
    const out = new Recorder();
    const log = createAccessLog({ format: '{uri}', stream: out, flushMs: 20 });
    log.write(rec(1));
    log.write(rec(2));
    const deadline = Date.now() + 2000;
    while (out.writes.length === 0 && Date.now() < deadline) await delay(10);
    assert.deepEqual(out.writes, ['/item/1\n/item/2\n']);
    // The re-armed timer fires again for a later batch.
    log.write(rec(3));
    while (out.writes.length === 1 && Date.now() < deadline) await delay(10);
    assert.deepEqual(out.writes, ['/item/1\n/item/2\n', '/item/3\n']);
    await log.close();
  });

  test('close writes what is pending, leaves a given stream open, and drops later lines', async () => {
    const out = new Recorder();
    const log = createAccessLog({ format: '{uri}', stream: out, flushMs: 60_000 });
    log.write(rec(1));
    await log.close();
    log.write(rec(2));
    assert.deepEqual(out.lines(), ['/item/1']);
    assert.equal(out.writableEnded, false);
    assert.equal(log.dropped, 1);
  });

  test('a bad format throws a coded TypeError', () => {
    assert.throws(() => createAccessLog({ format: '{nope}', stream: new Recorder() }), { code: ACCESS_FORMAT_ERROR });
  });
});

describe('stuck output', () => {
  test('past maxPendingBytes lines are dropped and counted, with one warning per interval', async () => {
    const out = new Recorder(true);
    const ev = recordingLog();
    const log = createAccessLog({ format: 'json', stream: out, flushBytes: 1000, maxPendingBytes: 4000, log: ev, warnIntervalMs: 60_000 });
    const total = 500;
    for (let i = 0; i < total; i++) log.write(rec(i));
    log.flush();
    assert.ok(log.dropped > 0, 'some lines dropped');
    assert.ok(log.dropped < total, 'not everything dropped');
    // Never more than one batch past the limit is handed to the output.
    assert.ok(out.writableLength <= 4000 + 1000 + 400, `pending ${String(out.writableLength)}`);
    assert.equal(log.written + log.dropped, total);
    assert.equal(ev.warns.length, 1);
    assert.equal(ev.warns[0]?.['limit'], 'maxPendingBytes');
    assert.equal(ev.warns[0]?.['dropped'], 1);
    out.destroy();
    await log.close();
  });

  test('a warning again after the interval, reporting the drops since the last one', async () => {
    const out = new Recorder(true);
    const ev = recordingLog();
    const log = createAccessLog({ format: 'json', stream: out, flushBytes: 100, maxPendingBytes: 200, log: ev, warnIntervalMs: 30 });
    for (let i = 0; i < 20; i++) log.write(rec(i));
    const before = log.dropped;
    await delay(50);
    for (let i = 0; i < 5; i++) log.write(rec(i));
    assert.equal(log.dropped, before + 5);
    assert.equal(ev.warns.length, 2);
    // The first warning named the first drop; the second names every drop since, itself included.
    assert.equal(ev.warns[1]?.['dropped'], before);
    assert.equal(ev.warns[1]?.['droppedTotal'], before + 1);
    out.destroy();
    await log.close();
  });

  test('an output error stops writing, is logged once, and later lines count as dropped', async () => {
    const out = new Recorder();
    const ev = recordingLog();
    const log = createAccessLog({ format: 'json', stream: out, flushMs: 60_000, log: ev });
    out.emit('error', Object.assign(new Error('gone'), { code: 'EPIPE' }));
    log.write(rec(1));
    log.write(rec(2));
    assert.equal(log.dropped, 2);
    assert.equal(ev.errors.length, 1);
    assert.equal(ev.errors[0]?.['code'], 'EPIPE');
    await log.close();
  });
});

describe('file output', () => {
  test('lines land in the file and parse back; reopen moves later lines to a new file', async () => {
    const file = join(dir, 'access.log');
    const log = createAccessLog({ format: 'json', file, flushMs: 60_000 });
    log.write(rec(1));
    log.write(rec(2));
    renameSync(file, `${file}.1`);
    log.reopen();
    log.write(rec(3));
    await log.close();
    const parse = (p: string): AccessRecord[] => readFileSync(p, 'latin1').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AccessRecord & { time: string });
    const rotated = parse(`${file}.1`);
    const fresh = parse(file);
    assert.deepEqual(rotated.map((r) => r.requestId), ['1-1', '1-2']);
    assert.deepEqual(fresh.map((r) => r.requestId), ['1-3']);
    const { time, ...rest } = fresh[0] as AccessRecord & { time: string };
    assert.equal(time, new Date(rec(3).startMs).toISOString());
    assert.deepEqual(rest, rec(3));
  });

  test('appends to an existing file (several workers share one)', async () => {
    const file = join(dir, 'shared.log');
    const a = createAccessLog({ format: '{requestId}', file });
    const b = createAccessLog({ format: '{requestId}', file });
    a.write(rec(1));
    b.write(rec(2));
    a.flush();
    b.flush();
    await Promise.all([a.close(), b.close()]);
    assert.deepEqual(readFileSync(file, 'latin1').split('\n').filter(Boolean).sort(), ['1-1', '1-2']);
  });

  test('a path that cannot be opened throws at creation; a failed reopen keeps the old file', async () => {
    assert.throws(() => createAccessLog({ format: 'json', file: join(dir, 'no', 'such', 'dir.log') }), { code: 'ENOENT' });
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const file = join(sub, 'a.log');
    const log = createAccessLog({ format: '{requestId}', file });
    log.write(rec(1));
    renameSync(sub, `${sub}-moved`);
    assert.throws(() => log.reopen(), { code: 'ENOENT' });
    log.write(rec(2));
    await log.close();
    assert.deepEqual(readFileSync(join(`${sub}-moved`, 'a.log'), 'latin1').split('\n').filter(Boolean), ['1-1', '1-2']);
  });
});
