// Log files from the writer's side: opened for append (so several workers can share one file and
// logrotate can move it), and closed once what was handed to them is on disk.

import { createWriteStream, openSync, type WriteStream } from 'node:fs';

/**
 * Opens `path` for append synchronously, so a bad path fails at startup (or at reopen) with a
 * coded error (`ENOENT`, `EACCES`) instead of a later 'error' event. O_APPEND keeps each write of
 * whole lines intact when several workers append to the same file.
 */
export function openAppend(path: string, onError: (stream: WriteStream, err: Error) => void): WriteStream {
  const fd = openSync(path, 'a');
  const s = createWriteStream(path, { fd, flags: 'a', autoClose: true });
  s.on('error', (err) => { onError(s, err); });
  return s;
}

/** Ends a file stream; resolves once everything written to it reached the file and it is closed. */
export function endFile(s: WriteStream): Promise<void> {
  if (s.destroyed || s.closed) return Promise.resolve();
  return new Promise((resolve) => {
    s.once('close', () => resolve());
    s.end();
  });
}
