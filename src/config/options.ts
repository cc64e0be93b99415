// The option table: one entry per postern option, from which the command-line flags, the config
// file schema, the POSTERN_* environment variables and docs/configuration.md are all derived.

import type { RoleName } from '../app/types.ts';
import type { NodeBridge } from '../app/adapters/node-common.ts';
import { ACCESS_LOG_FIELDS as LOG_FIELDS } from '../log/access-format.ts';

export type OptionType = 'string' | 'integer' | 'boolean' | 'enum' | 'list' | 'duration' | 'bytes';

/** Extra shape checks on string and list-item values. */
export type OptionFormat =
  | 'address'      // HOST:PORT, :PORT, [IPv6]:PORT, unix:PATH, fd:N
  | 'mount'        // PREFIX=MODULE[#EXPORT] (or, in a file, a mapping)
  | 'url-path'     // starts with '/'
  | 'file-mode'    // octal permission bits, e.g. 0660
  | 'path'         // a file path (relative ones resolve against the config file's directory)
  | 'access-log'   // off, - (stdout) or a path
  | 'log-template' // combined, json or a template with {field}s
  | 'cidr'         // an IPv4 or IPv6 address or CIDR block (10.0.0.0/8, 2001:db8::/32)
  | 'account';     // a user or group name, or a numeric id

export type OptionGroup = 'listeners' | 'apps' | 'process' | 'security' | 'limits' | 'timeouts' | 'recycling' | 'logging' | 'status';

export const GROUP_TITLES: Readonly<Record<OptionGroup, string>> = {
  listeners: 'Listeners',
  apps: 'Applications',
  process: 'Process',
  security: 'Access and privileges',
  limits: 'Limits',
  timeouts: 'Timeouts',
  recycling: 'Worker recycling',
  logging: 'Logging',
  status: 'Status and health',
};

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'auto' | 'json' | 'pretty';
/** How a mounted value is adapted: auto-detected, or forced to one app contract. */
export type MountKind = 'auto' | 'native' | 'node' | 'fetch';

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];
export const MOUNT_KINDS: readonly MountKind[] = ['auto', 'native', 'node', 'fetch'];
export const MOUNT_ROLES: readonly RoleName[] = ['responder', 'authorizer', 'filter'];
export const NODE_BRIDGES: readonly NodeBridge[] = ['direct', 'replay'];
/** Fields an access log template may name (`{field}`): the access log writer's own list, so the two never disagree. */
export const ACCESS_LOG_FIELDS: readonly string[] = LOG_FIELDS;

/** The value every option has once resolved (before the derived fields of `PosternConfig`). */
export interface OptionValues {
  fastcgi: readonly string[];
  scgi: readonly string[];
  uwsgi: readonly string[];
  http: readonly string[];
  /** Canonical four-digit octal text, e.g. `0660`. */
  socketMode: string | undefined;
  /** A user name or numeric uid. */
  socketOwner: string | undefined;
  /** A group name or numeric gid. */
  socketGroup: string | undefined;
  mount: readonly MountConfig[];
  debug: boolean;
  trustForwardedProto: boolean;
  nodeBridge: NodeBridge;
  v8Pretenuring: boolean;
  config: string | undefined;
  workers: number;
  workersOnDemand: boolean;
  idleWorkerTimeoutMs: number;
  idleTimeoutMs: number;
  reloadOnTouch: string | undefined;
  heartbeatIntervalMs: number;
  workerStartTimeoutMs: number;
  respawnDelayMs: number;
  respawnDelayMaxMs: number;
  fastDeathMs: number;
  crashLoopDeaths: number;
  crashLoopWindowMs: number;
  /** IPv4/IPv6 addresses or CIDR blocks, as written (trimmed). */
  allowedClients: readonly string[];
  allowRoot: boolean;
  user: string | undefined;
  group: string | undefined;
  maxParamsBytes: number;
  maxParamCount: number;
  maxBodyBytes: number;
  maxHeadersBytes: number;
  maxRequestsPerConnection: number;
  maxConnections: number;
  maxInflightRequests: number;
  retryAfterSeconds: number;
  requestTimeoutMs: number;
  killGraceMs: number;
  headerTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  writeTimeoutMs: number;
  shutdownTimeoutMs: number;
  appCloseTimeoutMs: number;
  maxRequestsPerWorker: number;
  maxRequestsJitter: number;
  maxWorkerRssMiB: number;
  maxWorkerLifetimeMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  logFile: string | undefined;
  accessLog: string | undefined;
  accessLogFormat: string;
  slowRequestMs: number;
  statusPath: string | undefined;
  pingPath: string | undefined;
  statusListen: string | undefined;
}

