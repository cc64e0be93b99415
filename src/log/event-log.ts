// The event log, from the operator's side: lifecycle, warnings and errors through winston, coloured
// lines on a terminal, JSON lines for containers and files, and a file that logrotate can move.

import type { WriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import winston from 'winston';
import { endFile, openAppend } from './file.ts';
import type { EventLog } from './types.ts';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type EventLogFormat = 'auto' | 'json' | 'pretty';

export interface EventLogOptions {
  readonly level: LogLevel;
  /** `auto`: pretty on a terminal, JSON lines otherwise (and always JSON into a file). */
  readonly format: EventLogFormat;
  /** Append to this file instead of the stream (reopened by `reopen()`, e.g. on SIGUSR1). */
  readonly file?: string;
  /** Where lines go without `file`; default `process.stderr`. Never ended by `close()`. */
  readonly stream?: NodeJS.WritableStream;
  /** Fields added to every line, e.g. `{ worker: 3 }`. (Additive to the task's option list.) */
  readonly base?: Readonly<Record<string, unknown>>;
}

export interface ManagedEventLog extends EventLog {
  /** Reopens `file` (logrotate moved it); a no-op without a file. Throws if the file cannot be opened. */
  reopen(): void;
  /** Flushes and closes the file; later calls log nothing. The stream given in the options stays open. */
  close(): Promise<void>;
  setLevel(level: LogLevel): void;
  readonly level: LogLevel;
}

const RANK: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };
const COLOUR: Readonly<Record<LogLevel, string>> = { error: '\x1b[31m', warn: '\x1b[33m', info: '\x1b[32m', debug: '\x1b[90m' };
const LABEL: Readonly<Record<LogLevel, string>> = { error: 'ERROR', warn: 'WARN ', info: 'INFO ', debug: 'DEBUG' };
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Keys every JSON line owns; a meta key with one of these names is written as `meta.<key>`. */
const RESERVED = new Set(['time', 'level', 'pid', 'message']);

/** What our winston format reads: the level, the message and the caller's meta, kept apart. */
interface Entry {
  level: LogLevel;
  message: string;
  meta: Record<string, unknown> | undefined;
}

// Error objects serialise as `{}` with JSON.stringify; keep what an operator needs.
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }), stack: value.stack };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function safeStringify(value: unknown): string {
  // Meta comes from anywhere: a cycle becomes "[Circular]" rather than a lost line.
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(value, (_k, v: unknown) => {
      const p = plain(v);
      if (typeof p === 'object' && p !== null) {
        if (seen.has(p)) return '[Circular]';
        seen.add(p);
      }
      return p;
    }) ?? 'null';
  } catch (err) {
    // A throwing toJSON or getter.
    return JSON.stringify(`[unserializable: ${err instanceof Error ? err.message : 'error'}]`);
  }
}

function jsonLine(e: Entry, base: Readonly<Record<string, unknown>> | undefined): string {
  const o: Record<string, unknown> = { time: new Date().toISOString(), level: e.level, pid: process.pid };
  if (base !== undefined) for (const k of Object.keys(base)) o[RESERVED.has(k) ? `meta.${k}` : k] = base[k];
  o['message'] = e.message;
  if (e.meta !== undefined) for (const k of Object.keys(e.meta)) o[RESERVED.has(k) ? `meta.${k}` : k] = e.meta[k];
  return safeStringify(o);
}

function prettyValue(v: unknown): string {
  const p = plain(v);
  if (typeof p === 'string') return /^[\x21-\x7e]*$/.test(p) && p !== '' ? p : JSON.stringify(p);
  if (typeof p === 'number' || typeof p === 'boolean' || p === null || p === undefined) return String(p);
  if (v instanceof Error) {
    const code = (v as { code?: unknown }).code;
    const head = `${v.name}${typeof code === 'string' || typeof code === 'number' ? ` [${String(code)}]` : ''}: ${v.message}`;
    return `${JSON.stringify(head)}${v.stack === undefined ? '' : `\n${v.stack}`}`;
  }
  return safeStringify(p);
}

