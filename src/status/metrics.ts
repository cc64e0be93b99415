// The in-process metrics registry, from one worker's request path: integer counters and a fixed
// bucket latency histogram per mount, no allocation per request; snapshots are plain data that
// cross cluster IPC, and snapshots from several workers merge.

import { performance } from 'node:perf_hooks';
import type { Protocol } from '../app/types.ts';

/**
 * Upper bounds of the latency buckets, in milliseconds (the last bucket, +Inf, is implicit).
 * Prometheus' default buckets (5 ms … 10 s) with 1 ms and 2.5 ms added below: an app server's
 * fast answers are sub-5 ms, and a histogram that puts them all in one bucket says nothing.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);

/** Status classes counted per mount; `other` is anything outside 100–599 (0 when no head was sent). */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export const PROTOCOLS: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi', 'http'];

/**
 * Reasons the server gives to `rejected()`. Free text is accepted but capped (MAX_REASONS), so a
 * bug cannot grow the label set without bound.
 */
export type RejectReason =
  | 'maxConnections' // a connection closed at once: maxConnections were open
  | 'overloaded' // FastCGI END_REQUEST(OVERLOADED)
  | 'cantMpx' // FastCGI END_REQUEST(CANT_MPX_CONN): maxRequestsPerConnection reached
  | 'unknownRole' // FastCGI END_REQUEST(UNKNOWN_ROLE)
  | 'protocolError' // malformed input or a limit exceeded (a 4xx canned answer or a close)
  | 'timeout' // headerTimeoutMs, bodyIdleTimeoutMs or requestTimeoutMs
  | 'draining'; // arrived during a graceful stop

/** Mounts tracked separately; beyond this, `(other)` (a tree has a handful). */
export const MAX_MOUNTS = 256;
export const MAX_REASONS = 32;
export const OTHER_MOUNT = '(other)';
export const OTHER_REASON = 'other';

/** One mount's counters, merged or not. `buckets` are per bucket (not cumulative), +Inf last. */
export interface MountSnapshot {
  /** The mount prefix as the tree names it (`/app`, `/` for the root, `` when none matched). */
  readonly mount: string;
  readonly requests: number;
  /** Indexed like STATUS_CLASSES. */
  readonly statusClasses: readonly number[];
  /** Count per latency bucket (LATENCY_BUCKETS_MS, then +Inf): not cumulative. */
  readonly buckets: readonly number[];
  readonly sumMs: number;
}

export interface ProtocolCounts {
  readonly fastcgi: number;
  readonly scgi: number;
  readonly uwsgi: number;
  readonly http: number;
}

/** One worker's metrics at one moment: plain, structured-clonable data. */
export interface MetricsSnapshot {
  readonly kind: 'postern.metrics';
  readonly version: 1;
  readonly worker: number;
  readonly pid: number;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly takenAt: number;
  readonly rssBytes: number;
  /** Event loop utilisation (0–1) since the previous snapshot: how busy this worker's one thread was. */
  readonly eventLoopUtilization: number;
  /** Requests finished. */
  readonly requests: number;
  readonly inFlight: number;
  /**
   * Requests that started while this worker already had one in flight: they queue on its event
   * loop. Climbing on every worker at once means all workers are busy (saturation).
   */
  readonly busyStarts: number;
  readonly connectionsOpen: ProtocolCounts;
  readonly connectionsTotal: ProtocolCounts;
  readonly rejected: Readonly<Record<string, number>>;
  /** The bucket bounds the histograms use (ms). */
  readonly bucketsMs: readonly number[];
  readonly mounts: readonly MountSnapshot[];
}

export interface MetricsOptions {
  /** The worker id (the supervisor's `workerId`; 0 when unsupervised). */
  readonly worker?: number;
  /** Histogram upper bounds in ms, ascending; default LATENCY_BUCKETS_MS. */
  readonly bucketsMs?: readonly number[];
}

class MountCounters {
  requests = 0;
  sumMs = 0;
  readonly statusClasses = new Float64Array(STATUS_CLASSES.length);
  readonly buckets: Float64Array;

  constructor(buckets: number) {
    this.buckets = new Float64Array(buckets + 1);
  }
}

const PROTOCOL_INDEX: Readonly<Record<Protocol, number>> = { fastcgi: 0, scgi: 1, uwsgi: 2, http: 3 };

function counts(a: Float64Array): ProtocolCounts {
  return { fastcgi: a[0]!, scgi: a[1]!, uwsgi: a[2]!, http: a[3]! };
}

/**
 * One worker's registry. Every hot-path method is a few integer increments on preallocated typed
 * arrays (Float64Array, exact to 2^53: at 40k req/s, 7000 years). A mount's counters are allocated
 * the first time it finishes a request.
 */
