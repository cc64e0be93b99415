// Recycling policy, from the master's side: replace a worker after N requests (plus jitter, like
// uWSGI max-requests-delta / gunicorn max_requests_jitter), past a memory cap, or past a lifetime.
// Pure functions of the worker's last report and the clock.

export interface RecycleOptions {
  readonly maxRequestsPerWorker: number;
  readonly maxRequestsJitter: number;
  readonly maxWorkerRssMiB: number;
  readonly maxWorkerLifetimeMs: number;
}

/**
 * The request limit for one new worker; 0 = none. `random01` is in [0, 1): the jitter spreads
 * workers started together so they do not all recycle at the same moment.
 */
export function requestLimit(opts: RecycleOptions, random01: number): number {
  if (opts.maxRequestsPerWorker <= 0) return 0;
  return opts.maxRequestsPerWorker + Math.floor(random01 * (opts.maxRequestsJitter + 1));
}

export interface RecycleInput {
  readonly nowMs: number;
  readonly spawnedAtMs: number;
  /** Requests the worker has finished. */
  readonly requests: number;
  readonly rssBytes: number;
  /** From `requestLimit` at spawn; 0 = none. */
  readonly requestLimit: number;
}

export type RecycleReason =
  | { readonly reason: 'requests'; readonly requests: number; readonly limit: number }
  | { readonly reason: 'memory'; readonly rssMiB: number; readonly limitMiB: number }
  | { readonly reason: 'lifetime'; readonly ageMs: number; readonly limitMs: number };

const MIB = 1024 * 1024;

/** Why the worker is due for replacement, or null. Memory first: it is the one that can hurt the host. */
export function recycleDue(input: RecycleInput, opts: RecycleOptions): RecycleReason | null {
  if (opts.maxWorkerRssMiB > 0 && input.rssBytes > opts.maxWorkerRssMiB * MIB) {
    return { reason: 'memory', rssMiB: Math.round(input.rssBytes / MIB), limitMiB: opts.maxWorkerRssMiB };
  }
  if (input.requestLimit > 0 && input.requests >= input.requestLimit) {
    return { reason: 'requests', requests: input.requests, limit: input.requestLimit };
  }
  const ageMs = input.nowMs - input.spawnedAtMs;
  if (opts.maxWorkerLifetimeMs > 0 && ageMs >= opts.maxWorkerLifetimeMs) {
    return { reason: 'lifetime', ageMs, limitMs: opts.maxWorkerLifetimeMs };
  }
  return null;
}