export type OptionName = keyof OptionValues;

/** One mounted app, as the config file spells it (`--mount` gives prefix, module and export). */
export interface MountConfig {
  /** `/` or a path without a trailing slash (`/api`). */
  readonly prefix: string;
  /** A file path (absolute once resolved) or a package name. */
  readonly module: string;
  /** The export to mount; `default` unless `#EXPORT` or `export:` says otherwise. */
  readonly export: string;
  readonly kind: MountKind;
  readonly role: RoleName;
  /** The directory a package-name `module` resolves from (the cwd, or the config file's directory). */
  readonly baseDir: string;
}

export interface OptionSpec<N extends OptionName = OptionName> {
  readonly name: N;
  readonly group: OptionGroup;
  readonly type: OptionType;
  /** For `list`: the item format; for `string`: an extra shape check. */
  readonly format?: OptionFormat;
  /** Unit shown in help and docs (`bytes`, `ms`, `MiB`, `requests`). */
  readonly unit?: string;
  /** The value when no source sets it; `undefined` = unset (off). */
  readonly default: OptionValues[N];
  /** How the default reads in help and docs when the value alone would mislead. */
  readonly defaultText?: string;
  readonly help: string;
  readonly env: `POSTERN_${string}`;
  readonly flag: `--${string}`;
  /** The flag's argument name in help (`ADDR`, `N`). Absent for booleans. */
  readonly valueName?: string;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
  /** Words accepted besides numbers (`auto` for workers). */
  readonly words?: readonly string[];
  /** False for options that only make sense outside a config file (`config` itself). */
  readonly inFile?: false;
}

/** Largest delay Node's timers honour (2^31-1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;
const ADDR_HELP = 'HOST:PORT, :PORT (every interface), [IPv6]:PORT, unix:PATH or fd:N';

function listener<N extends 'fastcgi' | 'scgi' | 'uwsgi' | 'http'>(name: N, what: string): OptionSpec<N> {
  return {
    name, group: 'listeners', type: 'list', format: 'address', default: [] as OptionValues[N],
    defaultText: name === 'fastcgi' ? '127.0.0.1:9000 when no listener is given'
      : name === 'http' ? '127.0.0.1:8080 when no listener is given' : 'none',
    help: `${what} listen address, repeatable: ${ADDR_HELP}.`,
    env: `POSTERN_${name.toUpperCase()}`, flag: `--${name}`, valueName: 'ADDR',
  };
}

type DurationName = { [K in OptionName]: K extends `${string}Ms` ? K : never }[OptionName];

function timeout<N extends DurationName>(name: N, def: number, help: string, group: OptionGroup = 'timeouts', min = 0): OptionSpec<N> {
  return {
    name, group, type: 'duration', unit: 'ms', default: def, help, min, max: MAX_TIMER_MS,
    env: envName(name), flag: flagName(name), valueName: 'MS',
  };
}

const MASTER_ONLY = 'Used by the master process (see workers).';

/** `maxParamsBytes` → `POSTERN_MAX_PARAMS_BYTES`. */
export function envName(name: string): `POSTERN_${string}` {
  return `POSTERN_${words(name).join('_').toUpperCase()}`;
}
/** `maxParamsBytes` → `--max-params-bytes`. */
export function flagName(name: string): `--${string}` {
  return `--${words(name).join('-').toLowerCase()}`;
}
// `MiB` is one word, not `Mi` + `B`.
function words(camel: string): string[] {
  return camel.replace(/MiB/g, 'Mib').split(/(?=[A-Z])/);
}

