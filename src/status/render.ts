// Status report renderings, from a scraper's side: JSON (the report as is) and the Prometheus text
// exposition format 0.0.4 (# HELP / # TYPE, one sample per line, histograms as cumulative buckets).

import { STATUS_CLASSES } from './metrics.ts';
import type { StatusReport } from './report.ts';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
/** What Prometheus expects for the text format (https://prometheus.io/docs/instrumenting/exposition_formats/). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function renderJson(report: StatusReport): string {
  return `${JSON.stringify(report)}\n`;
}

/** A label value: backslash, double quote and line feed escaped (exposition format, "Text format details"). */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** HELP text: backslash and line feed escaped (quotes are not). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value: Prometheus spells the specials NaN, +Inf, -Inf. */
export function sampleValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

type Labels = Readonly<Record<string, string | number>>;

function labelText(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabelValue(String(labels[k]))}"`).join(',')}}`;
}

/** Collects families so each gets exactly one HELP/TYPE header, whatever order samples come in. */
class Exposition {
  readonly #families = new Map<string, { help: string; type: string; lines: string[] }>();

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    if (!this.#families.has(name)) this.#families.set(name, { help, type, lines: [] });
  }

  sample(family: string, name: string, value: number, labels?: Labels): void {
    const f = this.#families.get(family);
    if (f === undefined) throw new Error(`metric family ${family} not declared`);
    f.lines.push(`${name}${labelText(labels)} ${sampleValue(value)}`);
  }

  text(): string {
    let out = '';
    for (const [name, f] of this.#families) {
      // A family with no samples is left out: a HELP for nothing confuses no one but says nothing.
      if (f.lines.length === 0) continue;
      out += `# HELP ${name} ${escapeHelp(f.help)}\n# TYPE ${name} ${f.type}\n${f.lines.join('\n')}\n`;
    }
    return out;
  }
}

function seconds(ms: number): number {
  return ms / 1000;
}

