// The supervisor, from the master process's side: owns the listeners and the worker processes,
// and applies the policies in ./policy (respawn, deadline, recycle, pool sequencing) to what the
// workers report. Everything here is I/O and bookkeeping; every decision is a pure function there.

import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { EventLog } from '../log/types.ts';
import { silentLog } from '../log/types.ts';
import { formatAddress, parseAddress, type ListenAddress } from '../server/address.ts';
import { planListeners, takeSocketActivation, type SocketActivation } from '../server/listen.ts';
import { parseSocketMode, type ListenerSpec } from '../server/options.ts';
import { resolveSocketOwner, type SocketOwner } from '../server/privileges.ts';
import type { Protocol } from '../app/types.ts';
import { bindListener, type MasterListener } from './listeners.ts';
import { AcceptGate, type RawClient } from './accept-gate.ts';
import { stopReading } from '../server/handoff.ts';
import {
  FIRST_LISTENER_FD, TAG, WORKER_ENV, isWorkerMessage,
  type InflightReport, type MasterMessage, type PoolSnapshot, type WorkerInfo,
} from './messages.ts';
import { SUPERVISOR_ERRORS, SupervisorError, resolvePolicy, resolveWorkerCount, type SupervisorPolicy } from './options.ts';
import { checkDeadline, type ReportedRequest } from './policy/deadline.ts';
import { reconcile, type PoolAction } from './policy/pool.ts';
import { planDemand } from './policy/on-demand.ts';
import { recycleDue, requestLimit, type RecycleReason } from './policy/recycle.ts';
import { RESPAWN_INITIAL, recordDeath, releaseBrake, spawnNotBefore, type RespawnState } from './policy/respawn.ts';

/** What a (re)loaded configuration tells the supervisor. Extra keys are ignored. */
export interface SupervisorSettings<C = unknown> extends Partial<SupervisorPolicy> {
  readonly workers: number | 'auto';
  readonly listeners: readonly ListenerSpec[];
  /** Handed to every worker as `ctx.config` (structured-cloned over IPC: plain data only). */
  readonly workerConfig: C;
  /** Octal mode for unix sockets the master binds, e.g. "0660". */
  readonly socketMode?: string | undefined;
  /** Owner (user name or uid) and group (name or gid) for unix sockets the master binds. */
  readonly socketOwner?: string | undefined;
  readonly socketGroup?: string | undefined;
  /** The on-demand pool: no worker until a connection arrives, up to `workers`, idle ones stopped (policy/on-demand.ts). */
  readonly workersOnDemand?: boolean | undefined;
  /** On demand: connections the master may hold while its first worker starts (a worker would refuse more anyway: maxConnections). */
  readonly maxHeldConnections?: number | undefined;
}

/** How a worker process starts: by default the master's own script and arguments, re-executed. */
export interface WorkerEntry {
  readonly exec?: string;
  readonly args?: readonly string[];
  readonly execArgv?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** Where signals come from: `process` by default (the CLI passes its injectable emitter). */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'SIGUSR1', fn: () => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'SIGUSR1', fn: () => void): unknown;
}

export interface SupervisorOptions<C = unknown> extends SupervisorSettings<C> {
  readonly workerEntry?: WorkerEntry;
  /** Re-resolves the configuration on reload (SIGHUP). Without it, a reload restarts workers with the same settings. */
  readonly loadConfig?: () => Promise<SupervisorSettings<C>>;
  readonly log?: EventLog;
  /** Reopens the master's own log files on SIGUSR1 (workers are told separately). */
  readonly onReopenLogs?: () => void | Promise<void>;
  /** false: install no signal handlers (tests, embedding). */
  readonly signals?: SignalSource | false;
  /** Read for systemd socket activation (LISTEN_FDS, LISTEN_PID); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface ListenerInfo {
  readonly protocol: Protocol;
  /** As configured. */
  readonly address: string;
  /** As bound: the real port for `:0`. */
  readonly bound: string;
}

export interface Supervisor {
  /** Re-resolves the config, starts a full set of new workers, and drains the old ones once all are listening. Rejects (POSTERN_ERR_RELOAD_FAILED) and keeps the old workers if a new one fails to start. */
  reload(): Promise<void>;
  /** Graceful: workers finish in-flight requests (up to shutdownTimeoutMs); fast: abort them. Resolves once every worker exited and the listeners are closed. */
  stop(graceful: boolean): Promise<void>;
  /** Reopens the master's logs and tells every worker to reopen theirs. */
  reopenLogs(): Promise<void>;
  workers(): WorkerInfo[];
  /** What the master knows now (from heartbeats), without worker metrics. */
  snapshot(): PoolSnapshot;
  /** Asks every worker for its metrics snapshot; a worker that does not answer in time gets `metrics: null`. */
  collect(timeoutMs?: number): Promise<PoolSnapshot>;
  listeners(): ListenerInfo[];
  /** The status the master process should exit with, once stopped: 0, or 1 when a crash loop left no worker. */
  readonly exited: Promise<number>;
}

interface Generation<C> {
  readonly id: number;
  readonly settings: SupervisorSettings<C>;
  readonly policy: SupervisorPolicy;
  readonly target: number;
  readonly onDemand: boolean;
  readonly maxHeld: number;
  readonly socketMode: number | undefined;
  readonly socketOwner: SocketOwner | undefined;
  /** `key` names the bound socket (unique per port-0 listener); `text` is the address as configured. */
  readonly listeners: ReadonlyArray<{ readonly protocol: Protocol; readonly address: ListenAddress; readonly key: string; readonly text: string }>;
}

type Planned = 'drain' | 'stop' | 'deadline' | 'drain-timeout' | 'start-timeout' | 'abandoned';

