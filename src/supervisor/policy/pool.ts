// Pool sequencing, from the master's side: given the workers and the current generation, what to
// do next so that a replacement is always up (listening) before the worker it replaces drains:
// startup, crash respawn, recycling (one worker at a time), reload (a whole generation), shrinking.
// A pure function of state and clock; the master applies the actions and calls it again.

export type PoolWorkerState = 'starting' | 'ready' | 'stopping';

export interface PoolWorker {
  readonly id: number;
  readonly generation: number;
  readonly state: PoolWorkerState;
  /** Chosen for replacement: it keeps serving until enough wanted workers are ready. */
  readonly retiring: boolean;
  /** The recycling policy says it is due. */
  readonly recycleDue: boolean;
  readonly spawnedAtMs: number;
}

export interface PoolInput {
  readonly nowMs: number;
  /** The generation new workers belong to; older ones are superseded (a reload). */
  readonly generation: number;
  readonly target: number;
  readonly workers: readonly PoolWorker[];
  /** From the respawn policy: earliest spawn time, null while the crash-loop brake holds. */
  readonly spawnNotBeforeMs: number | null;
  readonly workerStartTimeoutMs: number;
}

export type PoolAction =
  /** A starting worker took too long: kill it (it counts as a failed start). */
  | { readonly type: 'start-timeout'; readonly id: number }
  | { readonly type: 'retire'; readonly id: number; readonly why: 'recycle' | 'surplus' }
  | { readonly type: 'spawn'; readonly count: number }
  /** Spawning is held back by the respawn backoff: call again at this time. */
  | { readonly type: 'wait'; readonly untilMs: number }
  /** Stop accepting and finish in-flight requests, then exit. */
  | { readonly type: 'drain'; readonly id: number };

function isWanted(w: PoolWorker, generation: number): boolean {
  return w.generation === generation && !w.retiring;
}

export function reconcile(input: PoolInput): PoolAction[] {
  const actions: PoolAction[] = [];
  const gen = input.generation;
  const live: PoolWorker[] = [];
  for (const w of input.workers) {
    if (w.state === 'stopping') continue;
    if (w.state === 'starting' && input.nowMs - w.spawnedAtMs > input.workerStartTimeoutMs) {
      actions.push({ type: 'start-timeout', id: w.id });
      continue;
    }
    live.push(w);
  }
  const wanted = live.filter((w) => isWanted(w, gen));
  const unwanted = live.filter((w) => !isWanted(w, gen));

  // Shrinking (a reload to fewer workers): shed the ones not serving yet, then the oldest.
  if (wanted.length > input.target) {
    const order = [...wanted].sort((a, b) => rank(a) - rank(b) || a.spawnedAtMs - b.spawnedAtMs);
    for (const w of order.slice(0, wanted.length - input.target)) {
      actions.push({ type: 'retire', id: w.id, why: 'surplus' });
      wanted.splice(wanted.indexOf(w), 1);
      unwanted.push(w);
    }
  }

  // Recycling one worker at a time, only in a settled pool: a full set of ready workers, no reload
  // or other replacement under way, spawning allowed (a braked pool keeps what it has).
  const settled = unwanted.length === 0 && wanted.length === input.target && wanted.every((w) => w.state === 'ready');
  if (settled && input.spawnNotBeforeMs !== null) {
    const due = wanted.filter((w) => w.recycleDue).sort((a, b) => a.spawnedAtMs - b.spawnedAtMs)[0];
    if (due !== undefined) {
      actions.push({ type: 'retire', id: due.id, why: 'recycle' });
      wanted.splice(wanted.indexOf(due), 1);
      unwanted.push(due);
    }
  }

  const missing = input.target - wanted.length;
  if (missing > 0 && input.spawnNotBeforeMs !== null) {
    if (input.nowMs >= input.spawnNotBeforeMs) actions.push({ type: 'spawn', count: missing });
    else actions.push({ type: 'wait', untilMs: input.spawnNotBeforeMs });
  }

  // A superseded worker drains only once the full wanted set is ready, so capacity never dips;
  // one that never got to serve can go at once.
  const wantedReady = wanted.filter((w) => w.state === 'ready').length;
  for (const w of unwanted) {
    if (w.state === 'starting' || wantedReady >= input.target) actions.push({ type: 'drain', id: w.id });
  }
  return actions;
}

function rank(w: PoolWorker): number {
  return w.state === 'starting' ? 0 : 1;
}
