// Access log line formats: every format's lines parsed back field by field, escaping that keeps
// each record on one ASCII line and round-trips, time texts, and format validation.

import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ACCESS_FORMAT_ERROR, ACCESS_LOG_FIELDS, compileAccessFormat, localTimeText, validateAccessLogFormat,
} from '../../src/log/access-format.ts';
import type { AccessRecord } from '../../src/log/types.ts';

const BASE: AccessRecord = {
  startMs: Date.UTC(2026, 10, 24, 16, 24, 30, 7),
  durationMs: 12,
  remoteAddr: '192.0.2.7',
  method: 'POST',
  uri: '/app/items?id=3&q=a%20b',
  status: 201,
  bytes: 5120,
  protocol: 'fastcgi',
  mount: '/app',
  requestId: '2-41',
  worker: 2,
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) curl-ish/8.1',
  referer: 'https://example.test/start',
};

function rec(over: Partial<AccessRecord> = {}): AccessRecord {
  return { ...BASE, ...over };
}

/** Undoes nginx's escape=default (`\"`, `\\`, `\xHH`) into the byte string; `-` is empty. */
function unescapeLog(s: string): string {
  if (s === '-') return '';
  return s.replace(/\\(x[0-9a-f]{2}|"|\\)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(Number.parseInt(e.slice(1), 16)) : e));
}

/** The latin1 byte string of a JS string (what an escaped field holds for chars above U+00FF). */
function asBytes(s: string): string {
  let ascii = true;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) ascii = false;
  if (ascii) return s;
  // logText writes latin1 chars as single bytes and others as their UTF-8 bytes.
  let out = '';
  for (const ch of s) out += ch.codePointAt(0)! <= 0xff ? ch : Buffer.from(ch, 'utf8').toString('latin1');
  return out;
}

const COMBINED = /^(\S+) - - \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d+) (\d+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"\n$/;

function parseCombined(line: string): { remote: string; time: string; request: string; status: number; bytes: number; referer: string; ua: string } {
  const m = COMBINED.exec(line);
  assert.ok(m !== null, `not a combined line: ${JSON.stringify(line)}`);
  return { remote: m[1]!, time: m[2]!, request: m[3]!, status: Number(m[4]), bytes: Number(m[5]), referer: m[6]!, ua: m[7]! };
}

describe('combined', () => {
  const fmt = compileAccessFormat('combined');

  test('parses back field by field', () => {
    const r = rec({ serverProtocol: 'HTTP/2.0' });
    const p = parseCombined(fmt(r));
    assert.equal(p.remote, r.remoteAddr);
    assert.equal(p.time, localTimeText(r.startMs));
    assert.equal(p.request, `POST ${r.uri} HTTP/2.0`);
    assert.equal(p.status, 201);
    assert.equal(p.bytes, 5120);
    assert.equal(p.referer, r.referer);
    assert.equal(p.ua, r.userAgent);
  });

  test('without serverProtocol the request line says HTTP/1.1; empty fields are -', () => {
    const p = parseCombined(fmt(rec({ remoteAddr: '', referer: '', userAgent: '' })));
    assert.equal(p.remote, '-');
    assert.equal(p.request, `POST ${BASE.uri} HTTP/1.1`);
    assert.equal(p.referer, '-');
    assert.equal(p.ua, '-');
  });

  test('a request that never had a method or URI is "-" (a protocol error, say)', () => {
    assert.equal(parseCombined(fmt(rec({ method: '', uri: '', status: 400, bytes: 0 }))).request, '-');
  });

  test('quotes, backslashes, line breaks and non-ASCII bytes are escaped as nginx does', () => {
    const ua = 'evil"\\\n127.0.0.1 - - [forged]\u00e9';
    const line = fmt(rec({ userAgent: ua, uri: '/caf\u00c3\u00a9?x="1"' }));
    assert.equal(line.indexOf('\n'), line.length - 1);
    assert.match(line, /^[\x20-\x7e]*\n$/);
    assert.ok(line.includes('"evil\\"\\\\\\x0a127.0.0.1 - - [forged]\\xe9"'));
    const p = parseCombined(line);
    assert.equal(unescapeLog(p.ua), ua);
    assert.equal(unescapeLog(p.request), `POST /caf\u00c3\u00a9?x="1" HTTP/1.1`);
  });

  test('the local time carries the zone offset (Asia/Kolkata is +0530)', () => {
    const saved = process.env['TZ'];
    process.env['TZ'] = 'Asia/Kolkata';
    try {
      const f = compileAccessFormat('combined');
      assert.equal(parseCombined(f(rec())).time, '24/Nov/2026:21:54:30 +0530');
      assert.equal(localTimeText(Date.UTC(2026, 0, 1, 0, 0, 0)), '01/Jan/2026:05:30:00 +0530');
    } finally {
      if (saved === undefined) delete process.env['TZ'];
      else process.env['TZ'] = saved;
    }
  });
});

describe('json', () => {
  const fmt = compileAccessFormat('json');

  test('every AccessRecord field, and time as ISO 8601', () => {
    const r = rec();
    const line = fmt(r);
    assert.equal(line.indexOf('\n'), line.length - 1);
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(o, { time: '2026-11-24T16:24:30.007Z', ...r });
    assert.deepEqual(Object.keys(o), ['time', 'startMs', 'durationMs', 'remoteAddr', 'method', 'uri', 'status', 'bytes', 'protocol', 'mount', 'requestId', 'worker', 'userAgent', 'referer']);
  });

  test('serverProtocol appears when known; non-finite numbers become null', () => {
    const o = JSON.parse(fmt(rec({ serverProtocol: 'HTTP/1.0', durationMs: Number.NaN }))) as Record<string, unknown>;
    assert.equal(o['serverProtocol'], 'HTTP/1.0');
    assert.equal(o['durationMs'], null);
  });

  test('times across second boundaries and milliseconds stay exact (per-second cache)', () => {
    const f = compileAccessFormat('json');
    for (const ms of [0, 999, 1000, 1001, 59_999, 60_000, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1)]) {
      const o = JSON.parse(f(rec({ startMs: ms }))) as { time: string };
      assert.equal(o.time, new Date(ms).toISOString());
    }
  });
});

