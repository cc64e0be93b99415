// FastCGI 1.0 wire constants (Mark R. Brown, Open Market, 1996; `fcgi-spec.html` §8), named after
// the spec, and postern's FastCGI error codes. Shared by both directions of the protocol.

import { ROLE } from '../common/events.ts';
import type { ProtocolErrorCode } from '../common/errors.ts';

/** §8: `FCGI_VERSION_1`, the only version there is; anything else is not FastCGI. */
export const FCGI_VERSION_1 = 1;

/** §8: `FCGI_HEADER_LEN`; "future versions of the protocol will not reduce this number". */
export const FCGI_HEADER_LEN = 8;

/** §3.3: contentData is "between 0 and 65535 bytes" (a 16-bit length). */
export const FCGI_MAX_CONTENT_LENGTH = 65535;

/** §3.3: paddingData is "between 0 and 255 bytes". */
export const FCGI_MAX_PADDING_LENGTH = 255;

/** §3.3/§8: `FCGI_NULL_REQUEST_ID`, reserved for management records. */
export const FCGI_NULL_REQUEST_ID = 0;

/** §8: values for the type component of FCGI_Header (`FCGI_TYPE.BEGIN_REQUEST` is `FCGI_BEGIN_REQUEST`). */
export const FCGI_TYPE = {
  BEGIN_REQUEST: 1,
  ABORT_REQUEST: 2,
  END_REQUEST: 3,
  PARAMS: 4,
  STDIN: 5,
  STDOUT: 6,
  STDERR: 7,
  DATA: 8,
  GET_VALUES: 9,
  GET_VALUES_RESULT: 10,
  UNKNOWN_TYPE: 11,
} as const;
export type FcgiType = (typeof FCGI_TYPE)[keyof typeof FCGI_TYPE];

/** §8: `FCGI_MAXTYPE`; higher types (and 0) are unknown to this implementation. */
export const FCGI_MAXTYPE = FCGI_TYPE.UNKNOWN_TYPE;

/** §5.1/§8: mask for the flags component of FCGI_BeginRequestBody. */
export const FCGI_FLAG = { KEEP_CONN: 1 } as const;

/** §5.1/§8: values for the role component of FCGI_BeginRequestBody (the same numbers as `ROLE`). */
export const FCGI_ROLE = ROLE;

/** §5.5/§8: values for the protocolStatus component of FCGI_EndRequestBody. */
export const FCGI_PROTOCOL_STATUS = {
  REQUEST_COMPLETE: 0,
  CANT_MPX_CONN: 1,
  OVERLOADED: 2,
  UNKNOWN_ROLE: 3,
} as const;
export type FcgiProtocolStatus = (typeof FCGI_PROTOCOL_STATUS)[keyof typeof FCGI_PROTOCOL_STATUS];

/** §4.1/§8: variable names for FCGI_GET_VALUES / FCGI_GET_VALUES_RESULT. */
export const FCGI_VALUE_NAME = {
  MAX_CONNS: 'FCGI_MAX_CONNS',
  MAX_REQS: 'FCGI_MAX_REQS',
  MPXS_CONNS: 'FCGI_MPXS_CONNS',
} as const;

/**
 * FastCGI-specific error codes. Which request an error concerns is in `ProtocolError.requestId`:
 * 0 means the connection (the decoder stops), anything else ends only that request.
 */
export const FCGI_ERRORS = {
  /** A record header's version byte is not 1 (§3.3). Connection. */
  BAD_VERSION: 'POSTERN_ERR_FCGI_BAD_VERSION',
  /** An application record (BEGIN_REQUEST, ABORT_REQUEST, PARAMS, STDIN, DATA) used request id 0 (App. A). Connection. */
  NULL_REQUEST_ID: 'POSTERN_ERR_FCGI_NULL_REQUEST_ID',
  /** BEGIN_REQUEST whose body is not exactly 8 bytes (§5.1). Connection. */
  BAD_BEGIN_REQUEST: 'POSTERN_ERR_FCGI_BAD_BEGIN_REQUEST',
  /** BEGIN_REQUEST for a request id that is still active (§3.3). Connection. */
  REQUEST_ID_IN_USE: 'POSTERN_ERR_FCGI_REQUEST_ID_IN_USE',
  /**
   * A name-value stream that does not parse: a pair cut off by the stream's end (PARAMS, request)
   * or a malformed GET_VALUES body (connection).
   */
  BAD_NAME_VALUE: 'POSTERN_ERR_FCGI_BAD_NAME_VALUE',
  /**
   * A stream record out of order for its request: STDIN or DATA before the params ended, PARAMS
   * after they ended, a stream record after that stream's terminator, DATA outside the FILTER role.
   * Request (400).
   */
  UNEXPECTED_RECORD: 'POSTERN_ERR_FCGI_UNEXPECTED_RECORD',
} as const satisfies Record<string, ProtocolErrorCode>;
