// The fuzz oracle itself, from a test's side: decoders broken on purpose (wrappers around the real
// ones) must each be caught on an input from the committed corpus, or the corpus replay and the
// CI campaign in corpus.test.ts could pass while checking nothing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decoder, DecoderSink, RequestHead } from '../../protocols/common/events.ts';
import { loadCorpus } from '../../fuzz/corpus.ts';
import { checkInput, makeDecoder, type DecoderFactory, type Problem, type Protocol } from '../../fuzz/oracle.ts';

function seed(protocol: Protocol, name: string): Buffer {
  const entry = loadCorpus(protocol).find((c) => c.name === name);
  assert.ok(entry !== undefined, `fuzz/corpus/${protocol}/${name}`);
  return entry.bytes;
}

/** The real decoder, fed through a sink that changes some calls. */
function withSink(change: (sink: DecoderSink) => Partial<DecoderSink>): DecoderFactory {
  return (protocol, sink, config) => {
    const over = change(sink);
    const proxy: DecoderSink = {
      request: (head) => (over.request ?? sink.request.bind(sink))(head),
      body: (id, chunk) => (over.body ?? sink.body.bind(sink))(id, chunk),
      bodyEnd: (id) => (over.bodyEnd ?? sink.bodyEnd.bind(sink))(id),
      data: (id, chunk) => (over.data ?? sink.data.bind(sink))(id, chunk),
      dataEnd: (id) => (over.dataEnd ?? sink.dataEnd.bind(sink))(id),
      abort: (id) => (over.abort ?? sink.abort.bind(sink))(id),
      reply: (bytes, close) => (over.reply ?? sink.reply.bind(sink))(bytes, close),
      error: (err) => (over.error ?? sink.error.bind(sink))(err),
    };
    return makeDecoder(protocol, proxy, config);
  };
}

/** The real decoder behind a different push()/end(). */
function withDecoder(wrap: (real: Decoder) => Decoder): DecoderFactory {
  return (protocol, sink, config) => wrap(makeDecoder(protocol, sink, config));
}

function caught(protocol: Protocol, input: Buffer, make: DecoderFactory, kind: RegExp, thorough?: number): Problem {
  const verdict = checkInput(protocol, input, thorough === undefined ? { make } : { make, thorough });
  assert.ok(verdict.problem !== undefined, 'the oracle saw nothing wrong');
  assert.match(verdict.problem.kind, kind);
  // The real decoder passes on the same input: the finding is the breakage's, not the input's.
  assert.equal(checkInput(protocol, input, thorough === undefined ? {} : { thorough }).problem, undefined);
  return verdict.problem;
}

describe('fuzz oracle catches broken decoders', () => {
  it('push() that throws', () => {
    const make = withDecoder((real) => ({
      push(chunk) {
        real.push(chunk);
        if (chunk.includes(0x3a)) throw new TypeError('broken on purpose');
      },
      end: () => real.end(),
    }));
    caught('scgi', seed('scgi', 'nginx-scgi-get-query.bin'), make, /^threw TypeError/);
  });

  it('a body byte more than CONTENT_LENGTH', () => {
    const make = withSink((sink) => ({ body: (id, chunk) => sink.body(id, Buffer.concat([chunk, Buffer.from('!')])) }));
    caught('scgi', seed('scgi', 'nginx-scgi-post-form.bin'), make, /^body /);
  });

  it('an event after a connection-level error', () => {
    const make = withSink((sink) => ({
      error: (err) => {
        sink.error(err);
        if (err.requestId === 0) sink.abort(1);
      },
    }));
    caught('scgi', seed('scgi', 'hand-missing-comma.bin'), make, /after connection-level error/);
  });

  it('a param lost on the way', () => {
    const make = withSink((sink) => ({ request: (head: RequestHead) => sink.request({ ...head, params: head.params.slice(0, -2) }) }));
    caught('uwsgi', seed('uwsgi', 'nginx-uwsgi-get-query.bin'), make, /^a well-formed request within the limits/);
  });

  it('a param lost from a later request on a kept connection', () => {
    let heads = 0;
    const make = withSink((sink) => {
      heads = 0;
      return { request: (head: RequestHead) => sink.request(++heads === 1 ? head : { ...head, params: head.params.slice(2) }) };
    });
    caught('fastcgi', seed('fastcgi', 'nginx-fastcgi-keepalive-keepalive.bin'), make, /^request N params are not the ones on the wire/);
  });

  it('a well-formed request never surfaced', () => {
    const make = withSink(() => ({ request: () => undefined, bodyEnd: () => undefined, body: () => undefined }));
    caught('fastcgi', seed('fastcgi', 'nginx-fastcgi-get-query.bin'), make, /well-formed request within the limits/);
  });

  it('pushed bytes kept by reference past push()', () => {
    // Decodes each chunk one push late, from the caller's buffer: a caller reusing it breaks this.
    const make = withDecoder((real) => {
      let held: Buffer | undefined;
      return {
        push(chunk) {
          if (held !== undefined) real.push(held);
          held = chunk;
        },
        end() {
          if (held !== undefined) real.push(held);
          held = undefined;
          real.end();
        },
      };
    });
    // Whole, the one chunk is never reused; split, each piece is scribbled over after push().
    const problem = caught('scgi', seed('scgi', 'hand-spec-example.bin'), make, /^(whole and split feeding differ|a well-formed request within the limits)/);
    assert.notEqual(problem.feed, 'whole');
  });

  it('output that depends on how the input was split', () => {
    const make = withDecoder((real) => ({ push: (chunk) => (chunk.length === 1 ? undefined : real.push(chunk)), end: () => real.end() }));
    caught('uwsgi', seed('uwsgi', 'hand-post-with-body.bin'), make, /whole and split feeding differ|well-formed|body|params/, 1);
  });

  it('a malformed FastCGI reply', () => {
    const make = withSink((sink) => ({ reply: (bytes, close) => sink.reply(Buffer.concat([bytes, Buffer.from([1])]), close) }));
    caught('fastcgi', seed('fastcgi', 'hand-get-values-all.bin'), make, /reply ends N bytes into a record header/);
  });

  it('a management record left unanswered', () => {
    const make = withSink(() => ({ reply: () => undefined }));
    caught('fastcgi', seed('fastcgi', 'hand-unknown-management-type.bin'), make, /management record\(s\) of unknown type/);
  });

  it('a uwsgi PING without PONG', () => {
    const make = withSink(() => ({ reply: () => undefined }));
    caught('uwsgi', seed('uwsgi', 'hand-ping.bin'), make, /PING got/);
  });

  it('bufferedBytes over maxParamsBytes', () => {
    const make = withDecoder((real) => ({ push: (c) => real.push(c), end: () => real.end(), bufferedBytes: 1 << 20 }) as Decoder);
    caught('scgi', seed('scgi', 'hand-spec-example.bin'), make, /^buffered over maxParamsBytes/);
  });
});