interface WorkerRec<C> {
  readonly id: number;
  readonly gen: Generation<C>;
  readonly child: ChildProcess;
  readonly pid: number;
  state: 'starting' | 'ready' | 'stopping';
  retiring: boolean;
  due: RecycleReason | { reason: 'request-overdue'; request: { method: string; uri: string; ageMs: number } } | null;
  readonly spawnedAt: number;
  readonly startedAtEpoch: number;
  lastHeartbeatAt: number;
  /** On demand: when it last had a request in flight or finished one (for idleWorkerTimeoutMs). */
  lastBusyAt: number;
  /** Told to stop while starting, with connections held for it: it gets them once ready, then drains. */
  drainWhenReady: boolean;
  requests: number;
  inflight: number;
  rssBytes: number;
  oldest: readonly InflightReport[];
  oldestStart: ReportedRequest | undefined;
  /** Why the worker this one replaced went (for the status page); undefined for the first ones. */
  readonly lastRestartReason: string | undefined;
  readonly requestLimit: number;
  planned: Planned | undefined;
  stopDeadline: number;
  fatal: { code: string; message: string } | undefined;
  readonly exited: Promise<void>;
}

/** A connection the master accepted on the socket `key`, waiting for a worker. */
interface Held {
  readonly key: string;
  readonly client: RawClient;
}

interface Transition<C> {
  readonly gen: Generation<C>;
  readonly previous: Generation<C> | undefined;
  resolve(): void;
  reject(err: Error): void;
}

const now = (): number => performance.now();
function noop(): void {}

/**
 * Starts the master: binds every listener, starts `workers` workers and resolves once all of them
 * listen. Rejects (POSTERN_ERR_WORKER_START, or the listener's ListenError) and leaves nothing
 * behind when the first workers cannot start.
 */
export async function runSupervised<C>(options: SupervisorOptions<C>): Promise<Supervisor> {
  const master = new Master<C>(options);
  await master.start();
  return master;
}

class Master<C> implements Supervisor {
  readonly #options: SupervisorOptions<C>;
  readonly #exec: string;
  readonly #log: EventLog;
  readonly #activation: SocketActivation | undefined;
  readonly #bound = new Map<string, MasterListener>();
  readonly #workers = new Map<number, WorkerRec<C>>();
  readonly #startedAtEpoch = Date.now();
  #current: Generation<C>;
  #nextGen = 1;
  #nextWorker = 1;
  #respawn: RespawnState = RESPAWN_INITIAL;
  #transition: Transition<C> | undefined;
  #stopping: 'graceful' | 'fast' | undefined;
  #stopped: Promise<void> | undefined;
  #exitCode = 0;
  #resolveExited: (code: number) => void = noop;
  readonly exited: Promise<number>;
  #tick: NodeJS.Timeout | undefined;
  #wake: NodeJS.Timeout | undefined;
  #reloadChain: Promise<void> = Promise.resolve();
  #signalHandlers: Array<['SIGTERM' | 'SIGINT' | 'SIGHUP' | 'SIGUSR1', () => void]> = [];
  #nextCollect = 1;
  readonly #collectWaiters = new Map<number, (snapshot: unknown) => void>();
  #counters = { crashes: 0, deadlineKills: 0, recycled: 0, reloads: 0, allWorkersBusy: 0, handedOver: 0, acceptedByMaster: 0 };
  #nextAdopter = 0;
  /** Why workers went, oldest first, each waiting for the replacement spawned next. */
  #restartReasons: string[] = [];
  #busyCheckedAt = 0;
  /** On demand: workers wanted now (0 … target). */
  #want = 0;
  /** On demand: the master's own accept per bound socket (key as in #bound). */
  readonly #gates = new Map<string, AcceptGate>();
  /** On demand: connections the master accepted, waiting for a serving worker. */
  #held: Held[] = [];
  #heldWarnedAt = -Infinity;

