// Protocol errors as values: a stable code, the request it concerns, and a hint for the reply.
// Tests assert on `code`, never on message text.

/** Every postern protocol error code starts with this prefix, e.g. `POSTERN_ERR_FCGI_BAD_VERSION`. */
export type ProtocolErrorCode = `POSTERN_ERR_${string}`;

export interface ProtocolErrorInit {
  /** Request the error concerns; 0 when it concerns the whole connection. */
  readonly requestId?: number;
  /**
   * The HTTP status to answer with when a response can still be framed on this connection
   * (400 malformed, 413 body too large, 431 params too large, 501 unsupported); 0 when the only
   * sane reply is to close the connection.
   */
  readonly httpStatus?: number;
  /** The name of the option (limit) that was exceeded, so the log can name the knob. */
  readonly limit?: string;
}

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  readonly requestId: number;
  readonly httpStatus: number;
  readonly limit: string | undefined;

  constructor(code: ProtocolErrorCode, message: string, init: ProtocolErrorInit = {}) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.requestId = init.requestId ?? 0;
    this.httpStatus = init.httpStatus ?? 0;
    this.limit = init.limit;
  }
}

/** Codes shared by every protocol. Protocol-specific codes live in each protocol's constants. */
export const COMMON_ERRORS = {
  /** The peer closed the connection in the middle of a frame or header block. */
  TRUNCATED: 'POSTERN_ERR_TRUNCATED',
  /** The params/vars block exceeded `maxParamsBytes`. */
  PARAMS_TOO_LARGE: 'POSTERN_ERR_PARAMS_TOO_LARGE',
  /** More params than `maxParamCount`. */
  TOO_MANY_PARAMS: 'POSTERN_ERR_TOO_MANY_PARAMS',
  /** The body exceeded `maxBodyBytes`. */
  BODY_TOO_LARGE: 'POSTERN_ERR_BODY_TOO_LARGE',
  /** CONTENT_LENGTH missing where the protocol needs it, or not a decimal number. */
  BAD_CONTENT_LENGTH: 'POSTERN_ERR_BAD_CONTENT_LENGTH',
  /** A name or value holds a byte the protocol forbids (NUL). */
  BAD_PARAM: 'POSTERN_ERR_BAD_PARAM',
  /** Bytes arrived after the decoder stopped (after an error or end()). */
  AFTER_END: 'POSTERN_ERR_AFTER_END',
} as const satisfies Record<string, ProtocolErrorCode>;
