// Admission control, from the server's side: how many requests one process runs at once
// (`maxInflightRequests`) and what a request past that gets instead of a place in an unbounded
// queue on the event loop: a 503 with Retry-After (SCGI, uwsgi, HTTP) or, on FastCGI, the same 503
// followed by END_REQUEST(FCGI_OVERLOADED) (spec §5.5). Refusals are counted and logged, at most
// one line per interval so a flood does not become a log flood.

import { encodeEndRequest, encodeStdout, FCGI_PROTOCOL_STATUS, FCGI_TYPE, FCGI_VERSION_1 } from '../../protocols/fastcgi/index.ts';
import { encodeResponseHead } from '../../protocols/common/head.ts';
import type { CannedAnswer } from './shared.ts';
import { reasonOf } from './shared.ts';

export const OVERLOADED_STATUS = 503;

/** One log line per this many ms for a repeated refusal (maxConnections, maxInflightRequests, access). */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** `503 Service Unavailable` with `Retry-After` (omitted for 0): what an overloaded server answers. */
export function overloadedAnswer(retryAfterSeconds: number): CannedAnswer {
  const reason = reasonOf(OVERLOADED_STATUS);
  const body = Buffer.from(`${String(OVERLOADED_STATUS)} ${reason}\n`, 'latin1');
  const headers: Array<readonly [string, string]> = [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(body.length)],
  ];
  // RFC 9110 §10.2.3: delay-seconds.
  if (retryAfterSeconds > 0) headers.push(['Retry-After', String(retryAfterSeconds)]);
  return Object.freeze({ status: OVERLOADED_STATUS, reason, headers: Object.freeze(headers), body });
}

/**
 * The FastCGI refusal for request `id`: the 503 as STDOUT, the empty STDOUT that ends the stream,
 * and END_REQUEST(appStatus 0, FCGI_OVERLOADED). The STDOUT is there for the web servers people
 * run: nginx never reads protocolStatus, and an END_REQUEST with no output before it becomes a 502
 * "upstream prematurely closed FastCGI stdout"; with it the client gets the 503 and Retry-After.
 */
export function fastcgiOverloaded(id: number, answer: CannedAnswer): Buffer[] {
  const head = encodeResponseHead('cgi', answer.status, answer.reason, answer.headers);
  const end = Buffer.alloc(8);
  end[0] = FCGI_VERSION_1;
  end[1] = FCGI_TYPE.STDOUT;
  end.writeUInt16BE(id, 2);
  return [...encodeStdout(id, Buffer.concat([head, answer.body])), end, encodeEndRequest(id, 0, FCGI_PROTOCOL_STATUS.OVERLOADED)];
}

/** Says whether a log line is due: the first event, then at most one per `intervalMs`. */
export class LogThrottle {
  readonly #intervalMs: number;
  #last = -Infinity;

  constructor(intervalMs = REFUSAL_LOG_INTERVAL_MS) {
    this.#intervalMs = intervalMs;
  }

  due(now: number): boolean {
    if (now - this.#last < this.#intervalMs) return false;
    this.#last = now;
    return true;
  }
}
