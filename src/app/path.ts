// The one place that knows how request paths are decoded, normalised, split at a mount and joined
// again, from the tree's side. Paths are "byte strings": one char per byte (latin1), as in PEP 3333.

/** Hex digit value, or -1 (a 256-entry table instead of parseInt/regex on the hot path, STYLE.md 18). */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0x30; c <= 0x39; c++) HEX[c] = c - 0x30;
for (let c = 0x41; c <= 0x46; c++) HEX[c] = c - 0x41 + 10;
for (let c = 0x61; c <= 0x66; c++) HEX[c] = c - 0x61 + 10;

function hex(c: number): number {
  return c < 256 ? (HEX[c] ?? -1) : -1;
}

/**
 * Decodes `%XX` escapes into the byte they name (one latin1 char per byte). A `%` not followed by
 * two hex digits stays as it is, as nginx and Apache leave it. `+` is not a space in a path.
 */
export function percentDecode(s: string): string {
  let i = s.indexOf('%');
  if (i === -1) return s;
  let out = s.slice(0, i);
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < n) {
      const hi = hex(s.charCodeAt(i + 1));
      const lo = hex(s.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out += String.fromCharCode((hi << 4) | lo);
        i += 3;
        continue;
      }
    }
    out += s[i];
    i++;
  }
  return out;
}

/**
 * Removes `.` and `..` segments (RFC 3986 §5.2.4) and merges runs of `/`, the way nginx and Apache
 * (MergeSlashes, default on) normalise the path they route on. `..` never climbs above the root.
 * The result starts with `/` when the input did. Paths without `//` or `/.` are returned unchanged.
 */
export function normalizePath(path: string): string {
  if (path.indexOf('//') === -1 && path.indexOf('/.') === -1) return path;
  const segments: string[] = [];
  const n = path.length;
  let start = path.charCodeAt(0) === 0x2f ? 1 : 0;
  let trailing = false;
  while (start <= n) {
    let end = path.indexOf('/', start);
    if (end === -1) end = n;
    const seg = path.slice(start, end);
    trailing = end === n ? seg === '' || seg === '.' || seg === '..' : false;
    if (seg === '..') segments.pop();
    else if (seg !== '' && seg !== '.') segments.push(seg);
    start = end + 1;
  }
  const lead = path.charCodeAt(0) === 0x2f ? '/' : '';
  if (segments.length === 0) return lead;
  return lead + segments.join('/') + (trailing ? '/' : '');
}

/**
 * The decoded, normalised path of a request target as the front server received it
 * (REQUEST_URI): query dropped, absolute-form (`http://host/p`) reduced to its path.
 */
export function requestPath(requestUri: string): string {
  let end = requestUri.indexOf('?');
  if (end === -1) end = requestUri.length;
  let start = 0;
  if (requestUri.charCodeAt(0) !== 0x2f) {
    // absolute-form (RFC 9112 §3.2.2): skip scheme and authority.
    const scheme = requestUri.indexOf('://');
    if (scheme !== -1 && scheme < end) {
      const slash = requestUri.indexOf('/', scheme + 3);
      start = slash === -1 || slash > end ? end : slash;
      if (start === end) return '/';
    }
  }
  const raw = start === 0 && end === requestUri.length ? requestUri : requestUri.slice(start, end);
  return normalizePath(percentDecode(raw));
}

/** The query part of a request target, without `?` ("" when there is none). */
export function requestQuery(requestUri: string): string {
  const q = requestUri.indexOf('?');
  return q === -1 ? '' : requestUri.slice(q + 1);
}

/** A JS (UTF-16) string as the latin1 byte string of its UTF-8 encoding, e.g. `é` → `Ã©`. */
export function toByteString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return Buffer.from(s, 'utf8').toString('latin1');
  }
  return s;
}

/**
 * A byte string decoded as UTF-8; a byte string that is not valid UTF-8 is returned as latin1
 * (CherryPy's rule for PATH_INFO, and what keeps `%FF` addressable).
 */
export function fromByteString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      try {
        return UTF8_FATAL.decode(Buffer.from(s, 'latin1'));
      } catch {
        return s;
      }
    }
  }
  return s;
}

