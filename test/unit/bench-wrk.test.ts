// The benchmark's reading of wrk's report (bench/wrk.ts), from the bench's side: reports as wrk
// 4.1 prints them on this machine (plain, with error answers, with socket errors).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { median, parseWrk, wrkArgs } from '../../bench/wrk.ts';

const PLAIN = `Running 1s test @ http://127.0.0.1:38082/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.04ms    1.23ms   8.04ms   80.95%
    Req/Sec     2.06k   409.07     2.78k    60.00%
  Latency Distribution
     50%    1.73ms
     75%    2.50ms
     90%    3.75ms
     99%    6.45ms
  2064 requests in 1.00s, 348.70KB read
Requests/sec:   2054.64
Transfer/sec:    347.12KB
`;

const ERRORS = `Running 1s test @ http://127.0.0.1:38082/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.15ms    1.21ms  14.81ms   93.52%
    Req/Sec     4.14k     0.92k    6.10k    72.73%
  Latency Distribution
     50%  860.00us
     75%    1.15ms
     90%    1.71ms
     99%    1.02s
  4533 requests in 1.10s, 792.37KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4533
Requests/sec:   4120.25
Transfer/sec:    720.22KB
`;

describe('bench/wrk.ts', () => {
  test('a clean report: req/s, requests, percentiles in ms, no errors', () => {
    assert.deepEqual(parseWrk(PLAIN), { rps: 2054.64, requests: 2064, p50: 1.73, p99: 6.45, errors: 0 });
  });

  test('error answers and socket errors add up; µs and s percentiles are converted to ms', () => {
    const r = parseWrk(ERRORS);
    assert.equal(r.errors, 4533 + 3);
    assert.equal(r.rps, 4120.25);
    assert.ok(Math.abs(r.p50 - 0.86) < 1e-9);
    assert.equal(r.p99, 1020);
  });

  test('no report (wrk failed to connect): NaN figures, so a median shows the gap', () => {
    const r = parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n');
    assert.ok(Number.isNaN(r.rps) && Number.isNaN(r.requests) && Number.isNaN(r.p99));
  });

  test('median of odd and even counts', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  test('one thread, the connections, the duration, latency on, the script before the URL', () => {
    assert.deepEqual(wrkArgs('http://x/', 5, 16, undefined), ['-t1', '-c16', '-d5s', '--latency', 'http://x/']);
    assert.deepEqual(wrkArgs('http://x/', 2, 1, '/tmp/a.lua'), ['-t1', '-c1', '-d2s', '--latency', '-s', '/tmp/a.lua', 'http://x/']);
  });
});
