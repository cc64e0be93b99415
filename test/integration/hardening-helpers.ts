// Shared pieces of the hardening tests, from a misbehaving front server's side: a request as raw
// wire bytes for each protocol, raw exchanges that report how the server ended the connection,
// FastCGI record parsing of a raw reply, and small timing helpers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeBeginRequest, encodeParams, encodeStdin, encodeStdinEnd, FastCgiRecordAssembler, FastCgiRecordReader, FCGI_TYPE, type FastCgiRecord } from '../../protocols/fastcgi/index.ts';
import { encodeScgiRequest, scgiParams } from '../../protocols/scgi/index.ts';
import { encodeUwsgiRequest } from '../../protocols/uwsgi/index.ts';
import type { Protocol } from '../../src/app/types.ts';
import { parseResponse, type ParsedResponse, type Target } from '../helpers/clients.ts';

export const PROTOCOLS: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi', 'http'];

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RawSpec {
  readonly method?: string;
  /** Request target, `/path?query`. */
  readonly uri: string;
  readonly body?: Buffer;
  /** Extra params (gateways) or header lines `Name: value` (HTTP, given as [name, value]). */
  readonly extra?: ReadonlyArray<readonly [string, string]>;
  /** CONTENT_LENGTH to declare; default the body's length (none when there is no body). */
  readonly contentLength?: string;
  readonly keepConn?: boolean;
}

/** Gateway params for `spec`, nginx-like (REQUEST_URI carries the path). */
export function gatewayParams(spec: RawSpec): Array<readonly [string, string]> {
  const q = spec.uri.indexOf('?');
  const length = spec.contentLength ?? (spec.body === undefined ? '' : String(spec.body.length));
  return [
    ['REQUEST_METHOD', spec.method ?? 'GET'],
    ['REQUEST_URI', spec.uri],
    ['QUERY_STRING', q < 0 ? '' : spec.uri.slice(q + 1)],
    ['CONTENT_LENGTH', length],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['SERVER_NAME', 'example.test'],
    ['SERVER_PORT', '80'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ...(spec.extra ?? []),
  ];
}

/** The whole request as `protocol` carries it on the wire (FastCGI: request id 1). */
export function rawRequest(protocol: Protocol, spec: RawSpec): Buffer {
  const body = spec.body ?? Buffer.alloc(0);
  switch (protocol) {
    case 'fastcgi': {
      const parts = [encodeBeginRequest(1, 1, spec.keepConn ?? false), ...encodeParams(1, gatewayParams(spec))];
      if (body.length > 0) parts.push(...encodeStdin(1, body));
      parts.push(encodeStdinEnd(1));
      return Buffer.concat(parts);
    }
    case 'scgi': {
      const params = gatewayParams(spec).filter(([n]) => n !== 'CONTENT_LENGTH');
      const withLength = scgiParams(params, body.length);
      if (spec.contentLength !== undefined) withLength[0] = ['CONTENT_LENGTH', spec.contentLength];
      return encodeScgiRequest(withLength, body);
    }
    case 'uwsgi':
      return encodeUwsgiRequest(gatewayParams(spec), body);
    case 'http': {
      const lines = [`${spec.method ?? 'GET'} ${spec.uri} HTTP/1.1`, 'Host: example.test'];
      const length = spec.contentLength ?? (spec.body === undefined ? undefined : String(body.length));
      if (length !== undefined) lines.push(`Content-Length: ${length}`);
      if (spec.keepConn !== true) lines.push('Connection: close');
      for (const [n, v] of spec.extra ?? []) lines.push(`${n}: ${v}`);
      return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
    }
  }
}

export function dialRaw(target: Target): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = 'path' in target ? connect({ path: target.path }) : connect({ port: target.port, host: target.host ?? '127.0.0.1' });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export interface RawExchange {
  readonly bytes: Buffer;
  /** How the server ended it: 'end' (FIN after the reply), 'reset' (ECONNRESET), or 'close'. */
  readonly how: 'end' | 'reset' | 'close';
  readonly ms: number;
}

/** Sends `bytes` (all, or in the given pieces), collects everything until the connection closes. */
export async function exchange(target: Target, bytes: Buffer | readonly Buffer[], timeoutMs = 10_000): Promise<RawExchange> {
  const t0 = performance.now();
  const s = await dialRaw(target);
  const chunks: Buffer[] = [];
  let how: RawExchange['how'] = 'close';
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('end', () => {
    how = 'end';
    s.end();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${String(timeoutMs)} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    }, timeoutMs);
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') how = 'reset';
      else reject(err);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ bytes: Buffer.concat(chunks), how, ms: performance.now() - t0 });
    });
    if (Buffer.isBuffer(bytes)) s.write(bytes);
    else for (const b of bytes) s.write(b);
  });
}

/** FastCGI records in `bytes` (a whole reply). */
export function fcgiRecords(bytes: Buffer): FastCgiRecord[] {
  const out: FastCgiRecord[] = [];
  const reader = new FastCgiRecordReader(new FastCgiRecordAssembler(
    (r) => out.push({ type: r.type, requestId: r.requestId, content: Buffer.from(r.content), paddingLength: r.paddingLength }),
    (err) => { throw err; },
  ));
  reader.push(bytes);
  return out;
}

export interface ReplyView {
  readonly response: ParsedResponse | undefined;
  /** FastCGI: END_REQUEST's protocolStatus (-1 when none came). */
  readonly protocolStatus: number;
  readonly appStatus: number;
}