const UTF8_FATAL = new TextDecoder('utf-8', { fatal: true });

/** Error code on the TypeError thrown for a mount prefix that cannot be used. */
export const MOUNT_PREFIX_ERROR = 'POSTERN_ERR_MOUNT_PREFIX';

function prefixError(prefix: string, why: string): TypeError {
  const err = new TypeError(`postern: mount prefix ${JSON.stringify(prefix)} ${why}`);
  (err as TypeError & { code: string }).code = MOUNT_PREFIX_ERROR;
  return err;
}

/**
 * A mount prefix in the byte-string form it is matched in: leading `/` added, trailing `/`
 * stripped, `/` and `` become `` (the root). Non-ASCII is taken as text and matched as its UTF-8
 * bytes, so `/café` matches a request for `/caf%C3%A9`. Throws (code `POSTERN_ERR_MOUNT_PREFIX`)
 * on `?`, `#`, NUL, empty segments, and `.`/`..` segments, none of which a normalised path holds.
 */
export function normalizePrefix(prefix: string): string {
  let p = prefix;
  if (p.charCodeAt(0) !== 0x2f) p = '/' + p;
  let end = p.length;
  while (end > 0 && p.charCodeAt(end - 1) === 0x2f) end--;
  p = p.slice(0, end);
  if (p === '') return '';
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 0x3f || c === 0x23 || c === 0) throw prefixError(prefix, 'may not contain ?, # or NUL');
  }
  for (const seg of p.slice(1).split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw prefixError(prefix, 'has an empty, . or .. segment');
  }
  return toByteString(p);
}

/**
 * Whether `path` lies under `prefix` on a path-segment boundary: `/par` holds `/par`, `/par/`,
 * `/par/x`, not `/parx`. The root prefix `` holds every path.
 */
export function underPrefix(path: string, prefix: string): boolean {
  const n = prefix.length;
  if (n === 0) return true;
  return path.startsWith(prefix) && (path.length === n || path.charCodeAt(n) === 0x2f);
}

/**
 * Splits a path at a mount prefix: `[scriptName + prefix, rest]`, or undefined when the path is
 * not under the prefix. The rest is `` or starts with `/`.
 */
export function splitAtMount(scriptName: string, pathInfo: string, prefix: string): [string, string] | undefined {
  if (!underPrefix(pathInfo, prefix)) return undefined;
  return [scriptName + prefix, pathInfo.slice(prefix.length)];
}

/** SCRIPT_NAME + PATH_INFO as one path, never with a doubled `/` at the seam. */
export function joinPath(scriptName: string, pathInfo: string): string {
  if (scriptName.endsWith('/') && pathInfo.startsWith('/')) return scriptName + pathInfo.slice(1);
  return scriptName + pathInfo;
}

// RFC 3986 pchar minus `%`, plus `/`: the bytes a path may carry unescaped.
const PATH_SAFE = new Uint8Array(256);
for (const c of "-._~!$&'()*+,;=:@/") PATH_SAFE[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) PATH_SAFE[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) PATH_SAFE[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) PATH_SAFE[c] = 1;
const HEX_DIGITS = '0123456789ABCDEF';

/**
 * A byte-string path (PATH_INFO, SCRIPT_NAME) as a URI path with `%XX` escapes, for building a
 * `req.url` or a `Location`. `%2F` and `/` were made the same by decoding; this yields `/`.
 */
export function encodePath(path: string): string {
  for (let j = 0; j < path.length; j++) {
    // Not a byte string but text: encode it as UTF-8 first rather than guess.
    if (path.charCodeAt(j) > 0xff) return encodePath(toByteString(path));
  }
  let i = 0;
  const n = path.length;
  while (i < n) {
    const c = path.charCodeAt(i);
    if (PATH_SAFE[c] === 0) break;
    i++;
  }
  if (i === n) return path;
  let out = path.slice(0, i);
  for (; i < n; i++) {
    const c = path.charCodeAt(i);
    if (PATH_SAFE[c] === 1) out += path[i];
    else out += '%' + HEX_DIGITS[c >> 4] + HEX_DIGITS[c & 15];
  }
  return out;
}
