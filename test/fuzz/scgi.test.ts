// Property tests for the SCGI codec, from the application's side: encode→decode is identity
// under any chunking, and random or mutated bytes never throw, never buffer past the limits,
// and end in well-formed events or exactly one coded error, however they are split.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DecoderLimits, DecoderSink } from '../../protocols/common/events.ts';
import { ScgiDecoder, encodeScgiRequest, scgiParams } from '../../protocols/scgi/index.ts';
import { drive, ev, mutate, oneRequestProblem, splitAt } from '../helpers/event-log.ts';
import type { Mutation } from '../helpers/event-log.ts';

const RUNS = 1000;

const latin1NoNul = fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c));
const name = fc.string({ unit: latin1NoNul, minLength: 1, maxLength: 20 });
const value = fc.string({ unit: latin1NoNul, maxLength: 40 });
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

const factory = (l: Partial<DecoderLimits>) => (sink: DecoderSink) => new ScgiDecoder(sink, l);

/** Runs the input whole and split; checks the invariants on both and that they agree. */
function checkStream(bytes: Buffer, l: DecoderLimits, cutPoints: number[], end: boolean): void {
  const whole = drive(factory(l), [bytes], { end });
  const pieces = splitAt(bytes, cutPoints);
  const split = drive(factory(l), pieces, {
    end,
    afterPush: (d) => {
      assert.ok((d as ScgiDecoder).bufferedBytes <= l.maxParamsBytes, 'buffered past maxParamsBytes');
    },
  });
  assert.deepStrictEqual(split.events, whole.events);
  assert.equal(oneRequestProblem(whole.events, bytes.length, end), undefined);
  for (const e of whole.events) {
    if (e.type === 'error') assert.match(e.code, /^POSTERN_ERR_[A-Z_]+$/);
  }
}

describe('SCGI properties', () => {
  it('encode → decode is identity for random params and bodies, under random splits', () => {
    fc.assert(
      fc.property(params, body, cuts, (p, b, c) => {
        const sent = scgiParams(p, b.length);
        const bytes = encodeScgiRequest(sent, b);
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

  it('random bytes behind a plausible netstring length reach the header-block parser safely', () => {
    const framed = fc.tuple(fc.integer({ min: 1, max: 120 }), fc.uint8Array({ maxLength: 160 })).map(([n, rest]) => Buffer.concat([Buffer.from(`${String(n)}:`), rest]));
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
        const bytes = mutate(encodeScgiRequest(scgiParams(p, b.length), b), m);
        checkStream(bytes, l, c, end);
      }),
      { numRuns: RUNS },
    );
  });
});