/** The reply of one request in `protocol`'s framing: the parsed head and body, plus FastCGI's END_REQUEST. */
export function reply(protocol: Protocol, bytes: Buffer): ReplyView {
  if (protocol !== 'fastcgi') {
    return { response: bytes.indexOf('\r\n\r\n') < 0 ? undefined : parseResponse(bytes), protocolStatus: -1, appStatus: -1 };
  }
  const records = fcgiRecords(bytes);
  const stdout = Buffer.concat(records.filter((r) => r.type === FCGI_TYPE.STDOUT).map((r) => r.content));
  const end = records.find((r) => r.type === FCGI_TYPE.END_REQUEST);
  return {
    response: stdout.indexOf('\r\n\r\n') < 0 ? undefined : parseResponse(stdout),
    protocolStatus: end?.content[4] ?? -1,
    appStatus: end === undefined ? -1 : end.content.readUInt32BE(0),
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

// ---- the real CLI in a child process ----------------------------------------------------------------

const here = fileURLToPath(import.meta.url);
const compiled = here.endsWith('.js');
export const ROOT = ((): string => {
  let dir = dirname(here);
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();

let launcherPath: string | undefined;

/**
 * What bin/postern.js does, against this run's build (build/src/cli.js compiled, src/cli.ts under
 * tsx), as a script file so supervised workers can re-run it; readable by everyone, so workers
 * that switched user (`--user`) can still load it.
 */
function launcher(): string {
  if (launcherPath !== undefined) return launcherPath;
  const dir = mkdtempSync(join(tmpdir(), 'postern-hardening-bin-'));
  chmodSync(dir, 0o755);
  const cliUrl = new URL(`../../src/cli.${compiled ? 'js' : 'ts'}`, import.meta.url).href;
  launcherPath = join(dir, 'postern.mjs');
  writeFileSync(launcherPath, `import { main } from ${JSON.stringify(cliUrl)};\nawait main(process.argv);\n`, { mode: 0o644 });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return launcherPath;
}

export function cliArgv(args: readonly string[]): string[] {
  return [...(compiled ? [] : ['--import', import.meta.resolve('tsx')]), launcher(), ...args];
}

/** The environment without the test runner's own POSTERN_* variables. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('POSTERN_') && k !== 'FCGI_WEB_SERVER_ADDRS') env[k] = v;
  return { ...env, ...extra };
}

export interface Cli {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code (128+n for a signal). */
  readonly exited: Promise<number>;
  /** `protocol → port` from the `… listening on …` lines, waited for. */
  listening(protocols: readonly string[], ms?: number): Promise<Map<string, number>>;
  /** Waits (bounded) until the output holds `text`. */
  waitFor(text: string | RegExp, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

export function startCli(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Cli {
  const child = spawn(process.execPath, cliArgv(args), { cwd: options.cwd ?? ROOT, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => { resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)); });
  });
  const waitFor = async (text: string | RegExp, ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (typeof text === 'string' ? !out.includes(text) : !text.test(out)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${String(text)} in the output:\n${out}`);
      await sleep(25);
    }
  };
  return {
    child,
    output: () => out,
    exited,
    async listening(protocols, ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = new Map<string, number>();
        for (const m of out.matchAll(/(fastcgi|scgi|uwsgi|http) listening on [^\s"]*:(\d+)/g)) found.set(m[1] ?? '', Number(m[2]));
        if (protocols.every((p) => found.has(p))) return found;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`postern did not report ${protocols.join(', ')} listening:\n${out}`);
        await sleep(25);
      }
    },
    waitFor,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs the CLI to completion. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, cliArgv(args), { cwd: ROOT, env: cleanEnv(env), encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Uid and gid lines of /proc/PID/status (real, effective, saved, fs). */
export function procIds(pid: number): { uid: number[]; gid: number[] } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const ids = (name: string): number[] => (new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).map(Number);
  return { uid: ids('Uid'), gid: ids('Gid') };
}

// ---- the fault app ------------------------------------------------------------------------------

/**
 * The misbehaving app of the fault and soak tests, as a module the CLI mounts: `/` answers
 * `ok <pid> <leaked>`; /leak?mib=N, /block?ms=N, /crash, /slow?ms=N and /big?mib=N misbehave.
 */
export const FAULT_APP = `// Each path misbehaves on demand; everything else answers "ok <pid>".
const held = [];
const app = async (environ, start) => {
  const q = new URLSearchParams(environ.QUERY_STRING);
  switch (environ.PATH_INFO) {
    case '/leak':
      // Touched memory, kept forever: RSS grows by this much per request.
      held.push(Buffer.alloc(Number(q.get('mib') ?? '1') * 1048576, 1));
      break;
    case '/block': {
      const until = Date.now() + Number(q.get('ms') ?? '1000');
      while (Date.now() < until) { /* the event loop is stuck */ }
      break;
    }
    case '/crash':
      setImmediate(() => { throw new Error('fault fixture: crashing on purpose'); });
      return new Promise(() => undefined);
    case '/slow':
      await new Promise((resolve) => setTimeout(resolve, Number(q.get('ms') ?? '100')));
      break;
    case '/big': {
      // N MiB in 64 KiB chunks, with backpressure; stops when the request is aborted.
      const signal = environ['postern.signal'];
      const chunk = Buffer.alloc(65536, 0x62);
      const chunks = Number(q.get('mib') ?? '1') * 16;
      start('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', String(chunks * 65536)]]);
      return (function* () { for (let i = 0; i < chunks && !signal.aborted; i++) yield chunk; })();
    }
  }
  start('200 OK', [['Content-Type', 'text/plain']]);
  return 'ok ' + process.pid + ' ' + held.length;
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
export default app;
`;

/** Writes the fault app where any user can read it; returns its path and a cleanup. */
export function faultApp(): { path: string; dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-faults-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'faults.mjs');
  writeFileSync(path, FAULT_APP, { mode: 0o644 });
  return { path, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

