// CPU time from /proc, from the benchmark's side: a backend's (with its children) and wrk's. On a
// shared machine CPU per request is steadier than req/s, which also moves with whatever else runs.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100);

/**
 * CPU time (user + system, µs) of a process and its descendants (postern's workers, uWSGI's and
 * PHP-FPM's children, nginx's worker).
 */
export function treeCpuUs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  let ticks = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        if (kids !== '') stack.push(...kids.split(' ').map(Number));
      }
    } catch {
      // exited meanwhile
    }
  }
  return ticks * TICK_US;
}

/** CPU time (µs) of this process's waited-for children: wrk, once it has been reaped. */
export function reapedChildrenCpuUs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * TICK_US;
}
