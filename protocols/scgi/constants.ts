// SCGI wire constants and error codes, from the application's side. Spec: the SCGI protocol text
// by Neil Schemenauer (python.ca/nas/scgi/protocol.txt), summarised in PROTOCOLS.md §B.3.

import type { ProtocolErrorCode } from '../common/errors.ts';

/** SCGI carries one request per connection; its events always name request 1. */
export const SCGI_REQUEST_ID = 1;

/** Netstring punctuation: `<decimal length> ":" <bytes> ","`. */
export const SCGI_COLON = 0x3a;
export const SCGI_COMMA = 0x2c;

/** The header the spec says must come first and must always be present, even when "0". */
export const SCGI_CONTENT_LENGTH = 'CONTENT_LENGTH';
/** The spec says a header `SCGI: 1` must always be present; postern accepts its absence. */
export const SCGI_MARKER = 'SCGI';

/** SCGI protocol error codes. Shared ones (TRUNCATED, limits, CONTENT_LENGTH) are in COMMON_ERRORS. */
export const SCGI_ERRORS = {
  /** The first byte is an upper-case letter: an HTTP request line (`proxy_pass` instead of `scgi_pass`). */
  HTTP_ON_SCGI_PORT: 'POSTERN_ERR_SCGI_HTTP_ON_SCGI_PORT',
  /** The first byte is 1, the FastCGI version byte (`fastcgi_pass` instead of `scgi_pass`). */
  FASTCGI_ON_SCGI_PORT: 'POSTERN_ERR_SCGI_FASTCGI_ON_SCGI_PORT',
  /** The first byte is 0x16, a TLS handshake record, sent to a plain SCGI port. */
  TLS_ON_SCGI_PORT: 'POSTERN_ERR_SCGI_TLS_ON_SCGI_PORT',
  /** The netstring length is empty, has a non-digit or a leading zero, or is 0. */
  BAD_NETSTRING_LENGTH: 'POSTERN_ERR_SCGI_BAD_NETSTRING_LENGTH',
  /** The byte after the header block is not the netstring's closing `,`. */
  MISSING_COMMA: 'POSTERN_ERR_SCGI_MISSING_COMMA',
  /** The header block is not `name NUL value NUL …` ending exactly at the `,`. */
  BAD_HEADER_BLOCK: 'POSTERN_ERR_SCGI_BAD_HEADER_BLOCK',
  /** A header name is empty (the grammar says `name ::= notnull+`). */
  EMPTY_HEADER_NAME: 'POSTERN_ERR_SCGI_EMPTY_HEADER_NAME',
  /** Bytes arrived after the body's CONTENT_LENGTH bytes; SCGI has one request per connection. */
  TRAILING_BYTES: 'POSTERN_ERR_SCGI_TRAILING_BYTES',
} as const satisfies Record<string, ProtocolErrorCode>;

export type ScgiErrorCode = (typeof SCGI_ERRORS)[keyof typeof SCGI_ERRORS];
