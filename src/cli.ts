// The `postern` command, from the operator's side: flags, POSTERN_* variables and a config file
// become one frozen configuration; then either `check-config` reports on it or the server starts,
// logs where it listens, and answers signals (TERM graceful stop, INT fast stop, HUP reload).

import { chownSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { exampleTree } from './examples/tree.ts';
import { Writable } from 'node:stream';
import type { PosternServer } from './server/server.ts';
import { Tree } from './app/tree.ts';
import type { Environ } from './app/types.ts';
import type { EventLog } from './log/types.ts';
import { silentLog } from './log/types.ts';
import { CONFIG_ERRORS, ConfigError, formatIssue } from './config/errors.ts';
import { addTableOptions, commandLineValues } from './config/flags.ts';
import { resolveConfig } from './config/load.ts';
import { suggest } from './config/suggest.ts';
import type { PosternConfig, RawValues } from './config/load.ts';
import { buildTree } from './config/mounts.ts';
import { APP_CLOSE_ERRORS } from './app/shutdown.ts';
import { MASTER_OPTIONS, needsMaster } from './config/options.ts';
import { createOperatorLogs, processStatus, startServing, statusUrl, STATUS_URL_ERROR, tcpPorts } from './operate.ts';
import type { OperatorLogs } from './operate.ts';
import type { ServerOptions } from './server/options.ts';
import { Metrics } from './status/metrics.ts';
import { readListenBacklog } from './status/backlog.ts';
import { runStatusTop } from './status/top.ts';
import type { ManagedAccessLog } from './log/access-log.ts';
import type { StatusRoutes } from './status/endpoint.ts';
import { SwappableTree } from './config/swappable-tree.ts';
import { isWorkerProcess, runSupervised, runWorker } from './supervisor/index.ts';
import { applyV8Tuning } from './v8-tuning.ts';
import type { Supervisor, SupervisorSettings } from './supervisor/index.ts';
import { dropPrivileges, lookupGroup, lookupUser, PRIVILEGE_ERRORS, PrivilegeError, rootCheck } from './server/privileges.ts';
import { DEFAULT_HEALTH_TIMEOUT_MS, formatHealth, healthTarget, HEALTH_ERRORS, probeHealth } from './health.ts';
import { servingFd0, startModeFor } from './spawn/start.ts';
import { cgiParams, serveCgi } from './spawn/cgi.ts';
import { describeExit, watchSpawned, type SpawnedWatch } from './spawn/lifecycle.ts';
import { requestLimit } from './supervisor/policy/recycle.ts';
import { watchTouch, type TouchWatch } from './touch-reload.ts';

/** Exit statuses: 0 ok or a requested stop, 1 a failure while running, 2 a usage or config error. */
export const EXIT = { OK: 0, FAILURE: 1, CONFIG: 2 } as const;

/** What the CLI touches of the outside world; tests pass their own. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Where TERM / INT / HUP / USR1 arrive; default `process`. */
  readonly signals: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
  /** Whether stderr is a terminal (for `logFormat: auto`). */
  readonly isTTY: boolean;
}

function defaultIo(): CliIo {
  return {
    stdout: (t) => { process.stdout.write(t); },
    stderr: (t) => { process.stderr.write(t); },
    env: process.env,
    cwd: process.cwd(),
    signals: process,
    isTTY: process.stderr.isTTY === true,
  };
}

/** postern's version, from the package.json above this module (src/ under tsx, dist/src/ compiled). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'postern' && typeof pkg.version === 'string') return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) return '0.0.0';
    dir = up;
  }
}

/** What each command does once commander has parsed the line; tests substitute their own. */
export interface CliActions {
  /** Start serving; resolves with the exit status once stopped. */
  readonly serve: (program: Command, io: CliIo) => Promise<number>;
  /** Validate and print a summary; returns the exit status (throws ConfigError when invalid). */
  readonly checkConfig: (program: Command, io: CliIo, file: string | undefined, options: { skipPathChecks: boolean }) => number;
  /** Probe a running postern configured like this; returns the exit status (0 healthy, 1 not). */
  readonly health?: (program: Command, io: CliIo, options: HealthOptions) => Promise<number>;
  /** Draw the status page of a running postern; returns the exit status. */
  readonly status?: (program: Command, io: CliIo, options: StatusOptions) => Promise<number>;
}

export interface HealthOptions {
  readonly path?: string;
  readonly timeoutMs: number;
}

export const defaultActions: CliActions = {
  serve,
  checkConfig: (program, io, file, options) => {
    const { flags } = commandLineValues(program);
    const config = resolveConfig({ flags: withFile(flags, file), env: io.env, cwd: io.cwd, checkPaths: !options.skipPathChecks });
    if (!options.skipPathChecks) {
      // The accounts a start would look up: an unknown name fails here, not at the next start.
      try {
        for (const u of [config.user, config.socketOwner]) if (u !== undefined) lookupUser(u);
        for (const g of [config.group, config.socketGroup]) if (g !== undefined) lookupGroup(g);
      } catch (err) {
        if (!(err instanceof PrivilegeError)) throw err;
        io.stderr(`postern: ${err.message} [${err.code}]\n`);
        return EXIT.CONFIG;
      }
    }
    io.stdout(summary(config));
    return EXIT.OK;
  },
  health,
  status: statusCommand,
};

