// The on-demand pool (PHP-FPM's `pm = ondemand`), from the master's side: how many workers are
// wanted now, between 0 and `workers`, and which idle ones to stop. A pure function of what the
// workers last reported and the clock; the pool policy (pool.ts) then starts and drains to match.
//
// The rules:
//   - a connection the master holds (no worker serves yet) wants at least one worker;
//   - grow by one when every serving worker is busy (its last report had a request in flight) and
//     none is starting: one at a time, so a burst does not start `workers` processes at once;
//   - a serving worker with nothing in flight for idleWorkerTimeoutMs is stopped, down to none,
//     unless the master holds connections for it.

export interface DemandWorker {
  readonly id: number;
  readonly state: 'starting' | 'ready' | 'stopping';
  /** Of the current generation and not chosen for replacement: one the pool counts. */
  readonly counted: boolean;
  /** Requests in flight at its last report (or since: the master counts a connection it passed on). */
  readonly inflight: number;
  /** When it last had a request in flight or finished one (ms, the master's clock). */
  readonly lastBusyAtMs: number;
}

export interface DemandInput {
  readonly nowMs: number;
  /** Workers wanted so far. */
  readonly want: number;
  /** `workers`: the ceiling. */
  readonly max: number;
  /** Connections the master accepted and holds for a worker. */
  readonly held: number;
  readonly idleWorkerTimeoutMs: number;
  readonly workers: readonly DemandWorker[];
}

export interface DemandDecision {
  readonly want: number;
  /** Idle workers to retire (drained gracefully by the pool). */
  readonly idle: readonly number[];
  readonly grew: boolean;
}

export function planDemand(input: DemandInput): DemandDecision {
  const counted = input.workers.filter((w) => w.counted && w.state !== 'stopping');
  const serving = counted.filter((w) => w.state === 'ready');
  const starting = counted.length - serving.length;
  let want = Math.min(Math.max(input.want, counted.length), input.max);
  let grew = false;
  if (input.held > 0 && want === 0) {
    want = 1;
    grew = true;
  }
  if (starting === 0 && serving.length > 0 && serving.length === want && want < input.max && serving.every((w) => w.inflight > 0)) {
    want++;
    grew = true;
  }
  const idle: number[] = [];
  if (input.held === 0 && !grew) {
    for (const w of serving) {
      if (w.inflight === 0 && input.nowMs - w.lastBusyAtMs >= input.idleWorkerTimeoutMs) idle.push(w.id);
    }
    want -= idle.length;
  }
  return { want: Math.max(0, want), idle, grew };
}
