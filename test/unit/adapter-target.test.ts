// The request target adapted apps see (req.url, request.url), from the app's side: table tests
// for mount-relative and full paths, the client's escaping kept when it is faithful, and targets
// made safe for an HTTP/1.1 request line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeTarget, mountPath, requestTarget } from '../../src/app/adapters/target.ts';
import { makeEnviron } from './adapter-kit.ts';

interface Row {
  name: string;
  scriptName: string;
  pathInfo: string;
  requestUri?: string;
  query?: string;
  relative: string;
  full: string;
}

const ROWS: Row[] = [
  { name: 'root mount', scriptName: '', pathInfo: '/a', requestUri: '/a', relative: '/a', full: '/a' },
  { name: 'prefix stripped, query kept', scriptName: '/api', pathInfo: '/users/1', requestUri: '/api/users/1?x=1', query: 'x=1', relative: '/users/1?x=1', full: '/api/users/1?x=1' },
  { name: 'the mount itself', scriptName: '/api', pathInfo: '', requestUri: '/api', relative: '/', full: '/api' },
  { name: 'the mount with a slash', scriptName: '/api', pathInfo: '/', requestUri: '/api/', relative: '/', full: '/api/' },
  { name: '%2F stays escaped when REQUEST_URI is faithful', scriptName: '/api', pathInfo: '/a/b', requestUri: '/api/a%2Fb', relative: '/a%2Fb', full: '/api/a%2Fb' },
  { name: 'escaped prefix (UTF-8 bytes)', scriptName: '/caf\xc3\xa9', pathInfo: '/x', requestUri: '/caf%C3%A9/x', relative: '/x', full: '/caf%C3%A9/x' },
  { name: 'prefix escaped needlessly', scriptName: '/api', pathInfo: '/x', requestUri: '/%61pi/x', relative: '/x', full: '/%61pi/x' },
  { name: 'front server normalised the path: PATH_INFO wins', scriptName: '/api', pathInfo: '/y', requestUri: '/api//x/../y', relative: '/y', full: '/api/y' },
  { name: 'no REQUEST_URI: PATH_INFO escaped', scriptName: '/m', pathInfo: '/a b', relative: '/a%20b', full: '/m/a%20b' },
  { name: 'absolute-form REQUEST_URI', scriptName: '/api', pathInfo: '/x', requestUri: 'http://h.example/api/x?q', query: 'q', relative: '/x?q', full: '/api/x?q' },
  { name: 'raw obs-text byte in the path', scriptName: '/api', pathInfo: '/\xe9', requestUri: '/api/\xe9', relative: '/%E9', full: '/api/%E9' },
  { name: 'unsafe query bytes escaped, escapes kept', scriptName: '', pathInfo: '/', requestUri: '/?a=b c&d=\xe9&e=%zz', query: 'a=b c&d=\xe9&e=%zz', relative: '/?a=b%20c&d=%E9&e=%zz', full: '/?a=b%20c&d=%E9&e=%zz' },
  { name: 'a prefix that does not decode from REQUEST_URI', scriptName: '/other', pathInfo: '/x', requestUri: '/api/x', relative: '/x', full: '/other/x' },
];

test('requestTarget: relative and full targets', () => {
  for (const row of ROWS) {
    const env = makeEnviron({ scriptName: row.scriptName, pathInfo: row.pathInfo, query: row.query ?? '', ...(row.requestUri === undefined ? {} : { requestUri: row.requestUri }) });
    assert.equal(requestTarget(env, 'relative'), row.relative, `${row.name} (relative)`);
    assert.equal(requestTarget(env, 'full'), row.full, `${row.name} (full)`);
  }
});

test('escapeTarget only escapes what a request line may not carry', () => {
  assert.equal(escapeTarget('/plain/path?x=1&y=%20'), '/plain/path?x=1&y=%20');
  assert.equal(escapeTarget('/a b#c\x00\x7f'), '/a%20b%23c%00%7F');
  assert.equal(escapeTarget('/\u20ac'), '/%E2%82%AC');
});

test('mountPath is the escaped SCRIPT_NAME, empty at the root', () => {
  assert.equal(mountPath(makeEnviron({ scriptName: '' })), '');
  assert.equal(mountPath(makeEnviron({ scriptName: '/caf\xc3\xa9' })), '/caf%C3%A9');
});
