// Records the params real nginx and Apache send in every documented mode for a few requests under a
// mount, into test/fixtures/front/captured/*.json: the byte-level truth the environ tests check.
// Run: node --import tsx scripts/capture-front-params.ts   (needs nginx and apache2 installed)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNginx, type NginxMode } from '../test/helpers/front/nginx.ts';
import { startApache, type ApacheMode } from '../test/helpers/front/apache.ts';
import { repoRoot } from '../test/helpers/front/root.ts';
import { startFixtureBackend, type FixtureProtocol } from '../test/fixtures/front/backend.ts';

const PATHS = ['/app/par/m/n?x=1%20y', '/', '/par/caf%C3%A9/a%2Fb?k=v&k=w', '/app/par'];
const NGINX: Array<[NginxMode, FixtureProtocol]> = [['fastcgi', 'fastcgi'], ['scgi', 'scgi'], ['uwsgi', 'uwsgi']];
const APACHE: Array<[ApacheMode, FixtureProtocol]> = [['proxy-fcgi', 'fastcgi'], ['proxy-scgi', 'scgi'], ['proxy-uwsgi', 'uwsgi']];

async function capture(front: 'nginx' | 'apache', modes: Array<[string, FixtureProtocol]>): Promise<void> {
  const backends = await Promise.all(modes.map(([, p]) => startFixtureBackend(p)));
  const sites = modes.map(([mode], i) => ({ mode, backend: `127.0.0.1:${backends[i]?.port ?? 0}` }));
  const server = front === 'nginx'
    ? await startNginx(sites as Array<{ mode: NginxMode; backend: string }>)
    : await startApache(sites as Array<{ mode: ApacheMode; backend: string }>);
  try {
    for (const [i, site] of server.sites.entries()) {
      const out: Array<{ request: string; status: number; params: Record<string, string> | null }> = [];
      for (const path of PATHS) {
        const before = backends[i]?.requests.length ?? 0;
        const res = await fetch(site.url(path), { headers: { 'User-Agent': 'postern-capture', 'X-Forwarded-Proto': 'https' } });
        await res.arrayBuffer();
        // The front server may answer by itself (Apache 404s an encoded slash): then nothing reached us.
        if ((backends[i]?.requests.length ?? 0) === before) {
          out.push({ request: `GET ${path}`, status: res.status, params: null });
          continue;
        }
        const params = backends[i]?.requests.at(-1) ?? {};
        // Ports and addresses change from run to run; keep them stable in the fixture.
        for (const k of ['REMOTE_PORT', 'SERVER_PORT', 'HTTP_HOST', 'SERVER_ADDR', 'DOCUMENT_ROOT', 'CONTEXT_DOCUMENT_ROOT', 'SERVER_SIGNATURE', 'SCRIPT_FILENAME']) {
          if (params[k] !== undefined) params[k] = params[k].replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT').replace(/^\d+$/, 'PORT').replace(/\/tmp\/postern-[a-z]+-\w+/g, '/TMP');
        }
        // Apache forwards its own PATH; keep the key, not this machine's value.
        if (params['PATH'] !== undefined) params['PATH'] = '/usr/local/bin:/usr/bin:/bin';
        out.push({ request: `GET ${path}`, status: res.status, params });
      }
      writeFileSync(join(repoRoot(), 'test/fixtures/front/captured', `${front}-${site.mode}.json`), JSON.stringify(out, null, 2) + '\n');
    }
  } finally {
    await server.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
}

await capture('nginx', NGINX);
await capture('apache', APACHE);
console.log('captured');
