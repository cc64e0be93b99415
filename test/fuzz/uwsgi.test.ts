// Property tests for the uwsgi codec, from the application's side: encode→decode is identity
// under any chunking, and random or mutated bytes never throw, never buffer past the limits,
// and end in well-formed events or exactly one coded error, however they are split.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DecoderLimits, DecoderSink } from '../../protocols/common/events.ts';
import { UwsgiDecoder, encodeUwsgiRequest } from '../../protocols/uwsgi/index.ts';
import { drive, ev, mutate, oneRequestProblem, splitAt } from '../helpers/event-log.ts';
import type { Mutation } from '../helpers/event-log.ts';

const RUNS = 1000;

const latin1 = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const name = fc.string({ unit: latin1, minLength: 1, maxLength: 20 }).filter((n) => n !== 'CONTENT_LENGTH');
const value = fc.string({ unit: latin1, maxLength: 40 });
const params = fc.array(fc.tuple(name, value), { maxLength: 12 });
const body = fc.uint8Array({ maxLength: 300 });
const cuts = fc.array(fc.nat({ max: 2000 }), { maxLength: 6 });

const limits = fc.record({
  maxParamsBytes: fc.integer({ min: 0, max: 400 }),
  maxParamCount: fc.integer({ min: 0, max: 16 }),
  maxBodyBytes: fc.integer({ min: 0, max: 200 }),
});

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

const factory = (l: Partial<DecoderLimits>) => (sink: DecoderSink) => new UwsgiDecoder(sink, l);

/** The params with CONTENT_LENGTH inserted at a chosen place (or left out when the body is empty and `omit`). */
function withContentLength(p: ReadonlyArray<readonly [string, string]>, length: number, at: number, omit: boolean): Array<[string, string]> {
  const out: Array<[string, string]> = p.map(([n, v]) => [n, v]);
  if (!(omit && length === 0)) out.splice(at % (out.length + 1), 0, ['CONTENT_LENGTH', String(length)]);
  return out;
}

function checkStream(bytes: Buffer, l: DecoderLimits, cutPoints: number[], end: boolean): void {
  const whole = drive(factory(l), [bytes], { end });
  const split = drive(factory(l), splitAt(bytes, cutPoints), {
    end,
    afterPush: (d) => {
      assert.ok((d as UwsgiDecoder).bufferedBytes <= l.maxParamsBytes, 'buffered past maxParamsBytes');
    },
  });
  assert.deepStrictEqual(split.events, whole.events);
  assert.equal(oneRequestProblem(whole.events, bytes.length, end), undefined);
  for (const e of whole.events) {
    if (e.type === 'error') assert.match(e.code, /^POSTERN_ERR_[A-Z_]+$/);
  }
}

describe('uwsgi properties', () => {
  it('encode → decode is identity for random vars and bodies, under random splits', () => {
    fc.assert(
      fc.property(params, body, fc.nat(), fc.boolean(), cuts, (p, b, at, omit, c) => {
        const sent = withContentLength(p, b.length, at, omit);
        const bytes = encodeUwsgiRequest(sent, b);
        const expected = [ev.requestPairs(1, sent, b.length), ...(b.length > 0 ? [ev.body(1, b)] : []), ev.bodyEnd(1)];
        assert.deepStrictEqual(drive(factory({}), splitAt(bytes, c)).events, expected);
        assert.deepStrictEqual(drive(factory({}), [bytes]).events, expected);
      }),
      { numRuns: RUNS },
    );
  });

  it('random bytes never throw, never over-buffer, and end in events or one coded error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), limits, cuts, fc.boolean(), (b, l, c, end) => {
        checkStream(Buffer.from(b), l, c, end);
      }),
      { numRuns: RUNS },
    );
  });

  it('random vars behind a modifier1 0 header reach the vars parser safely', () => {
    const framed = fc
      .tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 240 }))
      .map(([size, m2, rest]) => Buffer.concat([Buffer.from([0, size & 0xff, size >> 8, m2]), rest]));
    fc.assert(
      fc.property(framed, limits, cuts, fc.boolean(), (b, l, c, end) => {
        checkStream(b, l, c, end);
      }),
      { numRuns: RUNS },
    );
  });

  it('mutated valid requests never throw, never over-buffer, and end in events or one coded error', () => {
    fc.assert(
      fc.property(params, body, fc.array(mutation, { minLength: 1, maxLength: 4 }), limits, cuts, fc.boolean(), (p, b, m, l, c, end) => {
        const bytes = mutate(encodeUwsgiRequest(withContentLength(p, b.length, 0, false), b), m);
        checkStream(bytes, l, c, end);
      }),
      { numRuns: RUNS },
    );
  });
});
