// wrk, from the benchmark's side: its command line and what its report says.

export interface WrkReport {
  readonly rps: number;
  readonly requests: number;
  readonly p50: number;
  readonly p99: number;
  /** Non-2xx/3xx answers plus socket errors. */
  readonly errors: number;
}

/** One thread, `conns` connections for `secs` seconds, with latency percentiles. */
export function wrkArgs(url: string, secs: number, conns: number, script: string | undefined): string[] {
  return ['-t1', `-c${conns}`, `-d${secs}s`, '--latency', ...(script === undefined ? [] : ['-s', script]), url];
}

export function parseWrk(out: string): WrkReport {
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 'NaN');
  const ms = (pct: string): number => {
    const m = new RegExp(`${pct}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m === null ? NaN : Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's']);
  };
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock === null ? 0 : sock.slice(1).reduce((s, x) => s + Number(x), 0);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/), requests: num(/(\d+) requests in/), p50: ms('50'), p99: ms('99'),
    errors: (Number.isNaN(non2xx) ? 0 : non2xx) + sockErrors,
  };
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
