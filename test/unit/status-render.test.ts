// Status renderings: the Prometheus text format parsed back (HELP/TYPE before samples, one header
// per family, cumulative histogram buckets ending in +Inf = _count, seconds, label escaping) and JSON.

import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { Metrics } from '../../src/status/metrics.ts';
import { escapeHelp, escapeLabelValue, renderJson, renderPrometheus, sampleValue } from '../../src/status/render.ts';
import { buildStatusReport, type StatusReport } from '../../src/status/report.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Parsed {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/** A strict reader of the text format 0.0.4: fails on anything it does not understand. */
function parseExposition(text: string): Parsed {
  assert.ok(text.endsWith('\n'), 'ends with a line feed');
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  const familyOf = (name: string): string => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && type.get(base) === 'histogram') return base;
    }
    return name;
  };
  const seenFamilies: string[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m !== null) {
      assert.ok(!help.has(m[1]!), `one HELP for ${m[1]!}`);
      help.set(m[1]!, m[2]!.replace(/\\n/g, '\n').replace(/\\\\/g, '\\'));
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m !== null) {
      assert.ok(!type.has(m[1]!), `one TYPE for ${m[1]!}`);
      assert.ok(help.has(m[1]!), `HELP before TYPE for ${m[1]!}`);
      type.set(m[1]!, m[2]!);
      seenFamilies.push(m[1]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `a sample line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const family = familyOf(name);
    assert.ok(type.has(family), `TYPE declared before ${name}`);
    assert.equal(seenFamilies[seenFamilies.length - 1], family, `samples of ${family} are grouped under its header`);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? '';
    while (rest.length > 0) {
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/.exec(rest);
      assert.ok(l !== null, `labels: ${rest}`);
      labels[l[1]!] = l[2]!.replace(/\\(\\|"|n)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
    }
    const v = m[3]!;
    samples.push({ name, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return { help, type, samples };
}

function report(): StatusReport {
  const a = new Metrics({ worker: 1 });
  const b = new Metrics({ worker: 2 });
  const odd = 'we"ird\\mount\nx';
  for (const [m, mount, status, ms] of [
    [a, '/api', 200, 0.4], [a, '/api', 200, 3], [a, '/api', 503, 700], [b, '/api', 404, 12], [b, odd, 200, 20000], [b, '', 0, 1],
  ] as const) {
    m.requestStarted();
    m.requestFinished(mount, status, ms);
  }
  a.requestStarted();
  a.connectionOpened('fastcgi');
  b.connectionOpened('http');
  b.rejected('maxConnections');
  return buildStatusReport({
    pool: {
      master: { pid: 1, startedAt: Date.now() - 1000, generation: 3, targetWorkers: 2, crashLoopBraked: false, crashes: 0, deadlineKills: 1, recycled: 2, reloads: 1, allWorkersBusy: 4 },
      workers: [
        { id: 1, pid: 11, state: 'ready', metrics: a.snapshot(), lastRestartReason: 'crashed: "signal" SIGKILL' },
        { id: 2, pid: 12, state: 'ready', metrics: b.snapshot() },
      ],
    },
    backlog: [{ address: '127.0.0.1:9000', port: 9000, queued: 3, max: 511 }],
  });
}

describe('prometheus', () => {
  const r = report();
  const text = renderPrometheus(r);
  const p = parseExposition(text);
  const find = (name: string, labels: Record<string, string> = {}): Sample[] =>
    p.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

  test('every family has HELP and TYPE of the right kind', () => {
    assert.equal(p.type.get('postern_request_duration_seconds'), 'histogram');
    assert.equal(p.type.get('postern_requests_total'), 'counter');
    assert.equal(p.type.get('postern_worker_in_flight'), 'gauge');
    assert.equal(p.type.get('postern_connections_open'), 'gauge');
    for (const [name, t] of p.type) {
      if (t === 'counter') assert.ok(name.endsWith('_total'), `${name} ends in _total`);
    }
  });

  test('per worker rows and master counters', () => {
    assert.deepEqual(find('postern_worker_requests_total').map((s) => [s.labels['worker'], s.value]), [['1', 3], ['2', 3]]);
    assert.equal(find('postern_worker_in_flight', { worker: '1' })[0]?.value, 1);
    const info = find('postern_worker_info', { worker: '1' })[0];
    assert.equal(info?.labels['last_restart_reason'], 'crashed: "signal" SIGKILL');
    assert.equal(info?.labels['pid'], '11');
    assert.equal(find('postern_worker_recycles_total')[0]?.value, 2);
    assert.equal(find('postern_all_workers_busy_total')[0]?.value, 4);
    assert.equal(find('postern_workers_target')[0]?.value, 2);
    assert.equal(find('postern_workers_busy')[0]?.value, 1);
    assert.ok(find('postern_worker_rss_bytes', { worker: '2' })[0]!.value > 0);
  });

  test('connections, rejections, backlog', () => {
    assert.equal(find('postern_connections_open', { protocol: 'fastcgi' })[0]?.value, 1);
    assert.equal(find('postern_connections_total', { protocol: 'http' })[0]?.value, 1);
    assert.equal(find('postern_rejected_total', { reason: 'maxConnections' })[0]?.value, 1);
    assert.equal(find('postern_listen_backlog_queued', { address: '127.0.0.1:9000' })[0]?.value, 3);
    assert.equal(find('postern_listen_backlog_max')[0]?.value, 511);
  });

  test('histograms: cumulative buckets in seconds, +Inf equals _count, _sum in seconds', () => {
    for (const mount of ['/api', 'we"ird\\mount\nx', '']) {
      const buckets = find('postern_request_duration_seconds_bucket', { mount });
      assert.equal(buckets.length, r.bucketsMs.length + 1);
      assert.deepEqual(buckets.map((b) => b.labels['le']), [...r.bucketsMs.map((ms) => String(ms / 1000)), '+Inf']);
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'non-decreasing');
      const count = find('postern_request_duration_seconds_count', { mount })[0]?.value;
      assert.equal(buckets[buckets.length - 1]?.value, count);
    }
    const api = find('postern_request_duration_seconds_bucket', { mount: '/api' });
    assert.equal(api.find((b) => b.labels['le'] === '0.001')?.value, 1); // 0.4 ms
    assert.equal(api.find((b) => b.labels['le'] === '0.005')?.value, 2); // + 3 ms
    assert.equal(api.find((b) => b.labels['le'] === '0.025')?.value, 3); // + 12 ms
    assert.equal(api.find((b) => b.labels['le'] === '1')?.value, 4); // + 700 ms
    assert.equal(find('postern_request_duration_seconds_sum', { mount: '/api' })[0]?.value, (0.4 + 3 + 700 + 12) / 1000);
    const odd = find('postern_request_duration_seconds_bucket', { mount: 'we"ird\\mount\nx' });
    assert.equal(odd.find((b) => b.labels['le'] === '10')?.value, 0);
    assert.equal(odd.find((b) => b.labels['le'] === '+Inf')?.value, 1);
  });

  test('per mount status classes', () => {
    assert.equal(find('postern_requests_total', { mount: '/api', status: '2xx' })[0]?.value, 2);
    assert.equal(find('postern_requests_total', { mount: '/api', status: '5xx' })[0]?.value, 1);
    assert.equal(find('postern_requests_total', { mount: '/api', status: '4xx' })[0]?.value, 1);
    assert.equal(find('postern_requests_total', { mount: '', status: 'other' })[0]?.value, 1);
  });

  test('escaping helpers', () => {
    assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
    assert.equal(escapeLabelValue('plain'), 'plain');
    assert.equal(escapeHelp('a\\b\nc "q"'), 'a\\\\b\\nc "q"');
    assert.deepEqual([NaN, Infinity, -Infinity, 0.25].map(sampleValue), ['NaN', '+Inf', '-Inf', '0.25']);
  });

  test('an empty report still parses', () => {
    const empty = buildStatusReport({ snapshots: [] });
    const e = parseExposition(renderPrometheus(empty));
    assert.equal(e.samples.find((s) => s.name === 'postern_workers')?.value, 0);
  });
});

describe('json', () => {
  test('is the report, one line', () => {
    const r = report();
    const text = renderJson(r);
    assert.equal(text.indexOf('\n'), text.length - 1);
    assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(r)));
  });
});
