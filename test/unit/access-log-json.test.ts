// The `json` access log format against JSON.stringify: every line, byte for byte, is what
// JSON.stringify writes for the same record once non-ASCII is escaped, over awkward strings and
// numbers and over sequences of records (the formatter keeps text from line to line).

import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileAccessFormat, jsonText, msJson } from '../../src/log/access-format.ts';
import type { AccessRecord } from '../../src/log/types.ts';

const SHORT: Readonly<Record<string, string>> = { b: '\\u0008', f: '\\u000c', n: '\\u000a', r: '\\u000d', t: '\\u0009' };

/**
 * JSON.stringify's text with only printable ASCII left: its short escapes (`\n`…) and every raw
 * character outside 0x20–0x7e as `\u00xx` (lowercase, as JSON.stringify writes lone surrogates).
 */
function asciiJson(text: string): string {
  return text.replace(/\\u[0-9a-f]{4}|\\[^u]|[^\x20-\x7e]/g, (m) => {
    if (m.length === 1) return `\\u${m.charCodeAt(0).toString(16).padStart(4, '0')}`;
    return m.length === 2 ? (SHORT[m[1]!] ?? m) : m;
  });
}

/** The line the json format promises: JSON.stringify of the record with `time` first, in ASCII. */
function expected(r: AccessRecord): string {
  const time = Number.isFinite(r.startMs) ? new Date(Math.floor(r.startMs)).toISOString() : '-';
  const o: Record<string, unknown> = {
    time, startMs: r.startMs, durationMs: r.durationMs, remoteAddr: r.remoteAddr, method: r.method, uri: r.uri,
    status: r.status, bytes: r.bytes, protocol: r.protocol, mount: r.mount, requestId: r.requestId, worker: r.worker,
    userAgent: r.userAgent, referer: r.referer,
  };
  if (r.serverProtocol !== undefined) o['serverProtocol'] = r.serverProtocol;
  return `${asciiJson(JSON.stringify(o))}\n`;
}

const BASE: AccessRecord = {
  startMs: Date.UTC(2026, 10, 24, 16, 24, 30, 7),
  durationMs: 0.042,
  remoteAddr: '192.0.2.7',
  method: 'GET',
  uri: '/app/items?id=3',
  status: 200,
  bytes: 5120,
  protocol: 'fastcgi',
  mount: '/app',
  requestId: '2-41',
  worker: 2,
  userAgent: 'curl/8.1',
  referer: '',
  serverProtocol: 'HTTP/1.1',
};

const AWKWARD = [
  '', '"', '\\', '\\"', '"\\', '\\n', '\n', '\r\n', '\t', '\b', '\f', '\x00', '\x1f', '\x7f', '\x80', '\xe9', '\xff',
  '\u0100', '\u2028', '\u2029', '\ufeff', '\uffff', '\ud800', '\udfff', '\udc00\ud800', '\ud83d\ude00', 'caf\u00c3\u00a9',
  'a"b\\c\nd', '-', ' ', '{"x":1}', '</script>', 'x'.repeat(100_000), `${'\\"'.repeat(5000)}\u0000`,
];

/** Strings over every code unit (lone surrogates too), tilted towards the characters that escape. */
const anyText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }) },
  { weight: 3, arbitrary: fc.array(fc.constantFrom(...AWKWARD.filter((s) => s.length < 100), 'a', 'Z', '/', '%20'), { maxLength: 12 }).map((a) => a.join('')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1000, maxLength: 5000 }) },
);
/** Values that repeat from record to record, so the kept text is reused as well as replaced. */
const text = fc.oneof({ weight: 1, arbitrary: anyText }, { weight: 2, arbitrary: fc.constantFrom('', 'GET', '/app', 'HTTP/1.1', '"', '\xe9') });

const oddNumber = fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 0, 0.5, -1, 999, 1000, 1e21, 2 ** 53, Number.MIN_VALUE, Number.MAX_VALUE, 1_999_999.999, 2_000_000, 2_147_483.647);
const count = fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.constantFrom(200, 404), fc.double(), oddNumber);
// Years 1970–9999 for startMs: toISOString writes other years with a sign and six digits, which
// the per-second text (and the format before it) does not follow.
const epochMs = fc.oneof(
  fc.integer({ min: 0, max: 253_402_300_799_999 }),
  fc.double({ min: 0, max: 253_402_300_799_999, noNaN: true }),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 0, 999, 1000, 1001, 1_764_001_470_000, 1_764_001_470_999.5),
);
const duration = fc.oneof(
  fc.integer({ min: 0, max: 10_000_000 }).map((us) => Math.round(us) / 1000),
  fc.double({ min: -1e7, max: 1e7 }),
  fc.double(),
  oddNumber,
);

