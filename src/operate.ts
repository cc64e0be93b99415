// What the `postern` command runs besides the apps, from the operator's side: the event log and the
// access log a process writes (reopened on SIGUSR1, flushed before exit), and the status and ping
// endpoints with the separate listener (`statusListen`) that may carry them.

import { Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { Tree } from './app/tree.ts';
import { createAccessLog, type ManagedAccessLog } from './log/access-log.ts';
import { createEventLog, type EventLogFormat, type LogLevel, type ManagedEventLog } from './log/event-log.ts';
import type { EventLog } from './log/types.ts';
import { dialOptions, healthTarget, type HealthConfig } from './health.ts';
import { startServer, type PosternServer, type ServerStats } from './server/server.ts';
import type { BoundListener } from './server/listen.ts';
import type { ServerOptions } from './server/options.ts';
import type { ServeContext } from './server/context.ts';
import type { HandoffSink } from './server/handoff.ts';
import type { Protocol } from './app/types.ts';
import { StatusRoutes } from './status/endpoint.ts';
import type { Metrics, MetricsSnapshot } from './status/metrics.ts';
import { buildStatusReport, type StatusInput } from './status/report.ts';

// ——— logs ———

/** The logging options of a configuration (a PosternConfig fits). */
export interface LogSettings {
  readonly logLevel: LogLevel;
  readonly logFormat: EventLogFormat;
  readonly logFile?: string | undefined;
}

export interface AccessLogSettings {
  /** Unset = off; `-` = stdout; else a file. */
  readonly accessLog?: string | undefined;
  readonly accessLogFormat: string;
}

/**
 * One process's logs behind one EventLog: the winston event log (swappable, so a reload or a
 * worker's configuration can move it) and, once opened, the batched access log.
 */
export interface OperatorLogs extends EventLog {
  /**
   * Applies logging options: the level at once; a new `logFile` or `logFormat` opens a new event log.
   * When that file cannot be opened the old log stays, and says so (a reload must not stop serving).
   */
  configure(settings: LogSettings): void;
  /**
   * Opens the access log (none when `accessLog` is unset). Once open it stays for the process's life:
   * a later call with other settings logs that they apply after a restart, and returns the open one.
   */
  openAccessLog(settings: AccessLogSettings): ManagedAccessLog | undefined;
  readonly access: ManagedAccessLog | undefined;
  /** SIGUSR1: reopens the event log file and the access log file; failures are logged, not thrown. */
  reopen(): void;
  /** Starts flushing and closing both; `closed` resolves once everything is written. */
  close(): void;
  readonly closed: Promise<void>;
}

/** Where lines go without `logFile`: the CLI's stderr, keeping its terminal-ness for `logFormat: auto`. */
function consoleStream(io: { readonly stderr: (text: string) => void; readonly isTTY: boolean }): NodeJS.WritableStream {
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      io.stderr(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      callback();
    },
  });
  return Object.assign(stream, { isTTY: io.isTTY });
}

function shapeOf(s: LogSettings): string {
  return `${s.logFormat}\0${s.logFile ?? ''}`;
}

/**
 * Creates the process's logs. `worker` (a supervised worker's id) is added to every event line.
 * Throws when `logFile` cannot be opened (ENOENT, EACCES), before anything is served.
 */