  constructor(options: SupervisorOptions<C>) {
    this.#options = options;
    this.#log = options.log ?? silentLog;
    this.#activation = takeSocketActivation(options.env ?? process.env);
    this.#current = this.#generation(options);
    const exec = options.workerEntry?.exec ?? process.argv[1];
    if (exec === undefined) throw new SupervisorError(SUPERVISOR_ERRORS.BAD_OPTION, 'workerEntry.exec is needed: this process has no script path');
    this.#exec = exec;
    this.exited = new Promise((resolve) => { this.#resolveExited = resolve; });
  }

  #generation(settings: SupervisorSettings<C>): Generation<C> {
    const policy = resolvePolicy(settings);
    const target = resolveWorkerCount(settings.workers);
    const maxHeld = settings.maxHeldConnections ?? 1024;
    if (!Number.isSafeInteger(maxHeld) || maxHeld < 1) {
      throw new SupervisorError(SUPERVISOR_ERRORS.BAD_OPTION, `option maxHeldConnections: must be an integer >= 1, got ${String(maxHeld)}`);
    }
    const planned = planListeners(settings.listeners.map((l) => ({ protocol: l.protocol, address: parseAddress(l.address) })), this.#activation);
    return {
      id: this.#nextGen++,
      settings,
      policy,
      target,
      onDemand: settings.workersOnDemand === true,
      maxHeld,
      socketMode: settings.socketMode === undefined ? undefined : parseSocketMode(settings.socketMode),
      socketOwner: resolveSocketOwner(settings.socketOwner, settings.socketGroup),
      // Port 0 asks for a fresh port per bind: two such listeners (an app listener and statusListen,
      // in tests) are two sockets, so their keys must differ.
      listeners: planned.map((p, i) => ({
        protocol: p.protocol, address: p.address, text: formatAddress(p.address),
        key: p.address.kind === 'tcp' && p.address.port === 0 ? `${formatAddress(p.address)}#${String(i)}` : formatAddress(p.address),
      })),
    };
  }

  /** Binds what `gen` needs and the master does not hold yet; on failure closes only what it bound. */
  async #bindFor(gen: Generation<C>): Promise<void> {
    const fresh: Array<[string, MasterListener]> = [];
    try {
      for (const l of gen.listeners) {
        if (this.#bound.has(l.key)) continue;
        const m = await bindListener(l.address, gen.socketMode, gen.socketOwner);
        fresh.push([l.key, m]);
        this.#bound.set(l.key, m);
        this.#log.info(`${l.protocol} listening on ${m.bound}`, { protocol: l.protocol, address: m.bound });
      }
      if (gen.onDemand) await Promise.all(gen.listeners.map((l) => this.#gateFor(l.key)?.prepare() ?? Promise.resolve()));
    } catch (err) {
      for (const [key, m] of fresh) {
        m.close();
        this.#bound.delete(key);
      }
      throw err;
    }
  }

  async start(): Promise<void> {
    const gen = this.#current;
    await this.#bindFor(gen);
    this.#installSignals();
    this.#restartTick();
    if (gen.onDemand) {
      this.#log.info(`master ${process.pid}: workers on demand, none until the first connection, up to ${gen.target}`, { workers: gen.target, onDemand: true });
    } else {
      this.#log.info(`master ${process.pid} starting ${gen.target} worker(s)`, { workers: gen.target });
    }
    try {
      await new Promise<void>((resolve, reject) => {
        this.#transition = { gen, previous: undefined, resolve, reject };
        this.#reconcile();
      });
    } catch (err) {
      await this.stop(false);
      throw err;
    }
    if (!gen.onDemand) this.#log.info(`${gen.target} worker(s) ready`, { workers: gen.target, generation: gen.id });
  }

  // ---- the loop: reconcile the pool, apply actions ------------------------------------------

  #reconcile(): void {
    if (this.#stopping !== undefined) return;
    const t = now();
    const gen = this.#current;
    if (gen.onDemand) this.#planDemand(t);
    const actions = reconcile({
      nowMs: t,
      generation: gen.id,
      target: this.#targetOf(gen),
      workers: [...this.#workers.values()].map((w) => ({
        id: w.id, generation: w.gen.id, state: w.state, retiring: w.retiring, recycleDue: w.due !== null, spawnedAtMs: w.spawnedAt,
      })),
      spawnNotBeforeMs: spawnNotBefore(this.#respawn, t, gen.policy),
      workerStartTimeoutMs: gen.policy.workerStartTimeoutMs,
    });
    for (const a of actions) this.#apply(a, t);
    this.#checkTransition();
    this.#updateGates();
    this.#flushHeld();
  }

  /** Workers the pool aims at: `workers`, or on demand as many as are wanted now. */
  #targetOf(gen: Generation<C>): number {
    return gen.onDemand ? Math.min(this.#want, gen.target) : gen.target;
  }

  #planDemand(t: number): void {
    const gen = this.#current;
    const d = planDemand({
      nowMs: t,
      want: this.#want,
      max: gen.target,
      held: this.#held.length,
      idleWorkerTimeoutMs: gen.policy.idleWorkerTimeoutMs,
      workers: [...this.#workers.values()].map((w) => ({
        id: w.id, state: w.state, counted: w.gen === gen && !w.retiring, inflight: w.inflight, lastBusyAtMs: w.lastBusyAt,
      })),
    });
    if (d.grew) this.#log.info(`on demand: ${d.want} worker(s) wanted (${this.#held.length > 0 ? 'a connection is waiting' : 'every worker is busy'})`, { wanted: d.want, held: this.#held.length });
    for (const id of d.idle) {
      const w = this.#workers.get(id);
      if (w === undefined) continue;
      // No restart reason: nothing replaces it.
      w.retiring = true;
      this.#log.info(`stopping worker ${w.id} (pid ${w.pid}): no request for ${Math.round(t - w.lastBusyAt)} ms (idleWorkerTimeoutMs ${gen.policy.idleWorkerTimeoutMs})`,
        { worker: w.id, pid: w.pid, limit: 'idleWorkerTimeoutMs' });
    }
    this.#want = d.want;
  }

  // ---- on demand: the master's own accept while no worker serves a socket ----------------------

  #gateFor(key: string): AcceptGate | undefined {
    let gate = this.#gates.get(key);
    if (gate !== undefined) return gate;
    const m = this.#bound.get(key);
    if (m === undefined) return undefined;
    gate = new AcceptGate(m.fd, {
      connection: (client) => this.#onHeld(key, client),
      error: (message) => this.#log.warn(`on demand, ${m.bound}: ${message}`, { address: m.bound }),
    });
    this.#gates.set(key, gate);
    return gate;
  }

  /** A serving worker for connections on `key`: ready, not stopping, its generation listening there. */
  #servingFor(key: string): WorkerRec<C> | undefined {
    const serving = [...this.#workers.values()].filter((w) => w.state === 'ready' && w.child.connected && w.gen.listeners.some((l) => l.key === key));
    const current = serving.filter((w) => w.gen === this.#current && !w.retiring);
    const pool = current.length > 0 ? current : serving;
    return pool[this.#nextAdopter++ % Math.max(1, pool.length)];
  }

  /** The master accepts on a socket exactly while on demand and no worker serves it. */
  #updateGates(): void {
    const onDemand = this.#current.onDemand && this.#stopping === undefined;
    for (const key of this.#bound.keys()) {
      const gate = onDemand ? this.#gateFor(key) : this.#gates.get(key);
      gate?.set(onDemand && this.#servingFor(key) === undefined);
    }
  }

  #onHeld(key: string, client: RawClient): void {
    this.#counters.acceptedByMaster++;
    if (this.#stopping === 'fast' || (this.#stopping !== undefined && !this.#workerAwaited())) {
      client.close();
      return;
    }
    if (this.#held.length >= this.#current.maxHeld) {
      client.close();
      const t = now();
      if (t - this.#heldWarnedAt >= 10_000) {
        this.#heldWarnedAt = t;
        this.#log.warn(`on demand: ${this.#held.length} connections already wait for a worker (maxConnections); closing a new one`, { limit: 'maxConnections', held: this.#held.length });
      }
      return;
    }
    this.#held.push({ key, client });
    if (this.#servingFor(key) !== undefined) this.#flushHeld();
    else this.#reconcile();
  }

  /** Stopping: whether a starting worker is to answer the connections the master holds. */
  #workerAwaited(): boolean {
    for (const w of this.#workers.values()) if (w.drainWhenReady) return true;
    return false;
  }

  /** Passes held connections to serving workers; those nobody serves yet stay. */
  #flushHeld(): void {
    if (this.#held.length === 0) return;
    const left: Held[] = [];
    for (const h of this.#held) {
      const w = this.#servingFor(h.key);
      if (w === undefined) left.push(h);
      else this.#sendHeld(w, h.key, h.client);
    }
    this.#held = left;
  }

  #sendHeld(w: WorkerRec<C>, key: string, client: RawClient): void {
    const listener = w.gen.listeners.findIndex((l) => l.key === key);
    w.lastBusyAt = now();
    try {
      // The raw handle travels as child_process's 'net.Native'; our copy of the fd closes once the message left.
      w.child.send({ postern: TAG, type: 'accept', listener } satisfies MasterMessage, client as unknown as Socket, undefined, (err: Error | null) => {
        client.close();
        if (err !== null && err !== undefined) this.#log.warn(`passing a connection to worker ${w.id} failed: ${err.message}`, { worker: w.id });
      });
    } catch (err) {
      client.close();
      this.#log.warn(`passing a connection to worker ${w.id} failed: ${String(err)}`, { worker: w.id });
    }
  }

  #apply(a: PoolAction, t: number): void {
    switch (a.type) {
      case 'start-timeout': {
        const w = this.#workers.get(a.id);
        if (w === undefined) return;
        this.#log.error(`worker ${w.id} (pid ${w.pid}) not ready after ${w.gen.policy.workerStartTimeoutMs} ms (workerStartTimeoutMs); killing it`, { worker: w.id, pid: w.pid, limit: 'workerStartTimeoutMs' });
        this.#kill(w, 'start-timeout');
        this.#restartReason('killed: not ready within workerStartTimeoutMs');
        this.#startFailed(w, 'it was not ready within workerStartTimeoutMs');
        return;
      }
      case 'retire': {
        const w = this.#workers.get(a.id);
        if (w === undefined) return;
        w.retiring = true;
        if (a.why === 'recycle') {
          this.#counters.recycled++;
          this.#restartReason(`recycled: ${describeDue(w.due)}`);
          this.#log.info(`recycling worker ${w.id} (pid ${w.pid}): ${describeDue(w.due)}; starting its replacement first`, { worker: w.id, pid: w.pid, ...(w.due ?? {}) });
        } else {
          this.#log.info(`retiring worker ${w.id} (pid ${w.pid}): fewer workers configured`, { worker: w.id, pid: w.pid });
        }
        return;
      }
      case 'spawn':
        for (let i = 0; i < a.count; i++) this.#spawn(this.#current);
        return;
      case 'wait':
        if (this.#wake !== undefined) clearTimeout(this.#wake);
        this.#wake = setTimeout(() => { this.#wake = undefined; this.#reconcile(); }, Math.max(1, Math.ceil(a.untilMs - t)));
        return;
      case 'drain': {
        const w = this.#workers.get(a.id);
        if (w === undefined) return;
        // The pool drains a worker only once its replacements serve: its idle connections go to them.
        this.#drain(w, 'drain', true, true);
        return;
      }
    }
  }

  #checkTransition(): void {
    const tr = this.#transition;
    if (tr === undefined) return;
    let ready = 0;
    for (const w of this.#workers.values()) {
      if (w.gen !== tr.gen) return; // old workers still draining, or the new ones not all up
      if (w.state === 'ready' && !w.retiring) ready++;
    }
    if (ready < this.#targetOf(tr.gen)) return;
    this.#transition = undefined;
    this.#gcListeners();
    tr.resolve();
  }

  #startFailed(w: WorkerRec<C>, why: string): void {
    const tr = this.#transition;
    if (tr === undefined || w.gen !== tr.gen) return;
    this.#transition = undefined;
    const detail = w.fatal === undefined ? why : `${why}: ${w.fatal.code}: ${w.fatal.message}`;
    if (tr.previous === undefined) {
      this.#log.error(`worker ${w.id} failed to start (${detail}); giving up`, { worker: w.id, ...(w.fatal ?? {}) });
      tr.reject(new SupervisorError(SUPERVISOR_ERRORS.WORKER_START, `worker ${w.id} failed to start: ${detail}`));
      // At once, so nothing respawns the failed worker in the meantime.
      void this.stop(false);
      return;
    }
    // The new generation is refused as a whole: its workers drain, the previous ones serve on.
    this.#current = tr.previous;
    this.#log.error(`reload failed: new worker ${w.id} failed to start (${detail}); the previous workers serve on`, { worker: w.id, generation: tr.gen.id, ...(w.fatal ?? {}) });
    tr.reject(new SupervisorError(SUPERVISOR_ERRORS.RELOAD_FAILED, `reload failed: worker ${w.id} ${detail}`));
    queueMicrotask(() => this.#reconcile());
  }

  // ---- workers ---------------------------------------------------------------------------------

  #spawn(gen: Generation<C>): void {
    const entry = this.#options.workerEntry ?? {};
    const exec = this.#exec;
    const id = this.#nextWorker++;
    const fds = gen.listeners.map((l) => {
      const m = this.#bound.get(l.key);
      if (m === undefined) throw new Error(`internal: listener ${l.key} not bound`);
      return m.fd;
    });
    const env: NodeJS.ProcessEnv = { ...process.env, ...entry.env, [WORKER_ENV]: String(id) };
    // The worker gets its sockets as fds 4…; systemd's variables would make it claim 3… again.
    delete env['LISTEN_FDS'];
    delete env['LISTEN_PID'];
    delete env['LISTEN_FDNAMES'];
    const child = fork(exec, [...(entry.args ?? process.argv.slice(2))], {
      execArgv: [...(entry.execArgv ?? process.execArgv)],
      env,
      ...(entry.cwd === undefined ? {} : { cwd: entry.cwd }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds],
      serialization: 'advanced',
    });
    const t = now();
    let onExit: () => void = noop;
    const exited = new Promise<void>((resolve) => { onExit = resolve; });
    const rec: WorkerRec<C> = {
      id, gen, child, pid: child.pid ?? 0,
      state: 'starting', retiring: false, due: null,
      spawnedAt: t, startedAtEpoch: Date.now(), lastHeartbeatAt: t, lastBusyAt: t, drainWhenReady: false,
      requests: 0, inflight: 0, rssBytes: 0, oldest: [], oldestStart: undefined,
      requestLimit: requestLimit(gen.policy, Math.random()),
      planned: undefined, stopDeadline: Infinity, fatal: undefined, exited,
      lastRestartReason: this.#transition?.previous !== undefined && this.#transition.gen === gen ? 'reload' : this.#restartReasons.shift(),
    };
    this.#workers.set(id, rec);
    child.on('message', (m: unknown, handle: unknown) => this.#onMessage(rec, m, handle));
    let gone = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (gone) return;
      gone = true;
      onExit();
      this.#onExit(rec, code, signal);
    };
    child.on('exit', finish);
    child.on('error', (err) => {
      this.#log.error(`worker ${id}: ${err.message}`, { worker: id, code: (err as NodeJS.ErrnoException).code });
      // A spawn that failed never emits 'exit'.
      if (child.pid === undefined) finish(null, null);
    });
    this.#log.debug(`worker ${id} spawned (pid ${rec.pid})`, { worker: id, pid: rec.pid, generation: gen.id });
    this.#send(rec, {
      postern: TAG, type: 'init', workerId: id, generation: gen.id, config: gen.settings.workerConfig,
      listeners: gen.listeners.map((l, i) => ({ protocol: l.protocol, address: `fd:${FIRST_LISTENER_FD + i}`, origin: l.text })),
      requestLimit: rec.requestLimit, heartbeatIntervalMs: gen.policy.heartbeatIntervalMs, shutdownTimeoutMs: gen.policy.shutdownTimeoutMs,
      ...(gen.onDemand ? { reportBusy: true } : {}),
    });
  }

  #send(w: WorkerRec<C>, m: MasterMessage): boolean {
    if (!w.child.connected) return false;
    try {
      w.child.send(m, undefined, undefined, noop);
      return true;
    } catch (err) {
      // DataCloneError: the config holds something that cannot cross IPC. The worker cannot start.
      this.#log.error(`cannot send ${m.type} to worker ${w.id}: ${String(err)}`, { worker: w.id });
      if (m.type === 'init') {
        w.fatal = { code: 'POSTERN_ERR_WORKER_START', message: `init message not sendable: ${String(err)}` };
        this.#kill(w, 'abandoned');
        this.#startFailed(w, 'its configuration cannot be sent over IPC');
      }
      return false;
    }
  }

  #onMessage(w: WorkerRec<C>, m: unknown, handle?: unknown): void {
    if (!isWorkerMessage(m)) return;
    const t = now();
    switch (m.type) {
      case 'ready':
        if (w.state !== 'starting') return;
        w.state = 'ready';
        w.lastHeartbeatAt = t;
        w.lastBusyAt = t;
        this.#log.info(`worker ${w.id} ready (pid ${w.pid})`, { worker: w.id, pid: w.pid, generation: w.gen.id, startMs: Math.round(t - w.spawnedAt) });
        if (w.drainWhenReady) {
          // Stopping: it serves what the master held for it, then drains like the rest.
          w.drainWhenReady = false;
          this.#flushHeld();
          for (const h of this.#held.splice(0)) h.client.close();
          this.#drain(w, 'stop', this.#stopping !== 'fast');
          return;
        }
        this.#reconcile();
        return;
      case 'heartbeat': {
        w.lastHeartbeatAt = t;
        if (m.inflight > 0 || m.requests !== w.requests) w.lastBusyAt = t;
        const wasIdle = w.inflight === 0;
        w.requests = m.requests;
        w.inflight = m.inflight;
        w.rssBytes = m.rssBytes;
        w.oldest = m.oldest;
        const o = m.oldest[0];
        w.oldestStart = o === undefined ? undefined : { method: o.method, uri: o.uri, startedAtMs: t - o.ageMs };
        if (w.requestLimit > 0 && w.requests >= w.requestLimit && w.due === null && w.state === 'ready') {
          this.#evaluate(w, t);
          this.#reconcile();
        } else if (w.gen.onDemand && wasIdle && m.inflight > 0) {
          // Busy now: the pool may grow at once rather than at the next tick.
          this.#reconcile();
        }
        return;
      }
      case 'fatal':
        w.fatal = { code: m.code, message: m.message };
        return;
      case 'metrics':
        this.#collectWaiters.get(m.id)?.(m.snapshot);
        return;
      case 'pool-request':
        void this.collect().then((snapshot) => this.#send(w, { postern: TAG, type: 'pool', id: m.id, snapshot }));
        return;
      case 'handoff':
        if (typeof handle === 'object' && handle !== null) this.#passOn(w, m.protocol, handle as Socket, m.buffered);
        return;
    }
  }

  /**
   * An idle keep-alive connection from a draining worker: to a serving worker of the current
   * generation, round robin. With none (a stop began meanwhile) it closes, as an idle connection
   * of a stopping server does.
   */
  #passOn(from: WorkerRec<C>, protocol: Protocol, socket: Socket, buffered: Uint8Array): void {
    socket.on('error', noop);
    // Node's IPC made a net.Socket that reads at once; our reads would be lost when it leaves
    // again, so the bytes stay in the kernel for the adopter (src/server/handoff.ts).
    if (!stopReading(socket)) {
      socket.destroy();
      return;
    }
    const serving = [...this.#workers.values()].filter((w) => w !== from && w.state === 'ready' && w.gen === this.#current && w.child.connected);
    const to = serving[this.#nextAdopter++ % Math.max(1, serving.length)];
    if (this.#stopping !== undefined || to === undefined) {
      socket.destroy();
      return;
    }
    try {
      to.child.send({ postern: TAG, type: 'adopt', protocol, buffered } satisfies MasterMessage, socket, undefined, (err: Error | null) => {
        if (err !== null && err !== undefined) this.#log.debug(`handing a ${protocol} connection to worker ${to.id} failed: ${err.message}`, { worker: to.id });
      });
      this.#counters.handedOver++;
    } catch (err) {
      this.#log.debug(`handing a ${protocol} connection to worker ${to.id} failed: ${String(err)}`, { worker: to.id });
      socket.destroy();
    }
  }

  #onExit(w: WorkerRec<C>, code: number | null, signal: NodeJS.Signals | null): void {
    this.#workers.delete(w.id);
    const t = now();
    const uptimeMs = Math.round(t - w.spawnedAt);
    const how = signal !== null ? `signal ${signal}` : `code ${String(code)}`;
    const meta = { worker: w.id, pid: w.pid, code, signal, uptimeMs };
    if (this.#stopping !== undefined || w.planned !== undefined) {
      this.#log.info(`worker ${w.id} (pid ${w.pid}) exited (${how})`, meta);
    } else {
      this.#counters.crashes++;
      this.#restartReason(`crashed: ${how}`);
      const fatal = w.fatal === undefined ? '' : `: ${w.fatal.code}: ${w.fatal.message}`;
      this.#log.error(`worker ${w.id} (pid ${w.pid}) died (${how}) after ${uptimeMs} ms${fatal}`, { ...meta, ...(w.fatal === undefined ? {} : { error: w.fatal.code }) });
      if (w.state === 'starting' && this.#transition?.gen === w.gen) {
        this.#startFailed(w, `it exited (${how}) before it was listening`);
      } else {
        const wasBraked = this.#respawn.braked;
        this.#respawn = recordDeath(this.#respawn, { atMs: t, uptimeMs }, this.#current.policy);
        if (this.#respawn.braked && !wasBraked) this.#brakeEngaged();
      }
    }
    this.#gcListeners();
    if (this.#stopping === undefined && this.#respawn.braked && this.#workers.size === 0) {
      this.#log.error('crash loop: no worker left; the master exits with status 1', { crashLoop: true });
      this.#exitCode = 1;
      void this.stop(false);
      return;
    }
    this.#reconcile();
  }

  #brakeEngaged(): void {
    const p = this.#current.policy;
    const left = [...this.#workers.values()].filter((w) => w.state !== 'stopping').length;
    // Loud on purpose: this is the line an operator must find.
    this.#log.error(
      `CRASH LOOP: ${p.crashLoopDeaths} workers died within ${p.fastDeathMs} ms of starting, inside ${p.crashLoopWindowMs} ms; ` +
        `no longer respawning. ${left > 0 ? `Serving on with ${left} worker(s)` : 'No worker left'}. Fix the app, then reload (SIGHUP).`,
      { crashLoop: true, crashLoopDeaths: p.crashLoopDeaths, crashLoopWindowMs: p.crashLoopWindowMs, workersLeft: left },
    );
  }

  /** Graceful (or fast) stop of one worker, with a kill deadline behind it. */
  #drain(w: WorkerRec<C>, planned: Planned, graceful: boolean, handoff = false): void {
    const p = w.gen.policy;
    const t = now();
    if (w.state === 'stopping' && graceful) return;
    w.state = 'stopping';
    w.planned ??= planned;
    // A graceful stop drains (shutdownTimeoutMs), then closes the worker's apps (appCloseTimeoutMs).
    const deadline = t + (graceful ? p.shutdownTimeoutMs + p.appCloseTimeoutMs : 0) + p.killGraceMs;
    w.stopDeadline = Math.min(w.stopDeadline, deadline);
    if (!this.#send(w, { postern: TAG, type: 'stop', graceful, timeoutMs: p.shutdownTimeoutMs, handoff })) w.child.kill('SIGTERM');
  }

  #kill(w: WorkerRec<C>, planned: Planned): void {
    w.state = 'stopping';
    w.planned = planned;
    w.stopDeadline = Infinity;
    w.child.kill('SIGKILL');
  }

  /** Deadline and recycling checks for one worker. */
  #evaluate(w: WorkerRec<C>, t: number): void {
    const p = w.gen.policy;
    if (w.state === 'stopping') {
      if (t > w.stopDeadline && w.planned !== 'drain-timeout') {
        this.#log.warn(`worker ${w.id} (pid ${w.pid}) still running past shutdownTimeoutMs + appCloseTimeoutMs + killGraceMs after it was told to stop; killing it`, { worker: w.id, pid: w.pid, limit: 'shutdownTimeoutMs' });
        this.#kill(w, 'drain-timeout');
      }
    }
    if (w.state === 'starting' || (w.state === 'stopping' && w.stopDeadline === Infinity)) return;
    const verdict = checkDeadline({ nowMs: t, lastHeartbeatAtMs: w.lastHeartbeatAt, oldest: w.oldestStart }, p);
    if (verdict.action === 'kill') {
      this.#counters.deadlineKills++;
      this.#restartReason('killed: stuck past requestTimeoutMs + killGraceMs');
      const r = verdict.request;
      this.#log.error(
        `worker ${w.id} (pid ${w.pid}) is stuck: no heartbeat for ${Math.round(verdict.silentMs)} ms` +
          (r === undefined ? '' : `, in ${r.method} ${r.uri} (age ${Math.round(r.ageMs)} ms)`) +
          `; past requestTimeoutMs ${p.requestTimeoutMs} + killGraceMs ${p.killGraceMs}: killing and replacing it`,
        { worker: w.id, pid: w.pid, silentMs: Math.round(verdict.silentMs), limit: 'requestTimeoutMs', ...(r === undefined ? {} : { method: r.method, uri: r.uri, ageMs: Math.round(r.ageMs) }) },
      );
      this.#kill(w, 'deadline');
      return;
    }
    if (w.state !== 'ready' || w.due !== null) return;
    if (verdict.action === 'recycle') {
      const r = verdict.request;
      this.#log.warn(`worker ${w.id} (pid ${w.pid}): ${r.method} ${r.uri} is ${Math.round(r.ageMs)} ms old, past requestTimeoutMs + killGraceMs, and ignored its abort; replacing the worker gracefully`, { worker: w.id, method: r.method, uri: r.uri, ageMs: Math.round(r.ageMs) });
      w.due = { reason: 'request-overdue', request: { method: r.method, uri: r.uri, ageMs: Math.round(r.ageMs) } };
      return;
    }
    w.due = recycleDue({ nowMs: t, spawnedAtMs: w.spawnedAt, requests: w.requests, rssBytes: w.rssBytes, requestLimit: w.requestLimit }, p);
  }

  #onTick = (): void => {
    const t = now();
    for (const w of [...this.#workers.values()]) this.#evaluate(w, t);
    this.#countSaturation(t);
    this.#reconcile();
  };

  /** Once per heartbeat interval: were all serving workers busy (a request in flight on each)? */
  #countSaturation(t: number): void {
    if (t - this.#busyCheckedAt < this.#current.policy.heartbeatIntervalMs) return;
    this.#busyCheckedAt = t;
    let serving = 0;
    for (const w of this.#workers.values()) {
      if (w.state !== 'ready') continue;
      if (w.inflight === 0) return;
      serving++;
    }
    if (serving > 0) this.#counters.allWorkersBusy++;
  }

  #restartReason(reason: string): void {
    // Bounded: reasons nobody spawned a replacement for (a brake, a shrinking pool) must not pile up.
    if (this.#restartReasons.push(reason) > 64) this.#restartReasons.shift();
  }

  #restartTick(): void {
    if (this.#tick !== undefined) clearInterval(this.#tick);
    const every = Math.max(10, Math.min(500, Math.floor(this.#current.policy.heartbeatIntervalMs / 2)));
    this.#tick = setInterval(this.#onTick, every);
  }

  /** Closes sockets no generation in use needs any more (a reload dropped them). */
  #gcListeners(): void {
    const keep = new Set<string>();
    const gens = new Set<Generation<C>>([this.#current]);
    if (this.#transition?.previous !== undefined) gens.add(this.#transition.previous);
    for (const w of this.#workers.values()) gens.add(w.gen);
    for (const g of gens) for (const l of g.listeners) keep.add(l.key);
    for (const [key, m] of this.#bound) {
      if (keep.has(key)) continue;
      this.#gates.get(key)?.close();
      this.#gates.delete(key);
      m.close();
      this.#bound.delete(key);
      this.#log.info(`stopped listening on ${m.bound}`, { address: m.bound });
    }
  }

  // ---- the public surface ----------------------------------------------------------------------

  reload(): Promise<void> {
    const run = this.#reloadChain.then(() => this.#reload());
    this.#reloadChain = run.catch(noop);
    return run;
  }

  async #reload(): Promise<void> {
    if (this.#stopping !== undefined) throw new SupervisorError(SUPERVISOR_ERRORS.STOPPED, 'reload: the supervisor is stopping');
    this.#log.info('reloading: re-resolving the configuration and starting new workers');
    let gen: Generation<C>;
    try {
      const settings = this.#options.loadConfig === undefined ? this.#current.settings : await this.#options.loadConfig();
      gen = this.#generation(settings);
      await this.#bindFor(gen);
    } catch (err) {
      this.#log.error(`reload failed, the previous workers serve on: ${err instanceof Error ? err.message : String(err)}`, { code: (err as { code?: unknown }).code });
      throw new SupervisorError(SUPERVISOR_ERRORS.RELOAD_FAILED, `reload failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (this.#stopping !== undefined) throw new SupervisorError(SUPERVISOR_ERRORS.STOPPED, 'reload: the supervisor is stopping');
    if (this.#respawn.braked) this.#log.info('reload: crash-loop brake released');
    this.#respawn = releaseBrake();
    const previous = this.#current;
    this.#current = gen;
    // On demand, the new generation starts as many workers as serve now (none for an idle pool).
    if (gen.onDemand) {
      let serving = 0;
      for (const w of this.#workers.values()) if (w.gen === previous && w.state !== 'stopping' && !w.retiring) serving++;
      this.#want = Math.min(gen.target, previous.onDemand ? Math.max(this.#want, serving) : serving);
    }
    this.#counters.reloads++;
    if (gen.policy.heartbeatIntervalMs !== previous.policy.heartbeatIntervalMs) this.#restartTick();
    await new Promise<void>((resolve, reject) => {
      this.#transition = { gen, previous, resolve, reject };
      this.#reconcile();
    });
    this.#log.info(`reloaded: generation ${gen.id}, ${gen.target} worker(s)`, { generation: gen.id, workers: gen.target });
  }

  stop(graceful: boolean): Promise<void> {
    if (this.#stopping === 'fast' || (this.#stopping === 'graceful' && graceful)) return this.#stopped ?? Promise.resolve();
    const escalate = this.#stopping === 'graceful';
    this.#stopping = graceful ? 'graceful' : 'fast';
    if (this.#wake !== undefined) clearTimeout(this.#wake);
    const tr = this.#transition;
    if (tr !== undefined && tr.previous !== undefined) {
      this.#transition = undefined;
      tr.reject(new SupervisorError(SUPERVISOR_ERRORS.STOPPED, 'reload: the supervisor is stopping'));
    }
    for (const g of this.#gates.values()) g.set(false);
    for (const w of this.#workers.values()) {
      if (w.planned === 'deadline' || w.planned === 'start-timeout' || w.planned === 'drain-timeout' || w.planned === 'abandoned') continue;
      if (graceful && w.state === 'starting' && this.#held.length > 0 && w.gen.listeners.some((l) => this.#held.some((h) => h.key === l.key))) {
        // Connections the master accepted must be answered: this worker gets them once ready (or is stopped when its start times out).
        w.drainWhenReady = true;
        const limit = w.gen.policy.workerStartTimeoutMs;
        setTimeout(() => { if (w.state === 'starting') { w.drainWhenReady = false; this.#drain(w, 'stop', false); } }, Math.max(1, limit - (now() - w.spawnedAt))).unref();
        continue;
      }
      w.drainWhenReady = false;
      this.#drain(w, 'stop', graceful);
    }
    if (!this.#workerAwaited()) for (const h of this.#held.splice(0)) h.client.close();
    if (!escalate) {
      this.#log.info(graceful ? `stopping gracefully (in-flight requests get up to ${this.#current.policy.shutdownTimeoutMs} ms)` : 'stopping now');
      this.#stopped = this.#finishStop();
    }
    return this.#stopped ?? Promise.resolve();
  }

  async #finishStop(): Promise<void> {
    while (this.#workers.size > 0) await Promise.all([...this.#workers.values()].map((w) => w.exited));
    if (this.#tick !== undefined) clearInterval(this.#tick);
    for (const h of this.#held.splice(0)) h.client.close();
    for (const g of this.#gates.values()) g.close();
    this.#gates.clear();
    for (const m of this.#bound.values()) m.close();
    this.#bound.clear();
    for (const [sig, fn] of this.#signalHandlers) (this.#options.signals || process).off(sig, fn);
    this.#signalHandlers = [];
    const tr = this.#transition;
    this.#transition = undefined;
    tr?.reject(new SupervisorError(SUPERVISOR_ERRORS.WORKER_START, 'stopped before the workers were up'));
    this.#log.info('stopped', { exitCode: this.#exitCode });
    this.#resolveExited(this.#exitCode);
  }

  async reopenLogs(): Promise<void> {
    try {
      await this.#options.onReopenLogs?.();
    } catch (err) {
      this.#log.error(`reopening logs failed: ${String(err)}`);
    }
    for (const w of this.#workers.values()) this.#send(w, { postern: TAG, type: 'reopen-logs' });
  }

  #installSignals(): void {
    const source = this.#options.signals;
    if (source === false) return;
    const s = source ?? process;
    const handlers: Array<['SIGTERM' | 'SIGINT' | 'SIGHUP' | 'SIGUSR1', () => void]> = [
      // A second SIGTERM while stopping gracefully means "now" (as the single-process CLI does).
      ['SIGTERM', () => { this.#log.info('SIGTERM'); void this.stop(this.#stopping === undefined); }],
      ['SIGINT', () => { this.#log.info('SIGINT'); void this.stop(false); }],
      ['SIGHUP', () => { this.#log.info('SIGHUP'); this.reload().catch(noop); }],
      ['SIGUSR1', () => { this.#log.info('SIGUSR1: reopening logs'); void this.reopenLogs(); }],
    ];
    for (const [sig, fn] of handlers) s.on(sig, fn);
    this.#signalHandlers = handlers;
  }

  #info(w: WorkerRec<C>, t: number): WorkerInfo {
    return {
      id: w.id,
      pid: w.pid,
      generation: w.gen.id,
      state: w.state,
      retiring: w.retiring || w.gen !== this.#current,
      startedAt: w.startedAtEpoch,
      uptimeMs: Math.round(t - w.spawnedAt),
      requests: w.requests,
      inflight: w.inflight,
      rssBytes: w.rssBytes,
      lastHeartbeatAgeMs: Math.round(t - w.lastHeartbeatAt),
      oldest: w.oldest,
      ...(w.lastRestartReason === undefined ? {} : { lastRestartReason: w.lastRestartReason }),
    };
  }

  workers(): WorkerInfo[] {
    const t = now();
    return [...this.#workers.values()].map((w) => this.#info(w, t));
  }

  snapshot(): PoolSnapshot {
    return this.#snapshot(this.workers());
  }

  #snapshot(workers: WorkerInfo[]): PoolSnapshot {
    return {
      master: {
        pid: process.pid,
        startedAt: this.#startedAtEpoch,
        generation: this.#current.id,
        targetWorkers: this.#current.target,
        crashLoopBraked: this.#respawn.braked,
        ...this.#counters,
      },
      workers,
    };
  }

  async collect(timeoutMs = 1000): Promise<PoolSnapshot> {
    const t = now();
    const entries = await Promise.all([...this.#workers.values()].map(async (w) => {
      const info = this.#info(w, t);
      const id = this.#nextCollect++;
      const metrics = await new Promise<unknown>((resolve) => {
        const timer = setTimeout(() => { this.#collectWaiters.delete(id); resolve(null); }, timeoutMs);
        this.#collectWaiters.set(id, (snapshot) => {
          clearTimeout(timer);
          this.#collectWaiters.delete(id);
          resolve(snapshot);
        });
        if (!this.#send(w, { postern: TAG, type: 'collect', id })) {
          clearTimeout(timer);
          this.#collectWaiters.delete(id);
          resolve(null);
        }
      });
      return { ...info, metrics };
    }));
    return this.#snapshot(entries);
  }

  listeners(): ListenerInfo[] {
    return this.#current.listeners.map((l) => ({ protocol: l.protocol, address: l.text, bound: this.#bound.get(l.key)?.bound ?? l.text }));
  }
}

function describeDue(due: WorkerRec<unknown>['due']): string {
  if (due === null) return 'due';
  switch (due.reason) {
    case 'requests': return `served ${due.requests} requests (maxRequestsPerWorker, limit ${due.limit} with jitter)`;
    case 'memory': return `RSS ${due.rssMiB} MiB over maxWorkerRssMiB ${due.limitMiB}`;
    case 'lifetime': return `running ${Math.round(due.ageMs)} ms, past maxWorkerLifetimeMs ${due.limitMs}`;
    case 'request-overdue': return `${due.request.method} ${due.request.uri} overdue (${due.request.ageMs} ms)`;
  }
}
