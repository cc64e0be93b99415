// Query strings and form bodies (application/x-www-form-urlencoded, multipart/form-data) as
// keyword arguments, from the object dispatcher's side. Rules follow CherryPy 18 (measured, see
// test/unit/example-cherrypy.test.ts): `&` and `;` both separate pairs, blank values are kept,
// a name without `=` has the value "", `+` is a space, text is UTF-8 unless the body says otherwise.

import type { Readable } from 'node:stream';
import { ProtocolError } from '../../protocols/common/errors.ts';
import { fromByteString } from './path.ts';

/** A multipart part that carried a `filename` (even an empty one). */
export interface FilePart {
  readonly name: string;
  readonly filename: string;
  /** The part's Content-Type; `application/octet-stream` when it had none (RFC 7578 §4.4). */
  readonly contentType: string;
  readonly data: Buffer;
}

export type FormValue = string | FilePart;
/** One value, or all of them in arrival order when the name was repeated. */
export type KwValue = FormValue | FormValue[];
/**
 * Keyword arguments in arrival order (query string first, then the body). A Map rather than an
 * object: object keys reorder integer-like names (`?b=1&2=x` would list `2` first, CherryPy lists
 * `b`), and a name like `__proto__` must be data, not a prototype.
 */
export type Kwargs = Map<string, KwValue>;

export const FORM_ERRORS = {
  /** The form body exceeded `maxFormBytes` (413). */
  TOO_LARGE: 'POSTERN_ERR_FORM_TOO_LARGE',
  /** A multipart body without its boundary, closing delimiter or part headers (400). */
  MALFORMED: 'POSTERN_ERR_FORM_MALFORMED',
  /** A body's text is not valid in its charset, or the charset is unknown (400). */
  BAD_CHARSET: 'POSTERN_ERR_FORM_CHARSET',
  /** The query string is not valid UTF-8 (404, as CherryPy answers: the URI names nothing). */
  BAD_QUERY: 'POSTERN_ERR_QUERY_CHARSET',
} as const;

export const DEFAULT_MAX_FORM_BYTES = 1024 * 1024;

/** Adds a value; a repeated name turns into an array of every value in order. */
export function addKwarg(into: Kwargs, name: string, value: KwValue): void {
  const prev = into.get(name);
  if (prev === undefined) {
    into.set(name, value);
    return;
  }
  const list = Array.isArray(prev) ? prev : [prev];
  if (Array.isArray(value)) list.push(...value);
  else list.push(value);
  into.set(name, list);
}

function decoderFor(charset: string): ((bytes: Buffer) => string) | undefined {
  const label = charset.trim().toLowerCase();
  if (label === '' || label === 'utf-8' || label === 'utf8') return decodeUtf8;
  // WHATWG maps `latin1` to windows-1252; CherryPy (Python) means ISO-8859-1, byte for byte.
  if (label === 'latin1' || label === 'latin-1' || label === 'iso-8859-1' || label === 'iso8859-1' || label === 'l1') {
    return (bytes) => bytes.toString('latin1');
  }
  try {
    const decoder = new TextDecoder(label, { fatal: true });
    return (bytes) => decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
function decodeUtf8(bytes: Buffer): string {
  return UTF8.decode(bytes);
}

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

/** `unquote_plus` over a byte string: `+` → space, `%XX` → that byte; then decoded. Throws on bad text. */
function unquotePlus(s: string, decode: (bytes: Buffer) => string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 || c === 0x2b || c > 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      out[n++] = 0x20;
    } else if (c === 0x25 && i + 2 < s.length) {
      const hi = HEX[s.charCodeAt(i + 1) & 0xff] ?? -1;
      const lo = HEX[s.charCodeAt(i + 2) & 0xff] ?? -1;
      if (hi >= 0 && lo >= 0 && s.charCodeAt(i + 1) < 256 && s.charCodeAt(i + 2) < 256) {
        out[n++] = (hi << 4) | lo;
        i += 2;
      } else {
        out[n++] = c;
      }
    } else {
      out[n++] = c & 0xff;
    }
  }
  return decode(out.subarray(0, n));
}

