// SCGI request encoder, from the front server's side: for tests, load tools and health checks.
// The application's responses need no SCGI framing: a CGI head (`encodeResponseHead('cgi', …)`,
// see HEAD_FORM in index.ts) and the body, then the connection closes.

import type { HeaderList } from '../common/head.ts';
import { SCGI_CONTENT_LENGTH, SCGI_MARKER } from './constants.ts';
import { NETSTRING_END, encodeHeaderBlock, netstringPrefix } from './netstring.ts';

/**
 * Encodes one SCGI request exactly as given: the params in order as the header netstring, then
 * the body. Nothing is added (use `scgiParams` for the mandatory headers), so tests can also build
 * requests a decoder must refuse. Throws a BAD_PARAM `ProtocolError` for a NUL or a char above
 * U+00FF in a name or value, which SCGI cannot carry.
 */
export function encodeScgiRequest(params: HeaderList, body?: Uint8Array): Buffer {
  const block = encodeHeaderBlock(params);
  const parts = [netstringPrefix(block.length), block, NETSTRING_END];
  if (body !== undefined && body.length > 0) parts.push(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  return Buffer.concat(parts);
}

/**
 * The params as nginx and Apache send them: CONTENT_LENGTH first (the spec requires it first and
 * always present), then `SCGI: 1`, then the caller's params with any CONTENT_LENGTH or SCGI of
 * theirs left out so the two can never disagree.
 */
export function scgiParams(params: HeaderList, bodyLength: number): Array<[string, string]> {
  const out: Array<[string, string]> = [
    [SCGI_CONTENT_LENGTH, String(bodyLength)],
    [SCGI_MARKER, '1'],
  ];
  for (const [name, value] of params) {
    if (name !== SCGI_CONTENT_LENGTH && name !== SCGI_MARKER) out.push([name, value]);
  }
  return out;
}
