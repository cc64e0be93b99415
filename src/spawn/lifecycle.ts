// When a process spawned by the front server (fd 0 mode) stops on its own, from that process's
// side. There is no master to recycle it: like a libfcgi or flup child it serves until a limit is
// reached, then stops accepting, finishes what it accepted and exits, and the spawner starts a new
// one on the next request (mod_fcgid, lighttpd and spawn-fcgi's supervisors all do).
// The decision is a pure function of counters and the clock; `watchSpawned` polls it.

import { recycleDue, type RecycleOptions, type RecycleReason } from '../supervisor/policy/recycle.ts';

export interface SpawnedLimits extends RecycleOptions {
  /** Exit after this long with no connection open and no request started; 0 = never. */
  readonly idleTimeoutMs: number;
  /** This process's request limit (maxRequestsPerWorker plus its jitter draw); 0 = none. */
  readonly requestLimit: number;
}

export interface SpawnedState {
  readonly nowMs: number;
  readonly startedAtMs: number;
  /** Last time a request started or a connection was open. */
  readonly lastActivityMs: number;
  /** Requests started so far. */
  readonly requests: number;
  readonly connections: number;
  readonly rssBytes: number;
}

export type SpawnedExit = RecycleReason | { readonly reason: 'idle'; readonly idleMs: number; readonly limitMs: number };

/** Why this process should stop now, or null. */
export function spawnedExitDue(s: SpawnedState, l: SpawnedLimits): SpawnedExit | null {
  const recycle = recycleDue({ nowMs: s.nowMs, spawnedAtMs: s.startedAtMs, requests: s.requests, rssBytes: s.rssBytes, requestLimit: l.requestLimit }, l);
  if (recycle !== null) return recycle;
  const idleMs = s.nowMs - s.lastActivityMs;
  if (l.idleTimeoutMs > 0 && s.connections === 0 && idleMs >= l.idleTimeoutMs) return { reason: 'idle', idleMs, limitMs: l.idleTimeoutMs };
  return null;
}

/** Text for the log line. */
export function describeExit(e: SpawnedExit): string {
  switch (e.reason) {
    case 'idle': return `no request for ${String(e.idleMs)} ms (idleTimeoutMs ${String(e.limitMs)})`;
    case 'requests': return `${String(e.requests)} requests served (maxRequestsPerWorker ${String(e.limit)})`;
    case 'memory': return `resident memory ${String(e.rssMiB)} MiB (maxWorkerRssMiB ${String(e.limitMiB)})`;
    case 'lifetime': return `running ${String(e.ageMs)} ms (maxWorkerLifetimeMs ${String(e.limitMs)})`;
  }
}

// Often enough that a request limit of N lets few more than N through (the spawner sends one
// request at a time per process), rare enough to cost nothing: one comparison per tick.
const TICK_MS = 100;

export interface SpawnedWatch {
  stop(): void;
}

/**
 * Polls the counters; calls `onDue` once, when a limit is reached. Returns undefined when no limit
 * is set (nothing to watch).
 */
export function watchSpawned(
  stats: () => { readonly requests: number; readonly connections: number },
  limits: SpawnedLimits,
  onDue: (why: SpawnedExit) => void,
): SpawnedWatch | undefined {
  if (limits.idleTimeoutMs === 0 && limits.requestLimit === 0 && limits.maxWorkerRssMiB === 0 && limits.maxWorkerLifetimeMs === 0) return undefined;
  const startedAtMs = Date.now();
  let lastActivityMs = startedAtMs;
  let lastRequests = 0;
  const timer = setInterval(() => {
    const nowMs = Date.now();
    const { requests, connections } = stats();
    if (requests !== lastRequests || connections > 0) {
      lastRequests = requests;
      lastActivityMs = nowMs;
    }
    const rssBytes = limits.maxWorkerRssMiB > 0 ? process.memoryUsage.rss() : 0;
    const due = spawnedExitDue({ nowMs, startedAtMs, lastActivityMs, requests, connections, rssBytes }, limits);
    if (due !== null) {
      clearInterval(timer);
      onDue(due);
    }
  }, TICK_MS);
  timer.unref();
  return { stop: () => { clearInterval(timer); } };
}
