// postern behind a real nginx, configured from config/nginx/*.conf: every FastCGI / SCGI / uwsgi
// mode over TCP and unix sockets, each put through the whole check list of the front-server matrix.
// nginx that cannot start fails the suite (startNginx rejects); nothing here skips.
import { after, describe, test } from 'node:test';
import { startNginx, type NginxMode } from '../helpers/front/nginx.ts';
import { label, logChecks, siteChecks, startBackend, templateChecks, type Backend, type RunningFront, type SiteSpec } from '../fixtures/front/matrix.ts';

// nginx spools a chunked request body and sends CONTENT_LENGTH, unless request buffering is off;
// then (FastCGI only) the body streams and the empty STDIN record ends it. 100 MiB up / 64 MiB down
// run on one representative site per protocol (FastCGI keep-alive, SCGI and uwsgi, all over TCP),
// and also through the streaming FastCGI mode, the one where postern's backpressure meets nginx's.
const SPOOLED = { chunked: 'counted', bigHeader: 'passes', encodedSlash: 'separator', large: false } as const;
const SITES: ReadonlyArray<SiteSpec<NginxMode>> = [
  { mode: 'fastcgi', protocol: 'fastcgi', transport: 'tcp', expect: SPOOLED },
  { mode: 'fastcgi', protocol: 'fastcgi', transport: 'unix', expect: SPOOLED },
  { mode: 'fastcgi-keepalive', protocol: 'fastcgi', transport: 'tcp', expect: { ...SPOOLED, large: true } },
  { mode: 'fastcgi-keepalive', protocol: 'fastcgi', transport: 'unix', expect: SPOOLED },
  { mode: 'fastcgi-unbuffered', protocol: 'fastcgi', transport: 'tcp', expect: { ...SPOOLED, chunked: 'streamed', large: true } },
  { mode: 'scgi', protocol: 'scgi', transport: 'tcp', expect: { ...SPOOLED, large: true } },
  { mode: 'scgi', protocol: 'scgi', transport: 'unix', expect: SPOOLED },
  { mode: 'uwsgi', protocol: 'uwsgi', transport: 'tcp', expect: { ...SPOOLED, large: true } },
  { mode: 'uwsgi', protocol: 'uwsgi', transport: 'unix', expect: SPOOLED },
  // postern's HTTP listener behind proxy_pass, the config shipped for comparison.
  { mode: 'http-proxy', protocol: 'http', transport: 'tcp', expect: SPOOLED },
];

describe('postern behind nginx', () => {
  let backend: Backend | undefined;
  let front: RunningFront<NginxMode> | undefined;
  const ctx = {
    backend: (): Backend => backend ?? assertStarted(),
    front: (): RunningFront<NginxMode> => front ?? assertStarted(),
  };

  // Started by a test, not a hook: a front server that cannot start is a failure that counts in
  // the summary (every check after it fails too), never a cancelled or skipped suite.
  test('postern and nginx start from the config/nginx/*.conf templates', async () => {
    backend = await startBackend();
    const b = backend;
    front = await startNginx(SITES.map((s) => ({ mode: s.mode, backend: b.address(s.protocol, s.transport) })));
  });

  after(async () => {
    await front?.stop();
    await backend?.close();
  });

  for (const [i, spec] of SITES.entries()) {
    describe(`nginx ${label(spec)}`, () => siteChecks(spec, i, ctx));
  }
  describe('nginx: afterwards', () => {
    templateChecks('nginx', SITES);
    logChecks(ctx);
  });
});

function assertStarted(): never {
  throw new Error('the front server or postern did not start (see the first test of this file)');
}
