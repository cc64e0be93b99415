// Front servers that start postern themselves, for the integration tests: Apache mod_fcgid (with
// an .htaccess front-controller rewrite), Apache mod_cgid (postern as a CGI program), lighttpd
// `bin-path`, and spawn-fcgi. Each gets a private directory (mode 0755, so Apache's `www-data`
// children can read it when the suite runs as root), a wrapper script that starts postern with
// absolute paths only (the spawners pass little or no environment: no PATH), and free ports.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCommand, startDaemon } from './daemon.ts';
import { freePort } from './ports.ts';

const compiled = import.meta.url.endsWith('.js');
const cliUrl = new URL(`../../../src/cli.${compiled ? 'js' : 'ts'}`, import.meta.url).href;
const treeUrl = new URL(`../../../src/examples/tree.${compiled ? 'js' : 'ts'}`, import.meta.url).href;

// The example tree at `/`, and at `/t` the probes: where (the split the app sees), echo (a body's
// length and SHA-256), big (N bytes, streamed in 64 KiB pieces), slow (answers after ?ms=), pid.
const APPS = `
import { createHash } from 'node:crypto';
import { exampleTree } from ${JSON.stringify(treeUrl)};
const mark = (app) => { Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' }); return app; };
export const example = exampleTree();
function byteAt(i) { return (i * 7 + 3) % 251; }
export function pattern(n) { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = byteAt(i); return b; }
async function* big(n) {
  const piece = pattern(65536 * 251);
  for (let sent = 0; sent < n;) {
    const k = Math.min(65536, n - sent);
    const off = sent % 251;
    yield piece.subarray(off, off + k);
    sent += k;
  }
}
export const tools = mark(async (environ, start) => {
  const q = new URLSearchParams(environ.QUERY_STRING);
  const path = environ.PATH_INFO;
  const text = (s) => { start('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', String(Buffer.byteLength(s))]]); return [s]; };
  if (path.startsWith('/where')) {
    return text(JSON.stringify({ script: environ.SCRIPT_NAME, path: environ.PATH_INFO, query: environ.QUERY_STRING, uri: environ.REQUEST_URI ?? null,
      protocol: environ['postern.protocol'], method: environ.REQUEST_METHOD, pid: process.pid, envPath: process.env.PATH ?? null }));
  }
  if (path === '/echo') {
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of environ['postern.input']) { hash.update(c); n += c.length; }
    return text(JSON.stringify({ bytes: n, sha256: hash.digest('hex'), type: environ.CONTENT_TYPE ?? null }));
  }
  if (path === '/form') {
    const parts = [];
    for await (const c of environ['postern.input']) parts.push(c);
    return text(JSON.stringify(Object.fromEntries(new URLSearchParams(Buffer.concat(parts).toString('utf8')))));
  }
  if (path === '/big') {
    const n = Number(q.get('bytes') ?? '0');
    start('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', String(n)]]);
    return big(n);
  }
  if (path === '/slow') {
    await new Promise((r) => setTimeout(r, Number(q.get('ms') ?? '1000')));
    return text('slow ' + process.pid);
  }
  start('404 Not Found', [['Content-Type', 'text/plain']]);
  return ['no such probe'];
});
`;

/** The bytes /t/big?bytes=N sends (the same pattern as the app's). */
export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

export interface SpawnedSite {
  readonly dir: string;
  readonly docroot: string;
  /** Writes an executable wrapper (`#!/bin/sh`, absolute paths only) that runs postern with `args`. */
  wrapper(name: string, args?: readonly string[]): string;
  /**
   * Stops (SIGTERM, then SIGKILL) every postern still running from this site, by pid: a spawner
   * stopped right after it restarted its backend may leave one behind (seen with lighttpd), and it
   * would hold the test runner's pipes open.
   */
  stopStrays(): Promise<void>;
  remove(): void;
}

/** A scratch directory with the apps, a config mounting them, and a docroot for the wrappers. */
export function spawnedSite(): SpawnedSite {
  const dir = mkdtempSync(join(tmpdir(), 'postern-spawned-'));
  chmodSync(dir, 0o755);
  const docroot = join(dir, 'htdocs');
  mkdirSync(docroot, { mode: 0o755 });
  const apps = join(dir, 'apps.mjs');
  writeFileSync(apps, APPS, { mode: 0o644 });
  const launcher = join(dir, 'postern.mjs');
  writeFileSync(launcher, `import { main } from ${JSON.stringify(cliUrl)};\nawait main(process.argv);\n`, { mode: 0o644 });
  const config = join(dir, 'postern.yaml');
  // No listener: the front server's socket (or CGI) decides. Logs as JSON, so the error log is greppable.
  writeFileSync(config, `mount:\n  - /=${apps}#example\n  - /t=${apps}#tools\nlogFormat: json\n`, { mode: 0o644 });
  const nodeArgs = [process.execPath, ...(compiled ? [] : ['--import', import.meta.resolve('tsx')]), launcher, '--config', config];
  return {
    dir,
    docroot,
    wrapper(name, args = []) {
      const path = join(docroot, name);
      const quoted = [...nodeArgs, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
      writeFileSync(path, `#!/bin/sh\n# What docs/shared-hosting.md shows: absolute paths, since the spawner may pass no PATH.\nexec ${quoted}\n`, { mode: 0o755 });
      return path;
    },
    async stopStrays() {
      const strays = (): number[] => readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d)).filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
          return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z') && readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(launcher);
        } catch {
          return false;
        }
      }).map(Number);
      const signal = (sig: NodeJS.Signals): void => { for (const pid of strays()) { try { process.kill(pid, sig); } catch { /* gone already */ } } };
      signal('SIGTERM');
      for (let i = 0; i < 100 && strays().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      signal('SIGKILL');
    },
    remove() { rmSync(dir, { recursive: true, force: true }); },
  };
}

