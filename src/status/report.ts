// The status report, from the status page's side: what the JSON output is and what Prometheus and
// `postern status` render, built from one process's metrics or from the supervisor's pool snapshot.

import type { MasterCounters, WorkerInfo } from '../supervisor/messages.ts';
import type { ListenBacklog } from './backlog.ts';
import { isMetricsSnapshot, mergeSnapshots, type MergedMetrics, type MetricsSnapshot, type MountSnapshot } from './metrics.ts';

/** The supervisor's master counters (its PoolSnapshot `master`), shown as they are. */
export type MasterStatus = MasterCounters;

/**
 * One worker as the supervisor reports it (its PoolSnapshot `workers[i]`): WorkerInfo's own fields,
 * so a field renamed there stops compiling here where it is read, with only `id` and `pid` required so
 * that a pool built by hand (tests) fits. `metrics` is null/absent when the worker did not answer in time.
 */
export type PoolWorker = Pick<WorkerInfo, 'id' | 'pid'> & Partial<Omit<WorkerInfo, 'id' | 'pid' | 'oldest'>>;

/** The supervisor's PoolSnapshot, structurally: `buildStatusReport({ pool: await ctx.poolSnapshot() })`. */
export interface PoolLike {
  readonly master?: MasterStatus;
  readonly workers: readonly PoolWorker[];
}

export interface WorkerStatus {
  readonly id: number;
  readonly pid: number;
  readonly generation?: number;
  readonly state?: string;
  readonly retiring?: boolean;
  readonly uptimeMs: number;
  readonly requests: number;
  readonly inFlight: number;
  readonly rssBytes: number;
  readonly busyStarts?: number;
  readonly eventLoopUtilization?: number;
  readonly connectionsOpen?: number;
  readonly lastHeartbeatAgeMs?: number;
  readonly lastRestartReason?: string;
  /** False when the worker's metrics did not arrive (the row then holds the master's heartbeat figures). */
  readonly metrics: boolean;
}

export interface StatusReport {
  readonly kind: 'postern.status';
  readonly version: 1;
  /** Epoch ms. */
  readonly generatedAt: number;
  readonly master?: MasterStatus & { readonly uptimeMs: number };
  readonly workers: readonly WorkerStatus[];
  /**
   * Sums over the workers; requests, in flight and RSS include the heartbeat figures of workers
   * whose metrics did not arrive. `saturated`: every worker had a request in flight.
   */
  readonly totals: Omit<MergedMetrics, 'mounts' | 'bucketsMs'> & { readonly saturated: boolean };
  readonly bucketsMs: readonly number[];
  readonly mounts: readonly MountSnapshot[];
  readonly backlog: readonly ListenBacklog[];
}

export interface StatusInput {
  /** Unsupervised: this process's snapshot(s). */
  readonly snapshots?: readonly MetricsSnapshot[];
  /** Supervised: the pool snapshot (workers' metrics inside). */
  readonly pool?: PoolLike;
  readonly backlog?: readonly ListenBacklog[];
  /** Epoch ms; default Date.now(). */
  readonly now?: number;
}

function sumOpen(s: MetricsSnapshot): number {
  const o = s.connectionsOpen;
  return o.fastcgi + o.scgi + o.uwsgi + o.http;
}

function fromSnapshot(s: MetricsSnapshot, now: number, w?: PoolWorker): WorkerStatus {
  return {
    id: w?.id ?? s.worker,
    pid: w?.pid ?? s.pid,
    ...(w?.generation === undefined ? {} : { generation: w.generation }),
    ...(w?.state === undefined ? {} : { state: w.state }),
    ...(w?.retiring === undefined ? {} : { retiring: w.retiring }),
    uptimeMs: Math.max(0, now - s.startedAt),
    requests: s.requests,
    inFlight: s.inFlight,
    rssBytes: s.rssBytes,
    busyStarts: s.busyStarts,
    eventLoopUtilization: s.eventLoopUtilization,
    connectionsOpen: sumOpen(s),
    ...(w?.lastHeartbeatAgeMs === undefined ? {} : { lastHeartbeatAgeMs: w.lastHeartbeatAgeMs }),
    ...(w?.lastRestartReason === undefined ? {} : { lastRestartReason: w.lastRestartReason }),
    metrics: true,
  };
}

function fromHeartbeat(w: PoolWorker, now: number): WorkerStatus {
  return {
    id: w.id,
    pid: w.pid,
    ...(w.generation === undefined ? {} : { generation: w.generation }),
    ...(w.state === undefined ? {} : { state: w.state }),
    ...(w.retiring === undefined ? {} : { retiring: w.retiring }),
    uptimeMs: w.uptimeMs ?? (w.startedAt === undefined ? 0 : Math.max(0, now - w.startedAt)),
    requests: w.requests ?? 0,
    inFlight: w.inflight ?? 0,
    rssBytes: w.rssBytes ?? 0,
    ...(w.lastHeartbeatAgeMs === undefined ? {} : { lastHeartbeatAgeMs: w.lastHeartbeatAgeMs }),
    ...(w.lastRestartReason === undefined ? {} : { lastRestartReason: w.lastRestartReason }),
    metrics: false,
  };
}

/** Builds the report the status endpoint serves: per worker rows, pool totals, merged mounts. */
export function buildStatusReport(input: StatusInput): StatusReport {
  const now = input.now ?? Date.now();
  const snapshots: MetricsSnapshot[] = [...(input.snapshots ?? [])];
  const workers: WorkerStatus[] = [];
  for (const s of snapshots) workers.push(fromSnapshot(s, now));
  for (const w of input.pool?.workers ?? []) {
    if (isMetricsSnapshot(w.metrics)) {
      snapshots.push(w.metrics);
      workers.push(fromSnapshot(w.metrics, now, w));
    } else {
      workers.push(fromHeartbeat(w, now));
    }
  }
  const { mounts, bucketsMs, ...merged } = mergeSnapshots(snapshots);
  // Workers without metrics still count toward requests, in-flight and busy from their heartbeat.
  let requests = merged.requests;
  let inFlight = merged.inFlight;
  let busyWorkers = merged.busyWorkers;
  let rssBytes = merged.rssBytes;
  for (const w of workers) {
    if (w.metrics) continue;
    requests += w.requests;
    inFlight += w.inFlight;
    rssBytes += w.rssBytes;
    if (w.inFlight > 0) busyWorkers++;
  }
  const master = input.pool?.master;
  return {
    kind: 'postern.status',
    version: 1,
    generatedAt: now,
    ...(master === undefined ? {} : { master: { ...master, uptimeMs: Math.max(0, now - master.startedAt) } }),
    workers,
    totals: { ...merged, workers: workers.length, requests, inFlight, busyWorkers, rssBytes, saturated: workers.length > 0 && busyWorkers === workers.length },
    bucketsMs,
    mounts,
    backlog: input.backlog ?? [],
  };
}

/** True for a StatusReport as parsed from the endpoint's JSON (for `postern status`). */
export function isStatusReport(v: unknown): v is StatusReport {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return r['kind'] === 'postern.status' && r['version'] === 1 && Array.isArray(r['workers']) && Array.isArray(r['mounts']) &&
    typeof r['totals'] === 'object' && r['totals'] !== null && Array.isArray(r['bucketsMs']);
}
