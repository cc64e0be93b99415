// encodeStdoutJoined, from the encoder's side: a response head and its first body chunk framed as
// one STDOUT record in one buffer must be byte for byte what encodeStdout frames for the two joined,
// with zero padding, at every padding length and at the record-size limit.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FCGI_TYPE, decodeRecords, encodeStdout, encodeStdoutJoined } from '../../protocols/fastcgi/index.ts';

describe('encodeStdoutJoined', () => {
  it('equals encodeStdout of the joined bytes, for every padding length and request id', () => {
    const head = Buffer.from('Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n', 'latin1');
    for (const id of [1, 2, 300, 65535]) {
      for (let extra = 0; extra < 8; extra++) {
        const body = Buffer.alloc(11 + extra, 0x61);
        const joined = encodeStdoutJoined(id, head, body);
        assert.deepEqual(joined, Buffer.concat(encodeStdout(id, Buffer.concat([head, body]))), `id ${id}, body ${body.length}`);
        assert.equal(joined.length % 8, 0);
      }
    }
  });

  it('pads with zeros even when the allocation held other bytes', () => {
    // Uninitialized memory, made visible: every allocUnsafe returns 0xff bytes meanwhile.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, below
    const allocUnsafe = Buffer.allocUnsafe;
    Buffer.allocUnsafe = (size: number) => allocUnsafe(size).fill(0xff);
    try {
      const out = encodeStdoutJoined(1, Buffer.from('ab'), Buffer.from('c'));
      assert.equal(out[6], 5, 'padding length');
      assert.deepEqual([...out.subarray(11)], [0, 0, 0, 0, 0]);
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
    }
  });

  it('decodes as one STDOUT record carrying head then body', () => {
    const records = decodeRecords(encodeStdoutJoined(7, Buffer.from('Status: 204\r\n\r\n'), Buffer.from('x')));
    assert.equal(records.length, 1);
    assert.equal(records[0]!.type, FCGI_TYPE.STDOUT);
    assert.equal(records[0]!.requestId, 7);
    assert.equal(Buffer.from(records[0]!.content).toString('latin1'), 'Status: 204\r\n\r\nx');
  });

  it('takes an empty part, and 65535 bytes in all; refuses one byte more and a bad request id', () => {
    assert.deepEqual(encodeStdoutJoined(1, Buffer.alloc(0), Buffer.from('hi')), Buffer.concat(encodeStdout(1, Buffer.from('hi'))));
    const max = encodeStdoutJoined(1, Buffer.alloc(65000), Buffer.alloc(535));
    assert.equal(max.readUInt16BE(4), 65535);
    assert.throws(() => encodeStdoutJoined(1, Buffer.alloc(65000), Buffer.alloc(536)), RangeError);
    assert.throws(() => encodeStdoutJoined(65536, Buffer.alloc(1), Buffer.alloc(1)), RangeError);
  });
});
