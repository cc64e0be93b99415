// Access log line formats, from the log writer's side: `combined`, `json` and `{field}` templates,
// each compiled once into a function from an AccessRecord to one ASCII line ending in `\n`.

import type { AccessRecord } from './types.ts';

/** A compiled format: one record in, one line (with its `\n`) out. Pure; allocates only the line. */
export type AccessFormatter = (record: AccessRecord) => string;

/**
 * The names a template may use. `time` is ISO 8601 UTC with milliseconds (the request's start);
 * `timeLocal` is the `combined` form (`10/Oct/2000:13:55:36 -0700`, local time). The rest are the
 * AccessRecord fields.
 */
export const ACCESS_LOG_FIELDS = [
  'time', 'timeLocal', 'startMs', 'durationMs', 'remoteAddr', 'method', 'uri', 'status', 'bytes',
  'protocol', 'mount', 'requestId', 'worker', 'userAgent', 'referer', 'serverProtocol',
] as const;

export type AccessLogField = (typeof ACCESS_LOG_FIELDS)[number];

const FIELD_SET: ReadonlySet<string> = new Set(ACCESS_LOG_FIELDS);

/** Error code of the TypeError `compileAccessFormat` throws for a bad format. */
export const ACCESS_FORMAT_ERROR = 'POSTERN_ERR_ACCESS_LOG_FORMAT';

// ---------------------------------------------------------------------------------------------
// Escaping. Environ strings are byte strings (latin1, STYLE.md 11) and partly client-controlled:
// a User-Agent holding `\n` must not forge a second line. Every format therefore writes ASCII only.

// One regex test per field, because clean fields are the rule: over a mix of a URI, a 110-char
// User-Agent, a referer, an address and a method, Node 20 measured 30 ns/field for this test
// against 47 ns for a charCodeAt loop over a lookup table and 54 ns for a compare loop.
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /[\x00-\x1f"\\\x7f-\uffff]/;

const HEX = '0123456789abcdef';

function hex2(c: number): string {
  return HEX[c >> 4]! + HEX[c & 15]!;
}

/**
 * nginx's `escape=default` for `combined` and templates: `"` and `\` backslashed, other bytes
 * outside printable ASCII as `\xHH`. A character above U+00FF (not a byte string) is written as its
 * UTF-8 bytes, each `\xHH`. Empty is `-`, as nginx writes an unset variable.
 */
export function logText(s: string): string {
  if (s.length === 0) return '-';
  if (!NEEDS_ESCAPE.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += `\\${s[i]!}`;
    else if (c >= 0x20 && c < 0x7f) out += s[i]!;
    else if (c <= 0xff) out += `\\x${hex2(c)}`;
    else {
      const cp = s.codePointAt(i)!;
      if (cp > 0xffff) i++;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out += `\\x${hex2(b)}`;
    }
  }
  return out;
}

/**
 * A JSON string literal in ASCII: anything outside printable ASCII as `\u00XX` (so the value is
 * the byte string the app saw), quote and backslash escaped. Lone surrogates stay valid JSON text.
 */
export function jsonText(s: string): string {
  return `"${jsonBody(s)}"`;
}

/** jsonText without its quotes: `s` itself when nothing needs escaping (the rule). */
function jsonBody(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c < 0x7f) out += s[i]!;
    else out += `\\u${hex2(c >> 8)}${hex2(c & 0xff)}`;
  }
  return out;
}

/** A number for JSON: NaN and infinities are not JSON. */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

