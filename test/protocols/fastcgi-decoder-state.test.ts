// The FastCGI decoder's per-connection state, from the application's side: what the GET_VALUES
// answer promises (FCGI_MAX_REQS capped by the server's in-flight limit), the active requests as
// one slot that becomes a Map when a client multiplexes, and record headers and BEGIN_REQUEST
// bodies split across pushes (both read without a per-connection scratch buffer).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ROLE } from '../../protocols/common/index.ts';
import {
  FCGI_ERRORS,
  FCGI_PROTOCOL_STATUS,
  FCGI_TYPE,
  FastCgiDecoder,
  decodeNameValuePairs,
  decodeRecords,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeGetValues,
  encodeParams,
  encodeStdin,
  encodeStdinEnd,
} from '../../protocols/fastcgi/index.ts';
import { EventLog, feed, feedBytewise, feedWhole, type DecoderOptions, type FcgiEvent } from '../helpers/fastcgi-events.ts';

/** The pairs of the one GET_VALUES_RESULT record a GET_VALUES for every standard name gets. */
function answer(options: DecoderOptions, bytewise = false): string[] {
  const get = encodeGetValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS']);
  const events = bytewise ? feedBytewise(get, options, false) : feedWhole(get, options, false);
  assert.equal(events.length, 1);
  const reply = events[0];
  assert.ok(reply?.type === 'reply');
  const records = decodeRecords(Buffer.from(reply.hex, 'hex'));
  assert.equal(records.length, 1);
  assert.equal(records[0]?.type, FCGI_TYPE.GET_VALUES_RESULT);
  const pairs = decodeNameValuePairs(records[0].content);
  assert.ok(Array.isArray(pairs), 'a well-formed name-value body');
  return pairs;
}

/** One request as a web server frames it, `body` bytes of STDIN. */
function request(id: number, options: { role?: number; keepConn?: boolean; body?: string } = {}): Buffer {
  const body = options.body ?? '';
  return Buffer.concat([
    encodeBeginRequest(id, options.role ?? ROLE.RESPONDER, options.keepConn ?? true),
    ...encodeParams(id, [['REQUEST_METHOD', 'POST'], ['REQUEST_URI', `/r/${String(id)}`]]),
    ...(body === '' ? [] : encodeStdin(id, Buffer.from(body))),
    encodeStdinEnd(id),
  ]);
}

describe('FastCGI decoder: GET_VALUES promises no more than the server takes', () => {
  // §4.1: FCGI_MAX_REQS is "the maximum number of concurrent requests this application will
  // accept": every connection full (maxConns × maxRequestsPerConnection), unless the server's
  // in-flight cap (maxInflightRequests, answered with OVERLOADED past it) is lower.
  const table: ReadonlyArray<{ name: string; options: DecoderOptions; maxReqs: string; mpxs: string }> = [
    { name: 'no in-flight cap given', options: { maxConns: 10, maxRequestsPerConnection: 8 }, maxReqs: '80', mpxs: '1' },
    { name: 'in-flight cap 0 (off)', options: { maxConns: 10, maxRequestsPerConnection: 8, maxInflightRequests: 0 }, maxReqs: '80', mpxs: '1' },
    { name: 'in-flight cap below every connection full', options: { maxConns: 10, maxRequestsPerConnection: 8, maxInflightRequests: 20 }, maxReqs: '20', mpxs: '1' },
    { name: 'in-flight cap equal', options: { maxConns: 10, maxRequestsPerConnection: 8, maxInflightRequests: 80 }, maxReqs: '80', mpxs: '1' },
    { name: 'in-flight cap above', options: { maxConns: 10, maxRequestsPerConnection: 8, maxInflightRequests: 1000 }, maxReqs: '80', mpxs: '1' },
    { name: 'server defaults, maxConnections 1024, no multiplexing', options: { maxConns: 1024, maxRequestsPerConnection: 1, maxInflightRequests: 1024 }, maxReqs: '1024', mpxs: '0' },
    { name: 'server defaults with a lower in-flight cap', options: { maxConns: 1024, maxRequestsPerConnection: 1, maxInflightRequests: 64 }, maxReqs: '64', mpxs: '0' },
  ];
  for (const row of table) {
    it(`FCGI_MAX_REQS ${row.maxReqs}: ${row.name}`, () => {
      const expected = ['FCGI_MAX_CONNS', String(row.options.maxConns), 'FCGI_MAX_REQS', row.maxReqs, 'FCGI_MPXS_CONNS', row.mpxs];
      assert.deepEqual(answer(row.options), expected);
      assert.deepEqual(answer(row.options, true), expected, 'one byte at a time');
    });
  }

  it('maxInflightRequests out of range throws RangeError at construction', () => {
    const sink = new EventLog();
    assert.throws(() => new FastCgiDecoder(sink, { maxInflightRequests: -1 }), RangeError);
    assert.throws(() => new FastCgiDecoder(sink, { maxInflightRequests: 2.5 }), RangeError);
    assert.doesNotThrow(() => new FastCgiDecoder(sink, { maxInflightRequests: 0 }));
  });

  it('the answer is the same on every GET_VALUES of a connection, between requests too', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log, { maxConns: 10, maxRequestsPerConnection: 2, maxInflightRequests: 3 });
    log.onBodyEnd = (id) => decoder.release(id);
    const get = encodeGetValues(['FCGI_MAX_REQS']);
    decoder.push(Buffer.concat([get, request(1), get, request(2), request(1), get]));
    const replies = log.events.filter((e) => e.type === 'reply');
    assert.equal(replies.length, 3);
    for (const r of replies) assert.deepEqual(decodeNameValuePairs(decodeRecords(Buffer.from(r.hex, 'hex'))[0]!.content), ['FCGI_MAX_REQS', '3']);
  });
});

