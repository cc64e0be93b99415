// One benchmark at a time on this machine, from the benchmark's side: runs that overlap measure
// each other (two wrk loads on 2 cores). A lock file holding the owner's pid; a run waits for the
// current one (up to a bound), and a lock left by a process that is gone is taken over.
import { openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCK = join(tmpdir(), 'postern-bench.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the machine-wide benchmark lock, waiting up to `maxWaitMs`; returns its release. */
export async function benchLock(maxWaitMs = 20 * 60_000): Promise<() => void> {
  const deadline = Date.now() + maxWaitMs;
  let told = false;
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(LOCK, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: number;
    try {
      owner = Number(readFileSync(LOCK, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (!Number.isInteger(owner) || owner <= 0 || !alive(owner)) {
      rmSync(LOCK, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another benchmark (pid ${owner}) still holds ${LOCK}`);
    if (!told) {
      console.error(`waiting for the benchmark in pid ${owner} to finish (${LOCK})`);
      told = true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