export interface RunningFront {
  readonly port: number;
  readonly url: (path: string) => string;
  readonly errorLog: () => string;
  /** The front server's own pid (to signal it). */
  readonly pid: number;
  stop(): Promise<void>;
}

const APACHE_MODULES = '/usr/lib/apache2/modules';

function readSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Apache with `mod` (fcgid or cgid) serving the site's docroot, where an .htaccess sends every
 * path that is not a file to the wrapper (`index.fcgi/$1` or `index.cgi/$1`): the shared-hosting
 * front controller. `extra` is appended to the server config (FcgidMaxRequestLen…).
 */
export async function startApacheSpawner(site: SpawnedSite, mod: 'fcgid' | 'cgid', extra = ''): Promise<RunningFront> {
  const port = await freePort();
  const conf = join(site.dir, `httpd-${mod}.conf`);
  const runDir = join(site.dir, `run-${mod}`);
  mkdirSync(runDir, { mode: 0o755 });
  const errorLog = join(runDir, 'error.log');
  const asRoot = process.getuid?.() === 0;
  const script = mod === 'fcgid' ? 'index.fcgi' : 'index.cgi';
  writeFileSync(join(site.docroot, '.htaccess'), [
    'RewriteEngine On',
    'RewriteCond %{REQUEST_FILENAME} !-f',
    `RewriteRule ^(.*)$ ${script}/$1 [QSA,L]`,
    '',
  ].join('\n'), { mode: 0o644 });
  const modules: Array<[string, string]> = [
    ['mpm_event_module', 'mod_mpm_event.so'],
    ['authz_core_module', 'mod_authz_core.so'],
    ['mime_module', 'mod_mime.so'],
    ['rewrite_module', 'mod_rewrite.so'],
    mod === 'fcgid' ? ['fcgid_module', 'mod_fcgid.so'] : ['cgid_module', 'mod_cgid.so'],
  ];
  const modConf = mod === 'fcgid'
    ? `FcgidIPCDir ${runDir}/fcgid\nFcgidProcessTableFile ${runDir}/fcgid_shm\nAddHandler fcgid-script .fcgi\n`
    : `ScriptSock ${runDir}/cgid.sock\nAddHandler cgi-script .cgi\n`;
  writeFileSync(conf, `ServerRoot "${runDir}"
ServerName 127.0.0.1
PidFile ${runDir}/httpd.pid
DefaultRuntimeDir ${runDir}
Mutex file:${runDir} default
ErrorLog ${errorLog}
LogLevel warn
${modules.map(([name, file]) => `LoadModule ${name} ${APACHE_MODULES}/${file}`).join('\n')}
${asRoot ? 'User www-data\nGroup www-data\n' : ''}StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
Timeout 60
Listen 127.0.0.1:${port}
TypesConfig /etc/mime.types
DocumentRoot "${site.docroot}"
<Directory "${site.docroot}">
  Options +ExecCGI +FollowSymLinks
  AllowOverride FileInfo
  Require all granted
</Directory>
${modConf}${extra}
`);
  const daemon = await startDaemon({ name: `apache2 (mod_${mod})`, command: 'apache2', args: ['-d', runDir, '-f', conf, '-DFOREGROUND'], port, errorLog });
  return { port, url: (p) => `http://127.0.0.1:${port}${p}`, errorLog: () => readSafe(errorLog), pid: daemon.pid, stop: () => daemon.stop() };
}

/**
 * lighttpd with `fastcgi.server` starting the wrapper itself (`bin-path`) for every path, passing it
 * no environment (`bin-copy-environment` names only a variable that is not set; unset, lighttpd
 * would pass its own whole environment).
 */
export async function startLighttpd(site: SpawnedSite, wrapper: string): Promise<RunningFront> {
  const port = await freePort();
  const conf = join(site.dir, 'lighttpd.conf');
  const errorLog = join(site.dir, 'lighttpd-error.log');
  writeFileSync(conf, `server.document-root = "${site.docroot}"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${errorLog}"
server.modules += ( "mod_fastcgi" )
fastcgi.server = ( "/" => ( "postern" => (
  "socket" => "${site.dir}/lighttpd-fcgi.sock",
  "bin-path" => "${wrapper}",
  "check-local" => "disable",
  "bin-copy-environment" => ( "POSTERN_TEST_NO_SUCH_VARIABLE" ),
  "max-procs" => 1
) ) )
`);
  const daemon = await startDaemon({ name: 'lighttpd', command: 'lighttpd', args: ['-D', '-f', conf], port, errorLog });
  return { port, url: (p) => `http://127.0.0.1:${port}${p}`, errorLog: () => readSafe(errorLog), pid: daemon.pid, stop: () => daemon.stop() };
}

/**
 * spawn-fcgi binding a unix socket and starting `wrapper` on it, with an empty environment (`env
 * -i`: no PATH, as a bare init script gives). Returns the socket path and the child's pid.
 */
export function spawnFcgi(site: SpawnedSite, wrapper: string, name = 'spawn-fcgi'): { readonly socket: string; readonly pid: number } {
  const socket = join(site.dir, `${name}.sock`);
  const pidFile = join(site.dir, `${name}.pid`);
  const r = spawnSync('/usr/bin/env', ['-i', resolveCommand('spawn-fcgi'), '-s', socket, '-P', pidFile, '--', wrapper], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`spawn-fcgi failed (${String(r.status)}): ${r.stdout}${r.stderr}`);
  return { socket, pid: Number(readFileSync(pidFile, 'utf8').trim()) };
}