describe('FastCGI decoder: the active requests', () => {
  it('without multiplexing one id after another, and the same id again, many times', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    log.onBodyEnd = (id) => decoder.release(id);
    const pieces: Buffer[] = [];
    for (let i = 0; i < 300; i++) pieces.push(request(i % 3 === 0 ? 1 : (i % 7) + 1, { body: 'x' }));
    for (const p of pieces) decoder.push(p);
    assert.equal(log.events.filter((e) => e.type === 'request').length, 300);
    assert.equal(log.errors.length, 0);
    assert.equal(log.events.filter((e) => e.type === 'reply').length, 0, 'nothing refused');
  });

  it('a second request while one is active: CANT_MPX_CONN, and the first one goes on', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    decoder.push(Buffer.concat([encodeBeginRequest(1, ROLE.RESPONDER, true), encodeBeginRequest(2)]));
    decoder.push(request(1).subarray(16)); // the rest of request 1 after its BEGIN_REQUEST
    const reply = log.events.find((e) => e.type === 'reply');
    assert.ok(reply?.type === 'reply');
    const end = decodeRecords(Buffer.from(reply.hex, 'hex'))[0]!;
    assert.equal(end.requestId, 2);
    assert.equal(end.content[4], FCGI_PROTOCOL_STATUS.CANT_MPX_CONN);
    assert.deepEqual(log.events.filter((e) => e.type === 'request').map((e) => e.type === 'request' && e.id), [1]);
    assert.equal(decoder.keepConn(1), true);
    assert.equal(decoder.keepConn(2), undefined, 'refused requests never become active');
  });

  it('multiplexed: ids come and go, are reused, and end() aborts the live ones in BEGIN order', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log, { maxRequestsPerConnection: 3 });
    decoder.push(Buffer.concat([request(1).subarray(0, -8), request(2, { keepConn: false }).subarray(0, -8), request(3).subarray(0, -8)]));
    assert.deepEqual([decoder.keepConn(1), decoder.keepConn(2), decoder.keepConn(3), decoder.keepConn(4)], [true, false, true, undefined]);
    // A fourth at once is over the limit.
    decoder.push(encodeBeginRequest(4));
    const refused = log.events.filter((e) => e.type === 'reply');
    assert.equal(refused.length, 1);
    assert.equal(decodeRecords(Buffer.from(refused[0]!.hex, 'hex'))[0]!.content[4], FCGI_PROTOCOL_STATUS.OVERLOADED);
    // Request 1 finishes and is released; its late records are ignored; its id is reused.
    decoder.push(encodeStdinEnd(1));
    decoder.release(1);
    assert.equal(decoder.keepConn(1), undefined);
    const before = log.events.length;
    decoder.push(Buffer.concat(encodeStdin(1, Buffer.from('late'))));
    assert.equal(log.events.length, before, 'records of a released id are skipped (§3.3)');
    decoder.push(request(1, { role: ROLE.AUTHORIZER }).subarray(0, -8));
    assert.equal(decoder.keepConn(1), true);
    // BEGIN_REQUEST for an id still active ends the connection.
    const log2 = new EventLog();
    const decoder2 = new FastCgiDecoder(log2, { maxRequestsPerConnection: 3 });
    decoder2.push(Buffer.concat([encodeBeginRequest(5), encodeBeginRequest(6), encodeBeginRequest(6)]));
    assert.equal(log2.errors[0]?.code, FCGI_ERRORS.REQUEST_ID_IN_USE);
    assert.equal(log2.errors[0]?.requestId, 0);
    // The peer closes: 2 and 3 (BEGIN order), then the reused 1.
    decoder.end();
    assert.deepEqual(log.events.filter((e) => e.type === 'abort').map((e) => e.type === 'abort' && e.id), [2, 3, 1]);
  });

  it('multiplexed, back to one request at a time: still served, ABORT_REQUEST on an unseen one answered', () => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log, { maxRequestsPerConnection: 2 });
    log.onBodyEnd = (id) => decoder.release(id);
    // Two active at once (1 waits for its body's end while 2 is served whole), then one at a time.
    decoder.push(Buffer.concat([request(1).subarray(0, -8), request(2), encodeStdinEnd(1)]));
    for (let i = 0; i < 20; i++) decoder.push(request((i % 2) + 1));
    assert.equal(log.events.filter((e) => e.type === 'request').length, 22);
    decoder.push(Buffer.concat([encodeBeginRequest(2), encodeAbortRequest(2)]));
    const reply = log.events.at(-1);
    assert.ok(reply?.type === 'reply');
    const end = decodeRecords(Buffer.from(reply.hex, 'hex'))[0]!;
    assert.deepEqual([end.type, end.requestId, end.content[4]], [FCGI_TYPE.END_REQUEST, 2, FCGI_PROTOCOL_STATUS.REQUEST_COMPLETE]);
    assert.equal(decoder.keepConn(2), undefined);
    assert.equal(log.errors.length, 0);
  });
});

