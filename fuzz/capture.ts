// Seeds the fuzz corpus from real traffic, from a developer's shell: starts nginx and Apache (the
// test harness in test/helpers/front/, configs from config/) in front of recording backends,
// sends a range of HTTP requests through them, and drives cgi-fcgi directly; the exact bytes
// each backend connection received become fuzz/corpus/<protocol>/<front>-<mode>-<case>.bin.
//
//   node --import tsx fuzz/capture.ts            (needs nginx, apache2 and cgi-fcgi installed)

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startApache, type ApacheMode } from '../test/helpers/front/apache.ts';
import { startNginx, type FrontServer, type NginxMode } from '../test/helpers/front/nginx.ts';
import { startCaptureBackend, type CaptureBackend, type CaptureProtocol } from './capture-backend.ts';
import { repoRoot } from './corpus.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends raw HTTP bytes (pieces apart by `gapMs`) on one connection and reads until it closes. */
function raw(port: number, pieces: ReadonlyArray<string | Buffer>, gapMs = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no response on port ${String(port)}`));
    }, 15_000);
    sock.on('data', (d: Buffer) => got.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    sock.on('connect', () => {
      void (async () => {
        for (const p of pieces) {
          sock.write(p);
          if (gapMs > 0) await sleep(gapMs);
        }
      })();
    });
  });
}

function get(agent: Agent, port: number, method: string, path: string, body?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Host: 'example.test', 'User-Agent': 'postern-fuzz-capture/1' };
    if (body !== undefined) {
      headers['Content-Type'] = 'text/plain';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const H = 'Host: example.test\r\nUser-Agent: postern-fuzz-capture/1\r\nAccept: */*\r\n';

function multipart(): Buffer {
  const b = '----postern7MA4YWxkTrZu0gW';
  const file = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const body = Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="title"\r\n\r\nA caf\xe9 r\xe9sum\xe9\r\n--${b}\r\nContent-Disposition: form-data; name="upload"; filename="bytes.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`, 'latin1'),
    file,
    Buffer.from(`\r\n--${b}--\r\n`, 'latin1'),
  ]);
  return Buffer.concat([Buffer.from(`POST /upload/form HTTP/1.1\r\n${H}Content-Type: multipart/form-data; boundary=${b}\r\nContent-Length: ${String(body.length)}\r\nConnection: close\r\n\r\n`, 'latin1'), body]);
}

type Scenario = (port: number) => Promise<unknown>;

const form = 'name=J%C3%BCrgen+M%C3%BCller&age=42&tags=a&tags=b&empty=&q=1%2B1%3D2';
const cookies = Array.from({ length: 24 }, (_, i) => `Cookie: c${String(i)}=v${String(i)}\r\n`).join('');
const bigCookie = `Cookie: ${Array.from({ length: 20 }, (_, i) => `session${String(i)}=${'x'.repeat(40)}`).join('; ')}\r\n`;

