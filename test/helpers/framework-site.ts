// What the framework tests share, from the client's side: one request's answer as the comparison
// sees it (status, type, body with the per-run host:port normalised), and a build folder nginx's
// workers can read.
import { chmodSync, cpSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Answer {
  readonly status: number;
  readonly type: string | null;
  readonly location: string | null;
  readonly body: string;
}

/**
 * One request, `redirect: 'manual'`. The only per-run fact normalised is the origin the app was
 * reached at (`127.0.0.1:<port>`, which apps echo from the Host header), replaced with `HOST`.
 */
export async function ask(base: string, path: string, init: RequestInit = {}): Promise<Answer> {
  const r = await fetch(`${base}${path}`, { redirect: 'manual', ...init, signal: AbortSignal.timeout(60_000) });
  const host = new URL(base).host;
  const body = (await r.text()).replaceAll(host, 'HOST');
  return { status: r.status, type: r.headers.get('content-type'), location: r.headers.get('location'), body };
}

function othersCanEnter(path: string): boolean {
  for (let p = path; ; p = dirname(p)) {
    if ((statSync(p).mode & 0o005) !== 0o005) return false;
    if (dirname(p) === p) return true;
  }
}

/**
 * The fixture folder for nginx's `root`: the folder itself when every other user can read it (nginx
 * workers run as www-data when the tests run as root), else a world-readable copy of the given
 * subfolders under the same names.
 */
export function readableRoot(dir: string, subfolders: readonly string[]): { root: string; copied: boolean } {
  if (othersCanEnter(dir) && subfolders.every((s) => othersCanEnter(join(dir, s)))) return { root: dir, copied: false };
  const root = mkdtempSync(join(tmpdir(), 'postern-static-'));
  chmodSync(root, 0o755);
  for (const s of subfolders) cpSync(join(dir, s), join(root, s), { recursive: true });
  return { root, copied: true };
}
