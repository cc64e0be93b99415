// A supervised worker, from the worker process's side: waits for the master's init, starts the
// server on the inherited listeners, then heartbeats, counts requests, answers metrics requests
// and stops when told to (or when the master goes away).

import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Environ, Protocol, Responder } from '../app/types.ts';
import type { EventLog } from '../log/types.ts';
import { silentLog } from '../log/types.ts';
import {
  MAX_REPORTED, TAG, WORKER_ENV, isMasterMessage,
  type InflightReport, type MasterMessage, type PoolSnapshot, type WorkerListener, type WorkerMessage,
} from './messages.ts';
import { SUPERVISOR_ERRORS, SupervisorError } from './options.ts';

/** What runWorker needs from the server: PosternServer fits. */
export interface WorkerServer {
  /** Graceful: stop accepting, finish in flight. */
  close(): Promise<void>;
  closeNow(): void | Promise<void>;
  /** Fallback request count when the tree is not tracked (`ctx.track`). */
  stats?(): { readonly requests: number; readonly inFlight: number };
  /** Before a graceful stop with a successor: idle keep-alive connections go to `sink` instead of closing. */
  handOffTo?(sink: (protocol: Protocol, socket: Socket, buffered: Buffer) => Promise<boolean>): void;
  /** Serves a connection a draining worker handed over. */
  adopt?(protocol: Protocol, socket: Socket, buffered: Buffer): void;
  /**
   * Serves a connection the master accepted (on demand) on the listener this worker knows as
   * `address` (`fd:4`…), as if accepted here; false when no listener has that address. Needed
   * with workersOnDemand: without it such a connection is closed (PosternServer has it).
   */
  serveAccepted?(address: string, socket: Socket): boolean;
}

/** Anything with the Tree's dispatch method. */
export interface Handles {
  handle(environ: Environ, responder: Responder): Promise<void>;
}

export interface WorkerContext<C = unknown> {
  /** 1, 2, 3… in spawn order over the master's life (the access log's `worker` field). */
  readonly workerId: number;
  readonly generation: number;
  /** The config the master resolved (for a reload, the new one), exactly as runSupervised got it. */
  readonly config: C;
  /** Pass as ServerOptions.listeners: `{ protocol, address: 'fd:4' }`… plus `origin`, what the master bound. */
  readonly listeners: readonly WorkerListener[];
  /**
   * Wraps `tree.handle` (in place) so the worker reports requests in flight (method, uri, age; the
   * master names a stuck one when it kills) and counts finished ones (maxRequestsPerWorker).
   */
  track<T extends Handles>(tree: T): T;
  /** Runs on the master's SIGUSR1. */
  onReopenLogs(fn: () => void | Promise<void>): void;
  /** What `collect` returns for this worker (e.g. the status registry's snapshot); structured-clonable. */
  setMetricsSource(fn: () => unknown): void;
  /** The whole pool as the master sees it, with every worker's metrics (for a status page). */
  poolSnapshot(timeoutMs?: number): Promise<PoolSnapshot>;
}

export interface RunWorkerOptions {
  /** Where the worker's own lifecycle lines go. */
  readonly log?: EventLog;
  /**
   * On a graceful stop only: runs once the server has closed (its in-flight requests finished, or
   * were aborted at the stop's deadline), before `beforeExit` (close the apps). Must bound itself:
   * the master's kill deadline allows it appCloseTimeoutMs.
   */
  readonly afterDrain?: () => void | Promise<void>;
  /** Runs after the server closed, before exit (flush logs). */
  readonly beforeExit?: () => void | Promise<void>;
  /** Call process.exit when stopped (default true: app timers and pools must not keep a stopped worker alive). */
  readonly exit?: boolean;
}

/** True in a process the supervisor started as a worker. */
export function isWorkerProcess(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[WORKER_ENV] !== undefined && typeof process.send === 'function';
}

interface Inflight {
  readonly method: string;
  readonly uri: string;
  readonly start: number;
}