describe('FastCGI decoder: headers and BEGIN_REQUEST bodies split across pushes', () => {
  // Every role and both flag values, so the role and KEEP_CONN bits read from a split body are checked.
  const wire = Buffer.concat(
    Array.from({ length: 60 }, (_, i) =>
      request(1, { role: [ROLE.RESPONDER, ROLE.AUTHORIZER, ROLE.FILTER][i % 3]!, keepConn: i % 2 === 0, body: i % 3 === 1 ? '' : 'abc'.repeat(i) }),
    ),
  );
  const whole = (): FcgiEvent[] => {
    const log = new EventLog();
    const decoder = new FastCgiDecoder(log);
    // An Authorizer's body ends with its params; its STDIN records then meet an inactive id.
    log.onBodyEnd = (id) => decoder.release(id);
    decoder.push(wire);
    return log.events;
  };

  it('pieces of every size from 1 to 17 bytes give the events of the whole', () => {
    const expected = whole();
    assert.equal(expected.filter((e) => e.type === 'request').length, 60);
    assert.deepEqual(
      expected.filter((e) => e.type === 'request').map((e) => e.type === 'request' && [e.role, e.keepConn]).slice(0, 4),
      [[ROLE.RESPONDER, true], [ROLE.AUTHORIZER, false], [ROLE.FILTER, true], [ROLE.RESPONDER, false]],
    );
    for (let size = 1; size <= 17; size++) {
      const pieces: Buffer[] = [];
      for (let at = 0; at < wire.length; at += size) pieces.push(wire.subarray(at, at + size));
      const log = new EventLog();
      const decoder = new FastCgiDecoder(log);
      log.onBodyEnd = (id) => decoder.release(id);
      for (const p of pieces) decoder.push(p);
      assert.deepEqual(log.events, expected, `pieces of ${String(size)} bytes`);
    }
  });

  it('a connection closed inside a split header is a truncation, as before', () => {
    const log = feed([request(1).subarray(0, 3)]);
    assert.deepEqual(log.events.map((e) => e.type), ['error']);
    assert.equal(log.errors[0]?.requestId, 0);
  });
});
