// uwsgi vars: `u16le keylen, key, u16le vallen, value` repeated, exactly filling datasize
// (uwsgi-docs Protocol.rst). Pure functions over complete blocks; the decoder frames them.

import { COMMON_ERRORS, ProtocolError } from '../common/errors.ts';
import type { HeaderList } from '../common/head.ts';
import { KnownNames, latin1 } from '../common/latin1.ts';
import { UWSGI_ERRORS, UWSGI_MAX_DATASIZE } from './constants.ts';

/** uwsgi's names by place (see KnownNames). */
const KNOWN = new KnownNames();

/**
 * Parses a complete vars block into the flat `[name0, value0, …]` list of RequestHead, decoded as
 * latin1 and kept in wire order with duplicates (nginx 1.22 sends one HTTP_COOKIE per Cookie
 * line). Empty values are fine (nginx sends an empty CONTENT_LENGTH on a GET); empty keys are not
 * (uWSGI: "uwsgi key cannot be null"). Returns a coded error instead of throwing.
 */
export function parseVars(block: Buffer, maxParamCount: number): string[] | ProtocolError {
  const params: string[] = [];
  const end = block.length;
  // One latin1 string for the block, keys and values cut out of it as JS substrings: one C++ call
  // per request instead of one per string (see protocols/scgi/netstring.ts for the figure).
  const text = latin1(block, 0, end);
  let pos = 0;
  while (pos < end) {
    if (end - pos < 2) return overrun('a key length', pos, end);
    const keyLength = block[pos]! | (block[pos + 1]! << 8);
    pos += 2;
    if (keyLength === 0) {
      return new ProtocolError(UWSGI_ERRORS.EMPTY_KEY, `uwsgi var ${String(params.length / 2 + 1)} has an empty key`, { httpStatus: 400 });
    }
    if (end - pos < keyLength) return overrun(`a ${String(keyLength)}-byte key`, pos, end);
    const keyStart = pos;
    pos += keyLength;
    if (end - pos < 2) return overrun(`the value length of ${text.slice(keyStart, pos)}`, pos, end);
    const valueLength = block[pos]! | (block[pos + 1]! << 8);
    pos += 2;
    if (end - pos < valueLength) return overrun(`the ${String(valueLength)}-byte value of ${text.slice(keyStart, keyStart + keyLength)}`, pos, end);
    if (params.length / 2 >= maxParamCount) {
      return new ProtocolError(COMMON_ERRORS.TOO_MANY_PARAMS, `uwsgi request has more than maxParamCount (${String(maxParamCount)}) vars`, {
        httpStatus: 431,
        limit: 'maxParamCount',
      });
    }
    params.push(KNOWN.name(params.length >> 1, block, keyStart, keyLength, text, keyStart), text.slice(pos, pos + valueLength));
    pos += valueLength;
  }
  return params;
}

function overrun(what: string, pos: number, end: number): ProtocolError {
  return new ProtocolError(UWSGI_ERRORS.BAD_VARS, `uwsgi vars block ends ${String(end - pos)} bytes into ${what}: vars must exactly fill datasize`, {
    httpStatus: 400,
  });
}

/** Bytes the vars take on the wire: the datasize they need. */
export function varsSize(params: HeaderList): number {
  let size = 0;
  for (const [name, value] of params) size += 4 + name.length + value.length;
  return size;
}

/**
 * Encodes the vars exactly as given, in order; empty keys are allowed so tests can build invalid
 * blocks. Throws a `ProtocolError` for what uwsgi cannot carry: a char above U+00FF (BAD_PARAM) or
 * a key or value longer than 65535 bytes (PARAMS_TOO_LARGE).
 */
export function encodeVars(params: HeaderList): Buffer {
  for (const [name, value] of params) {
    checkEncodable(name);
    checkEncodable(value);
  }
  const block = Buffer.allocUnsafe(varsSize(params));
  let pos = 0;
  for (const [name, value] of params) {
    pos = block.writeUInt16LE(name.length, pos);
    pos += block.write(name, pos, 'latin1');
    pos = block.writeUInt16LE(value.length, pos);
    pos += block.write(value, pos, 'latin1');
  }
  return block;
}

function checkEncodable(s: string): void {
  if (s.length > UWSGI_MAX_DATASIZE) {
    throw new ProtocolError(COMMON_ERRORS.PARAMS_TOO_LARGE, `uwsgi cannot carry a ${String(s.length)}-byte string (max ${String(UWSGI_MAX_DATASIZE)})`);
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new ProtocolError(COMMON_ERRORS.BAD_PARAM, `uwsgi cannot carry char U+${c.toString(16).padStart(4, '0')} in ${JSON.stringify(s.slice(0, 64))}`);
  }
}