type InitMessage = Extract<MasterMessage, { type: 'init' }>;

/**
 * Runs this process as a worker: `start` builds and starts the server (it must be listening when
 * the promise resolves). Resolves with the exit status once the worker has stopped (and, unless
 * `exit: false`, exits the process with it). A failing `start` is reported to the master and exits 1.
 */
export async function runWorker<C = unknown>(start: (ctx: WorkerContext<C>) => Promise<WorkerServer>, options: RunWorkerOptions = {}): Promise<number> {
  if (!isWorkerProcess()) throw new SupervisorError(SUPERVISOR_ERRORS.NOT_A_WORKER, `runWorker: not started by the postern supervisor (${WORKER_ENV} unset or no IPC channel)`);
  const log = options.log ?? silentLog;
  const send = (m: WorkerMessage): void => {
    if (process.connected) process.send?.(m, undefined, undefined, noop);
  };

  // The master owns lifecycle. A terminal's ^C or hang-up reaches the whole process group; the
  // master decides what that means and tells us. SIGTERM alone (systemd KillMode=control-group,
  // someone's kill) is a graceful stop.
  const ignore = (): void => {};
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGUSR1'] as const) process.on(sig, ignore);

  // One listener from the start: the master may send stop right behind init, in the same tick.
  const early: MasterMessage[] = [];
  let deliver: (m: MasterMessage) => void = (m) => { early.push(m); };
  let gotInit: (m: InitMessage) => void = noop;
  // Connections handed over before the server is up wait here (the master sends only to ready workers).
  const adoptions: Array<[Protocol, Socket, Buffer]> = [];
  let adopt = (protocol: Protocol, socket: Socket, buffered: Buffer): void => { adoptions.push([protocol, socket, buffered]); };
  const accepted: Array<[number, Socket]> = [];
  let serveAccepted = (listener: number, socket: Socket): void => { accepted.push([listener, socket]); };
  const init = await new Promise<InitMessage>((resolve) => {
    gotInit = resolve;
    process.on('message', (m: unknown, handle: unknown) => {
      if (!isMasterMessage(m)) return;
      if (m.type === 'init') gotInit(m);
      else if (m.type === 'adopt') {
        if (isSocket(handle)) adopt(m.protocol, handle, Buffer.from(m.buffered.buffer, m.buffered.byteOffset, m.buffered.byteLength));
      } else if (m.type === 'accept') {
        const socket = socketOf(handle);
        if (socket !== undefined) serveAccepted(m.listener, socket);
      } else deliver(m);
    });
  });
  const inflight = new Map<number, Inflight>();
  let nextToken = 1;
  let finished = 0;
  let tracked = false;
  let metricsSource: (() => unknown) | undefined;
  const reopeners: Array<() => void | Promise<void>> = [];
  const poolWaiters = new Map<number, (s: PoolSnapshot) => void>();
  let nextPoolId = 1;
  let server: WorkerServer | undefined;
  // On demand (init.reportBusy): whether the last report said idle, so that the first request after it is reported at once.
  let reportedIdle = true;

  const beat = (): void => {
    const now = performance.now();
    const oldest: InflightReport[] = [];
    // Map iteration is insertion order: the first entries are the oldest requests.
    for (const r of inflight.values()) {
      if (oldest.length === MAX_REPORTED) break;
      oldest.push({ method: r.method, uri: r.uri, ageMs: Math.round(now - r.start) });
    }
    const stats = tracked ? undefined : server?.stats?.();
    const busy = tracked ? inflight.size : (stats?.inFlight ?? 0);
    reportedIdle = busy === 0;
    send({
      postern: TAG,
      type: 'heartbeat',
      requests: tracked ? finished : (stats?.requests ?? 0),
      inflight: busy,
      oldest,
      rssBytes: process.memoryUsage.rss(),
    });
  };

  const ctx: WorkerContext<C> = {
    workerId: init.workerId,
    generation: init.generation,
    config: init.config as C,
    listeners: init.listeners,
    track<T extends Handles>(tree: T): T {
      tracked = true;
      const inner = tree.handle.bind(tree);
      (tree as Handles).handle = async (environ: Environ, responder: Responder): Promise<void> => {
        const token = nextToken++;
        const uri = typeof environ.REQUEST_URI === 'string' ? environ.REQUEST_URI : `${environ.SCRIPT_NAME}${environ.PATH_INFO}`;
        inflight.set(token, { method: environ.REQUEST_METHOD, uri, start: performance.now() });
        if (init.reportBusy === true && reportedIdle) beat();
        try {
          await inner(environ, responder);
        } finally {
          inflight.delete(token);
          // Report at once on reaching the limit: the replacement starts a heartbeat sooner.
          if (++finished === init.requestLimit) beat();
        }
      };
      return tree;
    },
    onReopenLogs(fn) {
      reopeners.push(fn);
    },
    setMetricsSource(fn) {
      metricsSource = fn;
    },
    poolSnapshot(timeoutMs = 2000) {
      const id = nextPoolId++;
      return new Promise<PoolSnapshot>((resolve, reject) => {
        const timer = setTimeout(() => {
          poolWaiters.delete(id);
          reject(new Error('poolSnapshot: the master did not answer in time'));
        }, timeoutMs);
        poolWaiters.set(id, (s) => {
          clearTimeout(timer);
          resolve(s);
        });
        send({ postern: TAG, type: 'pool-request', id });
      });
    },
  };

  const heartbeat = setInterval(beat, init.heartbeatIntervalMs);
  heartbeat.unref();
  let stopped: Promise<number> | undefined;
  let escalate: () => void = noop;
  const escalated = new Promise<void>((resolve) => { escalate = resolve; });
  let resolveDone: (code: number) => void = noop;
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });
  const stop = (graceful: boolean, timeoutMs: number, why: string, handoff = false): Promise<number> => {
    if (stopped !== undefined) {
      if (!graceful) {
        void server?.closeNow();
        escalate();
      }
      return stopped;
    }
    log.info(`worker ${init.workerId} stopping (${why})`, { worker: init.workerId, graceful, handoff });
    if (graceful && handoff && process.connected) server?.handOffTo?.(sendToMaster);
    stopped = (async () => {
      clearInterval(heartbeat);
      if (server !== undefined) {
        if (graceful) {
          let timer: NodeJS.Timeout | undefined;
          const inTime = await Promise.race([
            server.close().then(() => true),
            new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); }),
          ]);
          clearTimeout(timer);
          if (!inTime) await server.closeNow();
        } else {
          await server.closeNow();
        }
      }
      if (graceful && options.afterDrain !== undefined) {
        // A fast stop that arrives meanwhile stops waiting for it.
        const draining = Promise.resolve().then(options.afterDrain).catch((err: unknown) => {
          log.error('worker afterDrain failed', { worker: init.workerId, error: String(err) });
        });
        await Promise.race([draining, escalated]);
      }
      try {
        await options.beforeExit?.();
      } catch (err) {
        log.error('worker beforeExit failed', { worker: init.workerId, error: String(err) });
      }
      if (options.exit !== false) process.exit(0);
      resolveDone(0);
      return 0;
    })();
    return stopped;
  };

  const onMessage = (m: MasterMessage): void => {
    switch (m.type) {
      case 'stop':
        void stop(m.graceful, m.timeoutMs, 'the master asked', m.handoff === true);
        break;
      case 'adopt':
      case 'accept':
        break;
      case 'reopen-logs':
        for (const fn of reopeners) {
          Promise.resolve().then(fn).catch((err: unknown) => log.error('reopening logs failed', { error: String(err) }));
        }
        break;
      case 'collect': {
        let snapshot: unknown = null;
        try {
          snapshot = metricsSource?.() ?? null;
        } catch (err) {
          log.warn('metrics source failed', { error: String(err) });
        }
        send({ postern: TAG, type: 'metrics', id: m.id, snapshot });
        break;
      }
      case 'pool':
        poolWaiters.get(m.id)?.(m.snapshot as PoolSnapshot);
        poolWaiters.delete(m.id);
        break;
      case 'init':
        break;
    }
  };
  deliver = onMessage;
  for (const m of early.splice(0)) onMessage(m);
  process.on('SIGTERM', () => void stop(true, init.shutdownTimeoutMs, 'SIGTERM'));
  // The master is gone (killed -9, or crashed): finish what we have and leave; nobody will stop us.
  process.on('disconnect', () => void stop(true, init.shutdownTimeoutMs, 'the master went away'));

  try {
    server = await start(ctx);
  } catch (err) {
    const code = typeof (err as { code?: unknown } | null)?.code === 'string' ? (err as { code: string }).code : 'POSTERN_ERR_WORKER_START';
    const message = err instanceof Error ? err.message : String(err);
    log.error(`worker ${init.workerId} failed to start: ${message}`, { worker: init.workerId, code });
    clearInterval(heartbeat);
    // Let the fatal message leave before exiting (an IPC write may still be queued).
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      const m: WorkerMessage = { postern: TAG, type: 'fatal', code, message };
      if (!process.connected || process.send?.(m, undefined, undefined, () => { clearTimeout(timer); resolve(); }) === undefined) {
        clearTimeout(timer);
        resolve();
      }
    });
    if (options.exit !== false) process.exit(1);
    return 1;
  }
  if (stopped !== undefined) {
    // Told to stop while starting: close what start() opened.
    await server.closeNow();
    return stopped;
  }
  const srv = server;
  adopt = (protocol, socket, buffered) => {
    if (srv.adopt === undefined) socket.destroy();
    else srv.adopt(protocol, socket, buffered);
  };
  for (const [protocol, socket, buffered] of adoptions.splice(0)) adopt(protocol, socket, buffered);
  serveAccepted = (listener, socket) => {
    const l = init.listeners[listener];
    if (l === undefined || srv.serveAccepted?.(l.address, socket) !== true) socket.destroy();
  };
  for (const [listener, socket] of accepted.splice(0)) serveAccepted(listener, socket);
  send({ postern: TAG, type: 'ready' });
  beat();
  return done;
}

