// postern behind a real Apache httpd, configured from config/apache/*.conf: mod_proxy_fcgi (ProxyPass
// with and without enablereuse, and SetHandler), mod_proxy_scgi, mod_proxy_uwsgi, and mod_authnz_fcgi
// asking a postern-mounted Authorizer, each put through the whole check list of the front-server
// matrix. httpd that cannot start fails the suite (startApache rejects); nothing here skips.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApache, type ApacheMode } from '../helpers/front/apache.ts';
import { DENIED_BODY, type Echo } from '../fixtures/front/apps.ts';
import { send } from '../fixtures/front/client.ts';
import { exchangeRaw } from '../helpers/clients.ts';
import { decodeRecords, encodeBeginRequest, encodeParams, FCGI_TYPE } from '../../protocols/fastcgi/index.ts';
import { label, logChecks, siteChecks, startBackend, templateChecks, type Backend, type RunningFront, type SiteSpec } from '../fixtures/front/matrix.ts';

// httpd streams a chunked body to mod_proxy_fcgi without CONTENT_LENGTH; mod_proxy_scgi and
// mod_proxy_uwsgi refuse it with 411. mod_proxy_fcgi and mod_authnz_fcgi skip any one param longer
// than 16 KiB (AH02536, AH02499). httpd answers %2F in a path with its own 404 (AllowEncodedSlashes
// Off). 100 MiB up / 64 MiB down run on one representative site per protocol: FastCGI with
// enablereuse, SCGI and uwsgi, all over TCP.
const FCGI = { chunked: 'streamed', bigHeader: 'dropped', encodedSlash: 404, large: false } as const;
const SITES: ReadonlyArray<SiteSpec<ApacheMode>> = [
  { mode: 'proxy-fcgi', protocol: 'fastcgi', transport: 'tcp', expect: FCGI },
  { mode: 'proxy-fcgi', protocol: 'fastcgi', transport: 'unix', expect: FCGI },
  { mode: 'proxy-fcgi-reuse', protocol: 'fastcgi', transport: 'tcp', expect: { ...FCGI, large: true } },
  { mode: 'proxy-fcgi-reuse', protocol: 'fastcgi', transport: 'unix', expect: FCGI },
  { mode: 'proxy-fcgi-sethandler', protocol: 'fastcgi', transport: 'tcp', expect: FCGI },
  { mode: 'proxy-fcgi-sethandler', protocol: 'fastcgi', transport: 'unix', expect: FCGI },
  { mode: 'proxy-scgi', protocol: 'scgi', transport: 'tcp', expect: { chunked: 411, bigHeader: 'passes', encodedSlash: 404, large: true } },
  { mode: 'proxy-uwsgi', protocol: 'uwsgi', transport: 'tcp', expect: { chunked: 411, bigHeader: 'passes', encodedSlash: 404, large: true } },
  // The authorizer lets everything but /private… through: the whole matrix runs behind it.
  { mode: 'authnz-fcgi', protocol: 'fastcgi', transport: 'tcp', expect: FCGI },
];
const AUTHNZ = SITES.findIndex((s) => s.mode === 'authnz-fcgi');

describe('postern behind Apache httpd', () => {
  let backend: Backend | undefined;
  let front: RunningFront<ApacheMode> | undefined;
  const ctx = {
    backend: (): Backend => backend ?? assertStarted(),
    front: (): RunningFront<ApacheMode> => front ?? assertStarted(),
  };

  // Started by a test, not a hook: a front server that cannot start is a failure that counts in
  // the summary (every check after it fails too), never a cancelled or skipped suite.
  test('postern and httpd start from the config/apache/*.conf templates', async () => {
    backend = await startBackend();
    const b = backend;
    front = await startApache(SITES.map((s) => ({
      mode: s.mode,
      backend: b.address(s.protocol, s.transport),
      // httpd reaches FastCGI authorizers over TCP only; the same postern listener serves both roles.
      ...(s.mode === 'authnz-fcgi' ? { authorizer: b.address('fastcgi', 'tcp') } : {}),
    })));
  });

  after(async () => {
    await front?.stop();
    await backend?.close();
  });

  for (const [i, spec] of SITES.entries()) {
    describe(`apache ${label(spec)}`, () => siteChecks(spec, i, ctx));
  }

  describe('apache mod_authnz_fcgi with a postern-mounted Authorizer', () => {
    const url = (path: string): string => {
      const site = ctx.front().sites[AUTHNZ];
      assert.ok(site);
      return site.url(path);
    };

    test('an allowed request reaches the app with the Variable- headers as params', async () => {
      const { state } = ctx.backend();
      const asked = state.authorized.length;
      const r = await send(url('/t/echo/allowed?k=v'));
      assert.equal(r.status, 200, ctx.front().errorLog());
      const e = r.json<Echo>();
      assert.equal(e.environ['REMOTE_USER'], 'alice');
      assert.equal(e.environ['POSTERN_TAG'], 'authorized');
      assert.equal(e.environ['postern.role'], 'responder');
      assert.deepEqual(state.authorized.slice(asked), ['/t/echo/allowed?k=v']);
    });

    test("a denied request gets the authorizer's own 403 status and body", async () => {
      const { state } = ctx.backend();
      const asked = state.authorized.length;
      const r = await send(url('/private/area?x=1'));
      assert.deepEqual(state.authorized.slice(asked), ['/private/area?x=1']);
      assert.equal(r.status, 403, ctx.front().errorLog());
      assert.equal(r.text(), DENIED_BODY);
    });

    // Why the test above needs it: mod_authnz_fcgi copies the denial body from the bytes it holds
    // when it finds the end of the head, i.e. from the FCGI_STDOUT record that completes the head
    // (httpd modules/aaa/mod_authnz_fcgi.c handle_response); a body in a later record is dropped
    // and httpd sends its own 403 page. So the head and a short body must share one record.
    test('postern sends an Authorizer denial head and body in one FCGI_STDOUT record', async () => {
      const port = Number(/:(\d+)$/.exec(ctx.backend().address('fastcgi', 'tcp'))?.[1]);
      // What httpd sends an authorizer: BEGIN(AUTHORIZER, no keep-conn), PARAMS, no STDIN.
      const params: Array<[string, string]> = [['REQUEST_METHOD', 'GET'], ['REQUEST_URI', '/private/x'], ['SERVER_PROTOCOL', 'HTTP/1.1'], ['FCGI_ROLE', 'AUTHORIZER']];
      const reply = await exchangeRaw({ port }, Buffer.concat([encodeBeginRequest(1, 2, false), ...encodeParams(1, params)]));
      const stdout = decodeRecords(reply).filter((r) => r.type === FCGI_TYPE.STDOUT && r.content.length > 0);
      const first = stdout[0]?.content.toString('latin1') ?? '';
      assert.match(first, /^Status: 403/);
      assert.equal(first.slice(first.indexOf('\r\n\r\n') + 4), DENIED_BODY, `STDOUT records: ${JSON.stringify(stdout.map((r) => r.content.toString('latin1')))}`);
    });
  });

  describe('apache: afterwards', () => {
    templateChecks('apache', SITES);
    logChecks(ctx);
  });
});

function assertStarted(): never {
  throw new Error('the front server or postern did not start (see the first test of this file)');
}
