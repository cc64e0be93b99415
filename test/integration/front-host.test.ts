// The Host an app sees behind each config/nginx/*.conf template on a non-default port, from the
// browser's side: a same-origin POST passes an app that compares Origin with Host (as Next.js server
// actions and SvelteKit's CSRF check do), and a Host that does not match what nginx serves cannot
// mislead it: nginx answers 421, or, for an absolute-form request line, the app sees the server's
// own name. Debian's stock params files alone send `$host`, which drops the port (issue 16).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Protocol } from '../../src/app/types.ts';
import { fetchHandler, native } from '../../src/app/resolve.ts';
import { Tree } from '../../src/app/tree.ts';
import { startServer, type PosternServer } from '../../src/server/server.ts';
import { send } from '../fixtures/front/client.ts';
import { SERVER_NAME, startNginx, type FrontServer, type NginxMode } from '../helpers/front/nginx.ts';

const SITES: ReadonlyArray<{ mode: NginxMode; protocol: Protocol }> = [
  { mode: 'fastcgi', protocol: 'fastcgi' },
  { mode: 'fastcgi-keepalive', protocol: 'fastcgi' },
  { mode: 'fastcgi-unbuffered', protocol: 'fastcgi' },
  { mode: 'scgi', protocol: 'scgi' },
  { mode: 'uwsgi', protocol: 'uwsgi' },
  { mode: 'http-proxy', protocol: 'http' },
];

interface Seen { readonly host: string | undefined; readonly origin: string | undefined }

/** The app under test, twice: natively (the environ's HTTP_HOST) and as a Fetch handler (request.url). */
function originCheckingTree(seen: Seen[]): Tree {
  const sameOrigin = (origin: string | undefined, host: string | undefined): boolean => {
    if (origin === undefined || host === undefined) return false;
    try {
      return new URL(origin).host === host;
    } catch {
      return false;
    }
  };
  return new Tree()
    .mount(native((environ, startResponse) => {
      const host = environ.HTTP_HOST;
      const origin = environ.HTTP_ORIGIN;
      seen.push({ host, origin });
      startResponse(sameOrigin(origin, host) ? '200 OK' : '403 Forbidden', [['Content-Type', 'application/json']]);
      return JSON.stringify({ host: host ?? null });
    }), '/native')
    .mount(fetchHandler((request: Request) => {
      const url = new URL(request.url);
      const origin = request.headers.get('origin') ?? undefined;
      seen.push({ host: url.host, origin });
      return Response.json({ host: url.host }, { status: origin === url.origin ? 200 : 403 });
    }), '/fetch');
}

/** One HTTP/1.0 exchange over a raw socket, for request lines and Host headers node:http will not send. */
function raw(port: number, head: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(new Error(`no answer in 10 s to ${head.split('\r\n')[0] ?? ''}`)), 10_000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    // Written, not ended: nginx takes a half-closed client for one that left (499) once upstream.
    sock.write(`${head}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    sock.once('end', () => sock.end());
  });
}

describe('the Host behind nginx on a non-default port', () => {
  const seen: Seen[] = [];
  let server: PosternServer | undefined;
  let front: FrontServer<NginxMode> | undefined;
  const site = (i: number): { port: number; url(path: string): string } => {
    const s = front?.sites[i];
    if (s === undefined) throw new Error('nginx or postern did not start (see the first test of this file)');
    return s;
  };

  test('postern and nginx start from every config/nginx/*.conf template', async () => {
    server = await startServer({
      tree: originCheckingTree(seen),
      env: {},
      listeners: [...new Set(SITES.map((s) => s.protocol))].map((protocol) => ({ protocol, address: '127.0.0.1:0' })),
    });
    const listeners = server.listeners;
    front = await startNginx(SITES.map((s) => {
      const port = listeners.find((l) => l.protocol === s.protocol)?.port;
      assert.ok(port !== undefined);
      return { mode: s.mode, backend: `127.0.0.1:${port}` };
    }));
    for (const s of front.sites) assert.notEqual(s.port, 80);
  });

  after(async () => {
    await front?.stop();
    await server?.close();
  });

  for (const [i, { mode }] of SITES.entries()) {
    describe(`nginx ${mode}`, () => {
      for (const app of ['native', 'fetch']) {
        test(`${app}: a same-origin POST passes the Origin check; the app sees the port the browser sent`, async () => {
          const s = site(i);
          const own = `${SERVER_NAME}:${s.port}`;
          const r = await send(s.url(`/${app}/action`), { method: 'POST', headers: { Origin: `http://${own}` }, body: 'a=1' });
          assert.equal(r.status, 200, r.text());
          assert.deepEqual(r.json(), { host: own });
          // The check does refuse: another origin on the same Host is a 403.
          const cross = await send(s.url(`/${app}/action`), { method: 'POST', headers: { Origin: 'http://evil.example' }, body: 'a=1' });
          assert.equal(cross.status, 403);
        });
      }

      test('a Host this server is not named for never reaches the app: nginx answers 421', async () => {
        const { port } = site(i);
        const before = seen.length;
        const forged = `evil.example:${port}`;
        const r = await raw(port, `POST /native/action HTTP/1.0\r\nHost: ${forged}\r\nOrigin: http://${forged}`);
        assert.equal(r.status, 421);
        assert.equal(seen.length, before);
      });

      test('an absolute-form request line with another Host: the app sees the server\'s own name, and refuses', async () => {
        const { port } = site(i);
        const own = `${SERVER_NAME}:${port}`;
        // The case Debian's params comment names: $http_host would hand the app "evil.example:…".
        for (const forged of [`evil.example:${port}`, 'evil.example']) {
          const r = await raw(port, `POST http://${own}/native/action HTTP/1.0\r\nHost: ${forged}\r\nOrigin: http://${forged}`);
          assert.equal(r.status, 403, r.body);
          const host = (JSON.parse(r.body) as { host: string }).host;
          assert.equal(host, forged.includes(':') ? own : SERVER_NAME);
        }
      });
    });
  }
});
