// Real nginx for the integration tests: started unprivileged-style from a private prefix on free
// loopback ports, one server block per site rendered from config/nginx/<mode>.conf, stopped by pid.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from './daemon.ts';
import { freePort } from './ports.ts';
import { renderTemplate } from './render.ts';

export type NginxMode = 'fastcgi' | 'fastcgi-keepalive' | 'fastcgi-unbuffered' | 'scgi' | 'uwsgi' | 'http-proxy'
  // Framework sites (config/nginx/frameworks/): FastCGI plus static files from the app's build.
  | 'frameworks/nextjs' | 'frameworks/react-router' | 'frameworks/static';

export interface SiteSpec<M extends string> {
  readonly mode: M;
  /** The backend as the config expects it: `127.0.0.1:9000` or `unix:/path.sock`. */
  readonly backend: string;
  /** Values for a template's own placeholders (the framework sites' APP_DIR, frameworks/static.conf's STATIC_ROOT). */
  readonly values?: Readonly<Record<string, string>>;
}

export interface RunningSite<M extends string> {
  readonly mode: M;
  readonly port: number;
  url(path: string): string;
}

export interface FrontServer<M extends string> {
  readonly sites: ReadonlyArray<RunningSite<M>>;
  readonly dir: string;
  errorLog(): string;
  stop(): Promise<void>;
}

// mime.types too, included as Debian's stock nginx.conf does: sites that serve files need it.
const PARAMS_FILES = ['fastcgi_params', 'scgi_params', 'uwsgi_params', 'mime.types'];

/** The templates' server_name: the host of every URL the tests send (`RunningSite.url`). */
export const SERVER_NAME = '127.0.0.1';

export async function startNginx(sites: ReadonlyArray<SiteSpec<NginxMode>>): Promise<FrontServer<NginxMode>> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-nginx-'));
  // nginx's workers run as www-data when the master is root: they must reach the prefix.
  chmodSync(dir, 0o755);
  // The stock params files, exactly as Debian ships them (the configs include them by name).
  for (const f of PARAMS_FILES) copyFileSync(join('/etc/nginx', f), join(dir, f));
  const running: Array<RunningSite<NginxMode>> = [];
  const blocks: string[] = [];
  for (const [i, site] of sites.entries()) {
    const port = await freePort();
    blocks.push(renderTemplate(`nginx/${site.mode}.conf`, { ...site.values, LISTEN: `127.0.0.1:${port}`, SERVER_NAME, BACKEND: site.backend, NAME: `s${i}` }));
    running.push({ mode: site.mode, port, url: (path) => `http://127.0.0.1:${port}${path}` });
  }
  const errorLog = join(dir, 'error.log');
  for (const sub of ['body', 'fastcgi', 'scgi', 'uwsgi', 'proxy']) mkdirSync(join(dir, sub));
  const asRoot = process.getuid?.() === 0;
  writeFileSync(join(dir, 'nginx.conf'), `${asRoot ? 'user www-data;\n' : ''}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 1024; }
http {
    include mime.types;
    access_log off;
    client_body_temp_path ${dir}/body;
    fastcgi_temp_path ${dir}/fastcgi;
    scgi_temp_path ${dir}/scgi;
    uwsgi_temp_path ${dir}/uwsgi;
    proxy_temp_path ${dir}/proxy;
${blocks.join('\n')}
}
`);
  const first = running[0];
  if (first === undefined) throw new Error('startNginx needs at least one site');
  // startDaemon's error carries the error log's text: the directory is not needed after it.
  const daemon = await startDaemon({
    name: 'nginx',
    command: 'nginx',
    args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
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

export function readSafe(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}
