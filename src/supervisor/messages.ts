// The master <-> worker IPC vocabulary, from both sides. Every message carries `postern: 1` so an
// app's own process.send() traffic is never mistaken for it (and is ignored by the master).
//
// Master -> worker
//   init          once, right after spawn: who the worker is, its config, its listeners (inherited
//                 fds), its request limit and heartbeat interval.
//   stop          graceful: stop accepting, finish in flight (up to timeoutMs), exit 0;
//                 fast: abort everything, exit 0. `handoff`: a successor serves, so idle
//                 keep-alive connections are sent back (handoff) rather than closed.
//   adopt         with a socket: a keep-alive connection a draining worker handed over idle;
//                 serve it (`buffered`: bytes it had read and not parsed).
//   accept        with a raw handle: a connection the master accepted on listener `listener` (an
//                 index into init's listeners) while no worker served it (on demand); nothing read.
//   reopen-logs   SIGUSR1 reached the master.
//   collect       asks for the worker's metrics snapshot (reply: metrics with the same id).
//   pool          answers a worker's pool-request with the whole pool's snapshot.
// Worker -> master
//   ready         the worker's server is listening: it may take traffic, and what it replaces may drain.
//   heartbeat     every heartbeatIntervalMs (and at once when the request limit is reached):
//                 requests finished, requests in flight (the oldest few, with their ages), RSS.
//   fatal         startup failed (the worker exits 1 right after); code and message for the log.
//   metrics       reply to collect: whatever the worker's metrics source returned (structured-clonable).
//   pool-request  a worker (e.g. its status page) wants the whole pool's snapshot.
//   handoff       with a socket: an idle keep-alive connection of a draining worker, for the
//                 master to pass to a serving worker (adopt). See src/server/handoff.ts.

import type { ListenerSpec } from '../server/options.ts';
import type { Protocol } from '../app/types.ts';

export const TAG = 1;

/** A listener as a worker receives it: the fd it inherited (`fd:4`…), and what the master bound. */
export interface WorkerListener extends ListenerSpec {
  /** The address as configured in the master (`127.0.0.1:9000`, `unix:/run/x.sock`, `fd:3`). */
  readonly origin: string;
}

export interface InflightReport {
  readonly method: string;
  readonly uri: string;
  readonly ageMs: number;
}

export type MasterMessage =
  | {
      readonly postern: typeof TAG; readonly type: 'init'; readonly workerId: number; readonly generation: number;
      readonly config: unknown; readonly listeners: readonly WorkerListener[]; readonly requestLimit: number;
      readonly heartbeatIntervalMs: number; readonly shutdownTimeoutMs: number;
      /** On demand: also report at once when a request starts after a report that said idle (the pool grows on it). */
      readonly reportBusy?: boolean;
    }
  | { readonly postern: typeof TAG; readonly type: 'stop'; readonly graceful: boolean; readonly timeoutMs: number; readonly handoff?: boolean }
  | { readonly postern: typeof TAG; readonly type: 'adopt'; readonly protocol: Protocol; readonly buffered: Uint8Array }
  | { readonly postern: typeof TAG; readonly type: 'accept'; readonly listener: number }
  | { readonly postern: typeof TAG; readonly type: 'reopen-logs' }
  | { readonly postern: typeof TAG; readonly type: 'collect'; readonly id: number }
  | { readonly postern: typeof TAG; readonly type: 'pool'; readonly id: number; readonly snapshot: unknown };

export type WorkerMessage =
  | { readonly postern: typeof TAG; readonly type: 'ready' }
  | {
      readonly postern: typeof TAG; readonly type: 'heartbeat'; readonly requests: number; readonly inflight: number;
      /** Oldest first, at most MAX_REPORTED. */
      readonly oldest: readonly InflightReport[]; readonly rssBytes: number;
    }
  | { readonly postern: typeof TAG; readonly type: 'fatal'; readonly code: string; readonly message: string }
  | { readonly postern: typeof TAG; readonly type: 'metrics'; readonly id: number; readonly snapshot: unknown }
  | { readonly postern: typeof TAG; readonly type: 'pool-request'; readonly id: number }
  | { readonly postern: typeof TAG; readonly type: 'handoff'; readonly protocol: Protocol; readonly buffered: Uint8Array };