function parsePairs(s: string, into: Kwargs, decode: (bytes: Buffer) => string): void {
  let start = 0;
  const n = s.length;
  while (start <= n) {
    let end = start;
    while (end < n) {
      const c = s.charCodeAt(end);
      if (c === 0x26 || c === 0x3b) break;
      end++;
    }
    if (end > start) {
      const eq = s.indexOf('=', start);
      const hasEq = eq !== -1 && eq < end;
      const name = unquotePlus(s.slice(start, hasEq ? eq : end), decode);
      const value = hasEq ? unquotePlus(s.slice(eq + 1, end), decode) : '';
      addKwarg(into, name, value);
    }
    start = end + 1;
  }
}

/**
 * Parses a QUERY_STRING (a byte string) as UTF-8. Throws a ProtocolError `POSTERN_ERR_QUERY_CHARSET`
 * (httpStatus 404) when it is not valid UTF-8.
 */
export function parseQuery(qs: string): Kwargs {
  const out: Kwargs = new Map();
  if (qs === '') return out;
  try {
    parsePairs(qs, out, decodeUtf8);
  } catch {
    throw new ProtocolError(FORM_ERRORS.BAD_QUERY, 'the query string is not valid UTF-8', { httpStatus: 404 });
  }
  return out;
}

/** Parses an urlencoded body in `charset` (default UTF-8). Throws `POSTERN_ERR_FORM_CHARSET` (400). */
export function parseUrlencoded(body: Buffer, charset = 'utf-8'): Kwargs {
  const decode = decoderFor(charset);
  if (decode === undefined) throw new ProtocolError(FORM_ERRORS.BAD_CHARSET, `unknown form charset ${JSON.stringify(charset)}`, { httpStatus: 400 });
  const out: Kwargs = new Map();
  try {
    parsePairs(body.toString('latin1'), out, decode);
  } catch {
    throw new ProtocolError(FORM_ERRORS.BAD_CHARSET, `the form body is not valid ${charset}`, { httpStatus: 400 });
  }
  return out;
}

/**
 * Splits a header value like `multipart/form-data; boundary="x"; charset=utf-8` into its media
 * type (lower-cased) and parameters (names lower-cased, quoted-strings unescaped).
 */
export function parseHeaderParams(value: string): { type: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  let semi = value.indexOf(';');
  const type = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  while (semi !== -1) {
    let i = semi + 1;
    const eq = value.indexOf('=', i);
    if (eq === -1) break;
    const name = value.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (value.charCodeAt(i) === 0x20 || value.charCodeAt(i) === 0x09) i++;
    let v = '';
    if (value.charCodeAt(i) === 0x22) {
      i++;
      while (i < value.length && value.charCodeAt(i) !== 0x22) {
        if (value.charCodeAt(i) === 0x5c && i + 1 < value.length) i++;
        v += value[i];
        i++;
      }
      semi = value.indexOf(';', i);
    } else {
      semi = value.indexOf(';', i);
      v = (semi === -1 ? value.slice(i) : value.slice(i, semi)).trim();
    }
    if (name !== '' && !params.has(name)) params.set(name, v);
  }
  return { type, params };
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

function malformed(why: string): ProtocolError {
  return new ProtocolError(FORM_ERRORS.MALFORMED, `multipart body: ${why}`, { httpStatus: 400 });
}

/** RFC 5987 `UTF-8''caf%C3%A9` → `café`; undefined when it is not in that form. */
function extValue(v: string): string | undefined {
  const q = v.indexOf("''");
  if (q === -1) return undefined;
  const decode = decoderFor(v.slice(0, q));
  if (decode === undefined) return undefined;
  try {
    return unquotePlus(v.slice(q + 2).replace(/\+/g, '%2B'), decode);
  } catch {
    return undefined;
  }
}

/**
 * Parses a multipart/form-data body (RFC 7578). Parts without a filename become strings in their
 * charset (default UTF-8); parts with one become FilePart. Throws `POSTERN_ERR_FORM_MALFORMED` or
 * `POSTERN_ERR_FORM_CHARSET` (both 400).
 */
export function parseMultipart(body: Buffer, boundary: string): Kwargs {
  if (boundary === '' || boundary.length > 200) throw malformed('missing or oversized boundary');
  const out: Kwargs = new Map();
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const next = Buffer.from(`\r\n--${boundary}`, 'latin1');
  let pos: number;
  if (body.subarray(0, delimiter.length).equals(delimiter)) pos = delimiter.length;
  else {
    const at = body.indexOf(next);
    if (at === -1) throw malformed('no opening boundary');
    pos = at + next.length;
  }
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return out;
    // Transport padding (RFC 2046 §5.1.1) may sit between the boundary and its CRLF.
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (!body.subarray(pos, pos + 2).equals(CRLF)) throw malformed('boundary not followed by CRLF');
    pos += 2;
    const headEnd = body.indexOf(CRLFCRLF, pos);
    const emptyHead = body.subarray(pos, pos + 2).equals(CRLF);
    if (headEnd === -1 && !emptyHead) throw malformed('part headers do not end');
    const headText = emptyHead ? '' : body.toString('latin1', pos, headEnd);
    const dataStart = emptyHead ? pos + 2 : headEnd + 4;
    const dataEnd = body.indexOf(next, dataStart);
    if (dataEnd === -1) throw malformed('no closing boundary');
    addPart(out, headText, body.subarray(dataStart, dataEnd));
    pos = dataEnd + next.length;
  }
}

