// uwsgi wire constants and error codes, from the application's side. Spec: uwsgi-docs
// `Protocol.rst`; behaviour checked against uWSGI 2.0.21 (`proto/uwsgi.c`, `core/protocol.c`,
// `plugins/ping/ping_plugin.c`), summarised in PROTOCOLS.md §B.4.

import type { ProtocolErrorCode } from '../common/errors.ts';

/** uwsgi carries one request per connection; its events always name request 1. */
export const UWSGI_REQUEST_ID = 1;

/** Packet header: modifier1 (u8), datasize (u16 little-endian), modifier2 (u8). */
export const UWSGI_HEADER_SIZE = 4;

/** datasize is a u16, so a vars block never exceeds this many bytes. */
export const UWSGI_MAX_DATASIZE = 0xffff;

/** modifier1 values postern knows (Protocol.rst table). Only WSGI (0) and PING (100) are served. */
export const UWSGI_MODIFIER1 = {
  /** Standard request with CGI vars; nginx `uwsgi_modifier1` and Apache default. */
  WSGI: 0,
  /** Health check: answered with a PONG header and the connection closed. */
  PING: 100,
} as const;

/**
 * uWSGI's reply to a PING: modifier1 100, datasize 0, modifier2 1 (ping_plugin.c sets
 * modifier2 = 1; observed on the wire from uWSGI 2.0.21). Shared; never mutate it.
 */
export const UWSGI_PONG: Buffer = Buffer.from([UWSGI_MODIFIER1.PING, 0, 0, 1]);

/** The PING request `uwsgi --ping` sends (observed on the wire). For health-check tools and tests. */
export const UWSGI_PING: Buffer = Buffer.from([UWSGI_MODIFIER1.PING, 0, 0, 0]);

/** The CGI var that gives the body length; absent or empty means no body. */
export const UWSGI_CONTENT_LENGTH = 'CONTENT_LENGTH';

/** uwsgi protocol error codes. Shared ones (TRUNCATED, limits, CONTENT_LENGTH) are in COMMON_ERRORS. */
export const UWSGI_ERRORS = {
  /** The header reads like an HTTP method (`GET ` is datasize 21573): `proxy_pass` instead of `uwsgi_pass`. */
  HTTP_ON_UWSGI_PORT: 'POSTERN_ERR_UWSGI_HTTP_ON_UWSGI_PORT',
  /** The header reads like a FastCGI record header (version 1, type 1..11). */
  FASTCGI_ON_UWSGI_PORT: 'POSTERN_ERR_UWSGI_FASTCGI_ON_UWSGI_PORT',
  /** The header reads like a TLS handshake record (0x16 0x03): suwsgi or `uwsgi_ssl` to a plain port. */
  TLS_ON_UWSGI_PORT: 'POSTERN_ERR_UWSGI_TLS_ON_UWSGI_PORT',
  /** A modifier1 other than 0 (WSGI) or 100 (PING). */
  UNSUPPORTED_MODIFIER: 'POSTERN_ERR_UWSGI_UNSUPPORTED_MODIFIER',
  /** A var's length prefix or bytes run past datasize: the vars must exactly fill it. */
  BAD_VARS: 'POSTERN_ERR_UWSGI_BAD_VARS',
  /** A var with a zero-length key ("uwsgi key cannot be null", core/protocol.c). */
  EMPTY_KEY: 'POSTERN_ERR_UWSGI_EMPTY_KEY',
  /** Bytes arrived after the body's CONTENT_LENGTH bytes; uwsgi has one request per connection. */
  TRAILING_BYTES: 'POSTERN_ERR_UWSGI_TRAILING_BYTES',
} as const satisfies Record<string, ProtocolErrorCode>;

export type UwsgiErrorCode = (typeof UWSGI_ERRORS)[keyof typeof UWSGI_ERRORS];
