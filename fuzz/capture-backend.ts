// A recording FastCGI / SCGI / uwsgi backend for seeding the fuzz corpus, from the backend's side:
// it keeps the exact bytes each connection brought (what nginx, Apache or cgi-fcgi really send)
// and answers "Hello" with each protocol's framing so the front server carries on. Extended from
// a copy of test/fixtures/front/backend.ts, which keeps only decoded params. Independent of
// postern's codecs on purpose: captures must not depend on the code they will test.
import { createServer, type Server, type Socket } from 'node:net';

export type CaptureProtocol = 'fastcgi' | 'scgi' | 'uwsgi';

export interface CapturedConnection {
  readonly chunks: Buffer[];
  /** Bytes already handed out by `take()`. */
  taken: number;
  closed: boolean;
}

export interface CaptureBackend {
  readonly port: number;
  readonly connections: CapturedConnection[];
  /** Bytes that arrived since the previous take(), one buffer per connection that sent any. */
  take(): Buffer[];
  close(): Promise<void>;
}

export async function startCaptureBackend(protocol: CaptureProtocol): Promise<CaptureBackend> {
  const connections: CapturedConnection[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (sock: Socket) => {
    sockets.add(sock);
    const conn: CapturedConnection = { chunks: [], taken: 0, closed: false };
    connections.push(conn);
    sock.on('error', () => {});
    sock.on('close', () => {
      conn.closed = true;
      sockets.delete(sock);
    });
    let buf = Buffer.alloc(0);
    const fcgi = { keep: false, id: 1, role: 1 };
    sock.on('data', (chunk: Buffer) => {
      conn.chunks.push(Buffer.from(chunk));
      buf = Buffer.concat([buf, chunk]);
      if (protocol === 'fastcgi') {
        while (buf.length >= 8) {
          const type = buf[1] ?? 0;
          const id = buf.readUInt16BE(2);
          const len = buf.readUInt16BE(4);
          const pad = buf[6] ?? 0;
          if (buf.length < 8 + len + pad) break;
          const content = buf.subarray(8, 8 + len);
          buf = buf.subarray(8 + len + pad);
          if (type === 1) {
            fcgi.id = id;
            fcgi.role = content.readUInt16BE(0);
            fcgi.keep = ((content[2] ?? 0) & 1) === 1;
          }
          // httpd's mod_authnz_fcgi sends an Authorizer no STDIN at all: answer at the end of PARAMS.
          if ((type === 5 && len === 0 && fcgi.role !== 2) || (type === 4 && len === 0 && fcgi.role === 2)) {
            const head = fcgi.role === 2 ? 'Status: 200 OK\r\nVariable-REMOTE_USER: fuzz\r\n\r\n' : 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nHello';
            sock.write(fcgiResponse(fcgi.id, Buffer.from(head, 'latin1')));
            if (!fcgi.keep) sock.end();
          }
        }
      } else if (protocol === 'scgi') {
        const colon = buf.indexOf(0x3a);
        if (colon < 0) return;
        const n = Number(buf.subarray(0, colon).toString('latin1'));
        if (buf.length < colon + 1 + n + 1) return;
        const parts = buf.subarray(colon + 1, colon + 1 + n).toString('latin1').split('\0');
        const i = parts.indexOf('CONTENT_LENGTH');
        const bodyLen = i >= 0 && i % 2 === 0 ? Number(parts[i + 1] ?? '0') : 0;
        if (buf.length < colon + 2 + n + bodyLen) return;
        sock.end('Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nHello');
      } else {
        if (buf.length < 4) return;
        const size = buf.readUInt16LE(1);
        if (buf.length < 4 + size) return;
        let bodyLen = 0;
        let o = 4;
        while (o + 2 <= 4 + size) {
          const kl = buf.readUInt16LE(o);
          const k = buf.toString('latin1', o + 2, o + 2 + kl);
          o += 2 + kl;
          const vl = buf.readUInt16LE(o);
          if (k === 'CONTENT_LENGTH') bodyLen = Number(buf.toString('latin1', o + 2, o + 2 + vl) || '0');
          o += 2 + vl;
        }
        if (buf.length < 4 + size + bodyLen) return;
        sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nHello');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    port,
    connections,
    take() {
      const out: Buffer[] = [];
      for (const c of connections) {
        const all = Buffer.concat(c.chunks);
        if (all.length > c.taken) out.push(all.subarray(c.taken));
        c.taken = all.length;
      }
      return out;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function fcgiRecord(type: number, id: number, content: Buffer): Buffer {
  const pad = (8 - (content.length % 8)) % 8;
  const h = Buffer.from([1, type, id >> 8, id & 0xff, content.length >> 8, content.length & 0xff, pad, 0]);
  return Buffer.concat([h, content, Buffer.alloc(pad)]);
}

function fcgiResponse(id: number, payload: Buffer): Buffer {
  return Buffer.concat([fcgiRecord(6, id, payload), fcgiRecord(6, id, Buffer.alloc(0)), fcgiRecord(3, id, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]))]);
}