/** Every option, keyed by name; the order here is the order of help and docs. */
export const OPTIONS: { readonly [N in OptionName]: OptionSpec<N> } = {
  fastcgi: listener('fastcgi', 'FastCGI'),
  scgi: listener('scgi', 'SCGI'),
  uwsgi: listener('uwsgi', 'uwsgi'),
  http: listener('http', 'Plain HTTP/1.1 (development, health checks)'),
  socketMode: {
    name: 'socketMode', group: 'listeners', type: 'string', format: 'file-mode', default: undefined,
    defaultText: 'unset (umask decides)',
    help: 'Permission bits for the unix sockets postern creates, in octal (e.g. 0660 so the front server\'s group can connect). Quote it in YAML.',
    env: 'POSTERN_SOCKET_MODE', flag: '--socket-mode', valueName: 'MODE',
  },
  socketOwner: {
    name: 'socketOwner', group: 'listeners', type: 'string', format: 'account', default: undefined, defaultText: 'unset (the user postern runs as)',
    help: 'Owner of the unix sockets postern creates: a user name or numeric uid (changing it needs root). With socketMode 0600 only this user can connect.',
    env: 'POSTERN_SOCKET_OWNER', flag: '--socket-owner', valueName: 'USER',
  },
  socketGroup: {
    name: 'socketGroup', group: 'listeners', type: 'string', format: 'account', default: undefined, defaultText: 'unset (the group postern runs as)',
    help: 'Group of the unix sockets postern creates: a group name or numeric gid, e.g. the front server\'s group (www-data) with socketMode 0660.',
    env: 'POSTERN_SOCKET_GROUP', flag: '--socket-group', valueName: 'GROUP',
  },
  mount: {
    name: 'mount', group: 'apps', type: 'list', format: 'mount', default: [],
    defaultText: 'the built-in example tree',
    help: 'Mount the export EXPORT (default `default`) of MODULE (a file path or package name) at PREFIX, repeatable. '
      + 'In a file: a list of `{prefix, module, export, kind, role}` mappings or `PREFIX=MODULE#EXPORT` strings.',
    env: 'POSTERN_MOUNT', flag: '--mount', valueName: 'PREFIX=MODULE[#EXPORT]',
  },
  debug: {
    name: 'debug', group: 'apps', type: 'boolean', default: false,
    help: 'Show application error details (stack traces) in 500 response bodies. Never in production.',
    env: 'POSTERN_DEBUG', flag: '--debug',
  },
  trustForwardedProto: {
    name: 'trustForwardedProto', group: 'apps', type: 'boolean', default: false,
    help: 'Take the URL scheme from the client\'s X-Forwarded-Proto header when the front server sends no HTTPS / REQUEST_SCHEME. Only behind a proxy that sets it.',
    env: 'POSTERN_TRUST_FORWARDED_PROTO', flag: '--trust-forwarded-proto',
  },
  nodeBridge: {
    name: 'nodeBridge', group: 'apps', type: 'enum', choices: NODE_BRIDGES, default: 'direct',
    help: 'How Node (req, res) apps (Express, Koa, Fastify) get their requests: `direct` builds node:http\'s own request and response objects '
      + 'from the gateway params; `replay` writes each request out as HTTP/1.1 into a private http.Server (slower; for an app the direct bridge mishandles).',
    env: 'POSTERN_NODE_BRIDGE', flag: '--node-bridge', valueName: 'BRIDGE',
  },
  v8Pretenuring: {
    name: 'v8Pretenuring', group: 'apps', type: 'boolean', default: false,
    help: 'V8\'s allocation-site pretenuring in the processes that run the apps (set before they are imported; true is V8\'s default). '
      + 'Off, each request\'s node:http objects die young instead of being promoted through tenured node:events and stream sites: '
      + 'on Node 20 a Koa or Fastify hello costs half the CPU in process (BENCHMARKS.md, "Allocation-site pretenuring").',
    env: 'POSTERN_V8_PRETENURING', flag: '--v8-pretenuring',
  },
  config: {
    name: 'config', group: 'process', type: 'string', format: 'path', default: undefined, defaultText: 'none',
    help: 'Read options from this YAML or JSON file (flags and environment variables override it).',
    env: 'POSTERN_CONFIG', flag: '--config', valueName: 'FILE', inFile: false,
  },
  workers: {
    name: 'workers', group: 'process', type: 'integer', unit: 'processes', default: 1, min: 1, max: 1024, words: ['auto'],
    help: 'Worker processes; `auto` = one per CPU. With more than 1, a master process binds the listeners, starts the workers, '
      + 'and respawns, recycles and stops them. With 1, postern serves in a single process, the fastest way, unless an option only a '
      + 'master can carry out is set (requestTimeoutMs, maxRequestsPerWorker, maxWorkerRssMiB, maxWorkerLifetimeMs; or user/group): '
      + 'then one worker runs under a master, as in PHP-FPM, with no flag to forget (uWSGI needs --master for the same).',
    env: 'POSTERN_WORKERS', flag: '--workers', valueName: 'N',
  },
  workersOnDemand: {
    name: 'workersOnDemand', group: 'process', type: 'boolean', default: false,
    help: 'Start no worker until a connection arrives (PHP-FPM\'s `pm = ondemand`), grow towards `workers` while every worker has a request '
      + 'in flight, and stop a worker idle for idleWorkerTimeoutMs, down to none. While no worker serves, the master accepts connections itself '
      + 'and passes each to the worker it starts (held connections are capped at maxConnections). Runs a master even with workers: 1. '
      + 'See docs/operations.md.',
    env: 'POSTERN_WORKERS_ON_DEMAND', flag: '--workers-on-demand',
  },
  idleWorkerTimeoutMs: timeout('idleWorkerTimeoutMs', 10_000,
    `With workersOnDemand: stop a worker that had no request in flight for this long (measured from its heartbeats, so to within heartbeatIntervalMs). ${MASTER_ONLY}`,
    'process', 1),
  idleTimeoutMs: timeout('idleTimeoutMs', 0,
    'Started by a front server on its socket (fd 0: mod_fcgid, lighttpd bin-path, spawn-fcgi): exit after this long with no request '
      + 'and no connection open, as the spawner expects of an idle child (it starts a new one on the next request); 0 = never. '
      + 'In that mode maxRequestsPerWorker, maxWorkerRssMiB and maxWorkerLifetimeMs also make the process exit (no master replaces it). '
      + 'Ignored when postern opens its own listeners.',
    'process'),
  reloadOnTouch: {
    name: 'reloadOnTouch', group: 'process', type: 'string', format: 'path', default: undefined, defaultText: 'unset (off)',
    help: 'Reload gracefully, as on SIGHUP, when this file\'s modification time changes (`touch tmp/restart.txt`, as with Passenger), '
      + 'for hosts where you cannot send signals. Checked once a second; the file need not exist until the first touch.',
    env: 'POSTERN_RELOAD_ON_TOUCH', flag: '--reload-on-touch', valueName: 'FILE',
  },
  heartbeatIntervalMs: timeout('heartbeatIntervalMs', 1000,
    `How often each worker reports to the master (requests served, memory, requests in flight); a worker silent for 3 intervals is late, and past requestTimeoutMs + killGraceMs it is killed. ${MASTER_ONLY}`,
    'process', 10),
  workerStartTimeoutMs: timeout('workerStartTimeoutMs', 30_000,
    `A worker not listening this long after it was started (slow app imports count) is killed and counted as a failed start. ${MASTER_ONLY}`,
    'process', 1),
  respawnDelayMs: timeout('respawnDelayMs', 100,
    `Delay before replacing a worker that died fast (see fastDeathMs); it doubles with each further fast death in crashLoopWindowMs. ${MASTER_ONLY}`,
    'process'),
  respawnDelayMaxMs: timeout('respawnDelayMaxMs', 10_000,
    `Ceiling of the doubling respawn delay. ${MASTER_ONLY}`,
    'process'),
  fastDeathMs: timeout('fastDeathMs', 10_000,
    `A worker that exits unplanned younger than this died fast: it delays the next respawn and counts towards the crash-loop brake. ${MASTER_ONLY}`,
    'process'),
  crashLoopDeaths: {
    name: 'crashLoopDeaths', group: 'process', type: 'integer', unit: 'deaths', default: 5, min: 0, max: 1_000_000, defaultText: '5 (0 = never brake)',
    help: `This many fast deaths within crashLoopWindowMs stop respawning (logged as a crash loop) until a reload (SIGHUP); `
      + `the remaining workers serve on, and with none left the master exits 1. 0 = always respawn. ${MASTER_ONLY}`,
    env: 'POSTERN_CRASH_LOOP_DEATHS', flag: '--crash-loop-deaths', valueName: 'N',
  },
  crashLoopWindowMs: timeout('crashLoopWindowMs', 60_000,
    `The sliding window in which fast deaths count towards crashLoopDeaths. ${MASTER_ONLY}`,
    'process'),
  allowedClients: {
    name: 'allowedClients', group: 'security', type: 'list', format: 'cidr', default: [], defaultText: 'none (every client)',
    help: 'IPv4/IPv6 addresses or CIDR blocks (10.0.0.0/8, 2001:db8::/32, ::1) whose TCP connections are served, on every protocol, repeatable; '
      + 'others are closed at accept, counted and logged. IPv4 blocks also match IPv4-mapped peers (::ffff:10.1.2.3) of a dual-stack listener. '
      + 'Unix sockets are not checked (their mode, owner and group are). FastCGI listeners also honour the FCGI_WEB_SERVER_ADDRS variable (FastCGI spec 3.2).',
    env: 'POSTERN_ALLOWED_CLIENTS', flag: '--allowed-clients', valueName: 'CIDR',
  },
  allowRoot: {
    name: 'allowRoot', group: 'security', type: 'boolean', default: false,
    help: 'Run as root even with a listener other hosts can reach. Without it, root with no `user` to drop to is refused (exit 2) '
      + 'when any listener is on a non-loopback address or every interface, and only warned about when all are local (loopback or unix sockets), '
      + 'so the loopback defaults keep working in a root container or CI job.',
    env: 'POSTERN_ALLOW_ROOT', flag: '--allow-root',
  },
  user: {
    name: 'user', group: 'security', type: 'string', format: 'account', default: undefined, defaultText: 'unset (keep the current user)',
    help: 'Started as root: switch to this user (name or uid, with its supplementary groups) once the listeners are bound, in the master and in every worker, '
      + 'before any app module is imported (postern then runs a master even with workers: 1). Sockets and logs created before the switch keep root as owner unless socketOwner says otherwise.',
    env: 'POSTERN_USER', flag: '--user', valueName: 'USER',
  },
  group: {
    name: 'group', group: 'security', type: 'string', format: 'account', default: undefined, defaultText: 'unset (the user\'s primary group)',
    help: 'The group (name or gid) to switch to along with user.',
    env: 'POSTERN_GROUP', flag: '--group', valueName: 'GROUP',
  },
  maxParamsBytes: {
    name: 'maxParamsBytes', group: 'limits', type: 'bytes', unit: 'bytes', default: 65536, min: 1024, max: 16 * 1024 ** 2,
    help: 'Largest FastCGI PARAMS / SCGI header / uwsgi vars block per request; past it the request is refused (431). '
      + 'uwsgi packets cannot exceed 64 KiB whatever this says.',
    env: 'POSTERN_MAX_PARAMS_BYTES', flag: '--max-params-bytes', valueName: 'BYTES',
  },
  maxParamCount: {
    name: 'maxParamCount', group: 'limits', type: 'integer', unit: 'params', default: 1000, min: 1, max: 1_000_000,
    help: 'Most params / vars per request.',
    env: 'POSTERN_MAX_PARAM_COUNT', flag: '--max-param-count', valueName: 'N',
  },
  maxBodyBytes: {
    name: 'maxBodyBytes', group: 'limits', type: 'bytes', unit: 'bytes', default: 0, min: 0, defaultText: '0 (unlimited)',
    help: 'Largest request body; past it the request is refused (413). 0 = unlimited (the front server usually caps it).',
    env: 'POSTERN_MAX_BODY_BYTES', flag: '--max-body-bytes', valueName: 'BYTES',
  },
  maxHeadersBytes: {
    name: 'maxHeadersBytes', group: 'limits', type: 'bytes', unit: 'bytes', default: 65536, min: 1024, max: 16 * 1024 ** 2,
    help: 'Largest request head on HTTP listeners (request line and headers); past it 431.',
    env: 'POSTERN_MAX_HEADERS_BYTES', flag: '--max-headers-bytes', valueName: 'BYTES',
  },
  maxRequestsPerConnection: {
    name: 'maxRequestsPerConnection', group: 'limits', type: 'integer', unit: 'requests', default: 1, min: 1, max: 65535,
    defaultText: '1 (no multiplexing)',
    help: 'Concurrent FastCGI request ids per connection (FCGI_MAX_REQS); 1 = no multiplexing, and FCGI_MPXS_CONNS=0 is advertised. nginx and Apache never multiplex.',
    env: 'POSTERN_MAX_REQUESTS_PER_CONNECTION', flag: '--max-requests-per-connection', valueName: 'N',
  },
  maxConnections: {
    name: 'maxConnections', group: 'limits', type: 'integer', unit: 'connections', default: 1024, min: 1, max: 1_000_000,
    help: 'Open connections per worker, across all listeners; advertised as FCGI_MAX_CONNS and enforced.',
    env: 'POSTERN_MAX_CONNECTIONS', flag: '--max-connections', valueName: 'N',
  },
  maxInflightRequests: {
    name: 'maxInflightRequests', group: 'limits', type: 'integer', unit: 'requests', default: 1024, min: 0, max: 1_000_000,
    help: 'Requests in flight per worker; past it a request is refused at once instead of queueing on the event loop: '
      + 'FastCGI gets a 503 and END_REQUEST(FCGI_OVERLOADED), SCGI, uwsgi and HTTP a 503 with Retry-After. Counted and logged. 0 = no cap.',
    env: 'POSTERN_MAX_INFLIGHT_REQUESTS', flag: '--max-inflight-requests', valueName: 'N',
  },
  retryAfterSeconds: {
    name: 'retryAfterSeconds', group: 'limits', type: 'integer', unit: 'seconds', default: 5, min: 0, max: 86_400,
    help: 'The Retry-After header of the 503 an overloaded worker answers; 0 = no header.',
    env: 'POSTERN_RETRY_AFTER_SECONDS', flag: '--retry-after-seconds', valueName: 'SECONDS',
  },
  requestTimeoutMs: timeout('requestTimeoutMs', 0,
    'Request deadline: past it the app\'s AbortSignal fires and the client gets 504; 0 = off. '
      + 'Setting it runs postern under a master even with workers: 1, so that a worker stuck past it (its event loop blocked) can be killed and replaced.'),
  killGraceMs: timeout('killGraceMs', 5000,
    'How long a worker may stay stuck in a request past requestTimeoutMs before the master kills and replaces it.'),
  headerTimeoutMs: timeout('headerTimeoutMs', 10_000,
    'Time allowed to receive a request\'s params / head once its first byte arrived (slowloris guard).'),
  bodyIdleTimeoutMs: timeout('bodyIdleTimeoutMs', 30_000,
    'Longest pause between request body chunks.'),
  keepAliveTimeoutMs: timeout('keepAliveTimeoutMs', 60_000,
    'Idle time before a keep-alive FastCGI (FCGI_KEEP_CONN) or HTTP connection is closed.'),
  writeTimeoutMs: timeout('writeTimeoutMs', 30_000,
    'Longest time a connection may make no progress writing its response (the peer reads nothing) before it is closed and its request aborted; 0 = off.'),
  shutdownTimeoutMs: timeout('shutdownTimeoutMs', 30_000,
    'Graceful stop deadline (SIGTERM, reload): in-flight requests still running after it are aborted.'),
  appCloseTimeoutMs: timeout('appCloseTimeoutMs', 5000,
    'On a graceful stop (SIGTERM, a worker draining for a reload or recycling), once the last request has finished, postern closes each mounted app '
      + 'as its own server would: a NestJS application\'s close() (its shutdown hooks), a Fastify instance\'s close() (onClose hooks), '
      + '\'close\' on a taken-over http.Server. This long at most, all apps at once; a hook that throws or is still running then is logged, '
      + 'naming the mount, and the stop goes on. 0 = do not close the apps. A stop may take shutdownTimeoutMs + appCloseTimeoutMs.'),
  maxRequestsPerWorker: {
    name: 'maxRequestsPerWorker', group: 'recycling', type: 'integer', unit: 'requests', default: 0, min: 0, defaultText: '0 (off)',
    help: 'Replace a worker (new one up first) after it served this many requests; 0 = never. Runs a master even with workers: 1.',
    env: 'POSTERN_MAX_REQUESTS_PER_WORKER', flag: '--max-requests-per-worker', valueName: 'N',
  },
  maxRequestsJitter: {
    name: 'maxRequestsJitter', group: 'recycling', type: 'integer', unit: 'requests', default: 0, min: 0,
    help: 'Add 0..N at random to each worker\'s maxRequestsPerWorker so workers do not all recycle at once.',
    env: 'POSTERN_MAX_REQUESTS_JITTER', flag: '--max-requests-jitter', valueName: 'N',
  },
  maxWorkerRssMiB: {
    name: 'maxWorkerRssMiB', group: 'recycling', type: 'integer', unit: 'MiB', default: 0, min: 0, max: 1_048_576, defaultText: '0 (off)',
    help: 'Replace a worker whose resident memory exceeds this; 0 = no cap. Runs a master even with workers: 1.',
    env: 'POSTERN_MAX_WORKER_RSS_MIB', flag: '--max-worker-rss-mib', valueName: 'MIB',
  },
  maxWorkerLifetimeMs: timeout('maxWorkerLifetimeMs', 0,
    'Replace a worker after it has run this long; 0 = no limit. Runs a master even with workers: 1.', 'recycling'),
  logLevel: {
    name: 'logLevel', group: 'logging', type: 'enum', choices: LOG_LEVELS, default: 'info',
    help: 'Least severe event-log level written.',
    env: 'POSTERN_LOG_LEVEL', flag: '--log-level', valueName: 'LEVEL',
  },
  logFormat: {
    name: 'logFormat', group: 'logging', type: 'enum', choices: LOG_FORMATS, default: 'auto',
    help: 'Event log format: `pretty` (coloured, for people), `json` (one object per line), `auto` = pretty on a terminal, JSON otherwise.',
    env: 'POSTERN_LOG_FORMAT', flag: '--log-format', valueName: 'FORMAT',
  },
  logFile: {
    name: 'logFile', group: 'logging', type: 'string', format: 'path', default: undefined, defaultText: 'unset (stderr)',
    help: 'Write the event log to this file instead of stderr (reopened on SIGUSR1).',
    env: 'POSTERN_LOG_FILE', flag: '--log-file', valueName: 'FILE',
  },
  accessLog: {
    name: 'accessLog', group: 'logging', type: 'string', format: 'access-log', default: undefined, defaultText: 'unset (off)',
    help: 'Access log: `off`, `-` for stdout, or a file path (reopened on SIGUSR1).',
    env: 'POSTERN_ACCESS_LOG', flag: '--access-log', valueName: 'DEST',
  },
  accessLogFormat: {
    name: 'accessLogFormat', group: 'logging', type: 'string', format: 'log-template', default: 'combined',
    help: `Access log line format: \`combined\` (Apache/nginx), \`json\`, or a template naming fields in braces, e.g. \`{remoteAddr} {method} {uri} {status} {durationMs}\`. Fields: ${ACCESS_LOG_FIELDS.join(', ')}.`,
    env: 'POSTERN_ACCESS_LOG_FORMAT', flag: '--access-log-format', valueName: 'FORMAT',
  },
  slowRequestMs: timeout('slowRequestMs', 0,
    'Log a warning (method, URI, mount, duration, worker) for each request that takes at least this long; 0 = off.', 'logging'),
  statusPath: {
    name: 'statusPath', group: 'status', type: 'string', format: 'url-path', default: undefined, defaultText: 'unset (off)',
    help: 'URL path of the status endpoint (per-worker and per-mount counters, as JSON or Prometheus text). With statusListen set it is served only there.',
    env: 'POSTERN_STATUS_PATH', flag: '--status-path', valueName: 'PATH',
  },
  pingPath: {
    name: 'pingPath', group: 'status', type: 'string', format: 'url-path', default: undefined, defaultText: 'unset (off)',
    help: 'URL path of a cheap health check for load balancers and container probes. With statusListen set it is served only there.',
    env: 'POSTERN_PING_PATH', flag: '--ping-path', valueName: 'PATH',
  },
  statusListen: {
    name: 'statusListen', group: 'status', type: 'string', format: 'address', default: undefined, defaultText: 'unset',
    help: `A separate plain-HTTP listener for statusPath and pingPath only, so they never share the apps' URL space: ${ADDR_HELP}.`,
    env: 'POSTERN_STATUS_LISTEN', flag: '--status-listen', valueName: 'ADDR',
  },
};

