// uwsgi codec: the request decoder (application side) and a request encoder (front-server side).

import type { HeadForm } from '../common/head.ts';

export * from './constants.ts';
export { UwsgiDecoder } from './decoder.ts';
export { encodeUwsgiRequest } from './encoder.ts';
export { encodeVars, parseVars, varsSize } from './vars.ts';

/**
 * Response head form for uwsgi: an `HTTP/1.1 200 OK` status line. Apache mod_proxy_uwsgi
 * answers 500 without one; nginx accepts either form (PROTOCOLS.md §B.4 item 7).
 */
export const HEAD_FORM = 'http' as const satisfies HeadForm;
