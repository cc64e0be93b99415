// The request target an adapted app sees (Node `req.url`, Fetch `request.url`), rebuilt from the
// environ from the app's side: mount-relative by default, the way a sub-app sees it under
// Express `app.use('/api', sub)`, Hono `app.mount()`, or uWSGI `--manage-script-name`.

import type { Environ } from '../types.ts';
import { encodePath, percentDecode } from '../path.ts';

/** `relative`: the path below the mount (PATH_INFO); `full`: SCRIPT_NAME + PATH_INFO. */
export type TargetPath = 'relative' | 'full';

// Bytes a request target may carry as they are: visible ASCII except `#` (RFC 9112 §3.2, RFC 3986
// §3.3/§3.4; `%` is left alone because the target is already escaped).
const TARGET_SAFE = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET_SAFE[c] = 1;
TARGET_SAFE[0x23] = 0;
const HEX_DIGITS = '0123456789ABCDEF';
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE[HEX_DIGITS.charCodeAt(i)] = i;
  HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;
}

/**
 * Escapes what a raw target may not carry on an HTTP/1.1 request line: controls, space, `#` and
 * obs-text bytes that front servers pass through from a lax client. Already escaped text is kept.
 */
export function escapeTarget(s: string): string {
  let i = 0;
  const n = s.length;
  while (i < n && TARGET_SAFE[s.charCodeAt(i)] === 1) i++;
  if (i === n) return s;
  let out = s.slice(0, i);
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0xff && TARGET_SAFE[c] === 1) out += s[i];
    else if (c <= 0xff) out += '%' + HEX_DIGITS[c >> 4] + HEX_DIGITS[c & 15];
    else out += encodeURIComponent(s[i] ?? '');
  }
  return out;
}

/** The raw (still escaped) path of REQUEST_URI, without query or absolute-form authority. */
function rawPathOf(requestUri: string): string {
  let end = requestUri.indexOf('?');
  if (end === -1) end = requestUri.length;
  let start = 0;
  if (requestUri.charCodeAt(0) !== 0x2f) {
    const scheme = requestUri.indexOf('://');
    if (scheme === -1 || scheme > end) return '';
    const slash = requestUri.indexOf('/', scheme + 3);
    if (slash === -1 || slash > end) return '/';
    start = slash;
  }
  return start === 0 && end === requestUri.length ? requestUri : requestUri.slice(start, end);
}

/**
 * Where the raw path splits so that its head decodes to `scriptName`; -1 if no split does. The
 * common case (the prefix appears literally) costs one `startsWith`.
 */
function rawSplit(raw: string, scriptName: string): number {
  if (raw.startsWith(scriptName)) return scriptName.length;
  const n = raw.length;
  let decoded = 0;
  let i = 0;
  while (decoded < scriptName.length) {
    if (i >= n) return -1;
    let c = raw.charCodeAt(i);
    let step = 1;
    if (c === 0x25 && i + 2 < n) {
      const hi = HEX_VALUE[raw.charCodeAt(i + 1)] ?? -1;
      const lo = HEX_VALUE[raw.charCodeAt(i + 2)] ?? -1;
      if (hi >= 0 && lo >= 0) {
        c = (hi << 4) | lo;
        step = 3;
      }
    }
    if (c !== scriptName.charCodeAt(decoded)) return -1;
    decoded++;
    i += step;
  }
  return i;
}

/**
 * The escaped path the app should see. It keeps the client's own escaping (`%2F` stays `%2F`)
 * when REQUEST_URI decodes to exactly SCRIPT_NAME + PATH_INFO; otherwise (the front server
 * normalised the path, or there is no REQUEST_URI) it escapes PATH_INFO afresh.
 */
export function targetPath(environ: Environ, mode: TargetPath): string {
  const scriptName = environ.SCRIPT_NAME;
  const pathInfo = environ.PATH_INFO;
  const uri = environ.REQUEST_URI;
  if (typeof uri === 'string' && uri !== '') {
    const raw = rawPathOf(uri);
    const cut = mode === 'full' || scriptName === '' ? 0 : rawSplit(raw, scriptName);
    if (cut >= 0) {
      const rest = cut === 0 ? raw : raw.slice(cut);
      const wanted = mode === 'full' ? scriptName + pathInfo : pathInfo;
      if (percentDecode(rest) === wanted) return rest === '' ? '/' : escapeTarget(rest);
    }
  }
  const path = mode === 'full' ? scriptName + pathInfo : pathInfo;
  return path === '' ? '/' : encodePath(path);
}

/** Path plus `?QUERY_STRING` when there is one. */
export function requestTarget(environ: Environ, mode: TargetPath): string {
  const path = targetPath(environ, mode);
  const query = environ.QUERY_STRING;
  return query === '' || query === undefined ? path : path + '?' + escapeTarget(query);
}

/** The mount prefix as an escaped path ('' for the root), for `req.baseUrl`-style properties. */
export function mountPath(environ: Environ): string {
  return environ.SCRIPT_NAME === '' ? '' : encodePath(environ.SCRIPT_NAME);
}