export class Metrics {
  readonly worker: number;
  readonly bucketsMs: readonly number[];
  readonly startedAt = Date.now();
  readonly #bounds: Float64Array;
  readonly #mounts = new Map<string, MountCounters>();
  readonly #open = new Float64Array(4);
  readonly #total = new Float64Array(4);
  readonly #rejected = new Map<string, number>();
  #requests = 0;
  #inFlight = 0;
  #busyStarts = 0;
  #elu = performance.eventLoopUtilization();

  constructor(options: MetricsOptions = {}) {
    this.worker = options.worker ?? 0;
    const b = options.bucketsMs ?? LATENCY_BUCKETS_MS;
    for (let i = 1; i < b.length; i++) {
      if (!(b[i]! > b[i - 1]!)) throw new RangeError('metrics buckets must be strictly ascending');
    }
    this.bucketsMs = Object.freeze([...b]);
    this.#bounds = Float64Array.from(b);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get requests(): number {
    return this.#requests;
  }

  /** A request began (its head is complete and it goes to the tree). */
  requestStarted(): void {
    if (this.#inFlight > 0) this.#busyStarts++;
    this.#inFlight++;
  }

  /**
   * A request ended: its mount (`postern.mount`, `` when none matched), the status sent (0 when
   * none was), and how long it took. Call exactly once per requestStarted().
   */
  requestFinished(mount: string, status: number, durationMs: number): void {
    if (this.#inFlight > 0) this.#inFlight--;
    this.#requests++;
    let m = this.#mounts.get(mount);
    if (m === undefined) m = this.#newMount(mount);
    m.requests++;
    const cls = status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : 5;
    m.statusClasses[cls]!++;
    const d = durationMs > 0 ? durationMs : 0;
    m.sumMs += d;
    const bounds = this.#bounds;
    const n = bounds.length;
    let i = 0;
    // Linear: most requests land in the first few buckets, and there are only 13.
    while (i < n && d > bounds[i]!) i++;
    m.buckets[i]!++;
  }

  connectionOpened(protocol: Protocol): void {
    const i = PROTOCOL_INDEX[protocol];
    this.#open[i]!++;
    this.#total[i]!++;
  }

  connectionClosed(protocol: Protocol): void {
    const i = PROTOCOL_INDEX[protocol];
    if (this.#open[i]! > 0) this.#open[i]!--;
  }

  /** Something was turned away; `reason` is a RejectReason (other text is counted too, capped). */
  rejected(reason: string): void {
    const n = this.#rejected.get(reason);
    if (n !== undefined) this.#rejected.set(reason, n + 1);
    else if (this.#rejected.size < MAX_REASONS) this.#rejected.set(reason, 1);
    else this.#rejected.set(OTHER_REASON, (this.#rejected.get(OTHER_REASON) ?? 0) + 1);
  }

  /** The counters now, as plain data (cheap: call it per status request or IPC collect, not per request). */
  snapshot(): MetricsSnapshot {
    const elu = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(elu, this.#elu);
    this.#elu = elu;
    const mounts: MountSnapshot[] = [];
    for (const [mount, m] of this.#mounts) {
      mounts.push({ mount, requests: m.requests, statusClasses: Array.from(m.statusClasses), buckets: Array.from(m.buckets), sumMs: m.sumMs });
    }
    return {
      kind: 'postern.metrics',
      version: 1,
      worker: this.worker,
      pid: process.pid,
      startedAt: this.startedAt,
      takenAt: Date.now(),
      rssBytes: process.memoryUsage.rss(),
      eventLoopUtilization: Number.isFinite(since.utilization) ? since.utilization : 0,
      requests: this.#requests,
      inFlight: this.#inFlight,
      busyStarts: this.#busyStarts,
      connectionsOpen: counts(this.#open),
      connectionsTotal: counts(this.#total),
      rejected: Object.fromEntries(this.#rejected),
      bucketsMs: this.bucketsMs,
      mounts,
    };
  }

  #newMount(mount: string): MountCounters {
    const key = this.#mounts.size < MAX_MOUNTS ? mount : OTHER_MOUNT;
    let m = this.#mounts.get(key);
    if (m === undefined) {
      m = new MountCounters(this.#bounds.length);
      this.#mounts.set(key, m);
    }
    return m;
  }
}

function isCounts(v: unknown): v is ProtocolCounts {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return PROTOCOLS.every((p) => typeof o[p] === 'number');
}

function isNumbers(v: unknown, length?: number): v is number[] {
  return Array.isArray(v) && (length === undefined || v.length === length) && v.every((x) => typeof x === 'number');
}

/** True for a MetricsSnapshot as it arrives over IPC (the supervisor's `metrics: unknown`). */
export function isMetricsSnapshot(v: unknown): v is MetricsSnapshot {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  if (s['kind'] !== 'postern.metrics' || s['version'] !== 1) return false;
  for (const k of ['worker', 'pid', 'startedAt', 'takenAt', 'rssBytes', 'eventLoopUtilization', 'requests', 'inFlight', 'busyStarts']) {
    if (typeof s[k] !== 'number') return false;
  }
  if (!isCounts(s['connectionsOpen']) || !isCounts(s['connectionsTotal'])) return false;
  if (typeof s['rejected'] !== 'object' || s['rejected'] === null) return false;
  const bounds = s['bucketsMs'];
  if (!isNumbers(bounds) || !Array.isArray(s['mounts'])) return false;
  return (s['mounts'] as unknown[]).every((m) => {
    if (typeof m !== 'object' || m === null) return false;
    const o = m as Record<string, unknown>;
    return typeof o['mount'] === 'string' && typeof o['requests'] === 'number' && typeof o['sumMs'] === 'number' &&
      isNumbers(o['statusClasses'], STATUS_CLASSES.length) && isNumbers(o['buckets'], bounds.length + 1);
  });
}

/** Pool-wide totals of several workers' snapshots. */
export interface MergedMetrics {
  readonly workers: number;
  readonly requests: number;
  readonly inFlight: number;
  readonly busyStarts: number;
  /** Workers with at least one request in flight when snapshotted. */
  readonly busyWorkers: number;
  readonly rssBytes: number;
  readonly connectionsOpen: ProtocolCounts;
  readonly connectionsTotal: ProtocolCounts;
  readonly rejected: Readonly<Record<string, number>>;
  readonly bucketsMs: readonly number[];
  /** Per mount, summed over the workers, sorted by mount. */
  readonly mounts: readonly MountSnapshot[];
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Sums snapshots (one per worker). Histograms merge bucket by bucket; a snapshot whose bucket bounds
 * differ from the first one's (a mixed-version pool mid-reload) keeps its counts and sums but its
 * buckets are left out, rather than being merged wrongly.
 */
export function mergeSnapshots(snapshots: readonly MetricsSnapshot[]): MergedMetrics {
  const bucketsMs = snapshots[0]?.bucketsMs ?? LATENCY_BUCKETS_MS;
  const open = { fastcgi: 0, scgi: 0, uwsgi: 0, http: 0 };
  const total = { fastcgi: 0, scgi: 0, uwsgi: 0, http: 0 };
  const rejected: Record<string, number> = {};
  const mounts = new Map<string, { requests: number; statusClasses: number[]; buckets: number[]; sumMs: number }>();
  let requests = 0;
  let inFlight = 0;
  let busyStarts = 0;
  let busyWorkers = 0;
  let rssBytes = 0;
  for (const s of snapshots) {
    requests += s.requests;
    inFlight += s.inFlight;
    busyStarts += s.busyStarts;
    rssBytes += s.rssBytes;
    if (s.inFlight > 0) busyWorkers++;
    for (const p of PROTOCOLS) {
      open[p] += s.connectionsOpen[p];
      total[p] += s.connectionsTotal[p];
    }
    for (const [reason, n] of Object.entries(s.rejected)) rejected[reason] = (rejected[reason] ?? 0) + n;
    const comparable = sameBounds(s.bucketsMs, bucketsMs);
    for (const m of s.mounts) {
      let into = mounts.get(m.mount);
      if (into === undefined) {
        into = { requests: 0, statusClasses: new Array<number>(STATUS_CLASSES.length).fill(0), buckets: new Array<number>(bucketsMs.length + 1).fill(0), sumMs: 0 };
        mounts.set(m.mount, into);
      }
      into.requests += m.requests;
      into.sumMs += m.sumMs;
      for (let i = 0; i < into.statusClasses.length; i++) into.statusClasses[i]! += m.statusClasses[i] ?? 0;
      if (comparable) for (let i = 0; i < into.buckets.length; i++) into.buckets[i]! += m.buckets[i] ?? 0;
    }
  }
  return {
    workers: snapshots.length,
    requests,
    inFlight,
    busyStarts,
    busyWorkers,
    rssBytes,
    connectionsOpen: open,
    connectionsTotal: total,
    rejected,
    bucketsMs,
    mounts: [...mounts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([mount, m]) => ({ mount, ...m })),
  };
}

/**
 * A quantile (0–1) estimated from a histogram, interpolating linearly inside the bucket it falls
 * in (as Prometheus' histogram_quantile does). The +Inf bucket answers with the last finite bound.
 * NaN when there is nothing counted.
 */
export function quantileMs(q: number, buckets: readonly number[], bucketsMs: readonly number[]): number {
  let total = 0;
  for (const c of buckets) total += c;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const c = buckets[i]!;
    if (seen + c >= rank && c > 0) {
      if (i >= bucketsMs.length) return bucketsMs[bucketsMs.length - 1] ?? Number.NaN;
      const lo = i === 0 ? 0 : bucketsMs[i - 1]!;
      const hi = bucketsMs[i]!;
      return lo + (hi - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return bucketsMs[bucketsMs.length - 1] ?? Number.NaN;
}