describe('templates', () => {
  test('all fields, tab-separated, parse back', () => {
    const fmt = compileAccessFormat(ACCESS_LOG_FIELDS.map((f) => `{${f}}`).join('\t'));
    const r = rec({ durationMs: 3.25, serverProtocol: 'HTTP/1.1' });
    const line = fmt(r);
    const cells = line.slice(0, -1).split('\t');
    const got = Object.fromEntries(ACCESS_LOG_FIELDS.map((f, i) => [f, cells[i]]));
    assert.equal(cells.length, ACCESS_LOG_FIELDS.length);
    assert.deepEqual(got, {
      time: '2026-11-24T16:24:30.007Z',
      timeLocal: localTimeText(r.startMs),
      startMs: String(r.startMs),
      durationMs: '3.250',
      remoteAddr: r.remoteAddr,
      method: 'POST',
      uri: r.uri,
      status: '201',
      bytes: '5120',
      protocol: 'fastcgi',
      mount: '/app',
      requestId: '2-41',
      worker: '2',
      userAgent: r.userAgent,
      referer: r.referer,
      serverProtocol: 'HTTP/1.1',
    });
  });

  test('the issue example keeps its literals and spacing', () => {
    const fmt = compileAccessFormat('{time} {remoteAddr} {method} {uri} {status} {bytes} {durationMs} {protocol} {mount} {requestId} {worker}');
    assert.equal(fmt(rec()), `2026-11-24T16:24:30.007Z 192.0.2.7 POST ${BASE.uri} 201 5120 12 fastcgi /app 2-41 2\n`);
  });

  test('literal text around fields, empty fields as -, tabs inside fields escaped', () => {
    const fmt = compileAccessFormat('[{status}] mount={mount} ua="{userAgent}" end');
    assert.equal(fmt(rec({ mount: '', userAgent: 'a\tb' })), '[201] mount=- ua="a\\x09b" end\n');
  });
});

describe('validation', () => {
  test('good formats', () => {
    for (const f of ['combined', 'json', '{status}', 'x {uri} y {time}{timeLocal}', ACCESS_LOG_FIELDS.map((f) => `{${f}}`).join(' ')]) {
      assert.equal(validateAccessLogFormat(f), undefined, f);
    }
  });

  test('bad formats name the problem and compile throws a coded TypeError', () => {
    for (const f of ['{nope}', '{status', 'status}', '{a{status}}', '{}', 'comined', '', 'no fields here', '{status}\n{uri}']) {
      assert.equal(typeof validateAccessLogFormat(f), 'string', f);
      assert.throws(() => compileAccessFormat(f), (err: unknown) => err instanceof TypeError && (err as { code?: string }).code === ACCESS_FORMAT_ERROR, f);
    }
  });
});

describe('properties', () => {
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  const record = fc.record({
    startMs: fc.integer({ min: 0, max: 4102444800000 }),
    durationMs: fc.oneof(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 1e6, noNaN: true })),
    remoteAddr: text,
    method: text,
    uri: text,
    status: fc.integer({ min: 0, max: 999 }),
    bytes: fc.integer({ min: 0, max: 2 ** 40 }),
    protocol: fc.constantFrom('fastcgi' as const, 'scgi' as const, 'uwsgi' as const, 'http' as const),
    mount: text,
    requestId: text,
    worker: fc.integer({ min: 0, max: 1000 }),
    userAgent: text,
    referer: text,
  });

  test('json: one ASCII line that parses back to the record', () => {
    const fmt = compileAccessFormat('json');
    fc.assert(fc.property(record, (r) => {
      const line = fmt(r);
      assert.match(line, /^[\x20-\x7e]*\n$/);
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.deepEqual(o, { time: new Date(r.startMs).toISOString(), ...r });
    }), { numRuns: 300 });
  });

  test('combined and templates: one ASCII line whose fields unescape to the bytes', () => {
    const combined = compileAccessFormat('combined');
    const tpl = compileAccessFormat('{remoteAddr}\t{method}\t{uri}\t{mount}\t{requestId}\t{userAgent}\t{referer}');
    fc.assert(fc.property(record, (r) => {
      const c = combined(r);
      assert.match(c, /^[\x20-\x7e]*\n$/);
      const p = parseCombined(c);
      // `-` stands for empty, so a field that is `-` itself reads back as empty (as with nginx).
      const norm = (v: string): string => (v === '-' ? '' : asBytes(v));
      assert.equal(unescapeLog(p.ua), norm(r.userAgent));
      assert.equal(unescapeLog(p.referer), norm(r.referer));
      assert.equal(unescapeLog(p.remote), norm(r.remoteAddr));
      const t = tpl(r);
      assert.match(t, /^[\x20-\x7e\t]*\n$/);
      const cells = t.slice(0, -1).split('\t').map(unescapeLog);
      assert.deepEqual(cells, [r.remoteAddr, r.method, r.uri, r.mount, r.requestId, r.userAgent, r.referer].map(norm));
    }), { numRuns: 300 });
  });
});
