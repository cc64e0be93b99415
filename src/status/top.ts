// `postern status [URL]`, from the operator's terminal: fetches the status endpoint's JSON and
// draws a refreshing table of workers and mounts (in the manner of uwsgitop).

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Writable } from 'node:stream';
import { quantileMs, STATUS_CLASSES } from './metrics.ts';
import { isStatusReport, type StatusReport } from './report.ts';

export interface StatusTopOptions {
  /** Refresh interval; ignored with `once`. */
  readonly intervalMs: number;
  /** Draw one table and resolve (scripts, tests); a fetch failure then rejects. */
  readonly once: boolean;
  readonly out: Writable;
  /** Stops the refresh loop (the CLI passes one aborted on SIGINT). */
  readonly signal?: AbortSignal;
  /** Per fetch; default 5000. */
  readonly timeoutMs?: number;
}

/** Codes on the errors runStatusTop rejects with. */
export const STATUS_TOP_ERRORS = {
  FETCH: 'POSTERN_ERR_STATUS_FETCH',
  HTTP: 'POSTERN_ERR_STATUS_HTTP',
  BAD_REPORT: 'POSTERN_ERR_STATUS_BAD_REPORT',
  BAD_URL: 'POSTERN_ERR_STATUS_URL',
} as const;

export class StatusTopError extends Error {
  readonly code: (typeof STATUS_TOP_ERRORS)[keyof typeof STATUS_TOP_ERRORS];
  constructor(code: StatusTopError['code'], message: string) {
    super(message);
    this.name = 'StatusTopError';
    this.code = code;
  }
}

/** GETs the report as JSON (`Accept: application/json`, `?format=json` is not needed). */
export function fetchStatus(url: string, timeoutMs = 5000): Promise<StatusReport> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new StatusTopError(STATUS_TOP_ERRORS.BAD_URL, `not a URL: ${url}`));
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return Promise.reject(new StatusTopError(STATUS_TOP_ERRORS.BAD_URL, `expected an http:// or https:// URL, got ${url}`));
  }
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, { method: 'GET', headers: { accept: 'application/json' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(new StatusTopError(STATUS_TOP_ERRORS.FETCH, err.message)));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          reject(new StatusTopError(STATUS_TOP_ERRORS.HTTP, `${url} answered ${String(res.statusCode)}`));
          return;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          reject(new StatusTopError(STATUS_TOP_ERRORS.BAD_REPORT, `${url} did not answer JSON`));
          return;
        }
        if (!isStatusReport(parsed)) {
          reject(new StatusTopError(STATUS_TOP_ERRORS.BAD_REPORT, `${url} did not answer a postern status report`));
          return;
        }
        resolve(parsed);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${String(timeoutMs)} ms`)));
    req.on('error', (err) => reject(new StatusTopError(STATUS_TOP_ERRORS.FETCH, `${url}: ${err.message}`)));
    req.end();
  });
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${String(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${String(m)}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${String(h)}h${String(m % 60).padStart(2, '0')}m`;
  return `${String(Math.floor(h / 24))}d${String(h % 24).padStart(2, '0')}h`;
}

function msText(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms < 10 ? ms.toFixed(1) : String(Math.round(ms));
}