/**
 * Sends an idle connection to the master for a serving worker (handoff). The fd is duplicated
 * into the message (`keepOpen`), so our copy closes only after the message left: the connection
 * is never without an owner, and the peer sees nothing.
 */
function sendToMaster(protocol: Protocol, socket: Socket, buffered: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    if (!process.connected || process.send === undefined) {
      resolve(false);
      return;
    }
    const m: WorkerMessage = { postern: TAG, type: 'handoff', protocol, buffered };
    try {
      process.send(m, socket, { keepOpen: true }, (err: Error | null) => resolve(err === null || err === undefined));
    } catch {
      resolve(false);
    }
  });
}

/**
 * A connection the master accepted arrives as a raw TCP/Pipe handle ('net.Native'). It becomes a
 * net.Socket the way net.Server wraps what it accepts: the `handle` constructor option is private
 * to Node (net.js; present and unchanged in Node 20 and 24) and the only way to wrap a handle.
 */
function socketOf(handle: unknown): Socket | undefined {
  if (typeof handle !== 'object' || handle === null || typeof (handle as { readStart?: unknown }).readStart !== 'function') return undefined;
  const socket = new Socket({ handle, readable: true, writable: true, allowHalfOpen: true } as ConstructorParameters<typeof Socket>[0]);
  // As createProtocolServer's listeners do (a no-op on unix sockets).
  socket.setNoDelay(true);
  return socket;
}

function isSocket(h: unknown): h is Socket {
  return typeof h === 'object' && h !== null && typeof (h as { destroy?: unknown }).destroy === 'function' && typeof (h as { write?: unknown }).write === 'function';
}

function noop(): void {}