function prettyLine(e: Entry, base: Readonly<Record<string, unknown>> | undefined, colour: boolean): string {
  let extra = '';
  const all = base === undefined ? e.meta : { ...base, ...e.meta };
  if (all !== undefined) for (const k of Object.keys(all)) extra += ` ${colour ? DIM : ''}${k}=${colour ? RESET : ''}${prettyValue(all[k])}`;
  const time = new Date().toISOString();
  return colour
    ? `${DIM}${time}${RESET} ${COLOUR[e.level]}${LABEL[e.level]}${RESET} ${e.message}${extra}`
    : `${time} ${LABEL[e.level]} ${e.message}${extra}`;
}

/**
 * The one destination winston's Stream transport writes to, swappable under it: the file stream
 * (replaced on reopen, for logrotate) or the caller's stream. Passes each line straight through, so
 * the backpressure (and the buffering) is the target's.
 */
class Redirect extends Writable {
  target: NodeJS.WritableStream;

  constructor(target: NodeJS.WritableStream) {
    super({ decodeStrings: false });
    this.target = target;
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.target.write(chunk);
    callback();
  }
}

/**
 * Creates the event log. Calls below the level return before reaching winston (a filtered
 * `winston.debug()` costs 1.3 µs, DEPENDENCIES.md §5; a rank comparison costs nothing measurable),
 * and `debugEnabled` is a plain boolean for hot paths.
 */
export function createEventLog(options: EventLogOptions): ManagedEventLog {
  const consoleStream: NodeJS.WritableStream = options.stream ?? process.stderr;
  const file = options.file;
  const base = options.base;
  const isTTY = file === undefined && (consoleStream as { isTTY?: boolean }).isTTY === true;
  const json = options.format === 'json' || (options.format === 'auto' && !isTTY);
  const colour = !json && isTTY;

  const redirect = new Redirect(consoleStream);
  let fileStream: WriteStream | undefined;
  let fileFailed = false;
  const onFileError = (failed: WriteStream, err: Error): void => {
    // A full disk or a vanished directory must not take the server down: fall back to stderr
    // until the next reopen, and say so once. A late error from a rotated-away stream is moot.
    if (failed !== fileStream || fileFailed) return;
    fileFailed = true;
    redirect.target = process.stderr;
    process.stderr.write(`postern: event log file ${String(file)} failed (${(err as { code?: string }).code ?? err.message}); logging to stderr until reopened\n`);
  };
  if (file !== undefined) {
    fileStream = openAppend(file, onFileError);
    redirect.target = fileStream;
  }
  const sink = new winston.transports.Stream({ stream: redirect, eol: '\n' });
  const logger = winston.createLogger({
    level: options.level,
    levels: RANK,
    exitOnError: false,
    format: winston.format.printf((info) => {
      const e = info as unknown as Entry;
      return json ? jsonLine(e, base) : prettyLine(e, base, colour);
    }),
    transports: [sink],
  });

  let rank = RANK[options.level];
  let level = options.level;
  let closed = false;

  const emit = (l: LogLevel, message: string, meta: Record<string, unknown> | undefined): void => {
    if (closed || RANK[l] > rank) return;
    // One info object of our own shape: winston's (message, meta) form would append meta.message to
    // the message and lift meta.stack (DEPENDENCIES.md §5 gotchas).
    logger.log({ level: l, message, meta } as unknown as winston.LogEntry);
  };

  // debugEnabled is a data property (not a getter), so a hot-path check is one load.
  const log: Omit<ManagedEventLog, 'debugEnabled'> & { debugEnabled: boolean } = {
    error: (m, meta) => { emit('error', m, meta); },
    warn: (m, meta) => { emit('warn', m, meta); },
    info: (m, meta) => { emit('info', m, meta); },
    debug: (m, meta) => { emit('debug', m, meta); },
    debugEnabled: rank >= RANK.debug,
    get level() { return level; },
    setLevel(l: LogLevel) {
      if (RANK[l] === undefined) throw new TypeError(`unknown log level ${String(l)}`);
      level = l;
      rank = RANK[l];
      logger.level = l;
      log.debugEnabled = rank >= RANK.debug;
    },
    reopen() {
      if (file === undefined || closed) return;
      const next = openAppend(file, onFileError);
      const old = fileStream;
      fileStream = next;
      fileFailed = false;
      redirect.target = next;
      // Lines already handed to the old stream finish into the old (rotated) file.
      if (old !== undefined) void endFile(old);
    },
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        if (sink.writableFinished) { resolve(); return; }
        sink.once('finish', () => resolve());
        logger.end();
      });
      if (fileStream !== undefined) await endFile(fileStream);
    },
  };
  return log;
}
