// A small synchronous event log for the command line, from the operator's side: start-up, signal and
// error lines to stderr or `logFile`, pretty on a terminal and JSON lines otherwise. It stands in for
// the winston event log of src/log/ and implements the same EventLog interface.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { EventLog } from '../log/types.ts';
import type { LogFormat, LogLevel } from './options.ts';

export interface ConsoleLog extends EventLog {
  /** Applies new log options (a reload); the object stays the same, so holders keep logging. */
  configure(options: ConsoleLogOptions): void;
  /** Reopens `logFile` (SIGUSR1, after logrotate moved it). */
  reopen(): void;
  close(): void;
}

export interface ConsoleLogOptions {
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly logFile?: string;
}

const RANK: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };
const COLOUR: Readonly<Record<LogLevel, string>> = { error: '\x1b[31m', warn: '\x1b[33m', info: '\x1b[36m', debug: '\x1b[90m' };

export function createConsoleLog(options: ConsoleLogOptions, io: { stderr: (text: string) => void; isTTY: boolean }): ConsoleLog {
  let file: string | undefined;
  let json = false;
  let colour = false;
  let max = RANK.info;
  let fd: number | undefined;

  const write = (line: string): void => {
    if (fd === undefined) io.stderr(line);
    else {
      // A full disk must not stop the server: stderr is the last resort.
      try { writeSync(fd, line); } catch { io.stderr(line); }
    }
  };
  const emit = (level: LogLevel, message: string, meta?: Record<string, unknown>): void => {
    if (RANK[level] > max) return;
    if (json) {
      write(`${JSON.stringify({ time: new Date().toISOString(), level, pid: process.pid, message, ...meta })}\n`);
      return;
    }
    const extra = meta === undefined ? '' : Object.entries(meta)
      .filter(([k]) => !(k === 'protocol' || k === 'address'))
      .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('');
    const tag = level === 'info' ? '' : `${colour ? COLOUR[level] : ''}${level}${colour ? '\x1b[0m' : ''}: `;
    write(`postern: ${tag}${message}${extra}\n`);
  };
  const close = (): void => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  const log: ConsoleLog = {
    error: (m, meta) => { emit('error', m, meta); },
    warn: (m, meta) => { emit('warn', m, meta); },
    info: (m, meta) => { emit('info', m, meta); },
    debug: (m, meta) => { emit('debug', m, meta); },
    get debugEnabled() { return max >= RANK.debug; },
    configure: (o) => {
      // Open the new file before closing the old one, so a bad path leaves the log where it was.
      const nextFd = o.logFile === undefined ? undefined : openSync(o.logFile, 'a');
      close();
      fd = nextFd;
      file = o.logFile;
      json = o.logFormat === 'json' || (o.logFormat === 'auto' && (file !== undefined || !io.isTTY));
      colour = !json && file === undefined && io.isTTY;
      max = RANK[o.logLevel];
    },
    reopen: () => {
      if (fd === undefined || file === undefined) return;
      const old = fd;
      fd = openSync(file, 'a');
      closeSync(old);
    },
    close,
  };
  log.configure(options);
  return log;
}