/** The report in the Prometheus text format. Durations in seconds, as Prometheus convention wants. */
export function renderPrometheus(report: StatusReport): string {
  const x = new Exposition();
  const c = (name: string, help: string): string => {
    x.family(name, 'counter', help);
    return name;
  };
  const g = (name: string, help: string): string => {
    x.family(name, 'gauge', help);
    return name;
  };

  const up = g('postern_workers', 'Workers in the pool (live processes the report covers).');
  x.sample(up, up, report.workers.length);
  const sat = g('postern_workers_busy', 'Workers with at least one request in flight.');
  x.sample(sat, sat, report.totals.busyWorkers);
  const satAll = g('postern_saturated', '1 when every worker had a request in flight at the time of the report.');
  x.sample(satAll, satAll, report.totals.saturated ? 1 : 0);

  const m = report.master;
  if (m !== undefined) {
    const target = g('postern_workers_target', 'Workers the master aims to run.');
    x.sample(target, target, m.targetWorkers);
    const gen = g('postern_generation', 'Configuration generation (increments on each reload).');
    x.sample(gen, gen, m.generation);
    const upt = g('postern_master_uptime_seconds', 'Seconds since the master started.');
    x.sample(upt, upt, seconds(m.uptimeMs));
    const brake = g('postern_crash_loop_braked', '1 while the crash-loop brake holds respawns back.');
    x.sample(brake, brake, m.crashLoopBraked ? 1 : 0);
    for (const [key, name, help] of [
      ['crashes', 'postern_worker_crashes_total', 'Unplanned worker exits (crashes, deadline kills).'],
      ['deadlineKills', 'postern_worker_deadline_kills_total', 'Workers killed because a request overran requestTimeoutMs.'],
      ['recycled', 'postern_worker_recycles_total', 'Workers replaced by a recycling limit (requests, memory, lifetime).'],
      ['reloads', 'postern_reloads_total', 'Graceful reloads (SIGHUP).'],
    ] as const) {
      x.sample(c(name, help), name, m[key]);
    }
    if (m.allWorkersBusy !== undefined) {
      const allBusy = c('postern_all_workers_busy_total', "Heartbeat rounds at which every worker had a request in flight ('all workers busy').");
      x.sample(allBusy, allBusy, m.allWorkersBusy);
    }
  }

  const wReq = c('postern_worker_requests_total', 'Requests finished, per worker.');
  const wIn = g('postern_worker_in_flight', 'Requests in flight, per worker.');
  const wRss = g('postern_worker_rss_bytes', 'Resident set size, per worker.');
  const wUp = g('postern_worker_uptime_seconds', 'Seconds since the worker started.');
  const wBusy = c('postern_worker_busy_starts_total', 'Requests that arrived while the worker already had one in flight (queued on its event loop).');
  const wElu = g('postern_worker_event_loop_utilization', 'Share of time the worker\'s event loop was busy since the previous report (0-1).');
  const wInfo = g('postern_worker_info', 'Worker identity: pid, generation, state, and why its predecessor was restarted; always 1.');
  for (const w of report.workers) {
    const l = { worker: w.id };
    x.sample(wReq, wReq, w.requests, l);
    x.sample(wIn, wIn, w.inFlight, l);
    x.sample(wRss, wRss, w.rssBytes, l);
    x.sample(wUp, wUp, seconds(w.uptimeMs), l);
    if (w.busyStarts !== undefined) x.sample(wBusy, wBusy, w.busyStarts, l);
    if (w.eventLoopUtilization !== undefined) x.sample(wElu, wElu, w.eventLoopUtilization, l);
    x.sample(wInfo, wInfo, 1, {
      worker: w.id,
      pid: w.pid,
      ...(w.generation === undefined ? {} : { generation: w.generation }),
      ...(w.state === undefined ? {} : { state: w.state }),
      last_restart_reason: w.lastRestartReason ?? '',
    });
  }

  const t = report.totals;
  const open = g('postern_connections_open', 'Connections open now, per listener protocol.');
  const total = c('postern_connections_total', 'Connections accepted, per listener protocol.');
  for (const p of ['fastcgi', 'scgi', 'uwsgi', 'http'] as const) {
    x.sample(open, open, t.connectionsOpen[p], { protocol: p });
    x.sample(total, total, t.connectionsTotal[p], { protocol: p });
  }
  const rej = c('postern_rejected_total', 'Connections or requests turned away, by reason (maxConnections, overloaded, cantMpx, protocolError, timeout, draining).');
  for (const reason of Object.keys(t.rejected).sort()) x.sample(rej, rej, t.rejected[reason] ?? 0, { reason });

  const mReq = c('postern_requests_total', 'Requests finished, per mount and status class.');
  const hist = 'postern_request_duration_seconds';
  x.family(hist, 'histogram', 'Request duration from complete head to response end, per mount.');
  const bounds = report.bucketsMs;
  for (const mt of report.mounts) {
    for (let i = 0; i < STATUS_CLASSES.length; i++) {
      const n = mt.statusClasses[i] ?? 0;
      if (n > 0) x.sample(mReq, mReq, n, { mount: mt.mount, status: STATUS_CLASSES[i]! });
    }
    let cumulative = 0;
    for (let i = 0; i < bounds.length; i++) {
      cumulative += mt.buckets[i] ?? 0;
      x.sample(hist, `${hist}_bucket`, cumulative, { mount: mt.mount, le: String(seconds(bounds[i]!)) });
    }
    cumulative += mt.buckets[bounds.length] ?? 0;
    x.sample(hist, `${hist}_bucket`, cumulative, { mount: mt.mount, le: '+Inf' });
    x.sample(hist, `${hist}_sum`, seconds(mt.sumMs), { mount: mt.mount });
    x.sample(hist, `${hist}_count`, cumulative, { mount: mt.mount });
  }

  const bq = g('postern_listen_backlog_queued', 'Connections waiting in the kernel accept queue of a TCP listener (not yet accepted by any worker).');
  const bm = g('postern_listen_backlog_max', 'Size of the kernel accept queue of a TCP listener.');
  for (const b of report.backlog) {
    x.sample(bq, bq, b.queued, { address: b.address });
    if (b.max !== undefined) x.sample(bm, bm, b.max, { address: b.address });
  }
  return x.text();
}
