// Real Apache httpd for the integration tests: a private ServerRoot in a temp dir, modules loaded
// by absolute path, one VirtualHost per site rendered from config/apache/<mode>.conf, stopped by pid.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from './daemon.ts';
import { readSafe, type FrontServer, type RunningSite } from './nginx.ts';
import { freePort } from './ports.ts';
import { renderTemplate } from './render.ts';

export type ApacheMode = 'proxy-fcgi' | 'proxy-fcgi-reuse' | 'proxy-fcgi-sethandler' | 'proxy-scgi' | 'proxy-uwsgi' | 'authnz-fcgi';

export interface ApacheSiteSpec {
  readonly mode: ApacheMode;
  /** `127.0.0.1:PORT` or `unix:/path.sock` (unix only for the fcgi modes). */
  readonly backend: string;
  /** authnz-fcgi: the authorizer's FastCGI address (`127.0.0.1:PORT`; httpd supports TCP only here). */
  readonly authorizer?: string;
}

const MODULES_DIR = '/usr/lib/apache2/modules';
const MODULES = [
  ['mpm_event_module', 'mod_mpm_event.so'],
  ['authz_core_module', 'mod_authz_core.so'],
  ['authn_core_module', 'mod_authn_core.so'],
  ['authz_user_module', 'mod_authz_user.so'],
  ['auth_basic_module', 'mod_auth_basic.so'],
  ['mime_module', 'mod_mime.so'],
  ['setenvif_module', 'mod_setenvif.so'],
  ['headers_module', 'mod_headers.so'],
  ['proxy_module', 'mod_proxy.so'],
  ['proxy_fcgi_module', 'mod_proxy_fcgi.so'],
  ['proxy_scgi_module', 'mod_proxy_scgi.so'],
  ['proxy_uwsgi_module', 'mod_proxy_uwsgi.so'],
  ['authnz_fcgi_module', 'mod_authnz_fcgi.so'],
] as const;

function fcgiUrl(backend: string): string {
  return backend.startsWith('unix:') ? `${backend}|fcgi://localhost` : `fcgi://${backend}`;
}

export async function startApache(sites: readonly ApacheSiteSpec[]): Promise<FrontServer<ApacheMode>> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-apache-'));
  chmodSync(dir, 0o755);
  const docroot = join(dir, 'htdocs');
  mkdirSync(docroot);
  const running: Array<RunningSite<ApacheMode>> = [];
  const blocks: string[] = [];
  for (const site of sites) {
    const port = await freePort();
    const values: Record<string, string> = {
      LISTEN: `127.0.0.1:${port}`,
      BACKEND: site.backend,
      FCGI_URL: fcgiUrl(site.backend),
      DOCROOT: docroot,
    };
    if (site.mode === 'authnz-fcgi') {
      if (site.authorizer === undefined) throw new Error('authnz-fcgi needs an authorizer address');
      values['FCGI_URL'] = `fcgi://${site.authorizer}`;
      values['APP_FCGI_URL'] = fcgiUrl(site.backend);
    }
    blocks.push(`Listen 127.0.0.1:${port}\n${renderTemplate(`apache/${site.mode}.conf`, values)}`);
    running.push({ mode: site.mode, port, url: (path) => `http://127.0.0.1:${port}${path}` });
  }
  const first = running[0];
  if (first === undefined) throw new Error('startApache needs at least one site');
  const errorLog = join(dir, 'error.log');
  const asRoot = process.getuid?.() === 0;
  writeFileSync(join(dir, 'httpd.conf'), `ServerRoot "${dir}"
ServerName 127.0.0.1
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}
Mutex file:${dir} default
ErrorLog ${errorLog}
LogLevel warn
${MODULES.map(([name, file]) => `LoadModule ${name} ${MODULES_DIR}/${file}`).join('\n')}
${asRoot ? 'User www-data\nGroup www-data\n' : ''}StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
# httpd's defaults (75 / 250 spare threads) exceed this one-process pool, and mpm_event then logs
# AH10159 at error level under load: the reload test reads that log for lines at warn and above.
MinSpareThreads 16
MaxSpareThreads 64
Timeout 60
TypesConfig /etc/mime.types
DocumentRoot "${docroot}"
${blocks.join('\n')}
`);
  // startDaemon's error carries the error log's text: the directory is not needed after it.
  const daemon = await startDaemon({
    name: 'apache2',
    command: 'apache2',
    args: ['-d', dir, '-f', join(dir, 'httpd.conf'), '-DFOREGROUND'],
    port: first.port,
    errorLog,
  }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    sites: running,
    dir,
    errorLog: () => readSafe(errorLog),
    async stop() {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