/** The requests sent through the front servers. */
const SCENARIOS: Record<string, Scenario> = {
  'get-query': (port) => raw(port, [`GET /app/par/m/n?x=1&y=%C3%A9&z HTTP/1.1\r\n${H}Accept-Language: de-CH, en;q=0.5\r\nConnection: close\r\n\r\n`]),
  head: (port) => raw(port, [`HEAD /index.html HTTP/1.1\r\n${H}Connection: close\r\n\r\n`]),
  'http10-minimal': (port) => raw(port, ['GET /old HTTP/1.0\r\n\r\n']),
  'put-empty': (port) => raw(port, [`PUT /empty HTTP/1.1\r\n${H}Content-Length: 0\r\nConnection: close\r\n\r\n`]),
  'post-form': (port) => raw(port, [`POST /form?from=capture HTTP/1.1\r\n${H}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${String(form.length)}\r\nConnection: close\r\n\r\n${form}`]),
  'post-multipart': (port) => raw(port, [multipart()]),
  // Sent as three chunks 150 ms apart: with request buffering off nginx streams each on.
  'chunked-upload': (port) =>
    raw(port, [`POST /upload/stream HTTP/1.1\r\n${H}Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, '5\r\nhello\r\n', '7\r\n, world\r\n', '1\r\n!\r\n', '0\r\n\r\n'], 150),
  'large-headers': (port) => raw(port, [`GET /big HTTP/1.1\r\n${H}X-Large: ${'a'.repeat(6000)}\r\nReferer: http://example.test/${'r'.repeat(500)}\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.2\r\nConnection: close\r\n\r\n`]),
  'many-cookies': (port) => raw(port, [`GET /cookies HTTP/1.1\r\n${H}${cookies}${bigCookie}Connection: close\r\n\r\n`]),
};

/** For persistent FastCGI connections: three requests on one upstream connection. */
SCENARIOS['keepalive'] = async (port) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  await get(agent, port, 'GET', '/ka/1?first');
  await get(agent, port, 'POST', '/ka/2', 'second request body');
  await get(agent, port, 'GET', '/ka/3');
  agent.destroy();
};

/** A 20 KB body: nginx cuts it into several STDIN records. */
SCENARIOS['big-body'] = (port) => {
  const body = Buffer.alloc(20_000, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ');
  return raw(port, [`POST /big-body HTTP/1.1\r\n${H}Content-Type: application/octet-stream\r\nContent-Length: ${String(body.length)}\r\nConnection: close\r\n\r\n`, body]);
};

interface Site {
  readonly front: 'nginx' | 'apache';
  readonly mode: NginxMode | ApacheMode;
  readonly protocol: CaptureProtocol;
  /** Scenario names; sites that would only repeat another site's bytes get fewer. */
  readonly cases: readonly string[];
}

const ALL_BASIC = ['get-query', 'head', 'http10-minimal', 'put-empty', 'post-form', 'post-multipart', 'chunked-upload', 'many-cookies'];

const SITES: readonly Site[] = [
  { front: 'nginx', mode: 'fastcgi', protocol: 'fastcgi', cases: [...ALL_BASIC, 'large-headers'] },
  { front: 'nginx', mode: 'fastcgi-keepalive', protocol: 'fastcgi', cases: ['get-query', 'post-form', 'keepalive'] },
  { front: 'nginx', mode: 'fastcgi-unbuffered', protocol: 'fastcgi', cases: ['chunked-upload', 'post-multipart', 'keepalive', 'big-body'] },
  { front: 'nginx', mode: 'scgi', protocol: 'scgi', cases: [...ALL_BASIC, 'large-headers'] },
  { front: 'nginx', mode: 'uwsgi', protocol: 'uwsgi', cases: [...ALL_BASIC, 'large-headers'] },
  { front: 'apache', mode: 'proxy-fcgi', protocol: 'fastcgi', cases: ALL_BASIC },
  { front: 'apache', mode: 'proxy-fcgi-reuse', protocol: 'fastcgi', cases: ['get-query', 'keepalive'] },
  // httpd answers a chunked upload to SCGI and uwsgi with 411 itself: no backend traffic.
  { front: 'apache', mode: 'proxy-scgi', protocol: 'scgi', cases: ALL_BASIC.filter((c) => c !== 'chunked-upload') },
  { front: 'apache', mode: 'proxy-uwsgi', protocol: 'uwsgi', cases: ALL_BASIC.filter((c) => c !== 'chunked-upload') },
  { front: 'apache', mode: 'authnz-fcgi', protocol: 'fastcgi', cases: ['get-query', 'post-form'] },
];

function write(protocol: CaptureProtocol, name: string, bytes: Buffer): void {
  const dir = join(repoRoot(), 'fuzz', 'corpus', protocol);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.bin`), bytes);
  console.log(`  ${protocol}/${name}.bin  ${String(bytes.length)} bytes`);
}

async function captureSite(site: Site, backend: CaptureBackend, port: number): Promise<void> {
  for (const name of site.cases) {
    const scenario = SCENARIOS[name]!;
    backend.take();
    await scenario(port);
    // Let the backend connection finish (the front server may still be writing its last record).
    await sleep(200);
    const got = backend.take();
    if (got.length === 0) console.log(`  (${site.front}-${site.mode}-${name}: no backend traffic)`);
    got.forEach((bytes, i) => write(site.protocol, `${site.front}-${site.mode}-${name}${got.length > 1 ? `-${String(i + 1)}` : ''}`, bytes));
  }
}

async function captureFront(site: Site): Promise<void> {
  const backend = await startCaptureBackend(site.protocol);
  const addr = `127.0.0.1:${String(backend.port)}`;
  let front: FrontServer<string>;
  if (site.front === 'nginx') front = await startNginx([{ mode: site.mode as NginxMode, backend: addr }]);
  else front = await startApache([{ mode: site.mode as ApacheMode, backend: addr, ...(site.mode === 'authnz-fcgi' ? { authorizer: addr } : {}) }]);
  try {
    await captureSite(site, backend, front.sites[0]!.port);
  } finally {
    await front.stop();
    await backend.close();
  }
}

/** cgi-fcgi, the libfcgi reference client: its whole environment becomes PARAMS, stdin the body. */
async function captureCgiFcgi(): Promise<void> {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['get', { REQUEST_METHOD: 'GET', SCRIPT_NAME: '/cgi', PATH_INFO: '/x', QUERY_STRING: 'a=1', SERVER_PROTOCOL: 'HTTP/1.1', CONTENT_LENGTH: '' }, ''],
    ['post', { REQUEST_METHOD: 'POST', REQUEST_URI: '/submit', CONTENT_TYPE: 'application/x-www-form-urlencoded', CONTENT_LENGTH: '11', SERVER_PROTOCOL: 'HTTP/1.0' }, 'hello=world'],
    ['long-value', { REQUEST_METHOD: 'GET', REQUEST_URI: '/long', HTTP_X_LONG: 'L'.repeat(300), HTTP_COOKIE: 'a=b; c=d' }, ''],
  ];
  for (const [name, env, body] of cases) {
    const backend = await startCaptureBackend('fastcgi');
    try {
      await new Promise<void>((resolve, reject) => {
        const child = spawn('cgi-fcgi', ['-bind', '-connect', `127.0.0.1:${String(backend.port)}`], { env, stdio: ['pipe', 'ignore', 'ignore'] });
        child.on('error', reject);
        child.on('exit', () => resolve());
        child.stdin.end(body);
      });
      await sleep(100);
      for (const bytes of backend.take()) write('fastcgi', `cgi-fcgi-${name}`, bytes);
    } finally {
      await backend.close();
    }
  }
}

async function main(): Promise<void> {
  for (const site of SITES) {
    console.log(`${site.front} ${site.mode}`);
    await captureFront(site);
  }
  console.log('cgi-fcgi');
  await captureCgiFcgi();
}

await main();
