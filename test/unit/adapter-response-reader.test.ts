// The HTTP/1.1 response reader behind the Node adapter, from the adapter's side: byte vectors of
// what node:http writes, each also fed split at every boundary and one byte at a time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESPONSE_READER_ERROR, ResponseReader } from '../../src/app/adapters/response-reader.ts';
import type { HeaderList } from '../../src/app/types.ts';

type Event = ['head', number, string, HeaderList] | ['body', string] | ['end'] | ['error', unknown];

function run(chunks: Buffer[], noBody = false, close = false): Event[] {
  const events: Event[] = [];
  const reader = new ResponseReader({
    head: (status, reason, headers) => events.push(['head', status, reason, headers.map(([n, v]) => [n, v] as const)]),
    body: (view) => {
      const last = events[events.length - 1];
      // Coalesce, so that splitting the input does not change the expected events.
      if (last !== undefined && last[0] === 'body') last[1] += Buffer.from(view).toString('latin1');
      else events.push(['body', Buffer.from(view).toString('latin1')]);
    },
    end: () => events.push(['end']),
    error: (err) => events.push(['error', (err as { code?: unknown }).code]),
  }, noBody);
  for (const c of chunks) reader.push(c);
  if (close) reader.end();
  return events;
}

interface Vector {
  name: string;
  wire: string;
  noBody?: boolean;
  close?: boolean;
  expect: Event[];
}

// Vectors in the form node:http serialises responses (status line, fields, chunked or sized body).
const VECTORS: Vector[] = [
  {
    name: 'fixed length, keep-alive fields dropped',
    wire: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nDate: Tue, 24 Nov 2026 10:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello',
    expect: [['head', 200, 'OK', [['Content-Type', 'text/plain'], ['Content-Length', '5'], ['Date', 'Tue, 24 Nov 2026 10:00:00 GMT']]], ['body', 'hello'], ['end']],
  },
  {
    name: 'chunked with extension and trailers',
    wire: 'HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: abc\r\n\r\n',
    expect: [['head', 200, 'OK', [['X-A', '1']]], ['body', 'hello0123456789'], ['end']],
  },
  {
    name: 'interim 100 and 103 skipped',
    wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
    expect: [['head', 201, 'Created', [['Content-Length', '2']]], ['body', 'ok'], ['end']],
  },
  {
    name: 'HEAD: Content-Length kept, no body read',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n',
    noBody: true,
    expect: [['head', 200, 'OK', [['Content-Length', '10']]], ['end']],
  },
  {
    name: '204 ends at the head',
    wire: 'HTTP/1.1 204 No Content\r\nX-B: 2\r\n\r\n',
    expect: [['head', 204, 'No Content', [['X-B', '2']]], ['end']],
  },
  {
    name: 'close-delimited body ends with the connection',
    wire: 'HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: gone\r\nX-Keep: kept\r\n\r\nuntil the end',
    close: true,
    expect: [['head', 200, 'OK', [['X-Keep', 'kept']]], ['body', 'until the end'], ['end']],
  },
  {
    name: 'custom reason phrase and empty reason',
    wire: 'HTTP/1.1 299 Fine Enough\r\nContent-Length: 0\r\n\r\n',
    expect: [['head', 299, 'Fine Enough', [['Content-Length', '0']]], ['end']],
  },
  {
    name: 'header value whitespace trimmed, obs-text kept',
    wire: 'HTTP/1.1 200 OK\r\nX-Name:   caf\xe9  \r\nContent-Length: 0\r\n\r\n',
    expect: [['head', 200, 'OK', [['X-Name', 'caf\xe9'], ['Content-Length', '0']]], ['end']],
  },
  {
    name: 'bad status line',
    wire: 'HTTQ/1.1 200 OK\r\n\r\n',
    expect: [['error', RESPONSE_READER_ERROR]],
  },
  {
    name: 'bad chunk size',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    expect: [['head', 200, 'OK', []], ['error', RESPONSE_READER_ERROR]],
  },
  {
    name: 'chunk data not followed by CRLF',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n',
    expect: [['head', 200, 'OK', []], ['body', 'ab'], ['error', RESPONSE_READER_ERROR]],
  },
  {
    name: 'connection closed before Content-Length bytes',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
    close: true,
    expect: [['head', 200, 'OK', [['Content-Length', '10']]], ['body', 'abc'], ['error', RESPONSE_READER_ERROR]],
  },
  {
    name: 'bytes after the end are ignored',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 500 Oops\r\n\r\n',
    expect: [['head', 200, 'OK', [['Content-Length', '1']]], ['body', 'x'], ['end']],
  },
];

test('response reader vectors: whole, split at every boundary, byte by byte', () => {
  for (const v of VECTORS) {
    const wire = Buffer.from(v.wire, 'latin1');
    assert.deepEqual(run([wire], v.noBody, v.close), v.expect, `${v.name} (whole)`);
    for (let i = 1; i < wire.length; i++) {
      assert.deepEqual(run([wire.subarray(0, i), wire.subarray(i)], v.noBody, v.close), v.expect, `${v.name} (split at ${i})`);
    }
    const bytes: Buffer[] = [];
    for (let i = 0; i < wire.length; i++) bytes.push(wire.subarray(i, i + 1));
    assert.deepEqual(run(bytes, v.noBody, v.close), v.expect, `${v.name} (byte by byte)`);
  }
});

test('a head that never ends is refused past 1 MiB', () => {
  const events = run([Buffer.from('HTTP/1.1 200 OK\r\nX: '), Buffer.alloc(1.5 * 1024 * 1024, 0x61)]);
  assert.deepEqual(events, [['error', RESPONSE_READER_ERROR]]);
});