export function createOperatorLogs(
  settings: LogSettings,
  io: { readonly stderr: (text: string) => void; readonly isTTY: boolean },
  options: { readonly worker?: number } = {},
): OperatorLogs {
  const stream = consoleStream(io);
  const base = options.worker === undefined ? undefined : { worker: options.worker };
  const open = (s: LogSettings): ManagedEventLog => createEventLog({
    level: s.logLevel,
    format: s.logFormat,
    stream,
    ...(s.logFile === undefined ? {} : { file: s.logFile }),
    ...(base === undefined ? {} : { base }),
  });
  let event = open(settings);
  let shape = shapeOf(settings);
  let access: ManagedAccessLog | undefined;
  let accessKey: string | undefined;
  let closing: Promise<void> | undefined;

  const logs: OperatorLogs = {
    error: (m, meta) => { event.error(m, meta); },
    warn: (m, meta) => { event.warn(m, meta); },
    info: (m, meta) => { event.info(m, meta); },
    debug: (m, meta) => { event.debug(m, meta); },
    get debugEnabled() {
      return event.debugEnabled;
    },
    get access() {
      return access;
    },
    get closed() {
      return closing ?? Promise.resolve();
    },
    configure(s) {
      if (shapeOf(s) === shape) {
        event.setLevel(s.logLevel);
        return;
      }
      let next: ManagedEventLog;
      try {
        next = open(s);
      } catch (err) {
        event.setLevel(s.logLevel);
        event.error(`cannot open the event log file ${String(s.logFile)}; logging where it did`, { code: (err as NodeJS.ErrnoException).code, error: String(err) });
        return;
      }
      const old = event;
      event = next;
      shape = shapeOf(s);
      // Lines already given to the old log finish there.
      void old.close();
    },
    openAccessLog(s) {
      const key = `${s.accessLog ?? ''}\0${s.accessLogFormat}`;
      if (accessKey !== undefined) {
        if (key !== accessKey) event.warn('accessLog and accessLogFormat changes take effect when postern restarts');
        return access;
      }
      accessKey = key;
      if (s.accessLog !== undefined) access = createAccessLog({ format: s.accessLogFormat, file: s.accessLog, log: logs });
      return access;
    },
    reopen() {
      for (const [what, log] of [['event log', event], ['access log', access]] as const) {
        try {
          log?.reopen();
        } catch (err) {
          event.error(`cannot reopen the ${what}; still writing to the old file`, { code: (err as NodeJS.ErrnoException).code, error: String(err) });
        }
      }
    },
    close() {
      closing ??= (async () => {
        await access?.close();
        await event.close();
      })();
    },
  };
  return logs;
}

// ——— status ———

/** The status options of a configuration (a PosternConfig fits). */
export interface StatusSettings {
  readonly statusPath?: string | undefined;
  readonly pingPath?: string | undefined;
  readonly statusListen?: string | undefined;
}

export interface ProcessStatus {
  /** The status and ping routes; undefined when neither path is configured. */
  readonly routes: StatusRoutes | undefined;
  /**
   * This process's metrics, less the status requests being answered right now: the scrape itself
   * is in flight while the report is gathered, and must not make an idle worker look busy.
   */
  snapshot(): MetricsSnapshot;
}

/**
 * The status endpoint of one process. `input` says what the report is built from: this process's
 * snapshot (unsupervised) or the supervisor's pool snapshot (a worker); it receives `snapshot`.
 */
export function processStatus(settings: StatusSettings, options: {
  readonly metrics: Metrics;
  readonly input: (snapshot: () => MetricsSnapshot) => Promise<StatusInput>;
  /** False while draining: ping answers 503. */
  readonly healthy: () => boolean;
  readonly log: EventLog;
}): ProcessStatus {
  const { metrics } = options;
  let scraping = 0;
  const snapshot = (): MetricsSnapshot => {
    const s = metrics.snapshot();
    return scraping === 0 ? s : { ...s, inFlight: Math.max(0, s.inFlight - scraping) };
  };
  if (settings.statusPath === undefined && settings.pingPath === undefined) return { routes: undefined, snapshot };
  const routes = new StatusRoutes({
    statusPath: settings.statusPath,
    pingPath: settings.pingPath,
    healthy: options.healthy,
    onError: (err) => { options.log.warn('status report failed', { error: err instanceof Error ? err.message : String(err) }); },
    report: async () => {
      scraping++;
      try {
        return buildStatusReport(await options.input(snapshot));
      } finally {
        scraping--;
      }
    },
  });
  return { routes, snapshot };
}

/** TCP ports a server listens on, for the listen backlog hint. */
export function tcpPorts(listeners: ReadonlyArray<BoundListener>): number[] {
  const ports: number[] = [];
  for (const l of listeners) if (l.port !== undefined && l.path === undefined) ports.push(l.port);
  return ports;
}

