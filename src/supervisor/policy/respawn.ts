// Respawn policy, from the master's side: when a dead worker may be replaced (exponential backoff
// after fast deaths) and when to stop trying (the crash-loop brake). A pure function of state and clock.

export interface RespawnOptions {
  readonly respawnDelayMs: number;
  readonly respawnDelayMaxMs: number;
  readonly fastDeathMs: number;
  readonly crashLoopDeaths: number;
  readonly crashLoopWindowMs: number;
}

export interface RespawnState {
  /** When recent fast deaths happened (master clock, ms), oldest first, pruned to the window. */
  readonly fastDeaths: readonly number[];
  /** Set once the brake engaged; only `releaseBrake` (a reload) clears it. */
  readonly braked: boolean;
}

export const RESPAWN_INITIAL: RespawnState = Object.freeze({ fastDeaths: Object.freeze([]), braked: false });

export interface Death {
  readonly atMs: number;
  readonly uptimeMs: number;
}

function prune(times: readonly number[], nowMs: number, windowMs: number): number[] {
  return times.filter((t) => nowMs - t < windowMs);
}

/**
 * Records an unplanned worker exit. Only fast deaths count: a worker that served for a while and
 * then crashed is bad luck, not a crash loop. Like systemd's StartLimitBurst, the brake does not
 * release by itself: a crash loop is a deploy to fix, and respawning forever only hides it.
 */
export function recordDeath(state: RespawnState, death: Death, opts: RespawnOptions): RespawnState {
  const kept = prune(state.fastDeaths, death.atMs, opts.crashLoopWindowMs);
  if (death.uptimeMs >= opts.fastDeathMs) return kept.length === state.fastDeaths.length ? state : { fastDeaths: kept, braked: state.braked };
  kept.push(death.atMs);
  const braked = state.braked || (opts.crashLoopDeaths > 0 && kept.length >= opts.crashLoopDeaths);
  return { fastDeaths: kept, braked };
}

/**
 * The earliest time (master clock) a replacement may be spawned, or null while braked. The delay
 * doubles with each fast death still in the window (PM2's exp_backoff_restart_delay, without its
 * uptime reset: the window slides, so a quiet spell resets it).
 */
export function spawnNotBefore(state: RespawnState, nowMs: number, opts: RespawnOptions): number | null {
  if (state.braked) return null;
  const recent = prune(state.fastDeaths, nowMs, opts.crashLoopWindowMs);
  const last = recent.at(-1);
  if (last === undefined) return nowMs;
  const delay = Math.min(opts.respawnDelayMaxMs, opts.respawnDelayMs * 2 ** (recent.length - 1));
  return last + delay;
}

/** A reload (the operator's "I fixed it") starts from a clean slate. */
export function releaseBrake(): RespawnState {
  return RESPAWN_INITIAL;
}
