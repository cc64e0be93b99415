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
// Cost (Node 20, bench/hot-path.ts, tsc build, nginx's 24 params): one regex test per name and per
// value was 0.67 µs of a 4.4 µs request. Now a name equal to the one at the same place in the
// previous request was checked then and is only compared (a pointer compare: the decoders hand
// out internalized names, see KnownNames in protocols/common/latin1.ts); values are searched for
// CR and LF with two indexOf (9 ns against 14 ns for the regex per value, a micro-benchmark over
// nginx's values), and for NUL only when the decoder could have let one through (uwsgi: FastCGI
// and SCGI refuse NUL while decoding).

import { COMMON_ERRORS, ProtocolError } from '../../protocols/common/errors.ts';
import { decimalParam } from '../environ.ts';

// eslint-disable-next-line no-control-regex
const BAD_NAME = /[\x00-\x20\x7f]/;

function describe(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/**
 * The names checked in the previous request, by position (see the cost note above). Up to 128
 * pairs are remembered: past that a request is checked in full, as before.
 */
const CHECKED: string[] = [];
const CHECKED_MAX = 128;

/**
 * The first problem with `params` (the flat `[name0, value0, …]` list of a request head) as a coded
 * 400 ProtocolError for request `requestId`, or undefined when they are fine. `nulFree`: the
 * decoder has already refused NUL bytes (FastCGI, SCGI).
 */
export function checkParams(params: readonly string[], requestId: number, nulFree = false): ProtocolError | undefined {
  let length: string | undefined;
  const n = params.length - 1;
  const checked = CHECKED;
  for (let i = 0; i < n; i += 2) {
    const name = params[i]!;
    const value = params[i + 1]!;
    const k = i >> 1;
    if (checked[k] !== name) {
      if (BAD_NAME.test(name)) {
        return new ProtocolError(COMMON_ERRORS.BAD_PARAM, `param name ${describe(name)} holds a control character, space or DEL`, { requestId, httpStatus: 400 });
      }
      if (k < CHECKED_MAX) checked[k] = name;
    }
    if (value.indexOf('\n') !== -1 || value.indexOf('\r') !== -1 || (!nulFree && value.indexOf('\0') !== -1)) {
      return new ProtocolError(COMMON_ERRORS.BAD_PARAM, `the value of ${describe(name)} holds NUL, CR or LF`, { requestId, httpStatus: 400 });
    }
    if (name === 'CONTENT_LENGTH') {
      if (value !== '' && decimalParam(value) < 0) {
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