// `x.yyy` (trailing zeros dropped) for 1 to 999 thousandths: see msJson.
const THOUSANDTHS: readonly string[] = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}`.replace(/0+$/, ''));

/**
 * jsonNumber for a duration, fast for what the server passes (microseconds rounded to 1/1000 ms,
 * shared.ts): when `ms` is the double nearest k/1000, its shortest round-trip text, which String()
 * writes, is k/1000 in decimal without trailing zeros. No other double that close has fewer digits
 * (an ulp below 2^31/1000 is under 1e-9). Node 20, cached in a loop: String() 87 ns, this 25 ns.
 */
export function msJson(ms: number): string {
  if (ms >= 0 && ms < 2_000_000) {
    const k = Math.round(ms * 1000);
    if (k / 1000 === ms) {
      const whole = Math.floor(ms);
      const f = k - whole * 1000;
      return f === 0 ? String(whole) : String(whole) + THOUSANDTHS[f]!;
    }
  }
  return jsonNumber(ms);
}

/** Whole milliseconds as is; fractions to microseconds (the server may pass performance.now() deltas). */
export function durationText(ms: number): string {
  if (Number.isInteger(ms)) return String(ms);
  return Number.isFinite(ms) ? ms.toFixed(3) : '-';
}

// ---------------------------------------------------------------------------------------------
// Time. Formatting a date costs about 1 µs; lines within one second share the second's text.

const MS3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

function pad2(n: number): string {
  return n < 10 ? `0${String(n)}` : String(n);
}

/** A per-second cache of one time text; each format holds its own, so none allocates per line. */
class SecondCache {
  #second = Number.NaN;
  #text = '';
  readonly #make: (second: number) => string;

  constructor(make: (second: number) => string) {
    this.#make = make;
  }

  get(second: number): string {
    if (second !== this.#second) {
      this.#second = second;
      this.#text = this.#make(second);
    }
    return this.#text;
  }
}

/** `2026-11-24T16:24:30.` for the second; the caller adds milliseconds and `Z`. */
function isoSecond(second: number): string {
  return new Date(second * 1000).toISOString().slice(0, 20);
}

/** `24/Nov/2026:17:24:30 +0100`: Apache `%t` / nginx `$time_local`, in the process's time zone. */
export function localTimeText(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${pad2(d.getDate())}/${MONTHS[d.getMonth()]!}/${String(d.getFullYear())}:${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${off < 0 ? '-' : '+'}${pad2(Math.floor(a / 60))}${pad2(a % 60)}`;
}

function isoTimeOf(cache: SecondCache, ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const t = Math.floor(ms);
  const second = Math.floor(t / 1000);
  return `${cache.get(second)}${MS3[t - second * 1000]!}Z`;
}

function localTimeOf(cache: SecondCache, ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return cache.get(Math.floor(ms / 1000));
}

// ---------------------------------------------------------------------------------------------
// Formats.

function combined(): AccessFormatter {
  // nginx's `combined`: remote - user [time] "request" status bytes "referer" "ua". We have no
  // authenticated user (the front server's REMOTE_USER is not in the record): `-`, as nginx writes.
  // As in json(): constant text joined once with the values that repeat (the second, method,
  // serverProtocol, status), which saves two escape tests and six rope pieces per line. Measured as
  // for json(), µs/line: format only 0.25 → 0.21, written into /dev/null 0.40 → 0.34.
  let second = Number.NaN;
  let secondText = ''; // ` - - [24/Nov/2026:17:24:30 +0100] "`
  let method: string | undefined;
  let methodText = '';
  let serverProtocol: string | undefined | null = null;
  let protocolText = '';
  let status = Number.NaN;
  let statusText = '';
  return (r) => {
    let timeText = ' - - [-] "';
    if (Number.isFinite(r.startMs)) {
      const sec = Math.floor(r.startMs / 1000);
      if (sec !== second) {
        secondText = ` - - [${localTimeText(sec * 1000)}] "`;
        second = sec;
      }
      timeText = secondText;
    }
    if (r.status !== status) {
      status = r.status;
      statusText = `" ${String(status)} `;
    }
    if (r.method === '' && r.uri === '') {
      return `${logText(r.remoteAddr)}${timeText}-${statusText}${String(r.bytes)} "${logText(r.referer)}" "${logText(r.userAgent)}"\n`;
    }
    if (r.method !== method) {
      method = r.method;
      methodText = `${logText(method)} `;
    }
    if (r.serverProtocol !== serverProtocol) {
      serverProtocol = r.serverProtocol;
      protocolText = ` ${serverProtocol === undefined || serverProtocol === '' ? 'HTTP/1.1' : logText(serverProtocol)}`;
    }
    return `${logText(r.remoteAddr)}${timeText}${methodText}${logText(r.uri)}${protocolText}${statusText}${String(r.bytes)} "${logText(r.referer)}" "${logText(r.userAgent)}"\n`;
  };
}