export interface StatusOptions {
  /** The status URL; default: the statusPath this configuration serves over HTTP. */
  readonly url?: string;
  readonly once: boolean;
  readonly intervalMs: number;
}

/** `postern status [URL]`: the status page as a table, redrawn every interval until ^C (or once). */
async function statusCommand(program: Command, io: CliIo, options: StatusOptions): Promise<number> {
  let url = options.url;
  if (url === undefined) {
    const { flags } = commandLineValues(program);
    const found = statusUrl(resolveConfig({ flags, env: io.env, cwd: io.cwd, checkPaths: false }));
    if ('why' in found) {
      io.stderr(`postern: ${found.why} [${STATUS_URL_ERROR}]\n`);
      return EXIT.CONFIG;
    }
    url = found.url;
  }
  const out = Object.assign(new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      io.stdout(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      callback();
    },
  }), { isTTY: io.isTTY && process.stdout.isTTY === true });
  const controller = new AbortController();
  const stop = (): void => { controller.abort(); };
  io.signals.on('SIGINT', stop);
  io.signals.on('SIGTERM', stop);
  try {
    await runStatusTop(url, { intervalMs: options.intervalMs, once: options.once, out, signal: controller.signal });
    return EXIT.OK;
  } finally {
    io.signals.off('SIGINT', stop);
    io.signals.off('SIGTERM', stop);
  }
}

/** `postern health`: the listener and ping path this configuration would serve, probed once. */
async function health(program: Command, io: CliIo, options: HealthOptions): Promise<number> {
  const { flags } = commandLineValues(program);
  const config = resolveConfig({ flags, env: io.env, cwd: io.cwd, checkPaths: false });
  const target = healthTarget(config, options.path ?? config.pingPath);
  if (target === undefined) {
    io.stderr(`postern: unhealthy: no listener to probe (fd:N and port 0 cannot be dialled; pass the address, e.g. postern --fastcgi 127.0.0.1:9000 health) [${HEALTH_ERRORS.NO_TARGET}]\n`);
    return EXIT.FAILURE;
  }
  const result = await probeHealth(target, { timeoutMs: options.timeoutMs });
  if (result.ok) io.stdout(`${formatHealth(result)}\n`);
  else io.stderr(`postern: ${formatHealth(result)}\n`);
  return result.ok ? EXIT.OK : EXIT.FAILURE;
}

/**
 * Runs the command line (`argv` as `process.argv` gives it). Resolves with the exit status once
 * the command is done — for the server, once it has stopped — and sets `process.exitCode` to it
 * when running against the real process.
 */
export async function main(argv: readonly string[], ioOverride?: Partial<CliIo>, actions: CliActions = defaultActions): Promise<number> {
  const io: CliIo = { ...defaultIo(), ...ioOverride };
  let status: number = EXIT.OK;
  const program = buildProgram(io, actions, (code) => { status = code; });
  try {
    await program.parseAsync([...argv], { from: 'node' });
  } catch (err) {
    status = reportError(err, io);
    // `postern check-confg x` reaches the root command as stray arguments: name the command meant.
    if (err instanceof CommanderError && err.code === 'commander.excessArguments') {
      const word = argv.slice(2).find((a) => !a.startsWith('-'));
      const near = word === undefined ? undefined : suggest(word, program.commands.map((c) => c.name()));
      if (near !== undefined) io.stderr(`postern: did you mean \`postern ${near}\`?\n`);
    }
  }
  if (ioOverride === undefined) {
    process.exitCode = status;
    // A failed run leaves nothing behind: a mounted module may hold timers or sockets of its own
    // (a listen() that comes after the takeover gave up would otherwise bind for real).
    if (status !== EXIT.OK) process.exit(status);
  }
  return status;
}