/** Columns, left-aligned for text and right-aligned for numbers. */
function table(header: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (numeric[i] === true ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/**
 * The table for one report; with `previous` (the report one refresh ago) it adds request rates.
 * Pure, for tests and for the refresh loop.
 */
export function renderStatusTable(report: StatusReport, previous?: StatusReport): string {
  const dt = previous === undefined ? 0 : (report.generatedAt - previous.generatedAt) / 1000;
  const rate = (now: number, before: number | undefined): string =>
    dt > 0 && before !== undefined && now >= before ? ((now - before) / dt).toFixed(1) : '-';
  const t = report.totals;
  const out: string[] = [];
  const m = report.master;
  const head = m === undefined
    ? `postern  workers ${String(report.workers.length)}`
    : `postern master ${String(m.pid)}  up ${duration(m.uptimeMs)}  gen ${String(m.generation)}  workers ${String(report.workers.length)}/${String(m.targetWorkers)}` +
      `  crashes ${String(m.crashes)}  recycled ${String(m.recycled)}  reloads ${String(m.reloads)}${m.crashLoopBraked ? '  CRASH-LOOP BRAKE' : ''}`;
  out.push(head);
  const open = t.connectionsOpen.fastcgi + t.connectionsOpen.scgi + t.connectionsOpen.uwsgi + t.connectionsOpen.http;
  const rejected = Object.values(t.rejected).reduce((a, b) => a + b, 0);
  out.push(
    `requests ${String(t.requests)}  req/s ${rate(t.requests, previous?.totals.requests)}  in flight ${String(t.inFlight)}  busy ${String(t.busyWorkers)}/${String(report.workers.length)}` +
      `${t.saturated ? ' SATURATED' : ''}  connections ${String(open)}  rejected ${String(rejected)}  rss ${mib(t.rssBytes)} MiB`,
  );
  for (const b of report.backlog) out.push(`backlog ${b.address}  queued ${String(b.queued)}${b.max === undefined ? '' : `/${String(b.max)}`}`);
  out.push('');

  const prevWorker = new Map((previous?.workers ?? []).map((w) => [`${String(w.id)}:${String(w.pid)}`, w]));
  out.push(table(
    ['WID', 'PID', 'STATE', 'REQS', 'REQ/S', 'INFL', 'BUSY%', 'RSS MiB', 'UPTIME', 'LAST RESTART'],
    report.workers.map((w) => [
      String(w.id),
      String(w.pid),
      `${w.state ?? '-'}${w.retiring === true ? '*' : ''}`,
      String(w.requests),
      rate(w.requests, prevWorker.get(`${String(w.id)}:${String(w.pid)}`)?.requests),
      String(w.inFlight),
      w.eventLoopUtilization === undefined ? '-' : (w.eventLoopUtilization * 100).toFixed(0),
      mib(w.rssBytes),
      duration(w.uptimeMs),
      w.lastRestartReason ?? '-',
    ]),
    [true, true, false, true, true, true, true, true, true, false],
  ));
  out.push('');

  const prevMount = new Map((previous?.mounts ?? []).map((mt) => [mt.mount, mt]));
  out.push(table(
    ['MOUNT', 'REQS', 'REQ/S', ...STATUS_CLASSES.slice(0, 5), 'AVG ms', 'P50', 'P95', 'P99'],
    report.mounts.map((mt) => [
      mt.mount === '' ? '(none)' : mt.mount,
      String(mt.requests),
      rate(mt.requests, prevMount.get(mt.mount)?.requests),
      ...STATUS_CLASSES.slice(0, 5).map((_, i) => String(mt.statusClasses[i] ?? 0)),
      msText(mt.requests === 0 ? Number.NaN : mt.sumMs / mt.requests),
      msText(quantileMs(0.5, mt.buckets, report.bucketsMs)),
      msText(quantileMs(0.95, mt.buckets, report.bucketsMs)),
      msText(quantileMs(0.99, mt.buckets, report.bucketsMs)),
    ]),
    [false, true, true, true, true, true, true, true, true, true, true, true],
  ));
  return `${out.join('\n')}\n`;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Draws the status table of the postern at `url` (its statusPath, e.g. `http://127.0.0.1:8080/status`).
 * With `once`, one table and done (rejects with a StatusTopError on failure); otherwise it redraws
 * every `intervalMs` (clearing the screen on a terminal) until `signal` aborts, showing fetch
 * errors in place of the table and trying again.
 */
export async function runStatusTop(url: string, options: StatusTopOptions): Promise<void> {
  const { out, signal } = options;
  const tty = (out as { isTTY?: boolean }).isTTY === true;
  if (options.once) {
    out.write(renderStatusTable(await fetchStatus(url, options.timeoutMs)));
    return;
  }
  const stopped = (): boolean => signal?.aborted === true;
  let previous: StatusReport | undefined;
  while (!stopped()) {
    let text: string;
    try {
      const report = await fetchStatus(url, options.timeoutMs);
      text = renderStatusTable(report, previous);
      previous = report;
    } catch (err) {
      text = `postern status: ${err instanceof Error ? err.message : String(err)} (retrying every ${String(options.intervalMs)} ms)\n`;
    }
    if (stopped()) break;
    out.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    await sleep(Math.max(100, options.intervalMs), signal);
  }
}