function json(): AccessFormatter {
  // The line is mostly constant text around a few changing fields, so it is built from as few
  // pieces as possible: the quotes sit in the constant text, and each constant run is joined once
  // with the field values it holds that repeat from line to line (the second, method, status,
  // protocol and mount, worker, serverProtocol), kept until a value differs. Fewer pieces is a
  // shorter rope for the writer to copy, and less garbage. `startMs` comes from the second's text
  // and the millisecond table (String() of an epoch time, a heap number, cost 97 ns), durations
  // from msJson. `node --import tsx bench/access-log.ts --runs 5 --no-winston`, Node 20, medians
  // of 4 interleaved runs on a shared 2-core box, µs/line (with the writer's += below): format only
  // 0.59 → 0.23; written into a file 1.18 → 0.64 (CPU 1.46 → 0.76); into /dev/null 0.93 → 0.44.
  // Output unchanged, byte for byte: test/unit/access-log-json.test.ts checks it against
  // JSON.stringify.
  const iso = new SecondCache(isoSecond);
  let second = Number.NaN;
  let head = ''; // {"time":"2026-11-24T16:24:30.
  let mid = ''; // Z","startMs":1795537470
  let method: string | undefined;
  let methodText = '';
  let status = Number.NaN;
  let statusText = '';
  let protocol: string | undefined;
  let mount: string | undefined;
  let protocolText = '';
  let worker = Number.NaN;
  let workerText = '';
  let serverProtocol: string | undefined | null = null;
  let tail = '';
  return (r) => {
    const ms = r.startMs;
    let start: string;
    // A whole millisecond count from 1970-01-01T00:00:01 on: its decimal text is the second's
    // followed by three digits. Anything else (fractions, NaN, before 1970) takes String().
    if (Number.isInteger(ms) && ms >= 1000) {
      const sec = Math.floor(ms / 1000);
      if (sec !== second) {
        head = `{"time":"${isoSecond(sec)}`; // throws past year 275760, as toISOString does
        mid = `Z","startMs":${String(sec)}`;
        second = sec;
      }
      const frac = MS3[ms - sec * 1000]!;
      start = head + frac + mid + frac;
    } else {
      start = `{"time":"${isoTimeOf(iso, ms)}","startMs":${jsonNumber(ms)}`;
    }
    if (r.method !== method) {
      method = r.method;
      methodText = `","method":"${jsonBody(method)}","uri":"`;
    }
    if (r.status !== status) {
      status = r.status;
      statusText = `","status":${jsonNumber(status)},"bytes":`;
    }
    if (r.protocol !== protocol || r.mount !== mount) {
      protocol = r.protocol;
      mount = r.mount;
      protocolText = `,"protocol":"${jsonBody(protocol)}","mount":"${jsonBody(mount)}","requestId":"`;
    }
    if (r.worker !== worker) {
      worker = r.worker;
      workerText = `","worker":${jsonNumber(worker)},"userAgent":"`;
    }
    if (r.serverProtocol !== serverProtocol) {
      serverProtocol = r.serverProtocol;
      tail = serverProtocol === undefined ? '"}\n' : `","serverProtocol":"${jsonBody(serverProtocol)}"}\n`;
    }
    return `${start},"durationMs":${msJson(r.durationMs)},"remoteAddr":"${jsonBody(r.remoteAddr)}${methodText}${jsonBody(r.uri)}${statusText}${jsonNumber(r.bytes)}${protocolText}${jsonBody(r.requestId)}${workerText}${jsonBody(r.userAgent)}","referer":"${r.referer === '' ? '' : jsonBody(r.referer)}${tail}`;
  };
}

type Getter = (r: AccessRecord) => string;