function reportError(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    // Help and version "errors" are commander's way of finishing early; it already printed them.
    if (err.exitCode === 0) return EXIT.OK;
    io.stderr(`postern: see postern --help [${CONFIG_ERRORS.USAGE}]\n`);
    return EXIT.CONFIG;
  }
  if (err instanceof ConfigError) {
    io.stderr(`postern: invalid configuration:\n${err.issues.map((i) => `  ${formatIssue(i)}\n`).join('')}`);
    return EXIT.CONFIG;
  }
  // postern's own errors carry a code and a message meant for the operator; others get their stack.
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && code.startsWith('POSTERN_ERR_')) {
    io.stderr(`postern: ${err.message} [${code}]\n`);
  } else {
    io.stderr(`postern: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  return EXIT.FAILURE;
}

/** The commander program: every option of the table, plus `check-config`. */
export function buildProgram(io: CliIo, actions: CliActions, setStatus: (code: number) => void): Command {
  const program = new Command('postern')
    .description('Application server for Node.js apps behind nginx or Apache: FastCGI, SCGI, uwsgi and HTTP/1.1.\n'
      + 'ADDR is HOST:PORT, :PORT (every interface), [IPv6]:PORT, unix:PATH or fd:N (an inherited socket); port 0 picks a free port.\n'
      + 'With no listener option it listens on FastCGI 127.0.0.1:9000 and HTTP 127.0.0.1:8080; with no --mount it serves the built-in example tree.\n'
      + 'Every option can also be set as a POSTERN_* environment variable or in a --config file (flags > environment > file > defaults).')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .showSuggestionAfterError(true)
    .allowExcessArguments(false);
  addTableOptions(program);
  program.action(async () => {
    setStatus(await actions.serve(program, io));
  });

  program.command('check-config')
    .description('validate a configuration (the file, with any POSTERN_* variables and flags given before the command) without starting; exit 0 and print a summary if it is valid')
    .argument('[file]', 'the YAML or JSON config file (default: --config / POSTERN_CONFIG)')
    .option('--skip-path-checks', 'do not check that socket and log directories and mounted modules exist (for a config meant for another machine)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .action((file: string | undefined, opts: { skipPathChecks?: boolean }) => {
      setStatus(actions.checkConfig(program, io, file, { skipPathChecks: opts.skipPathChecks === true }));
    });
  program.command('status')
    .description('show the status page of a running postern (statusPath) as a table of workers and mounts, redrawn every interval until ^C, '
      + 'in the manner of uwsgitop; without URL, the statusPath this configuration serves over HTTP (on statusListen if set)')
    .argument('[url]', 'the status URL, e.g. http://127.0.0.1:9100/postern/status')
    .option('--once', 'print one table and exit (1 if the page cannot be fetched)')
    .option('--interval-ms <MS>', 'refresh interval in milliseconds (default: 2000)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .action(async (url: string | undefined, opts: { once?: boolean; intervalMs?: string }) => {
      const intervalMs = opts.intervalMs === undefined ? 2000 : Number(opts.intervalMs);
      if (!Number.isInteger(intervalMs) || intervalMs < 100) {
        io.stderr(`postern: --interval-ms must be an integer of at least 100, got ${JSON.stringify(opts.intervalMs)} [${CONFIG_ERRORS.USAGE}]\n`);
        setStatus(EXIT.CONFIG);
        return;
      }
      const run = actions.status ?? statusCommand;
      setStatus(await run(program, io, { once: opts.once === true, intervalMs, ...(url === undefined ? {} : { url }) }));
    });
  program.command('health')
    .description('probe a running postern configured like this one (flags before the command, POSTERN_* variables, config file) '
      + 'and exit 0 if it answers, 1 if not: GET pingPath when set (on statusListen if set), else FastCGI GET_VALUES, uwsgi PING or any HTTP/SCGI answer; '
      + 'for container HEALTHCHECKs and probes')
    .option('--path <PATH>', 'a URL path that must answer 2xx (default: pingPath)')
    .option('--timeout-ms <MS>', `give up after this many milliseconds (default: ${DEFAULT_HEALTH_TIMEOUT_MS})`)
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .action(async (opts: { path?: string; timeoutMs?: string }) => {
      const timeoutMs = opts.timeoutMs === undefined ? DEFAULT_HEALTH_TIMEOUT_MS : Number(opts.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
        io.stderr(`postern: --timeout-ms must be a positive integer, got ${JSON.stringify(opts.timeoutMs)} [${CONFIG_ERRORS.USAGE}]\n`);
        setStatus(EXIT.CONFIG);
        return;
      }
      const run = actions.health ?? health;
      setStatus(await run(program, io, { timeoutMs, ...(opts.path === undefined ? {} : { path: opts.path }) }));
    });
  return program;
}

function withFile(flags: RawValues, file: string | undefined): RawValues {
  return file === undefined ? flags : { ...flags, config: file };
}

/** The `check-config` report: what postern would do with this configuration. */
export function summary(config: PosternConfig): string {
  const lines = [`ok: ${config.config ?? '(no config file)'} is valid`];
  for (const l of config.listeners) lines.push(`  listen  ${l.protocol.padEnd(7)} ${l.address}${config.sources[l.protocol] === 'default' ? '  (default)' : ''}`);
  if (config.statusListen !== undefined) lines.push(`  listen  status  ${config.statusListen}`);
  if (config.mount.length === 0) lines.push('  mount   /        the built-in example tree');
  for (const m of config.mount) {
    lines.push(`  mount   ${m.prefix.padEnd(8)} ${m.module}#${m.export}${m.kind === 'auto' ? '' : ` kind=${m.kind}`}${m.role === 'responder' ? '' : ` role=${m.role}`}`);
  }
  const masterFor = MASTER_OPTIONS.filter((name) => config[name] > 0);
  lines.push(`  workers ${config.workers}${config.workers === 1 && masterFor.length > 0 ? ` (under a master, for ${masterFor.join(', ')})` : ''}`);
  const set = Object.entries(config.sources).filter(([name, src]) => src !== 'default' && !['fastcgi', 'scgi', 'uwsgi', 'http', 'mount', 'workers', 'config', 'statusListen'].includes(name));
  for (const [name, src] of set) {
    lines.push(`  ${name} = ${JSON.stringify((config as unknown as Record<string, unknown>)[name] ?? 'off')}  (${src})`);
  }
  for (const w of config.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

// ——— serving ———

/** What a process serves with besides its configuration: the shared metrics, access log and status routes. */
interface Operating {
  readonly metrics: Metrics;
  readonly accessLog: ManagedAccessLog | undefined;
  /** Undefined when off, or when statusListen carries them instead. */
  readonly statusRoutes: StatusRoutes | undefined;
}

function serverOptions(config: PosternConfig, tree: Tree, log: EventLog, operating?: Operating): ServerOptions {
  return {
    tree,
    listeners: config.listeners,
    log,
    ...(operating === undefined ? {} : { metrics: operating.metrics }),
    ...(operating?.accessLog === undefined ? {} : { accessLog: operating.accessLog }),
    ...(operating?.statusRoutes === undefined ? {} : { statusRoutes: operating.statusRoutes }),
    slowRequestMs: config.slowRequestMs,
    maxParamsBytes: config.maxParamsBytes,
    maxParamCount: config.maxParamCount,
    maxBodyBytes: config.maxBodyBytes,
    maxRequestsPerConnection: config.maxRequestsPerConnection,
    maxConnections: config.maxConnections,
    maxHeadersBytes: config.maxHeadersBytes,
    headerTimeoutMs: config.headerTimeoutMs,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    trustForwardedProto: config.trustForwardedProto,
    debug: config.debug,
    ...(config.socketMode === undefined ? {} : { socketMode: config.socketMode }),
    writeTimeoutMs: config.writeTimeoutMs,
    maxInflightRequests: config.maxInflightRequests,
    retryAfterSeconds: config.retryAfterSeconds,
    allowedClients: config.allowedClients,
    ...(config.socketOwner === undefined ? {} : { socketOwner: config.socketOwner }),
    ...(config.socketGroup === undefined ? {} : { socketGroup: config.socketGroup }),
  };
}

/** Imports the configured apps (every process that runs apps comes here: single, worker, reload, CGI). */
async function loadTree(config: PosternConfig, log: EventLog, fresh?: string): Promise<Tree> {
  // Before any app code runs (src/v8-tuning.ts); on a single-process reload, the new setting.
  applyV8Tuning(config);
  const onError = (err: unknown, environ: Environ): void => {
    log.error('app error', {
      method: environ.REQUEST_METHOD,
      path: `${environ.SCRIPT_NAME}${environ.PATH_INFO}`,
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
  };
  if (config.mount.length === 0) return exampleTree({ debug: config.debug, onError });
  return buildTree(config.mount, {
    debug: config.debug,
    onError,
    nodeBridge: config.nodeBridge,
    listenTimeoutMs: config.workerStartTimeoutMs,
    onInfo: (message) => { log.info(message); },
    onWarning: (message) => { log.warn(message); },
    ...(fresh === undefined ? {} : { fresh }),
  });
}

/** What the listeners depend on: when a reload changes none of it, only the tree is swapped. */
function listenerKey(config: PosternConfig): string {
  const { tree: _tree, log: _log, ...rest } = serverOptions(config, new Tree(), silentLog);
  // The status routes are built with the listeners: a change to them restarts the listeners too.
  return JSON.stringify({ ...rest, status: [config.statusPath, config.pingPath, config.statusListen] });
}

function announce(server: PosternServer, log: EventLog): void {
  for (const l of server.listeners) log.info(`${l.protocol} listening on ${l.address}`, { protocol: l.protocol, address: l.address });
}

/**
 * Closes a tree's mounted apps as their own servers would on stop (src/app/shutdown.ts), within
 * appCloseTimeoutMs (0: not at all); a closer that throws or hangs is logged, naming its mount.
 * False when one was still running at the deadline.
 */
async function closeTreeApps(tree: Tree, timeoutMs: number, log: EventLog): Promise<boolean> {
  if (timeoutMs === 0) return true;
  const closers = tree.closers();
  if (closers.length === 0) return true;
  let settled = true;
  await tree.closeApps({
    timeoutMs,
    onProblem: (p) => {
      if (p.code === APP_CLOSE_ERRORS.TIMEOUT) settled = false;
      const what = p.code === APP_CLOSE_ERRORS.TIMEOUT
        ? `was still closing after appCloseTimeoutMs (${timeoutMs} ms); not waiting for it`
        : `failed to close: ${p.error instanceof Error ? (p.error.stack ?? p.error.message) : String(p.error)}`;
      log.error(`${p.name} ${what}`, { code: p.code, mount: p.name.slice('mount '.length) });
    },
  });
  log.info(`closed the apps (${closers.map((c) => c.name).join(', ')})`);
  return settled;
}

/** The supervisor's view of a configuration: listeners, worker count, policy, and the config for workers. */
export function supervisorSettings(config: PosternConfig): SupervisorSettings<PosternConfig> {
  return {
    workers: config.workers,
    // The master binds statusListen too; each worker finds it among its inherited listeners by origin.
    listeners: config.statusListen === undefined ? config.listeners : [...config.listeners, { protocol: 'http', address: config.statusListen }],
    workerConfig: config,
    socketMode: config.socketMode,
    socketOwner: config.socketOwner,
    socketGroup: config.socketGroup,
    requestTimeoutMs: config.requestTimeoutMs,
    killGraceMs: config.killGraceMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    appCloseTimeoutMs: config.appCloseTimeoutMs,
    maxRequestsPerWorker: config.maxRequestsPerWorker,
    maxRequestsJitter: config.maxRequestsJitter,
    maxWorkerRssMiB: config.maxWorkerRssMiB,
    maxWorkerLifetimeMs: config.maxWorkerLifetimeMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    workerStartTimeoutMs: config.workerStartTimeoutMs,
    respawnDelayMs: config.respawnDelayMs,
    respawnDelayMaxMs: config.respawnDelayMaxMs,
    fastDeathMs: config.fastDeathMs,
    crashLoopDeaths: config.crashLoopDeaths,
    crashLoopWindowMs: config.crashLoopWindowMs,
    workersOnDemand: config.workersOnDemand,
    idleWorkerTimeoutMs: config.idleWorkerTimeoutMs,
    maxHeldConnections: config.maxConnections,
  };
}

/**
 * workers > 1, or a policy only a master can carry out (`needsMaster`): this process becomes the
 * master; it binds the listeners and re-runs this command as each worker.
 */
async function serveSupervised(program: Command, io: CliIo, config: PosternConfig, log: OperatorLogs, spawned: boolean): Promise<number> {
  const { flags } = commandLineValues(program);
  let supervisor: Supervisor;
  try {
    supervisor = await runSupervised<PosternConfig>({
      ...supervisorSettings(config),
      loadConfig: () => {
        const resolved = resolveConfig({ flags, env: io.env, cwd: io.cwd });
        const next = spawned ? servingFd0(resolved) : resolved;
        log.configure(next);
        for (const w of next.warnings) log.warn(w);
        return Promise.resolve(supervisorSettings(next));
      },
      log,
      onReopenLogs: () => { log.reopen(); },
      signals: io.signals,
      env: io.env,
    });
  } catch (err) {
    log.close();
    throw err;
  }
  try {
    dropMasterPrivileges(config, log);
  } catch (err) {
    log.error(`${(err as Error).message}; stopping`, { code: (err as { code?: unknown }).code });
    await supervisor.stop(false);
    log.close();
    return EXIT.FAILURE;
  }
  log.info(`postern ${packageVersion()} ready (master pid ${process.pid}, ${supervisor.workers().length} workers)`);
  const file = config.reloadOnTouch;
  const touch = file === undefined ? undefined : watchTouch(file, () => {
    log.info(`${file} was touched: reloading`);
    supervisor.reload().catch((err: unknown) => { log.error(`reload failed: ${err instanceof Error ? err.message : String(err)}`); });
  });
  const status = await supervisor.exited;
  touch?.stop();
  log.close();
  return status;
}

/** The root check (src/server/privileges.ts): the refusal, or undefined to go on (a warning logged when due). */
function rootRefusal(config: PosternConfig, log: EventLog): PrivilegeError | undefined {
  const verdict = rootCheck({
    euid: process.geteuid?.() ?? -1,
    allowRoot: config.allowRoot,
    user: config.user,
    addresses: [...config.listeners.map((l) => l.address), ...(config.statusListen === undefined ? [] : [config.statusListen])],
  });
  if (verdict.action === 'warn') log.warn(verdict.message, { code: PRIVILEGE_ERRORS.RUNNING_AS_ROOT });
  return verdict.action === 'refuse' ? new PrivilegeError(PRIVILEGE_ERRORS.RUNNING_AS_ROOT, verdict.message) : undefined;
}

/** Started as root with user or group set: privileges are dropped after binding. */
function switchesUser(config: PosternConfig): boolean {
  return process.geteuid?.() === 0 && (config.user !== undefined || config.group !== undefined);
}

/**
 * Before the workers start: the event log file the master opened as root goes to the user the
 * workers switch to, so they (and the master, later, on SIGUSR1) can append to it and reopen it.
 */
function handOverLogFile(config: PosternConfig, log: EventLog): void {
  if (!switchesUser(config) || config.logFile === undefined) return;
  const who = config.user === undefined ? undefined : lookupUser(config.user);
  const gid = config.group !== undefined ? lookupGroup(config.group) : (who?.gid ?? -1);
  try {
    chownSync(config.logFile, who?.uid ?? -1, gid);
  } catch (err) {
    log.warn(`cannot hand ${config.logFile} to ${config.user ?? config.group ?? ''}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The master, its listeners bound and its workers up (each already switched), drops root too. */
function dropMasterPrivileges(config: PosternConfig, log: EventLog): void {
  if (!switchesUser(config)) return;
  const id = dropPrivileges({ user: config.user, group: config.group });
  if (id !== undefined) log.info(`master switched to uid ${String(id.uid)} gid ${String(id.gid)}`, { uid: id.uid, gid: id.gid });
}

/** In a process the supervisor started: serve the master's configuration on the inherited listeners. */
async function serveAsWorker(io: CliIo): Promise<number> {
  const worker = Number(io.env['POSTERN_WORKER_ID']);
  const log = createOperatorLogs({ logLevel: 'info', logFormat: 'auto' }, io, Number.isInteger(worker) ? { worker } : {});
  // Set once the apps are loaded: a graceful stop closes them after the last request.
  let loaded: { tree: Tree; config: PosternConfig } | undefined;
  return runWorker<PosternConfig>(async (ctx) => {
    const config = ctx.config;
    // Before the app is imported: its module code must not run as root. The listeners are the
    // master's, inherited already bound.
    dropPrivileges(config);
    log.configure(config);
    const accessLog = log.openAccessLog(config);
    ctx.onReopenLogs(() => { log.reopen(); });
    const tree = ctx.track(await loadTree(config, log));
    loaded = { tree, config };
    const metrics = new Metrics({ worker: ctx.workerId });
    // Filled in below; the status routes read it per request.
    const serving: { server?: PosternServer } = {};
    const status = processStatus(config, {
      metrics,
      log,
      healthy: () => serving.server?.context.draining !== true,
      // The whole pool, as the master collects it from every worker (this one's own metrics included).
      input: async () => ({ pool: await ctx.poolSnapshot(), backlog: await readListenBacklog(tcpPorts(serving.server?.listeners ?? [])) }),
    });
    ctx.setMetricsSource(() => status.snapshot());
    // supervisorSettings puts statusListen right after the configured listeners.
    const statusListener = config.statusListen === undefined ? undefined : ctx.listeners[config.listeners.length];
    const listeners = ctx.listeners.filter((l) => l !== statusListener);
    serving.server = await startServing(
      { ...serverOptions(config, tree, log, { metrics, accessLog, statusRoutes: statusListener === undefined ? status.routes : undefined }), listeners, worker: ctx.workerId },
      statusListener === undefined ? undefined : { listener: { protocol: 'http', address: statusListener.address }, routes: status.routes },
    );
    return serving.server;
  }, {
    log,
    // The worker exits after it, whatever a hung close hook still holds.
    afterDrain: async () => {
      if (loaded !== undefined) await closeTreeApps(loaded.tree, loaded.config.appCloseTimeoutMs, log);
    },
    beforeExit: async () => {
      log.close();
      await log.closed;
    },
  });
}

async function serve(program: Command, io: CliIo): Promise<number> {
  if (isWorkerProcess(io.env)) return serveAsWorker(io);
  const { flags } = commandLineValues(program);
  const resolved = resolveConfig({ flags, env: io.env, cwd: io.cwd });
  const mode = startModeFor(resolved, io.env);
  if (mode.kind === 'cgi') return exitWhenReal(io, await serveCgiRequest(resolved, io));
  // Started by a front server on its socket: FastCGI on fd 0, one process, gone when told or idle.
  const spawned = mode.kind === 'fd0';
  const load = (c: PosternConfig): PosternConfig => (spawned ? servingFd0(c) : c);
  let config = load(resolved);
  const log: OperatorLogs = createOperatorLogs(config, io);
  if (spawned) {
    log.info(`fd 0 is a listening ${mode.fd0.family ?? 'socket'}${mode.fd0.family === undefined ? '' : ' socket'} and no listener is configured: serving FastCGI on it (started by a front server)`,
      { address: 'fd:0', family: mode.fd0.family ?? 'unknown' });
  }
  for (const w of config.warnings) log.warn(w);
  const refusal = rootRefusal(config, log);
  if (refusal !== undefined) {
    io.stderr(`postern: ${refusal.message} [${refusal.code}]\n`);
    log.close();
    return EXIT.CONFIG;
  }
  handOverLogFile(config, log);
  if (!switchesUser(config)) {
    // Not root: user/group can only name who postern already is (checked, so a mistake is loud).
    try {
      dropPrivileges({ user: config.user, group: config.group });
    } catch (err) {
      log.close();
      throw err;
    }
  }
  // Dropping privileges needs the master/worker split too: the master binds as root, each worker
  // switches user before it imports the apps.
  // One worker and nothing for a master to do: a single process, the fastest path (and the default run).
  // Spawned with workers: 1, the recycling limits end this process instead (the spawner starts the next).
  const supervised = spawned ? config.workers > 1 || config.workersOnDemand : needsMaster(config);
  if (supervised || switchesUser(config)) {
    if (spawned && config.idleTimeoutMs > 0) log.warn('idleTimeoutMs applies to a single process; with a master (workers > 1, user/group) it is ignored');
    return serveSupervised(program, io, config, log, spawned);
  }
  let loaded: Tree;
  try {
    loaded = await loadTree(config, log);
  } catch (err) {
    log.close();
    await log.closed;
    throw err;
  }
  const tree = new SwappableTree(loaded);
  let server: PosternServer;
  let accessLog: ManagedAccessLog | undefined;
  try {
    accessLog = log.openAccessLog(config);
  } catch (err) {
    log.close();
    throw err;
  }
  const metrics = new Metrics();
  // The listeners for a configuration, with its status and ping routes (on statusListen, if set).
  const serving = (c: PosternConfig): Promise<PosternServer> => {
    const status = processStatus(c, {
      metrics,
      log,
      healthy: () => !server.context.draining,
      input: async (snapshot) => ({ snapshots: [snapshot()], backlog: await readListenBacklog(tcpPorts(server.listeners)) }),
    });
    const options = serverOptions(c, tree, log, { metrics, accessLog, statusRoutes: c.statusListen === undefined ? status.routes : undefined });
    const separate = c.statusListen === undefined ? undefined : { listener: { protocol: 'http' as const, address: c.statusListen }, routes: status.routes };
    return startServing(options, separate, (address) => { log.info(`status listening on ${address}`, { address }); });
  };
  try {
    server = await serving(config);
  } catch (err) {
    log.close();
    throw err;
  }
  announce(server, log);
  log.info(`postern ${packageVersion()} ready (pid ${process.pid}, ${config.mount.length === 0 ? 'the example tree' : `${config.mount.length} mount(s)`})`);

  return new Promise<number>((resolveStatus) => {
    let stopping: 'graceful' | 'fast' | undefined;
    let finished = false;
    let reloading: Promise<void> = Promise.resolve();
    let generation = 0;
    // Spawned: the limits that end this process (idleTimeoutMs, maxRequestsPerWorker…), polled.
    const watching: { watch?: SpawnedWatch | undefined; touch?: TouchWatch | undefined } = {};
    // Servers a reload replaced, still finishing their in-flight requests.
    const retiring = new Set<PosternServer>();

    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      watching.watch?.stop();
      watching.touch?.stop();
      for (const [sig, fn] of handlers) io.signals.off(sig, fn);
      log.close();
      // Every access and event line is written before the command returns; a spawned process then
      // exits even if an app left a timer or socket open (the spawner waits for the exit).
      void log.closed.finally(() => { resolveStatus(spawned || hung ? exitWhenReal(io, code) : code); });
    };
    // Trees a reload swapped out whose apps are not closed yet.
    const retiredTrees = new Set<Tree>();
    let goFast: () => void = () => undefined;
    const fastStop = new Promise<void>((resolve) => { goFast = resolve; });
    // A close hook still running at the deadline may hold a timer or socket: the process exits anyway.
    let hung = false;
    const closeAll = async (): Promise<void> => {
      const settled = await Promise.all([tree.current, ...retiredTrees].map((t) => closeTreeApps(t, config.appCloseTimeoutMs, log)));
      hung = settled.includes(false);
    };
    /**
     * A tree a reload swapped out: its apps are closed once its requests are done. Those cannot be
     * told apart from the new tree's without a cost on every request, so they get what a graceful
     * stop gives them, shutdownTimeoutMs (or less, when `drained` says the old listeners closed).
     */
    const retireTree = (old: Tree, drained?: Promise<unknown>): void => {
      retiredTrees.add(old);
      let timer: NodeJS.Timeout | undefined;
      const close = (): void => {
        clearTimeout(timer);
        if (!retiredTrees.delete(old) || stopping !== undefined) return;
        void closeTreeApps(old, config.appCloseTimeoutMs, log);
      };
      if (drained === undefined) {
        timer = setTimeout(close, config.shutdownTimeoutMs);
        timer.unref();
      } else void drained.finally(close);
    };
    const stop = (signal: 'SIGTERM' | 'SIGINT' | 'SIGUSR1' | 'limit'): void => {
      if (stopping === 'fast') return;
      watching.watch?.stop();
      // SIGINT, or a second signal during a graceful stop, stops at once.
      const fast = signal === 'SIGINT' || stopping !== undefined;
      stopping = fast ? 'fast' : 'graceful';
      if (fast) goFast();
      log.info(fast ? `${signal}: stopping now` : `${signal}: stopping gracefully (in-flight requests get up to ${config.shutdownTimeoutMs} ms)`);
      // A reload in flight finishes first, so no listener it opens is left behind.
      void reloading.then(async () => {
        const all = [server, ...retiring];
        if (fast) all.forEach((s) => { s.closeNow(); });
        else {
          await Promise.all(all.map((s) => s.close()));
          // The last request is done: close the apps, unless a fast stop comes meanwhile.
          await Promise.race([closeAll(), fastStop]);
        }
      }).then(
        () => { log.info('stopped'); finish(EXIT.OK); },
        (err: unknown) => { log.error(`error while stopping: ${String(err)}`); finish(EXIT.FAILURE); },
      );
    };
    const reload = async (): Promise<void> => {
      generation++;
      log.info('SIGHUP: reloading the configuration and the mounted modules');
      let next: PosternConfig;
      let nextTree: Tree;
      try {
        next = load(resolveConfig({ flags, env: io.env, cwd: io.cwd }));
        nextTree = await loadTree(next, log, `${process.pid}-${generation}`);
      } catch (err) {
        const why = err instanceof ConfigError ? err.issues.map(formatIssue).join('; ') : String(err);
        log.error(`reload failed, still serving the previous configuration: ${why}`);
        return;
      }
      log.configure(next);
      log.openAccessLog(next);
      for (const w of next.warnings) log.warn(w);
      if (listenerKey(next) === listenerKey(config)) {
        retireTree(tree.current);
        tree.swap(nextTree);
        config = next;
        log.info('reloaded (same listeners; new requests go to the reloaded apps)');
        return;
      }
      // Listeners or limits changed. One process cannot bind an address twice, so the old listeners
      // let go first (close() stops accepting at once); their in-flight requests finish meanwhile.
      const old = server;
      const oldTree = tree.current;
      retiring.add(old);
      const drained = old.close().finally(() => retiring.delete(old));
      tree.swap(nextTree);
      try {
        server = await serving(next);
      } catch (err) {
        // The new listeners failed (an address in use…): put the previous ones back.
        log.error(`reload failed, restoring the previous listeners: ${String(err)}`);
        tree.swap(oldTree);
        server = await serving(config);
        announce(server, log);
        return;
      }
      config = next;
      // The old listeners closed once their requests were done, and only they served the old tree.
      retireTree(oldTree, drained);
      announce(server, log);
      log.info('reloaded (listeners restarted)');
    };
    const onHup = (): void => {
      if (stopping !== undefined) return;
      reloading = reloading.then(reload).catch((err: unknown) => {
        log.error(`reload failed and left nothing listening: ${String(err)}; stopping`);
        stopping = 'fast';
        finish(EXIT.FAILURE);
      });
    };
    const handlers: Array<[string, () => void]> = [
      ['SIGTERM', () => { stop('SIGTERM'); }],
      ['SIGINT', () => { stop('SIGINT'); }],
      ['SIGHUP', onHup],
      // Spawned: SIGUSR1 is libfcgi's "finish the request, then exit" (os_unix.c), not a log reopen:
      // a spawned process logs to stderr, and the next one opens any logFile afresh.
      ['SIGUSR1', spawned ? () => { stop('SIGUSR1'); } : () => { log.reopen(); }],
    ];
    for (const [sig, fn] of handlers) io.signals.on(sig, fn);
    // Set at start; a reload that changes it takes effect at the next start.
    const touchFile = config.reloadOnTouch;
    if (touchFile !== undefined) {
      watching.touch = watchTouch(touchFile, () => {
        log.info(`${touchFile} was touched: reloading`);
        onHup();
      });
    }
    watching.watch = !spawned ? undefined : watchSpawned(() => server.stats(), {
      idleTimeoutMs: config.idleTimeoutMs,
      requestLimit: requestLimit(config, Math.random()),
      maxRequestsPerWorker: config.maxRequestsPerWorker,
      maxRequestsJitter: config.maxRequestsJitter,
      maxWorkerRssMiB: config.maxWorkerRssMiB,
      maxWorkerLifetimeMs: config.maxWorkerLifetimeMs,
    }, (why) => {
      log.info(`exiting: ${describeExit(why)}; the front server starts a new process when needed`, { reason: why.reason });
      stop('limit');
    });
  });
}

/**
 * In the real process (not a test's CliIo), exit now with `code`: after one CGI request, or when a
 * spawned process stopped, nothing an app left open may keep it alive.
 */
function exitWhenReal(io: CliIo, code: number): number {
  if (io.signals === process) process.exit(code);
  return code;
}

/**
 * Plain CGI (RFC 3875): the one request in the environment and on stdin, answered on stdout. Only
 * warnings and errors are logged unless logLevel says otherwise: each line lands in the front
 * server's error log, once per request.
 */
async function serveCgiRequest(config: PosternConfig, io: CliIo): Promise<number> {
  const log: OperatorLogs = createOperatorLogs({ ...config, logLevel: config.sources.logLevel === 'default' ? 'warn' : config.logLevel }, io);
  try {
    for (const w of config.warnings) log.warn(w);
    // Root with user/group set: switch before the apps are imported; otherwise only checked.
    dropPrivileges({ user: config.user, group: config.group });
    const tree = await loadTree(config, log);
    return await serveCgi({
      params: cgiParams(io.env, io.env === process.env ? '/proc/self/environ' : undefined),
      stdin: process.stdin,
      stdout: process.stdout,
      tree,
      log,
      maxBodyBytes: config.maxBodyBytes,
      trustForwardedProto: config.trustForwardedProto,
    });
  } finally {
    log.close();
    await log.closed;
  }
}