export const OPTION_LIST: readonly OptionSpec[] = Object.freeze(Object.values(OPTIONS) as OptionSpec[]);

/** The keys a config file may hold (every option but `config`). */
export const FILE_KEYS: readonly OptionName[] = OPTION_LIST.filter((o) => o.inFile !== false).map((o) => o.name);

export const LISTENER_PROTOCOLS = ['fastcgi', 'scgi', 'uwsgi', 'http'] as const;
export type ListenerProtocol = (typeof LISTENER_PROTOCOLS)[number];

/**
 * Options only a master process can carry out (recycling, killing a worker stuck past its
 * deadline): any of them set runs postern under a master even with one worker.
 */
export const MASTER_OPTIONS = ['requestTimeoutMs', 'maxRequestsPerWorker', 'maxWorkerRssMiB', 'maxWorkerLifetimeMs'] as const;

/** The master's own knobs: they do nothing when postern runs as a single process. */
export const SUPERVISOR_OPTIONS = [
  'killGraceMs', 'idleWorkerTimeoutMs', 'heartbeatIntervalMs', 'workerStartTimeoutMs', 'respawnDelayMs', 'respawnDelayMaxMs', 'fastDeathMs', 'crashLoopDeaths', 'crashLoopWindowMs',
] as const;

/** Whether this configuration needs a master process (more than one worker, or a MASTER_OPTIONS policy). */
export function needsMaster(v: Pick<OptionValues, 'workers' | 'workersOnDemand' | (typeof MASTER_OPTIONS)[number]>): boolean {
  return v.workers > 1 || v.workersOnDemand || MASTER_OPTIONS.some((name) => v[name] > 0);
}

/** Listeners when no source names any (the README's embedded default). */
export const DEFAULT_LISTENERS: ReadonlyArray<{ readonly protocol: ListenerProtocol; readonly address: string }> = [
  { protocol: 'fastcgi', address: '127.0.0.1:9000' },
  { protocol: 'http', address: '127.0.0.1:8080' },
];