function addPart(out: Kwargs, headText: string, data: Buffer): void {
  let disposition = '';
  let contentType = '';
  for (const line of headText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === 'content-disposition') disposition = line.slice(colon + 1).trim();
    else if (name === 'content-type') contentType = line.slice(colon + 1).trim();
  }
  const { params } = parseHeaderParams(disposition);
  const rawName = params.get('name');
  if (rawName === undefined) return; // RFC 7578 §4.2: every field has a name; one without is not a field.
  const name = fromByteString(rawName);
  const extFilename = params.has('filename*') ? extValue(params.get('filename*') as string) : undefined;
  const rawFilename = params.get('filename');
  if (extFilename !== undefined || rawFilename !== undefined) {
    const filename = extFilename ?? fromByteString(rawFilename as string);
    addKwarg(out, name, Object.freeze({ name, filename, contentType: contentType === '' ? 'application/octet-stream' : contentType, data: Buffer.from(data) }));
    return;
  }
  const charset = contentType === '' ? 'utf-8' : (parseHeaderParams(contentType).params.get('charset') ?? 'utf-8');
  const decode = decoderFor(charset);
  if (decode === undefined) throw new ProtocolError(FORM_ERRORS.BAD_CHARSET, `unknown part charset ${JSON.stringify(charset)}`, { httpStatus: 400 });
  try {
    addKwarg(out, name, decode(data));
  } catch {
    throw new ProtocolError(FORM_ERRORS.BAD_CHARSET, `form field is not valid ${charset}`, { httpStatus: 400 });
  }
}

function tooLarge(limit: number): ProtocolError {
  return new ProtocolError(FORM_ERRORS.TOO_LARGE, `the form body is larger than maxFormBytes (${limit})`, { httpStatus: 413, limit: 'maxFormBytes' });
}

/**
 * Reads a whole body into memory, refusing (`POSTERN_ERR_FORM_TOO_LARGE`, 413) as soon as it would
 * pass `limit` bytes: up front when CONTENT_LENGTH says so, else while counting. The rest of the
 * stream is left unread for the connection to discard.
 */
export async function readBody(input: Readable, limit: number, contentLength?: string): Promise<Buffer> {
  if (contentLength !== undefined && contentLength !== '' && Number(contentLength) > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  // destroyOnReturn false: stopping at the limit must not destroy the connection's stream.
  for await (const chunk of input.iterator({ destroyOnReturn: false })) {
    const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : (chunk as Buffer);
    total += buf.length;
    if (total > limit) throw tooLarge(limit);
    chunks.push(buf);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
}

/**
 * The keyword arguments a form body carries, by its Content-Type; other media types carry none
 * (their body stays unread, for the app to read from `postern.input`).
 */
export async function parseFormBody(input: Readable, contentType: string | undefined, contentLength: string | undefined, maxFormBytes: number): Promise<Kwargs | undefined> {
  if (contentType === undefined || contentType === '') return undefined;
  const { type, params } = parseHeaderParams(contentType);
  if (type === 'application/x-www-form-urlencoded') {
    return parseUrlencoded(await readBody(input, maxFormBytes, contentLength), params.get('charset') ?? 'utf-8');
  }
  if (type === 'multipart/form-data') {
    const boundary = params.get('boundary');
    if (boundary === undefined) throw malformed('no boundary parameter');
    return parseMultipart(await readBody(input, maxFormBytes, contentLength), boundary);
  }
  return undefined;
}
