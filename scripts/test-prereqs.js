// The test suite's system prerequisites, from the side of someone who just typed `npm test`: the
// real front servers and the reference FastCGI client the integration tests spawn. Run by npm's
// `pretest`, so it must work before `tsc` and with no package installed: plain Node, no imports
// from the project. Missing pieces are installed with apt-get when this user can (root, or sudo
// without a password); otherwise it stops before any test starts and prints the command to run.
//
// Environment:
//   POSTERN_PREREQS_INSTALL=0   never install, only report (a dry run; exit 1 when something is missing)
//   POSTERN_PREREQS_PATH        the directories searched for commands (default: $PATH, then the
//                               sbin directories, where Debian keeps nginx and apache2 even for
//                               users whose PATH lacks them; the test helpers look there too)
// Exit status: 0 all present (or installed), 1 something missing and not installed.
// A machine that has everything pays for a handful of stat calls: no dpkg, no apt, no network.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
const APACHE_MODULES_DIR = '/usr/lib/apache2/modules';

/**
 * What the suite spawns or reads, and the Debian/Ubuntu package that brings it. Keep in step with
 * test/helpers/front/nginx.ts (stock params files), apache.ts (the modules it loads by path) and
 * test/integration/socket-fastcgi.test.ts (cgi-fcgi), spawners.ts (mod_fcgid, mod_cgid, lighttpd, spawn-fcgi).
 */
const REQUIREMENTS = [
  { kind: 'command', name: 'nginx', pkg: 'nginx' },
  { kind: 'file', name: '/etc/nginx/fastcgi_params', pkg: 'nginx' },
  { kind: 'file', name: '/etc/nginx/scgi_params', pkg: 'nginx' },
  { kind: 'file', name: '/etc/nginx/uwsgi_params', pkg: 'nginx' },
  { kind: 'command', name: 'apache2', pkg: 'apache2' },
  { kind: 'file', name: `${APACHE_MODULES_DIR}/mod_proxy_fcgi.so`, pkg: 'apache2' },
  { kind: 'file', name: `${APACHE_MODULES_DIR}/mod_proxy_scgi.so`, pkg: 'apache2' },
  { kind: 'file', name: `${APACHE_MODULES_DIR}/mod_authnz_fcgi.so`, pkg: 'apache2' },
  // A module of apache2-bin since Debian 11; the package name is kept for older releases.
  { kind: 'file', name: `${APACHE_MODULES_DIR}/mod_proxy_uwsgi.so`, pkg: 'libapache2-mod-proxy-uwsgi' },
  { kind: 'command', name: 'cgi-fcgi', pkg: 'libfcgi-bin' },
  // The spawners of test/integration/spawned.test.ts (test/helpers/front/spawners.ts).
  { kind: 'file', name: `${APACHE_MODULES_DIR}/mod_fcgid.so`, pkg: 'libapache2-mod-fcgid' },
  { kind: 'file', name: `${APACHE_MODULES_DIR}/mod_cgid.so`, pkg: 'apache2' },
  { kind: 'file', name: `${APACHE_MODULES_DIR}/mod_rewrite.so`, pkg: 'apache2' },
  { kind: 'command', name: 'lighttpd', pkg: 'lighttpd' },
  { kind: 'command', name: 'spawn-fcgi', pkg: 'spawn-fcgi' },
];

function searchDirs() {
  const explicit = process.env['POSTERN_PREREQS_PATH'];
  if (explicit !== undefined) return explicit.split(delimiter).filter((d) => d !== '');
  return [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''), ...SBIN_DIRS];
}

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findCommand(name, dirs) {
  for (const dir of dirs) if (executable(join(dir, name))) return join(dir, name);
  return undefined;
}

/** The requirements not met, each with the package that meets it. */
function missing(dirs = searchDirs()) {
  return REQUIREMENTS.filter((r) => (r.kind === 'command' ? findCommand(r.name, dirs) === undefined : !existsSync(r.name)));
}

function run(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

function main() {
  const dirs = searchDirs();
  const gaps = missing(dirs);
  if (gaps.length === 0) return 0;
  // With apache2 itself to install, its own modules come with it; the transitional uwsgi package
  // is asked for only where apache2 is there without the module (a release before Debian 11).
  const pkgs = [...new Set(gaps.map((g) => g.pkg))].filter((p, _i, all) => p !== 'libapache2-mod-proxy-uwsgi' || !all.includes('apache2'));
  const what = gaps.map((g) => g.name).join(', ');
  const aptGet = findCommand('apt-get', dirs);
  if (aptGet === undefined) {
    console.error(`test-prereqs: the test suite needs ${what}, not found here.\n` +
      `Install these (Debian/Ubuntu package names) with your system's package manager: ${pkgs.join(' ')}`);
    return 1;
  }
  const root = process.getuid?.() === 0;
  const sudo = root ? undefined : findCommand('sudo', dirs);
  const prefix = root ? '' : 'sudo ';
  const command = `${prefix}apt-get update && ${prefix}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  const canInstall = root || (sudo !== undefined && run([sudo, '-n', 'true']));
  if (process.env['POSTERN_PREREQS_INSTALL'] === '0' || !canInstall) {
    console.error(`test-prereqs: the test suite needs ${what}, not found here. Run:\n\n    ${command}\n\nthen npm test again.`);
    return 1;
  }
  const as = (argv) => (sudo === undefined ? argv : [sudo, '-n', ...argv]);
  console.error(`test-prereqs: installing ${pkgs.join(' ')} (missing: ${what})`);
  if (!run(as([aptGet, 'update', '-qq'])) || !run(as([aptGet, 'install', '-y', '-qq', '--no-install-recommends', ...pkgs]))) {
    console.error(`test-prereqs: the install failed. Run it yourself:\n\n    ${command}`);
    return 1;
  }
  // apt starts the packaged services on port 80 (lighttpd too); the tests run their own instances on free ports.
  const service = findCommand('service', dirs);
  if (service !== undefined) {
    for (const s of ['nginx', 'apache2', 'lighttpd']) {
      const argv = as([service, s, 'stop']);
      spawnSync(argv[0], argv.slice(1), { stdio: 'ignore' });
    }
  }
  const still = missing(dirs);
  if (still.length > 0) {
    console.error(`test-prereqs: still missing after the install: ${still.map((g) => g.name).join(', ')}`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