/**
 * A server plus its status listener, as one PosternServer. The status listener stops last: while
 * the apps' listeners drain, a load balancer polling the ping path there is told `draining` (503).
 */
class WithStatusListener implements PosternServer {
  readonly listeners: ReadonlyArray<BoundListener>;
  readonly context: ServeContext;
  readonly #main: PosternServer;
  readonly #status: PosternServer;

  constructor(main: PosternServer, status: PosternServer) {
    this.#main = main;
    this.#status = status;
    this.listeners = main.listeners;
    this.context = main.context;
  }

  async close(): Promise<void> {
    await this.#main.close();
    await this.#status.close();
  }

  closeNow(): void {
    this.#main.closeNow();
    this.#status.closeNow();
  }

  // Only the apps' connections are handed over: the status listener's close with the worker.
  handOffTo(sink: HandoffSink): void {
    this.#main.handOffTo(sink);
  }

  adopt(protocol: Protocol, socket: Socket, buffered: Buffer): void {
    this.#main.adopt(protocol, socket, buffered);
  }

  serveAccepted(address: string, socket: Socket): boolean {
    return this.#main.serveAccepted(address, socket) || this.#status.serveAccepted(address, socket);
  }

  stats(): ServerStats {
    return this.#main.stats();
  }
}

/**
 * Starts the server, and, when `status` names a listener, a plain-HTTP server there whose whole
 * tree is the status and ping routes (`options.statusRoutes` should then be unset, so the apps'
 * listeners do not answer them). It shares the process's metrics and log, not its access log:
 * probe and scrape traffic there stays out of the apps' access log. `announce` is told the status
 * listener's bound address.
 */
export async function startServing(
  options: ServerOptions,
  status: { readonly listener: { readonly protocol: 'http'; readonly address: string }; readonly routes: StatusRoutes | undefined } | undefined,
  announce: (address: string) => void = () => undefined,
): Promise<PosternServer> {
  if (status === undefined) return startServer(options);
  const tree = new Tree();
  if (status.routes !== undefined) tree.mount(status.routes.app);
  const statusServer = await startServer({
    tree,
    listeners: [status.listener],
    // A socket-activated fd belongs to the app listeners, never to this one.
    env: {},
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.worker === undefined ? {} : { worker: options.worker }),
    headerTimeoutMs: options.headerTimeoutMs ?? 10_000,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 60_000,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 30_000,
    ...(options.socketMode === undefined ? {} : { socketMode: options.socketMode }),
  });
  let main: PosternServer;
  try {
    main = await startServer(options);
  } catch (err) {
    statusServer.closeNow();
    throw err;
  }
  for (const l of statusServer.listeners) announce(l.address);
  return new WithStatusListener(main, statusServer);
}

/** Error code when `postern status` has no URL and the configuration names no reachable status page. */
export const STATUS_URL_ERROR = 'POSTERN_ERR_STATUS_URL';

/**
 * Where `postern status` looks without a URL: statusPath on statusListen when set, else on an HTTP
 * listener. Undefined (with the reason) when the configuration serves no status page over HTTP.
 */
export function statusUrl(config: HealthConfig & StatusSettings): { url: string } | { why: string } {
  if (config.statusPath === undefined) return { why: 'no statusPath is configured; pass the status URL (postern status http://HOST:PORT/PATH)' };
  const target = healthTarget(config, config.statusPath);
  if (target?.protocol !== 'http') {
    return { why: 'statusPath is not served on an HTTP listener (set statusListen, or pass the URL the front server exposes it at)' };
  }
  const dial = dialOptions(target.address);
  if (dial === undefined || !('host' in dial)) return { why: `${target.address} cannot be dialled over TCP; pass the status URL` };
  const host = dial.host.includes(':') ? `[${dial.host}]` : dial.host;
  return { url: `http://${host}:${String(dial.port)}${config.statusPath}` };
}
