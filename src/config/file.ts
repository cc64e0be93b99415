// Reading a config file, from the operator's side: YAML or JSON (by extension, else by content), kept
// with its syntax tree so any later complaint about a key can point at file:line:col.

import { readFileSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { CONFIG_ERRORS, ConfigError } from './errors.ts';

export type ConfigFormat = 'yaml' | 'json';
export type KeyPath = ReadonlyArray<string | number>;

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface ConfigFile {
  /** Absolute path. */
  readonly path: string;
  /** The path as the operator gave it, for messages. */
  readonly display: string;
  readonly format: ConfigFormat;
  /** The parsed content as plain values (an empty file is `{}`). */
  readonly data: unknown;
  /** 1-based position of a key (or of its value) at `path`, when the tree has it. */
  locate(path: KeyPath, part?: 'key' | 'value'): Position | undefined;
}

/** YAML or JSON, by extension first, then by the first significant character. */
export function detectFormat(path: string, text: string): ConfigFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  const first = /^[\uFEFF\s]*(.)/.exec(text)?.[1];
  return first === '{' ? 'json' : 'yaml';
}

export function readConfigFile(path: string, cwd: string = process.cwd()): ConfigFile {
  const abs = isAbsolute(path) ? path : resolve(cwd, path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file'
      : (err as NodeJS.ErrnoException).code === 'EISDIR' ? 'is a directory, expected a file'
        : (err as Error).message;
    throw new ConfigError([{ code: CONFIG_ERRORS.FILE, key: 'config', source: 'config', file: path, message: `cannot read the config file: ${why}` }]);
  }
  return parseConfigText(text, path, abs);
}

/** Parses config text; `display` names it in messages, `abs` is where relative paths in it resolve from. */
export function parseConfigText(text: string, display: string, abs: string = resolve(display), format: ConfigFormat = detectFormat(display, text)): ConfigFile {
  const lines = new LineCounter();
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const parseError = (line: number, col: number, message: string): ConfigError =>
    new ConfigError([{ code: CONFIG_ERRORS.PARSE, key: '', source: 'config', file: display, line, col, message }]);

  if (format === 'json') {
    // JSON.parse is the judge of validity; the YAML parser (JSON is a subset) only supplies positions.
    try {
      JSON.parse(body);
    } catch {
      // Node 20's JSON.parse often names no position; find it with a scanner of our own.
      const bad = jsonError(body);
      const pos = offsetToPosition(body, bad.offset);
      throw parseError(pos.line, pos.col, `not valid JSON: ${bad.message}`);
    }
  }
  const doc = parseDocument(body, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    const pos = lines.linePos(err.pos[0]);
    const what = err.code === 'DUPLICATE_KEY' ? 'duplicate key' : `not valid ${format === 'json' ? 'JSON' : 'YAML'}`;
    throw parseError(pos.line, pos.col, `${what}: ${firstLine(err.message)}`);
  }
  const data: unknown = doc.contents === null ? {} : doc.toJS({ maxAliasCount: 100 });
  return {
    path: abs,
    display,
    format,
    data: data ?? {},
    locate: (path, part = 'key') => locate(doc, lines, path, part),
  };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/** Where strict JSON (RFC 8259) first goes wrong in `text`, which JSON.parse has rejected. */
export function jsonError(text: string): { offset: number; message: string } {
  let i = 0;
  const fault = (message: string): never => {
    throw Object.assign(new Error(message), { offset: i });
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };
  const describeHere = (): string => (i >= text.length ? 'unexpected end of input' : `unexpected ${JSON.stringify(text[i])}`);
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fault(describeHere());
  };
  const string = (): void => {
    i++;
    for (;;) {
      if (i >= text.length) fault('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) { i++; return; }
      if (c < 0x20) fault('control character in string');
      if (c === 0x5c) {
        const e = text[i + 1] ?? '';
        if ('"\\/bfnrt'.includes(e) && e !== '') i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else { i++; fault('bad escape in string'); }
      } else i++;
    }
  };
  const number = (): void => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (m === null) fault(describeHere());
    else i += m[0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fault(`${describeHere()}, expected a key in double quotes`);
        string(); ws();
        if (text[i] !== ':') fault(`${describeHere()}, expected ':'`);
        i++; value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fault(`${describeHere()}, expected ',' or '}'`);
      }
    } else if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fault(`${describeHere()}, expected ',' or ']'`);
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else number();
  };
  try {
    value(); ws();
    if (i < text.length) fault(`${describeHere()} after the end of the JSON value`);
  } catch (err) {
    return { offset: (err as { offset: number }).offset, message: (err as Error).message };
  }
  return { offset: 0, message: 'rejected by JSON.parse' };
}

function offsetToPosition(text: string, offset: number): Position {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) { line++; start = i + 1; }
  }
  return { line, col: offset - start + 1 };
}

function locate(doc: Document, lines: LineCounter, path: KeyPath, part: 'key' | 'value'): Position | undefined {
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const seg of path) {
    keyNode = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (pair === undefined) return at(node);
      keyNode = pair.key;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item === undefined) return at(node);
      node = item;
    } else {
      return at(node);
    }
  }
  return at(part === 'key' && keyNode !== undefined ? keyNode : node);

  function at(n: unknown): Position | undefined {
    const range = (n as YamlNode | null | undefined)?.range;
    if (range === undefined || range === null) return undefined;
    return lines.linePos(range[0]);
  }
}
