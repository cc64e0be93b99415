// A keep-alive load of GETs and POSTs, from a client's side, for the reload test and benchmark:
// each loop sends on a pooled connection and never retries, so any connection postern (or the
// front server) drops mid-request shows up as a failure with its reason.
import { Agent, request } from 'node:http';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LoadTarget {
  readonly name: string;
  readonly port: number;
}

export interface LoadResult {
  readonly name: string;
  readonly ok: number;
  readonly failures: string[];
  /** Completed requests per 100 ms bucket, from the load's start. */
  readonly perBucket: number[];
}

const POST_BODY = Buffer.alloc(2048, 0x61);

/** One request; resolves with an error text, or undefined for a 200 whose body is `ok <pid> <bytes>`. */
function once(agent: Agent, port: number, post: boolean, seq: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port, agent, method: post ? 'POST' : 'GET', path: `/r${String(seq)}`,
      headers: post ? { 'Content-Type': 'application/octet-stream', 'Content-Length': String(POST_BODY.length) } : {},
      timeout: 20_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => resolve(`${post ? 'POST' : 'GET'} response error ${err.message}`));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('latin1');
        const want = post ? ` ${String(POST_BODY.length)}` : ' 0';
        if (res.statusCode !== 200) resolve(`${post ? 'POST' : 'GET'} status ${String(res.statusCode)}: ${body.slice(0, 120)}`);
        else if (!body.startsWith('ok ') || !body.endsWith(want)) resolve(`${post ? 'POST' : 'GET'} body ${body.slice(0, 80)}`);
        else resolve(undefined);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`${post ? 'POST' : 'GET'} ${err.code ?? ''} ${err.message}`));
    req.end(post ? POST_BODY : undefined);
  });
}

/**
 * Runs `conns` loops against `target` (keep-alive, alternating GET and POST, or POSTs only) until
 * `until()` says stop. Bounded by the caller's condition and each request's 20 s timeout.
 */
export async function runLoad(target: LoadTarget, conns: number, until: () => boolean, mix: 'get-post' | 'post' = 'get-post'): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: conns });
  const failures: string[] = [];
  const perBucket: number[] = [];
  const t0 = Date.now();
  let ok = 0;
  let seq = 0;
  await Promise.all(Array.from({ length: conns }, async (_, k) => {
    for (let i = k; !until(); i++) {
      const failed = await once(agent, target.port, mix === 'post' || i % 2 === 1, seq++);
      if (failed === undefined) {
        ok++;
        const b = Math.floor((Date.now() - t0) / 100);
        perBucket[b] = (perBucket[b] ?? 0) + 1;
      } else {
        failures.push(failed);
      }
    }
  }));
  agent.destroy();
  for (let i = 0; i < perBucket.length; i++) perBucket[i] ??= 0;
  return { name: target.name, ok, failures, perBucket };
}

/**
 * The app every worker serves: reads the whole body, waits `?ms=N` if asked, and answers
 * `ok <pid> <bytes read>`. Written
 * where any user can read it (nginx and Apache may run as www-data; postern's workers as root).
 */
export function bodyCountingApp(): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-reload-app-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'app.mjs');
  writeFileSync(path, `const app = async (environ, start) => {
  let n = 0;
  for await (const chunk of environ['postern.input']) n += chunk.length;
  const ms = Number(new URLSearchParams(environ.QUERY_STRING).get('ms') ?? '0');
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  start('200 OK', [['Content-Type', 'text/plain']]);
  return 'ok ' + process.pid + ' ' + n;
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
export default app;
`, { mode: 0o644 });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Lines of an nginx or Apache error log at warn level or above (nginx `[warn]`, Apache `[proxy_fcgi:error]`). */
export function problemLines(log: string): string[] {
  return log.split('\n').filter((l) => /\[(?:[a-z_0-9]+:)?(?:warn|error|crit|alert|emerg)\]/.test(l));
}
