// Supervisor options, from the master's side: the policy knobs (names as the team brief fixes them,
// units in the names), their defaults, validation into one frozen form, and the supervisor's error codes.

import { availableParallelism } from 'node:os';

export interface SupervisorPolicy {
  /** Whole-request deadline the server enforces; the master kills a worker stuck this + killGraceMs. 0 = off. */
  readonly requestTimeoutMs: number;
  readonly killGraceMs: number;
  /** How long a draining worker may take to finish in-flight requests (then closeNow, then SIGKILL after killGraceMs). */
  readonly shutdownTimeoutMs: number;
  /** After draining, how long a worker may take to close its apps (shutdown hooks) before exiting. */
  readonly appCloseTimeoutMs: number;
  readonly maxRequestsPerWorker: number;
  readonly maxRequestsJitter: number;
  readonly maxWorkerRssMiB: number;
  readonly maxWorkerLifetimeMs: number;
  /** Workers report in this often; a loop silent for 3 intervals (at least) is late. */
  readonly heartbeatIntervalMs: number;
  /** A worker not ready (listening) this long after spawn failed to start. */
  readonly workerStartTimeoutMs: number;
  /** First respawn delay after a fast death; doubles per fast death in the window. */
  readonly respawnDelayMs: number;
  readonly respawnDelayMaxMs: number;
  /** A worker that dies younger than this died fast (counts towards the crash-loop brake). */
  readonly fastDeathMs: number;
  /** This many fast deaths within crashLoopWindowMs engage the brake; 0 = never brake. */
  readonly crashLoopDeaths: number;
  readonly crashLoopWindowMs: number;
  /** On-demand pool: a worker with no request in flight this long is drained and stopped. */
  readonly idleWorkerTimeoutMs: number;
}

export const SUPERVISOR_DEFAULTS: SupervisorPolicy = Object.freeze({
  requestTimeoutMs: 0,
  killGraceMs: 5000,
  shutdownTimeoutMs: 30_000,
  appCloseTimeoutMs: 5000,
  maxRequestsPerWorker: 0,
  maxRequestsJitter: 0,
  maxWorkerRssMiB: 0,
  maxWorkerLifetimeMs: 0,
  heartbeatIntervalMs: 1000,
  workerStartTimeoutMs: 30_000,
  respawnDelayMs: 100,
  respawnDelayMaxMs: 10_000,
  fastDeathMs: 10_000,
  crashLoopDeaths: 5,
  crashLoopWindowMs: 60_000,
  idleWorkerTimeoutMs: 10_000,
});

export const SUPERVISOR_ERRORS = {
  /** An option is out of range (same code as the server's option errors). */
  BAD_OPTION: 'POSTERN_ERR_BAD_OPTION',
  /** The first workers did not all come up: one exited or timed out before listening. */
  WORKER_START: 'POSTERN_ERR_WORKER_START',
  /** A reload was refused (config did not resolve, a new worker failed): the previous workers serve on. */
  RELOAD_FAILED: 'POSTERN_ERR_RELOAD_FAILED',
  /** reload() after stop() began. */
  STOPPED: 'POSTERN_ERR_SUPERVISOR_STOPPED',
  /** runWorker() in a process the supervisor did not start. */
  NOT_A_WORKER: 'POSTERN_ERR_NOT_A_WORKER',
} as const;

export type SupervisorErrorCode = (typeof SUPERVISOR_ERRORS)[keyof typeof SUPERVISOR_ERRORS];

export class SupervisorError extends Error {
  readonly code: SupervisorErrorCode;
  constructor(code: SupervisorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SupervisorError';
    this.code = code;
  }
}

function int(o: Partial<SupervisorPolicy>, name: keyof SupervisorPolicy, min: number): number {
  const v = o[name] ?? SUPERVISOR_DEFAULTS[name];
  if (!Number.isSafeInteger(v) || v < min) {
    throw new SupervisorError(SUPERVISOR_ERRORS.BAD_OPTION, `option ${name}: must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

/** Fills defaults and validates; unknown keys are ignored, so a whole resolved config may be passed. */
export function resolvePolicy(o: Partial<SupervisorPolicy>): SupervisorPolicy {
  const p: SupervisorPolicy = {
    requestTimeoutMs: int(o, 'requestTimeoutMs', 0),
    killGraceMs: int(o, 'killGraceMs', 0),
    shutdownTimeoutMs: int(o, 'shutdownTimeoutMs', 0),
    appCloseTimeoutMs: int(o, 'appCloseTimeoutMs', 0),
    maxRequestsPerWorker: int(o, 'maxRequestsPerWorker', 0),
    maxRequestsJitter: int(o, 'maxRequestsJitter', 0),
    maxWorkerRssMiB: int(o, 'maxWorkerRssMiB', 0),
    maxWorkerLifetimeMs: int(o, 'maxWorkerLifetimeMs', 0),
    heartbeatIntervalMs: int(o, 'heartbeatIntervalMs', 10),
    workerStartTimeoutMs: int(o, 'workerStartTimeoutMs', 1),
    respawnDelayMs: int(o, 'respawnDelayMs', 0),
    respawnDelayMaxMs: int(o, 'respawnDelayMaxMs', 0),
    fastDeathMs: int(o, 'fastDeathMs', 0),
    crashLoopDeaths: int(o, 'crashLoopDeaths', 0),
    crashLoopWindowMs: int(o, 'crashLoopWindowMs', 0),
    idleWorkerTimeoutMs: int(o, 'idleWorkerTimeoutMs', 1),
  };
  return Object.freeze(p);
}

/** `auto` = one worker per CPU the process may use. */
export function resolveWorkerCount(value: number | 'auto'): number {
  const n = value === 'auto' ? availableParallelism() : value;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new SupervisorError(SUPERVISOR_ERRORS.BAD_OPTION, `option workers: must be an integer >= 1 or auto, got ${String(value)}`);
  }
  return n;
}
