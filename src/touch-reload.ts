// Reload on touch, from the operator's side: Passenger's `touch tmp/restart.txt`, for hosts where
// the app's owner cannot signal the process. A change of the file's modification time (or the file
// appearing) asks for the same graceful reload as SIGHUP.

import { unwatchFile, watchFile, type Stats } from 'node:fs';

// Once a second: a touch is noticed within about a second, for one stat() call per second.
export const TOUCH_POLL_MS = 1000;

/** Whether going from `prev` to `curr` is a touch: the file appeared, or its mtime changed. */
export function touched(prev: Pick<Stats, 'mtimeMs'>, curr: Pick<Stats, 'mtimeMs'>): boolean {
  // watchFile reports a missing file as mtimeMs 0; its removal is not a touch.
  return curr.mtimeMs !== 0 && curr.mtimeMs !== prev.mtimeMs;
}

export interface TouchWatch {
  stop(): void;
}

/** Calls `onTouch` on each touch of `file` until stopped. Does not keep the process alive. */
export function watchTouch(file: string, onTouch: () => void): TouchWatch {
  const listener = (curr: Stats, prev: Stats): void => {
    if (touched(prev, curr)) onTouch();
  };
  watchFile(file, { interval: TOUCH_POLL_MS, persistent: false }, listener);
  return { stop: () => { unwatchFile(file, listener); } };
}
