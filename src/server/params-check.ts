// What a gateway request's params may hold, from the server's side, checked once per request
// before the environ is built: the same bytes the HTTP listener's parser (llhttp) refuses in
// header names and values are refused here, so an app sees one rule whichever protocol carried
// the request, and no adapter is handed a header name or value it cannot represent.
//   - names: no control byte, space or DEL (0x00–0x20, 0x7f): CR/LF there would split headers in
//     the Node adapter, and the Fetch adapter's Headers throws on them;
//   - values: no NUL, CR or LF (RFC 9110 §5.5; HTAB and obs-text are fine);
//   - CONTENT_LENGTH: decimal digits (or empty), and every copy the same (RFC 9112 §6.3: differing
//     lengths are a smuggling attempt). The SCGI and uwsgi decoders frame bodies by it and check it
//     themselves; FastCGI frames by records, so only this catches a bad one there.
// Measured (Node 20, this 2-core box, nginx's fastcgi_params plus 8 browser headers, 26 pairs,
// 813 chars): 0.8–1.2 µs per request alone with one regex test per string; a 256-entry table
// loop over the chars was 1.8–2.5 µs, a charCodeAt loop and one regex over the joined strings no
// better. In bench/hot-path.ts (tsc build, fastcgi hello, 5 interleaved runs) it moves the median
// from 4.2 to 5.0 µs CPU per request; checking only HTTP_* names would save 0.3 µs of that but
// let a NUL or CR/LF through in other names. Doing it inside the decoders' own byte scans
// (FastCGI already memchr's for NUL) is where the rest could be won back.

import { COMMON_ERRORS, ProtocolError } from '../../protocols/common/errors.ts';

// eslint-disable-next-line no-control-regex
const BAD_NAME = /[\x00-\x20\x7f]/;
const BAD_VALUE = /[\0\r\n]/;
const DECIMAL = /^[0-9]{1,15}$/;

function describe(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/**
 * The first problem with `params` (the flat `[name0, value0, …]` list of a request head) as a coded
 * 400 ProtocolError for request `requestId`, or undefined when they are fine.
 */
export function checkParams(params: readonly string[], requestId: number): ProtocolError | undefined {
  let length: string | undefined;
  const n = params.length - 1;
  for (let i = 0; i < n; i += 2) {
    const name = params[i]!;
    const value = params[i + 1]!;
    if (BAD_NAME.test(name)) {
      return new ProtocolError(COMMON_ERRORS.BAD_PARAM, `param name ${describe(name)} holds a control character, space or DEL`, { requestId, httpStatus: 400 });
    }
    if (BAD_VALUE.test(value)) {
      return new ProtocolError(COMMON_ERRORS.BAD_PARAM, `the value of ${describe(name)} holds NUL, CR or LF`, { requestId, httpStatus: 400 });
    }
    if (name === 'CONTENT_LENGTH') {
      if (value !== '' && !DECIMAL.test(value)) {
        return new ProtocolError(COMMON_ERRORS.BAD_CONTENT_LENGTH, `CONTENT_LENGTH ${describe(value)} is not a decimal number`, { requestId, httpStatus: 400 });
      }
      if (length !== undefined && length !== value) {
        return new ProtocolError(COMMON_ERRORS.BAD_CONTENT_LENGTH, `CONTENT_LENGTH sent twice, as ${describe(length)} and ${describe(value)}`, { requestId, httpStatus: 400 });
      }
      length = value;
    }
  }
  return undefined;
}
