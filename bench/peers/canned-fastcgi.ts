// The ceiling for a Node FastCGI responder: it only scans record headers and answers every request
// with pre-built bytes (no params decoding, no app). A yardstick for the benchmark, not a server.
import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? '0');

function record(type: number, id: number, content: Buffer): Buffer {
  const pad = (8 - (content.length % 8)) % 8;
  const head = Buffer.from([1, type, id >> 8, id & 0xff, content.length >> 8, content.length & 0xff, pad, 0]);
  return Buffer.concat([head, content, Buffer.alloc(pad)]);
}

const answer = Buffer.concat([
  record(6, 1, Buffer.from('Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nHello World')),
  record(6, 1, Buffer.alloc(0)),
  record(3, 1, Buffer.alloc(8)),
]);

createServer({ noDelay: true }, (sock) => {
  let pending: Buffer | undefined;
  let keep = false;
  sock.on('error', () => {});
  sock.on('data', (chunk: Buffer) => {
    const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (buf.length - at >= 8) {
      const type = buf[at + 1];
      const length = buf.readUInt16BE(at + 4);
      const size = 8 + length + (buf[at + 6] ?? 0);
      if (buf.length - at < size) break;
      if (type === 1) keep = ((buf[at + 10] ?? 0) & 1) === 1;
      if (type === 5 && length === 0) {
        sock.write(answer);
        if (!keep) sock.end();
      }
      at += size;
    }
    pending = at < buf.length ? buf.subarray(at) : undefined;
  });
}).listen(port, '127.0.0.1');
