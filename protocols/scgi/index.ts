// SCGI codec: the request decoder (application side) and a request encoder (front-server side).

import type { HeadForm } from '../common/head.ts';

export * from './constants.ts';
export { ScgiDecoder } from './decoder.ts';
export { encodeScgiRequest, scgiParams } from './encoder.ts';
export { encodeHeaderBlock, parseHeaderBlock } from './netstring.ts';

/**
 * Response head form for SCGI: a CGI `Status:` header. Apache mod_proxy_scgi scans CGI headers;
 * nginx accepts either form (PROTOCOLS.md §B.3 item 8).
 */
export const HEAD_FORM = 'cgi' as const satisfies HeadForm;
