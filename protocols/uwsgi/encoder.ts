// uwsgi request encoder, from the front server's side: for tests, load tools and health checks.
// The application's responses need no uwsgi framing: an HTTP status line and headers
// (`encodeResponseHead('http', …)`, see HEAD_FORM in index.ts) and the body, then close.

import { COMMON_ERRORS, ProtocolError } from '../common/errors.ts';
import type { HeaderList } from '../common/head.ts';
import { UWSGI_HEADER_SIZE, UWSGI_MAX_DATASIZE } from './constants.ts';
import { encodeVars } from './vars.ts';

/**
 * Encodes one uwsgi packet exactly as given: the 4-byte header, the vars in order, then the body
 * (which the vars' CONTENT_LENGTH must announce; nothing is added). Throws a `ProtocolError` when
 * the vars cannot be carried: over 65535 bytes in all (PARAMS_TOO_LARGE), or a char above U+00FF
 * (BAD_PARAM); a RangeError for a modifier outside 0..255.
 */
export function encodeUwsgiRequest(params: HeaderList, body?: Uint8Array, modifier1 = 0, modifier2 = 0): Buffer {
  if (!isByte(modifier1) || !isByte(modifier2)) {
    throw new RangeError(`uwsgi modifiers are bytes, got ${String(modifier1)} and ${String(modifier2)}`);
  }
  const vars = encodeVars(params);
  if (vars.length > UWSGI_MAX_DATASIZE) {
    throw new ProtocolError(COMMON_ERRORS.PARAMS_TOO_LARGE, `uwsgi vars of ${String(vars.length)} bytes do not fit datasize (max ${String(UWSGI_MAX_DATASIZE)})`);
  }
  const header = Buffer.allocUnsafe(UWSGI_HEADER_SIZE);
  header[0] = modifier1;
  header.writeUInt16LE(vars.length, 1);
  header[3] = modifier2;
  const parts = [header, vars];
  if (body !== undefined && body.length > 0) parts.push(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  return Buffer.concat(parts);
}

function isByte(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xff;
}