const record: fc.Arbitrary<AccessRecord> = fc.record({
  startMs: epochMs,
  durationMs: duration,
  remoteAddr: text,
  method: text,
  uri: text,
  status: count,
  bytes: count,
  protocol: fc.constantFrom('fastcgi' as const, 'scgi' as const, 'uwsgi' as const, 'http' as const),
  mount: text,
  requestId: text,
  worker: count,
  userAgent: text,
  referer: text,
  serverProtocol: text,
}, { requiredKeys: ['startMs', 'durationMs', 'remoteAddr', 'method', 'uri', 'status', 'bytes', 'protocol', 'mount', 'requestId', 'worker', 'userAgent', 'referer'] });

describe('json format against JSON.stringify', () => {
  test('a plain record', () => {
    const line = compileAccessFormat('json')(BASE);
    assert.equal(line, `{"time":"2026-11-24T16:24:30.007Z","startMs":1795537470007,"durationMs":0.042,"remoteAddr":"192.0.2.7","method":"GET","uri":"/app/items?id=3","status":200,"bytes":5120,"protocol":"fastcgi","mount":"/app","requestId":"2-41","worker":2,"userAgent":"curl/8.1","referer":"","serverProtocol":"HTTP/1.1"}\n`);
    assert.equal(line, expected(BASE));
  });

  test('each awkward value in each string field, one formatter for all', () => {
    const fmt = compileAccessFormat('json');
    const fields = ['remoteAddr', 'method', 'uri', 'mount', 'requestId', 'userAgent', 'referer', 'serverProtocol'] as const;
    for (const field of fields) {
      for (const v of AWKWARD) {
        const r: AccessRecord = { ...BASE, [field]: v };
        assert.equal(fmt(r), expected(r), `${field} = ${JSON.stringify(v.slice(0, 40))}`);
        assert.equal(fmt(BASE), expected(BASE));
      }
    }
    assert.equal(jsonText('\x00"\\\xe9\ud800\n'), '"\\u0000\\"\\\\\\u00e9\\ud800\\u000a"');
  });

  test('serverProtocol absent, then present, then absent again', () => {
    const fmt = compileAccessFormat('json');
    const { serverProtocol: _, ...without } = BASE;
    for (const r of [without, BASE, without, { ...BASE, serverProtocol: '' }, without]) assert.equal(fmt(r), expected(r));
  });

  test('times and numbers at their edges', () => {
    const fmt = compileAccessFormat('json');
    for (const startMs of [0, -0, 1, 999, 1000, 1001, 59_999, 60_000, -1, -1001, 1.5, 1000.25, Number.NaN, Infinity, -Infinity, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), 253_402_300_799_999]) {
      const r = { ...BASE, startMs };
      assert.equal(fmt(r), expected(r), String(startMs));
    }
    for (const n of [0, -0, 0.001, 0.01, 0.1, 0.5, 1, 1.001, 1.01, 1.1, 12.34, 999.999, 1e-7, -0.001, 1_999_999.999, 2_000_000, 1e21, 0.1 + 0.2, Number.NaN, Infinity, -Infinity]) {
      const r = { ...BASE, durationMs: n, status: n, bytes: n, worker: n };
      assert.equal(fmt(r), expected(r), String(n));
    }
  });

  test('property: any sequence of records, through one formatter, is JSON.stringify in ASCII', () => {
    fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 8 }), (recs) => {
      const fmt = compileAccessFormat('json');
      for (const r of recs) {
        const line = fmt(r);
        assert.equal(line, expected(r));
        assert.match(line, /^[\x20-\x7e]*\n$/);
      }
    }), { numRuns: 400 });
  });
});

describe('msJson (durations)', () => {
  test('every microsecond-rounded duration up to 2000 ms writes what String() writes', () => {
    for (let k = 0; k <= 2_000_000; k++) {
      const ms = k / 1000;
      if (msJson(ms) !== String(ms)) assert.equal(msJson(ms), String(ms), `k=${String(k)}`);
    }
  });

  test('property: any double writes what JSON.stringify writes', () => {
    fc.assert(fc.property(fc.oneof(duration, fc.integer({ min: 0, max: 2 ** 31 }).map((k) => k / 1000)), (ms) => {
      assert.equal(msJson(ms), JSON.stringify(ms));
    }), { numRuns: 2000 });
  });
});