function getter(field: AccessLogField): Getter {
  switch (field) {
    case 'time': {
      const iso = new SecondCache(isoSecond);
      return (r) => isoTimeOf(iso, r.startMs);
    }
    case 'timeLocal': {
      const local = new SecondCache((s) => localTimeText(s * 1000));
      return (r) => localTimeOf(local, r.startMs);
    }
    case 'startMs': return (r) => String(r.startMs);
    case 'durationMs': return (r) => durationText(r.durationMs);
    case 'remoteAddr': return (r) => logText(r.remoteAddr);
    case 'method': return (r) => logText(r.method);
    case 'uri': return (r) => logText(r.uri);
    case 'status': return (r) => String(r.status);
    case 'bytes': return (r) => String(r.bytes);
    case 'protocol': return (r) => logText(r.protocol);
    case 'mount': return (r) => logText(r.mount);
    case 'requestId': return (r) => logText(r.requestId);
    case 'worker': return (r) => String(r.worker);
    case 'userAgent': return (r) => logText(r.userAgent);
    case 'referer': return (r) => logText(r.referer);
    case 'serverProtocol': return (r) => logText(r.serverProtocol ?? '');
  }
}

interface ParsedTemplate {
  readonly literals: readonly string[];
  readonly fields: readonly AccessLogField[];
}

/** Splits a template into literals and field names, or says what is wrong with it. */
function parseTemplate(fmt: string): ParsedTemplate | string {
  const literals: string[] = [];
  const fields: AccessLogField[] = [];
  let lit = '';
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if (c === '\n' || c === '\r') return 'an access log template is one line: it must not contain a line break';
    if (c === '}') return `unbalanced "}" at offset ${String(i)} of the access log template`;
    if (c !== '{') {
      lit += c;
      continue;
    }
    const close = fmt.indexOf('}', i + 1);
    const open = fmt.indexOf('{', i + 1);
    if (close === -1 || (open !== -1 && open < close)) return `unbalanced "{" at offset ${String(i)} of the access log template`;
    const name = fmt.slice(i + 1, close);
    if (!FIELD_SET.has(name)) {
      return `unknown access log field {${name}}; fields: ${ACCESS_LOG_FIELDS.join(', ')}`;
    }
    literals.push(lit);
    lit = '';
    fields.push(name as AccessLogField);
    i = close;
  }
  literals.push(lit);
  if (fields.length === 0) {
    // A template without a field writes the same line for every request: almost surely a typo for
    // a format name (`comined`).
    return `an access log format is "combined", "json" or a template naming fields in braces like "{method} {uri} {status}"; got ${JSON.stringify(fmt)}`;
  }
  return { literals, fields };
}

function template(t: ParsedTemplate): AccessFormatter {
  const lits = t.literals.slice();
  lits[lits.length - 1] += '\n';
  const gets = t.fields.map(getter);
  const n = gets.length;
  const first = lits[0]!;
  return (r) => {
    let s = first;
    for (let i = 0; i < n; i++) s += gets[i]!(r) + lits[i + 1]!;
    return s;
  };
}

/**
 * What is wrong with an access log format, or undefined when it is good: `combined`, `json`, or a
 * one-line template of known `{field}` names (ACCESS_LOG_FIELDS). For the config validator.
 */
export function validateAccessLogFormat(fmt: string): string | undefined {
  if (fmt === 'combined' || fmt === 'json') return undefined;
  const t = parseTemplate(fmt);
  return typeof t === 'string' ? t : undefined;
}

/**
 * Compiles a format once. Throws a TypeError with code `POSTERN_ERR_ACCESS_LOG_FORMAT` for a bad
 * one (see validateAccessLogFormat).
 */
export function compileAccessFormat(fmt: string): AccessFormatter {
  if (fmt === 'combined') return combined();
  if (fmt === 'json') return json();
  const t = parseTemplate(fmt);
  if (typeof t === 'string') {
    const err = new TypeError(t) as TypeError & { code: string };
    err.code = ACCESS_FORMAT_ERROR;
    throw err;
  }
  return template(t);
}
