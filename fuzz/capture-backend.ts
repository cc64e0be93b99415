// A recording FastCGI / SCGI / uwsgi backend for seeding the fuzz corpus, from the backend's side:
// it keeps the exact bytes each connection brought (what nginx, Apache or cgi-fcgi really send) and
// answers "Hello" through test/fixtures/front/backend.ts, whose framing keeps the front server going.
// Independent of postern's codecs on purpose: captures must not depend on the code they will test.
import type { Socket } from 'node:net';
import { startFixtureBackend, type FixtureAnswer } from '../test/fixtures/front/backend.ts';

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

const FCGI_AUTHORIZER = 2;

// An authorizer's 200 with a Variable- header lets mod_authnz_fcgi go on to the app.
function answer(_params: Record<string, string>, role: number): FixtureAnswer {
  return role === FCGI_AUTHORIZER
    ? { status: '200 OK', headers: [['Variable-REMOTE_USER', 'fuzz']] }
    : { status: '200 OK', body: 'Hello' };
}

export async function startCaptureBackend(protocol: CaptureProtocol): Promise<CaptureBackend> {
  const connections: CapturedConnection[] = [];
  const sockets = new Set<Socket>();
  const backend = await startFixtureBackend(protocol, {
    respond: answer,
    onConnection: (sock) => {
      sockets.add(sock);
      const conn: CapturedConnection = { chunks: [], taken: 0, closed: false };
      connections.push(conn);
      // Registered before the backend's own reader, and copied: what arrived, untouched.
      sock.on('data', (chunk: Buffer) => { conn.chunks.push(Buffer.from(chunk)); });
      sock.on('close', () => {
        conn.closed = true;
        sockets.delete(sock);
      });
    },
  });
  return {
    port: backend.port,
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
    close: () => {
      // A front server's idle keep-alive connection would hold server.close() open.
      for (const s of sockets) s.destroy();
      return backend.close();
    },
  };
}