/** In-flight requests named per heartbeat: enough to name the stuck one, small enough to send each second. */
export const MAX_REPORTED = 3;

function tagged(m: unknown): m is { postern: typeof TAG; type: unknown } {
  return typeof m === 'object' && m !== null && (m as { postern?: unknown }).postern === TAG;
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  if (!tagged(m)) return false;
  switch (m.type) {
    case 'ready': return true;
    case 'heartbeat': {
      const h = m as Record<string, unknown>;
      return typeof h['requests'] === 'number' && typeof h['inflight'] === 'number' && Array.isArray(h['oldest']) && typeof h['rssBytes'] === 'number';
    }
    case 'fatal': return typeof (m as Record<string, unknown>)['code'] === 'string';
    case 'metrics':
    case 'pool-request': return typeof (m as Record<string, unknown>)['id'] === 'number';
    case 'handoff': return isHandedProtocol((m as Record<string, unknown>)['protocol']) && (m as Record<string, unknown>)['buffered'] instanceof Uint8Array;
    default: return false;
  }
}

export function isMasterMessage(m: unknown): m is MasterMessage {
  if (!tagged(m)) return false;
  if (m.type === 'accept') return Number.isSafeInteger((m as Record<string, unknown>)['listener']);
  if (m.type === 'adopt') return isHandedProtocol((m as Record<string, unknown>)['protocol']) && (m as Record<string, unknown>)['buffered'] instanceof Uint8Array;
  return m.type === 'init' || m.type === 'stop' || m.type === 'reopen-logs' || m.type === 'collect' || m.type === 'pool';
}

/** Only keep-alive protocols have idle connections to hand over. */
function isHandedProtocol(p: unknown): p is Protocol {
  return p === 'fastcgi' || p === 'http';
}

/** Set in a worker's environment: its id. Its presence is what makes a process a postern worker. */
export const WORKER_ENV = 'POSTERN_WORKER_ID';
/** A worker's first inherited listener is fd 4: 0-2 are stdio, 3 is the IPC channel. */
export const FIRST_LISTENER_FD = 4;

/** What the master knows about one worker; `metrics` only in `collect()` results. */
export interface WorkerInfo {
  readonly id: number;
  readonly pid: number;
  readonly generation: number;
  readonly state: 'starting' | 'ready' | 'stopping';
  /** True once chosen for replacement (recycling, shrinking, a reload) and still serving. */
  readonly retiring: boolean;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly uptimeMs: number;
  readonly requests: number;
  readonly inflight: number;
  readonly rssBytes: number;
  /** Since the last heartbeat (or readiness). */
  readonly lastHeartbeatAgeMs: number;
  readonly oldest: readonly InflightReport[];
  /** Why the worker this one replaced went (`recycled: …`, `crashed: code 1`, `reload`); absent for the first workers. */
  readonly lastRestartReason?: string;
  /** The worker's metrics snapshot (collect() only; null when it did not answer in time). */
  readonly metrics?: unknown;
}

/** The master's own counters in a pool snapshot (the status report shows them as they are). */
export interface MasterCounters {
  readonly pid: number;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly generation: number;
  readonly targetWorkers: number;
  readonly crashLoopBraked: boolean;
  /** Unplanned exits (crashes, deadline kills) since start. */
  readonly crashes: number;
  readonly deadlineKills: number;
  readonly recycled: number;
  readonly reloads: number;
  /** Heartbeat intervals at which every serving worker had a request in flight (saturation; the master always counts it). */
  readonly allWorkersBusy?: number;
  /** Idle keep-alive connections passed from a draining worker to a serving one (reloads, recycling). */
  readonly handedOver?: number;
  /** On demand: connections the master accepted itself while no worker served their socket. */
  readonly acceptedByMaster?: number;
}

/** The whole pool, for a status page: the master's counters and each worker. */
export interface PoolSnapshot {
  readonly master: MasterCounters;
  readonly workers: readonly WorkerInfo[];
}
